"""The allocation HTTP API for finance, engineering and business: rules (JSON or YAML), showback and chargeback
per period, period close and the ERP journal."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pydantic
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from finops_allocation import budgets, ledger, ownership, runs, unit_economics
from finops_allocation.journal import AccountMapping, JournalError
from finops_allocation.rules import RuleSet
from finops_allocation.splits import SplitError
from finops_contracts.events import JournalExported
from finops_contracts.money import Money
from finops_contracts.periods import parse_label, period_label, utc_month_start
from finops_runtime import outbox
from finops_runtime.access import Denied, Principal, Role, authenticate
from finops_runtime.app import ServiceRuntime

SOURCE = "/finops/allocation"
YAML = "application/yaml"
PEOPLE = frozenset({Role.ENGINEERING, Role.FINANCE, Role.BUSINESS, Role.PRACTITIONER, Role.ADMIN})
RULE_EDITORS = frozenset({Role.PRACTITIONER, Role.FINANCE, Role.ADMIN})
FINANCE = frozenset({Role.FINANCE, Role.ADMIN})
ERP = frozenset({Role.FINANCE, Role.ADMIN, Role.AUTOMATION})


def problem(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def period_param(request: Request) -> str | datetime:
    """`?period=`: a `YYYY-MM` name, or one period's exact BillingPeriodStart (ISO 8601 with its offset, e.g.
    2026-03-01T08:00:00Z); ValueError saying what is expected."""
    raw = request.query_params.get("period", "").strip()
    if "T" in raw:
        try:
            start = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            start = None
        if start is None or start.tzinfo is None:
            raise ValueError(f"period must be YYYY-MM or a BillingPeriodStart with its offset, got {raw!r}")
        return start.astimezone(UTC)
    return parse_label(raw)


def label_start(request: Request) -> datetime:
    """`?period=YYYY-MM` of what people key by month name (budgets, business metrics): that month's UTC start."""
    return utc_month_start(parse_label(request.query_params.get("period", "")))


async def periods_of(conn: asyncpg.Connection, request: Request) -> list[datetime]:
    """The periods `?period=` names: a `YYYY-MM` name stands for every period whose BillingPeriodStart falls in
    that month in its bill's own zone (finops_contracts.periods), so GCP's 2026-03-01T08:00Z is `2026-03`."""
    named = period_param(request)
    return [named] if isinstance(named, datetime) else await ledger.periods_named(conn, named)


async def one_period_of(conn: asyncpg.Connection, request: Request) -> datetime:
    """The one period `?period=` names; ValueError (409) when a month name stands for several."""
    periods = await periods_of(conn, request)
    if len(periods) > 1:
        starts = ", ".join(p.isoformat() for p in periods)
        raise AmbiguousPeriod(
            f"{period_label(periods[0])} names {len(periods)} billing periods (BillingPeriodStart {starts}); "
            "pass one of them as ?period=<BillingPeriodStart>"
        )
    return periods[0]


class AmbiguousPeriod(ValueError):
    """A month name stands for several billing periods (bills of different zones) where one is needed."""


def merged(reports: list[list[dict[str, object]]]) -> list[dict[str, object]]:
    """Report rows of several periods of one name, summed per (name, currency)."""
    if len(reports) == 1:
        return reports[0]
    totals: dict[tuple[object, object], dict[str, object]] = {}
    for rows in reports:
        for row in rows:
            key = (row["name"], row["currency"])
            if key not in totals:
                totals[key] = dict(row)
                continue
            t = totals[key]
            for k, v in row.items():
                if k not in ("name", "currency", "reporting_currency", "rate", "rate_date"):
                    t[k] += v
    return [totals[k] for k in sorted(totals, key=lambda k: (str(k[0]), str(k[1])))]


def _query(period: datetime) -> str:
    """A period as an exact `?period=` value (its BillingPeriodStart, URL-safe): a name may stand for several."""
    return period.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _describe(who: Principal) -> str:
    scope = who.scope()
    if scope is None:
        return "all"
    return "; ".join(f"{dim}: {', '.join(sorted(values)) or 'none'}" for dim, values in scope.items()) or "none"


