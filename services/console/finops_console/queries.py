"""Reads of the read models, for the API and the dashboard. Every function takes the caller's scope
(`Principal.scope()`: None for everything, else the teams or products it may see) and applies it in SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from finops_console import costs, cursor

Scope = dict[str, set[str]] | None


class BadQuery(ValueError):
    """A query parameter that cannot be honoured; the message says which and what to send."""


@dataclass
class Sql:
    """A WHERE clause built from conditions, with its $n parameters."""

    conditions: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)

    def param(self, value: object) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def add(self, condition: str) -> None:
        self.conditions.append(condition)

    def any_of(self, column: str, values: Sequence[str] | None) -> None:
        if values:
            self.add(f"{column} = ANY({self.param(list(values))}::text[])")

    def scope(self, scope: Scope, columns: dict[str, str]) -> None:
        """Rows the scope allows: each scoped dimension must match its column; one the table lacks shows nothing."""
        if scope is None:
            return
        for dimension, allowed in scope.items():
            column = columns.get(dimension)
            if column is None:
                self.add("false")
            else:
                self.add(f"{column} = ANY({self.param(sorted(allowed))}::text[])")

    @property
    def where(self) -> str:
        return "WHERE " + " AND ".join(self.conditions) if self.conditions else ""


def amount(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def month(value: date) -> str:
    return f"{value:%Y-%m}"


def parse_month(value: str, name: str) -> date:
    try:
        parsed = datetime.strptime(value, "%Y-%m").date()
    except ValueError as exc:
        raise BadQuery(f"{name} must be a month as YYYY-MM, got {value!r}") from exc
    if not 1900 <= parsed.year <= 2999:
        raise BadQuery(f"{name} must be a month between 1900-01 and 2999-12, got {value!r}")
    return parsed


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def body(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


# --- costs ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostQuery:
    group_by: tuple[str, ...] = ("team",)
    filters: dict[str, list[str]] = field(default_factory=dict)
    period_from: date | None = None
    period_to: date | None = None
    sort: str = "key"
    limit: int = 100
    after: str | None = None


async def cost_page(conn: asyncpg.Connection, query: CostQuery, scope: Scope) -> Page:
    """Cost per the group_by dimensions and currency: BilledCost, EffectiveCost and line count, exact."""
    for name in query.group_by:
        if name not in costs.DIMENSIONS:
            raise BadQuery(f"group_by {name!r} is not a dimension; use some of {', '.join(costs.DIMENSIONS)}")
    if len(set(query.group_by)) != len(query.group_by):
        raise BadQuery("group_by names a dimension twice; name each once")
    daily = "day" in query.group_by or "day" in query.filters
    table = "cost_day" if daily else "cost_month"
    sql = Sql()
    for name, values in query.filters.items():
        if name == "period":
            sql.add(f"period = ANY({sql.param([parse_month(v, 'period') for v in values])}::date[])")
        elif name == "day":
            try:
                days = [date.fromisoformat(v) for v in values]
            except ValueError as exc:
                raise BadQuery(f"day must be a date as YYYY-MM-DD, got {','.join(values)!r}") from exc
            sql.add(f"day = ANY({sql.param(days)}::date[])")
        else:
            sql.any_of("currency" if name == "currency" else costs.column(name), values)
    if query.period_from:
        sql.add(f"period >= {sql.param(query.period_from)}")
    if query.period_to:
        sql.add(f"period <= {sql.param(query.period_to)}")
    sql.scope(scope, {"team": "team", "product": "product"})
    keys = []
    for name in query.group_by:
        if name == "period":
            keys.append("to_char(period, 'YYYY-MM')")
        elif name == "day":
            keys.append("to_char(day, 'YYYY-MM-DD')")
        else:
            keys.append(costs.column(name))
    keys.append("currency")
    names = [*query.group_by, "currency"]
    grouped = (
        f"SELECT {', '.join(f'{k} AS k{i}' for i, k in enumerate(keys))}, sum(billed_cost) AS billed, "
        f"sum(effective_cost) AS effective, sum(line_count)::bigint AS lines FROM {table} {sql.where} "
        f"GROUP BY {', '.join(f'k{i}' for i in range(len(keys)))}"
    )
    key_cols = ", ".join(f"k{i}" for i in range(len(keys)))
    page = Sql(params=list(sql.params))
    if query.sort == "cost":
        order = f"effective DESC, {key_cols}"
        if query.after:
            last = cursor.decode("costs-by-cost", query.after, length=len(keys) + 1)
            c = page.param(Decimal(str(last[0])))
            tail = ", ".join(page.param(v) for v in last[1:])
            page.add(f"(effective < {c} OR (effective = {c} AND ({key_cols}) > ({tail})))")
    elif query.sort == "key":
        order = key_cols
        if query.after:
            last = cursor.decode("costs-by-key", query.after, length=len(keys))
            page.add(f"({key_cols}) > ({', '.join(page.param(v) for v in last)})")
    else:
        raise BadQuery(f"sort must be key or cost, got {query.sort!r}")
    rows = await conn.fetch(
        f"SELECT * FROM ({grouped}) AS g {page.where} ORDER BY {order} LIMIT {page.param(query.limit + 1)}",
        *page.params,
    )
    items = [
        {
            **{name: r[f"k{i}"] for i, name in enumerate(names)},
            "billed_cost": amount(r["billed"]),
            "effective_cost": amount(r["effective"]),
            "line_count": r["lines"],
        }
        for r in rows[: query.limit]
    ]
    next_cursor = None
    if len(rows) > query.limit:
        last_row = rows[query.limit - 1]
        key = [last_row[f"k{i}"] for i in range(len(keys))]
        next_cursor = (
            cursor.encode("costs-by-cost", [amount(last_row["effective"]), *key])
            if query.sort == "cost"
            else cursor.encode("costs-by-key", key)
        )
    return Page(items, next_cursor)


async def allocation_page(
    conn: asyncpg.Connection,
    *,
    scope: Scope,
    period: date | None,
    owners: list[str] | None,
    accounts: list[str] | None,
    limit: int,
    after: str | None,
) -> Page:
    """Allocated cost per owner, billing account, period and currency: the newest complete version's."""
    sql = Sql()
    if period:
        sql.add(f"a.period = {sql.param(period)}")
    sql.any_of("a.owner", owners)
    sql.any_of("a.billing_account_id", accounts)
    sql.scope(scope, {"team": "a.owner"})
    grouped = f"""SELECT to_char(a.period, 'YYYY-MM') AS period, a.billing_account_id, a.owner, a.currency,
                         sum(a.billed_cost) AS billed, sum(a.effective_cost) AS effective,
                         sum(a.line_count)::bigint AS lines
                  FROM allocation a JOIN cost_version v ON v.billing_account_id = a.billing_account_id
                      AND v.period = a.period AND v.ingest_id = a.ingest_id
                  {sql.where} GROUP BY 1, 2, 3, 4"""
    page = Sql(params=list(sql.params))
    cols = "period, billing_account_id, owner, currency"
    if after:
        last = cursor.decode("allocations", after, length=4)
        page.add(f"({cols}) > ({', '.join(page.param(v) for v in last)})")
    rows = await conn.fetch(
        f"SELECT * FROM ({grouped}) AS g {page.where} ORDER BY {cols} LIMIT {page.param(limit + 1)}", *page.params
    )
    items = [
        {
            "period": r["period"],
            "billing_account": r["billing_account_id"],
            "owner": r["owner"],
            "currency": r["currency"],
            "billed_cost": amount(r["billed"]),
            "effective_cost": amount(r["effective"]),
            "line_count": r["lines"],
        }
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        r = rows[limit - 1]
        next_cursor = cursor.encode("allocations", [r["period"], r["billing_account_id"], r["owner"], r["currency"]])
    return Page(items, next_cursor)


# --- recommendations and decisions ----------------------------------------------------------------------------

RECOMMENDATION_STATUSES = ("open", "issued", "updated", "superseded", "expired")
DECISION_STATES = (
    "proposed", "pending_approval", "approved", "rejected", "expired", "purchase_requested", "purchased", "failed",
    "savings_verified", "savings_shortfall",
)  # fmt: skip


def recommendation_view(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "recommendation_id": str(r["recommendation_id"]),
        "kind": r["kind"],
        "target": r["target"],
        "title": r["title"],
        "owner_team": r["owner_team"],
        "personas": list(r["personas"]),
        "estimated_monthly_savings": (
            {"amount": amount(r["estimated_monthly_savings"]), "currency": r["currency"]} if r["currency"] else None
        ),
        "status": r["status"],
        "version": r["version"],
        "billing_account": r["billing_account_id"],
        "provider": r["provider"],
        "resource_id": r["resource_id"],
        "expires_at": iso(r["expires_at"]),
        "issued_at": iso(r["issued_at"]),
        "updated_at": iso(r["updated_at"]),
        "superseded_by": str(r["superseded_by"]) if r["superseded_by"] else None,
        "reason": r["reason"],
    }


async def recommendation_page(
    conn: asyncpg.Connection,
    *,
    scope: Scope,
    status: str | None,
    kinds: list[str] | None,
    teams: list[str] | None,
    limit: int,
    after: str | None,
) -> Page:
    """Recommendations, largest estimated savings first."""
    sql = Sql()
    if status == "open":
        sql.add("status IN ('issued', 'updated')")
    elif status is not None:
        if status not in RECOMMENDATION_STATUSES:
            raise BadQuery(f"status must be one of {', '.join(RECOMMENDATION_STATUSES)}, got {status!r}")
        sql.add(f"status = {sql.param(status)}")
    sql.any_of("kind", kinds)
    sql.any_of("owner_team", teams)
    sql.scope(scope, {"team": "owner_team"})
    if after:
        savings, last_id = cursor.decode("recommendations", after, length=2)
        s = sql.param(Decimal(str(savings)))
        i = sql.param(_uuid(last_id))
        sql.add(
            f"(coalesce(estimated_monthly_savings, -1) < {s} OR "
            f"(coalesce(estimated_monthly_savings, -1) = {s} AND recommendation_id > {i}))"
        )
    rows = await conn.fetch(
        f"""SELECT *, coalesce(estimated_monthly_savings, -1) AS sort_savings FROM recommendation {sql.where}
            ORDER BY coalesce(estimated_monthly_savings, -1) DESC, recommendation_id
            LIMIT {sql.param(limit + 1)}""",
        *sql.params,
    )
    next_cursor = None
    if len(rows) > limit:
        r = rows[limit - 1]
        next_cursor = cursor.encode("recommendations", [amount(r["sort_savings"]), str(r["recommendation_id"])])
    return Page([recommendation_view(r) for r in rows[:limit]], next_cursor)


def _uuid(value: object) -> object:
    import uuid

    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise cursor.BadCursor("cursor is not one this API issued; pass next_cursor as is") from exc


def _money(value: Decimal | None, currency: str | None) -> dict[str, str] | None:
    if value is None or currency is None:
        return None
    return {"amount": amount(value), "currency": currency}


def decision_view(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "decision_id": str(r["decision_id"]),
        "recommendation_id": str(r["recommendation_id"]) if r["recommendation_id"] else None,
        "kind": r["kind"],
        "owner_team": r["owner_team"],
        "state": r["state"],
        "title": r["title"],
        "proposer": r["proposer"],
        "estimated_monthly_savings": _money(r["estimated_monthly_savings"], r["currency"]),
        "monthly_commitment": _money(r["monthly_commitment"], r["currency"]),
        "term_months": r["term_months"],
        "risk": r["risk"],
        "provider": r["provider"],
        "billing_account": r["billing_account_id"],
        "commitment_id": r["commitment_id"],
        "realized_savings": _money(r["realized_savings"], r["currency"]),
        "estimated_window_savings": _money(r["estimated_window_savings"], r["currency"]),
        "realization": amount(r["realization"]),
        "stages": {
            name: iso(r[f"{name}_at"])
            for name in (
                "proposed",
                "approval_requested",
                "approved",
                "rejected",
                "expired",
                "purchase_requested",
                "purchased",
                "failed",
                "verified",
                "shortfall",
            )  # fmt: skip
        },
        "updated_at": iso(r["updated_at"]),
    }


async def decision_page(
    conn: asyncpg.Connection,
    *,
    scope: Scope,
    states: list[str] | None,
    kinds: list[str] | None,
    teams: list[str] | None,
    limit: int,
    after: str | None,
) -> Page:
    """Decisions, the most recently changed first."""
    for s in states or ():
        if s not in DECISION_STATES:
            raise BadQuery(f"state must be among {', '.join(DECISION_STATES)}, got {s!r}")
    sql = Sql()
    sql.any_of("state", states)
    sql.any_of("kind", kinds)
    sql.any_of("owner_team", teams)
    sql.scope(scope, {"team": "owner_team"})
    if after:
        at, last_id = cursor.decode("decisions", after, length=2)
        try:
            when = datetime.fromisoformat(str(at))
        except ValueError as exc:
            raise cursor.BadCursor("cursor is not one this API issued; pass next_cursor as is") from exc
        t = sql.param(when)
        sql.add(f"(updated_at, decision_id) < ({t}, {sql.param(_uuid(last_id))})")
    rows = await conn.fetch(
        f"SELECT * FROM decision {sql.where} ORDER BY updated_at DESC, decision_id DESC LIMIT {sql.param(limit + 1)}",
        *sql.params,
    )
    next_cursor = None
    if len(rows) > limit:
        r = rows[limit - 1]
        next_cursor = cursor.encode("decisions", [r["updated_at"].isoformat(), str(r["decision_id"])])
    return Page([decision_view(r) for r in rows[:limit]], next_cursor)


async def decision_detail(conn: asyncpg.Connection, decision_id: object, scope: Scope) -> dict[str, Any] | None:
    """One decision with its history (every event, in order) and audit trail (who did what, when)."""
    sql = Sql()
    sql.add(f"decision_id = {sql.param(decision_id)}")
    sql.scope(scope, {"team": "owner_team"})
    row = await conn.fetchrow(f"SELECT * FROM decision {sql.where}", *sql.params)
    if row is None:
        return None
    events = await conn.fetch("SELECT * FROM decision_event WHERE decision_id = $1 ORDER BY at, event_id", decision_id)
    recommendation = None
    if row["recommendation_id"]:
        rec = await conn.fetchrow("SELECT * FROM recommendation WHERE recommendation_id = $1", row["recommendation_id"])
        recommendation = recommendation_view(rec) if rec else None
    return {
        **decision_view(row),
        "recommendation": recommendation,
        "history": [
            {
                "event_id": str(e["event_id"]),
                "type": e["type"],
                "state": e["state"],
                "at": iso(e["at"]),
                "actor": e["actor"],
                "summary": e["summary"],
                "payload": json.loads(e["payload"]),
            }
            for e in events
        ],
    }


# --- the decision flow ----------------------------------------------------------------------------------------

STAGES = ("recommended", "approved", "purchased", "savings_verified")


async def funnel(conn: asyncpg.Connection, *, scope: Scope, kinds: list[str] | None) -> dict[str, Any]:
    """Recommended -> approved -> purchased -> savings verified: how many, the money at each stage (estimated
    monthly savings; realized savings at the last), and the median lead time between stages.

    "Recommended" is the savings on offer: open savings recommendations only, that is not anomalies (an anomaly's
    amount is a cost change, not a saving), not superseded, and not expired (by its event, or by its expiry time
    unless a decision took it up before then). Anomalies are counted apart, as `cost_changes`."""
    rec = Sql()
    rec.add("r.issued_at IS NOT NULL")
    rec.add("r.status NOT IN ('superseded', 'expired')")
    rec.add(
        "(r.expires_at IS NULL OR r.expires_at > now()"
        " OR EXISTS (SELECT 1 FROM decision x WHERE x.recommendation_id = r.recommendation_id))"
    )
    rec.any_of("r.kind", kinds)
    rec.scope(scope, {"team": "r.owner_team"})
    dec = Sql()
    dec.any_of("d.kind", kinds)
    dec.scope(scope, {"team": "d.owner_team"})
    open_by_kind = await conn.fetch(
        f"""SELECT r.kind = 'anomaly' AS anomaly, r.currency, count(*) AS n, sum(r.estimated_monthly_savings) AS amount
            FROM recommendation r {rec.where} GROUP BY 1, 2 ORDER BY 1, 2""",
        *rec.params,
    )
    recommended = [r for r in open_by_kind if not r["anomaly"]]
    changes = [r for r in open_by_kind if r["anomaly"]]
    stages = await conn.fetch(
        f"""SELECT d.currency,
                   count(*) FILTER (WHERE approved_at IS NOT NULL) AS approved,
                   sum(estimated_monthly_savings) FILTER (WHERE approved_at IS NOT NULL) AS approved_amount,
                   count(*) FILTER (WHERE purchased_at IS NOT NULL) AS purchased,
                   sum(estimated_monthly_savings) FILTER (WHERE purchased_at IS NOT NULL) AS purchased_amount,
                   count(*) FILTER (WHERE verified_at IS NOT NULL) AS verified,
                   sum(realized_savings) FILTER (WHERE verified_at IS NOT NULL) AS verified_amount,
                   sum(estimated_window_savings) FILTER (WHERE verified_at IS NOT NULL) AS verified_estimate,
                   count(*) FILTER (WHERE state = 'rejected') AS rejected,
                   count(*) FILTER (WHERE state = 'expired') AS expired,
                   count(*) FILTER (WHERE state = 'failed') AS failed,
                   count(*) FILTER (WHERE state = 'savings_shortfall') AS shortfall,
                   count(*) FILTER (WHERE state IN ('proposed', 'pending_approval')) AS pending
            FROM decision d {dec.where} GROUP BY d.currency ORDER BY d.currency""",
        *dec.params,
    )
    lead = await conn.fetchrow(
        f"""SELECT
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.approved_at - r.issued_at))
                  FILTER (WHERE d.approved_at IS NOT NULL AND r.issued_at IS NOT NULL) AS to_approved,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.purchased_at - d.approved_at))
                  FILTER (WHERE d.purchased_at IS NOT NULL AND d.approved_at IS NOT NULL) AS to_purchased,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.verified_at - d.purchased_at))
                  FILTER (WHERE d.verified_at IS NOT NULL AND d.purchased_at IS NOT NULL) AS to_verified
            FROM decision d LEFT JOIN recommendation r ON r.recommendation_id = d.recommendation_id {dec.where}""",
        *dec.params,
    )
    counts = {name: 0 for name in (*STAGES, "rejected", "expired", "failed", "shortfall", "pending")}
    money: dict[str, list[dict[str, str]]] = {name: [] for name in STAGES}
    for r in recommended:
        counts["recommended"] += r["n"]
        if r["currency"]:
            money["recommended"].append({"currency": r["currency"], "amount": amount(r["amount"])})
    estimated_verified: list[dict[str, str]] = []
    for r in stages:
        for stage, col in (("approved", "approved"), ("purchased", "purchased"), ("savings_verified", "verified")):
            counts[stage] += r[col]
            if r["currency"] and r[col]:
                money[stage].append({"currency": r["currency"], "amount": amount(r[f"{col}_amount"] or Decimal(0))})
        if r["currency"] and r["verified"]:
            estimated_verified.append({"currency": r["currency"], "amount": amount(r["verified_estimate"] or 0)})
        for other in ("rejected", "expired", "failed", "shortfall", "pending"):
            counts[other] += r[other]

    def seconds(value: float | None) -> float | None:
        return None if value is None else round(float(value), 3)

    return {
        "stages": [{"stage": s, "count": counts[s], "amounts": money[s]} for s in STAGES],
        "lead_times_seconds": {
            "recommended_to_approved": seconds(lead["to_approved"]),
            "approved_to_purchased": seconds(lead["to_purchased"]),
            "purchased_to_verified": seconds(lead["to_verified"]),
        },
        "estimated_savings_of_verified": estimated_verified,
        "outcomes": {k: counts[k] for k in ("pending", "rejected", "expired", "failed", "shortfall")},
        "cost_changes": {
            "label": "open anomalies: cost change per month, not savings",
            "count": sum(r["n"] for r in changes),
            "amounts": [
                {"currency": r["currency"], "amount": amount(r["amount"] or Decimal(0))}
                for r in changes
                if r["currency"]
            ],
        },
    }


# --- KPIs, finance, pipeline ----------------------------------------------------------------------------------


async def kpis(conn: asyncpg.Connection, *, scope: Scope, period: date | None) -> dict[str, Any]:
    """The shared KPIs: commitment ESR, coverage and utilization; tag and allocation coverage; budgets against
    forecast; unit costs; realized against estimated savings."""
    if period is None:
        period = await conn.fetchval(
            """SELECT max(p) FROM (SELECT max(month) AS p FROM kpi UNION ALL SELECT max(period) FROM coverage
                                   UNION ALL SELECT max(period) FROM cost_month UNION ALL SELECT max(period)
                                   FROM budget_alert UNION ALL SELECT max(period) FROM unit_cost) AS m"""
        )
    k = Sql()
    k.add(f"month = {k.param(period)}")
    k.scope(scope, {})
    pools = await conn.fetch(f"SELECT * FROM kpi {k.where} ORDER BY pool, provider, billing_account_id", *k.params)
    commitments = []
    by_currency: dict[str, dict[str, Decimal]] = {}
    for r in pools:
        pool_scope = json.loads(r["scope"])
        commitments.append(
            {
                "pool": r["pool"],
                "provider": r["provider"],
                "billing_account": r["billing_account_id"],
                "currency": r["currency"],
                "on_demand_equivalent": amount(r["on_demand_equivalent"]),
                "actual_cost": amount(r["actual_cost"]),
                "savings": amount(r["savings"]),
                "effective_savings_rate": amount(r["effective_savings_rate"]),
                "coverage": amount(r["coverage"]),
                "utilization": amount(r["utilization"]),
                "unused_commitment_cost": amount(r["unused_commitment_cost"]),
                "scope": pool_scope,
            }
        )
        if pool_scope:
            continue  # a scoped pool's usage is in its account's flexible pool too: counted there
        t = by_currency.setdefault(r["currency"], {"ode": Decimal(0), "savings": Decimal(0), "covered": Decimal(0)})
        t["ode"] += r["on_demand_equivalent"]
        t["savings"] += r["savings"]
        t["covered"] += r["coverage"] * r["on_demand_equivalent"]
    totals = [
        {
            "currency": c,
            "on_demand_equivalent": amount(t["ode"]),
            "savings": amount(t["savings"]),
            "effective_savings_rate": amount(_ratio(t["savings"], t["ode"])),
            "coverage": amount(_ratio(t["covered"], t["ode"])),
        }
        for c, t in sorted(by_currency.items())
    ]
    utilization = await conn.fetchval(
        f"""SELECT sum(utilization * actual_cost) / nullif(sum(actual_cost) FILTER (WHERE utilization IS NOT NULL), 0)
                FROM kpi {k.where}
                AND scope = '{{}}'::jsonb""",
        *k.params,
    )
    cov = Sql()
    cov.add(f"period = {cov.param(period)}")
    cov.scope(scope, {"team": "CASE WHEN scope_kind = 'team' THEN scope END"})
    coverage_rows = await conn.fetch(f"SELECT * FROM coverage {cov.where} ORDER BY scope_kind, scope", *cov.params)
    bud = Sql()
    bud.add(f"period = {bud.param(period)}")
    bud.scope(
        scope,
        {
            "team": "CASE WHEN scope_kind = 'team' THEN scope END",
            "product": "CASE WHEN scope_kind = 'product' THEN scope END",
        },
    )
    budgets = await conn.fetch(
        f"""SELECT DISTINCT ON (scope_kind, scope) * FROM budget_alert {bud.where}
            ORDER BY scope_kind, scope, as_of DESC, threshold DESC""",
        *bud.params,
    )
    unit = Sql()
    unit.add(f"period = {unit.param(period)}")
    unit.scope(scope, {"product": "product"})
    units = await conn.fetch(f"SELECT * FROM unit_cost {unit.where} ORDER BY product, metric", *unit.params)
    dec = Sql()
    dec.add("verified_at IS NOT NULL OR shortfall_at IS NOT NULL")
    dec.scope(scope, {"team": "owner_team"})
    savings = await conn.fetch(
        f"""SELECT currency, count(*) AS n, sum(realized_savings) AS realized,
                   sum(estimated_window_savings) AS estimated
            FROM decision {dec.where} GROUP BY currency ORDER BY currency""",
        *dec.params,
    )
    return {
        "period": month(period) if period else None,
        "commitments": {"pools": commitments, "totals": totals, "utilization": amount(utilization)},
        "coverage": [
            {
                "scope_kind": r["scope_kind"],
                "scope": r["scope"],
                "total": {"amount": amount(r["total"]), "currency": r["currency"]},
                "tagged_share": amount(r["tagged_share"]),
                "allocated_share": amount(r["allocated_share"]),
            }
            for r in coverage_rows
        ],
        "budgets": [
            {
                "scope_kind": r["scope_kind"],
                "scope": r["scope"],
                "currency": r["currency"],
                "budget": amount(r["budget"]),
                "actual": amount(r["actual"]),
                "forecast": amount(r["projected"]),
                "threshold": amount(r["threshold"]),
                "basis": r["basis"],
                "as_of": iso(r["as_of"]),
            }
            for r in budgets
        ],
        "unit_costs": [
            {
                "product": r["product"],
                "metric": r["metric"],
                "units": amount(r["units"]),
                "cost": {"amount": amount(r["cost"]), "currency": r["currency"]},
                "unit_cost": {"amount": amount(r["unit_cost"]), "currency": r["currency"]},
            }
            for r in units
        ],
        "savings": [
            {
                "currency": r["currency"],
                "decisions": r["n"],
                "realized": amount(r["realized"]),
                "estimated": amount(r["estimated"]),
            }
            for r in savings
            if r["currency"]
        ],
    }


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (numerator / denominator).quantize(Decimal("0.0001"))


async def journals(conn: asyncpg.Connection, *, scope: Scope) -> list[dict[str, Any]]:
    sql = Sql()
    sql.scope(scope, {})
    rows = await conn.fetch(f"SELECT * FROM journal {sql.where} ORDER BY period DESC, exported_at DESC", *sql.params)
    return [
        {
            "journal_id": str(r["journal_id"]),
            "period": month(r["period"]),
            "entity": r["entity"],
            "closed_by": r["closed_by"],
            "line_count": r["line_count"],
            "debits": json.loads(r["debits"]),
            "csv_url": r["csv_url"],
            "json_url": r["json_url"],
            "exported_at": iso(r["exported_at"]),
        }
        for r in rows
    ]


async def ingest_runs(conn: asyncpg.Connection, *, limit: int = 20) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM ingest_run ORDER BY updated_at DESC, ingest_id LIMIT $1", limit)
    return [
        {
            "ingest_id": str(r["ingest_id"]),
            "file_name": r["file_name"],
            "status": r["status"],
            "row_count": r["row_count"],
            "batch_count": r["batch_count"],
            "errors": json.loads(r["errors"]) if r["errors"] else [],
            "accepted_at": iso(r["accepted_at"]),
            "finished_at": iso(r["finished_at"]),
            "updated_at": iso(r["updated_at"]),
        }
        for r in rows
    ]


async def tallies(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM event_tally ORDER BY topic, type")
    return [{"topic": r["topic"], "type": r["type"], "events": r["events"], "last_at": iso(r["last_at"])} for r in rows]