def add_routes(runtime: ServiceRuntime) -> None:
    async def rules(request: Request) -> Response:
        """GET: the rules in force (`?format=yaml` for YAML). PUT: a new rule set (JSON, or YAML with
        Content-Type application/yaml); every period is re-allocated under it in the same transaction."""
        try:
            async with runtime.pool.acquire() as conn:
                who = await authenticate(conn, request, allowed=PEOPLE if request.method == "GET" else RULE_EDITORS)
        except Denied as denied:
            return denied.response()
        if request.method == "GET":
            async with runtime.pool.acquire() as conn:
                version, ruleset = await ledger.current_rules(conn)
            if request.query_params.get("format") == "yaml":
                return Response(ruleset.to_yaml(), media_type=YAML, headers={"X-Ruleset-Version": str(version)})
            return JSONResponse({"version": version, **ruleset.model_dump(mode="json")})
        if request.method != "PUT":
            return problem(405, "use GET or PUT")
        body = (await request.body()).decode("utf-8", "replace")
        try:
            if request.headers.get("content-type", "").startswith(YAML):
                ruleset = RuleSet.from_yaml(body)
            else:
                ruleset = RuleSet.model_validate_json(body)
        except (ValueError, pydantic.ValidationError) as exc:
            return problem(422, f"the rule set was not accepted: {exc}", hint="Fix the named rule or field.")
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                version = await ledger.set_rules(conn, ruleset, by=who.name)
                await ownership.publish_all(conn, ruleset_version=version, ruleset=ruleset)
        except SplitError as exc:
            return problem(422, f"the rule set cannot allocate the current periods: {exc}")
        except ledger.ConservationViolated as exc:
            return problem(409, f"the rule set was not put in force: {exc}")
        return JSONResponse({"version": version, "rules": len(ruleset.rules), "pools": len(ruleset.pools)})

    async def showback(request: Request, *, default_by: str) -> Response:
        try:
            period_param(request)
            by = request.query_params.get("by", default_by)
            async with runtime.pool.acquire() as conn, conn.transaction():
                who = await authenticate(conn, request, allowed=PEOPLE)
                periods = await periods_of(conn, request)
                reports, closed = [], True
                for period in periods:
                    await runs.settle(conn, period)
                    rows = await ledger.report(conn, period=period, by=by, scope=who.scope())
                    closed = closed and await ledger.is_closed(conn, period)
                    target = request.query_params.get("currency")
                    if target:
                        rows = await ledger.in_currency(conn, rows, target=target.upper(), period=period)
                    reports.append(rows)
                rows = merged(reports)
        except Denied as denied:
            return denied.response()
        except ValueError as exc:
            return problem(400, str(exc))
        return JSONResponse(
            {
                "period": period_label(periods[0]),
                "billing_period_starts": [p.isoformat() for p in periods],
                "by": by,
                "closed": closed,
                "cost": "effective_cost",
                "scope": _describe(who),
                "rows": jsonable(rows),
            }
        )

    async def showback_team(request: Request) -> Response:
        """Showback: EffectiveCost (amortized) per team (or ?by=product|environment|cost_center) and currency."""
        return await showback(request, default_by="team")

    async def chargeback(request: Request) -> Response:
        """Chargeback: what each cost center is charged for the period, per currency."""
        return await showback(request, default_by="cost_center")

    async def close(request: Request) -> Response:
        """POST ?period=YYYY-MM with {"entity": ..., "mapping": AccountMapping}: lock the period and write its
        journal; announced by finops.allocation.journal_exported.v1."""
        if request.method != "POST":
            return problem(405, "use POST")
        try:
            period_param(request)
            body = json.loads(await request.body() or b"{}")
            mapping = AccountMapping.model_validate(
                body.get("mapping", {"clearing_account": "2990", "default_expense_account": "6100"})
            )
            entity = str(body.get("entity", "default"))
        except (ValueError, pydantic.ValidationError) as exc:
            return problem(400, str(exc))
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                user = (await authenticate(conn, request, allowed=FINANCE)).name
                period = await one_period_of(conn, request)
                await runs.settle(conn, period)
                journal = await ledger.close_period(conn, period=period, by=user, mapping=mapping, entity=entity)
                totals = journal.totals()
                event = JournalExported(
                    billing_period_start=period,
                    journal_id=journal.journal_id,
                    entity=entity,
                    closed_by=user,
                    line_count=len(journal.lines),
                    debits=tuple(Money(amount=debit, currency=c) for c, (debit, _) in sorted(totals.items())),
                    csv_url=f"/v1/periods/journal?period={_query(period)}&format=csv",
                    json_url=f"/v1/periods/journal?period={_query(period)}&format=json",
                )
                await outbox.add(
                    conn,
                    [outbox.message_for(event, source=SOURCE, event_id=uuid.uuid5(journal.journal_id, "exported"))],
                )
        except Denied as denied:
            return denied.response()
        except (ledger.PeriodClosed, AmbiguousPeriod) as exc:
            return problem(409, str(exc))
        except JournalError as exc:
            return problem(422, str(exc))
        return JSONResponse(
            {"period": period_label(period), "billing_period_start": period.isoformat(),
             "journal_id": str(journal.journal_id)},
            status_code=201,
        )  # fmt: skip

    async def journal(request: Request) -> Response:
        """The closed period's journal, `?format=csv` or `json`; byte-identical every time."""
        try:
            period_param(request)
        except ValueError as exc:
            return problem(400, str(exc))
        async with runtime.pool.acquire() as conn:
            try:
                await authenticate(conn, request, allowed=ERP)
                period = await one_period_of(conn, request)
            except Denied as denied:
                return denied.response()
            except AmbiguousPeriod as exc:
                return problem(409, str(exc))
            row = await ledger.journal_of(conn, period)
        if row is None:
            return problem(404, f"{period_label(period)} is not closed", hint="Close it with POST /v1/periods/close.")
        if request.query_params.get("format", "json") == "csv":
            return Response(bytes(row["journal_csv"]), media_type="text/csv")
        return Response(bytes(row["journal_json"]), media_type="application/json")

    async def budget_list(request: Request) -> Response:
        """GET ?period=YYYY-MM: the period's budgets. PUT a JSON list of {scope_kind, scope, period, currency,
        amount, thresholds?}: upserted, then checked against the actual and forecast cost at once."""
        try:
            async with runtime.pool.acquire() as conn:
                await authenticate(conn, request, allowed=PEOPLE if request.method == "GET" else FINANCE)
        except Denied as denied:
            return denied.response()
        if request.method == "GET":
            try:
                period = label_start(request)
            except ValueError as exc:
                return problem(400, str(exc))
            async with runtime.pool.acquire() as conn:
                rows = await conn.fetch("SELECT * FROM budget WHERE billing_period_start = $1 ORDER BY 1, 2", period)
            return JSONResponse([jsonable({**dict(r), "billing_period_start": f"{period:%Y-%m}",
                                           "thresholds": list(r["thresholds"])}) for r in rows])  # fmt: skip
        if request.method != "PUT":
            return problem(405, "use GET or PUT")
        try:
            body = json.loads(await request.body())
            if not isinstance(body, list):
                raise ValueError("send a JSON list of budgets")
            async with runtime.pool.acquire() as conn, conn.transaction():
                count = await budgets.set_budgets(conn, body)
                periods = {b["period"] for b in body}
                alerts = []
                for p in sorted(periods):
                    alerts += await budgets.check(conn, datetime.strptime(p, "%Y-%m").replace(tzinfo=UTC))
        except (ValueError, KeyError, TypeError, asyncpg.PostgresError) as exc:
            return problem(422, f"the budgets were not accepted: {exc!r}")
        return JSONResponse({"budgets": count, "alerts": len(alerts)})

    async def fx_rates(request: Request) -> Response:
        """PUT a JSON list of {date: YYYY-MM-DD, from, to, rate} (finance): the dated exchange-rate table used by
        ?currency= on showback and chargeback."""
        if request.method != "PUT":
            return problem(405, "use PUT")
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                await authenticate(conn, request, allowed=FINANCE)
                count = await ledger.set_rates(conn, json.loads(await request.body()))
        except Denied as denied:
            return denied.response()
        except (ValueError, KeyError, TypeError) as exc:
            return problem(422, f"the rates were not accepted: {exc!r}")
        return JSONResponse({"rates": count})

    async def business_metrics(request: Request) -> Response:
        """POST a JSON list of {product, period: YYYY-MM, metric, units} (business or finance): unit cost =
        allocated EffectiveCost / units, returned and published as finops.allocation.unit_cost_reported.v1."""
        if request.method != "POST":
            return problem(405, "use POST")
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                who = await authenticate(conn, request, allowed=frozenset({Role.BUSINESS, Role.FINANCE, Role.ADMIN}))
                body = json.loads(await request.body())
                if who.role is Role.BUSINESS and any(m["product"] not in who.products for m in body):
                    raise Denied(403, f"a business token may only report its own products: {sorted(who.products)}")
                reported = await unit_economics.report(conn, body, by=who.name)
        except Denied as denied:
            return denied.response()
        except (ValueError, KeyError, TypeError) as exc:
            return problem(422, f"the metrics were not accepted: {exc!r}")
        return JSONResponse({"unit_costs": jsonable(reported)})

    async def unit_cost_list(request: Request) -> Response:
        """GET ?period=YYYY-MM: unit cost per product and metric (business sees its own products)."""
        try:
            period = label_start(request)
            async with runtime.pool.acquire() as conn, conn.transaction():
                who = await authenticate(conn, request, allowed=PEOPLE)
                for named in await periods_of(conn, request):
                    await runs.settle(conn, named)
                rows = await ledger.unit_costs(conn, period)
        except Denied as denied:
            return denied.response()
        except ValueError as exc:
            return problem(400, str(exc))
        scope = who.scope()
        if scope is not None:
            rows = [r for r in rows if r["product"] in scope.get("product", set())]
        return JSONResponse({"period": f"{period:%Y-%m}", "rows": jsonable(rows)})

    runtime.route("/v1/fx-rates", fx_rates)
    runtime.route("/v1/business-metrics", business_metrics)
    runtime.route("/v1/unit-costs", unit_cost_list)
    runtime.route("/v1/budgets", budget_list)
    runtime.route("/v1/allocation/rules", rules)
    runtime.route("/v1/showback", showback_team)
    runtime.route("/v1/chargeback", chargeback)
    runtime.route("/v1/periods/close", close)
    runtime.route("/v1/periods/journal", journal)
