"""Budgets per cost center, team, product or environment: after each allocation run, the period's daily
EffectiveCost per budgeted scope is forecast to the period's end (Holt-Winters with a weekly season when two
weeks of history exist, seasonal-naive with one, none before) and each threshold crossed by the actual or the
forecast is announced once, as BudgetAlerted, through the outbox.

The daily series counts a scope's direct cost (shared-pool splits are made per period, not per day)."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg

from finops_allocation.forecast import DailyCost, check_budget, forecast_period, holt_winters, seasonal_naive
from finops_allocation.ledger import current_rules, period_end, periods_named
from finops_allocation.rules import assign
from finops_contracts.events import BudgetAlerted
from finops_contracts.money import Money
from finops_contracts.periods import period_label, utc_month_start
from finops_runtime import outbox

SOURCE = "/finops/allocation"
_ALERT = uuid.UUID("5d6c1f0e-94a2-4d1c-b1b7-2b8f0e4c7a31")


async def set_budgets(conn: asyncpg.Connection, budgets: list[dict[str, object]]) -> int:
    """Upsert budgets: {scope_kind, scope, period: YYYY-MM, currency, amount, thresholds?}."""
    for b in budgets:
        period = datetime.strptime(str(b["period"]), "%Y-%m").replace(tzinfo=UTC)
        await conn.execute(
            """INSERT INTO budget (scope_kind, scope, billing_period_start, currency, amount, thresholds)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (scope_kind, scope, billing_period_start, currency)
               DO UPDATE SET amount = excluded.amount, thresholds = excluded.thresholds""",
            b["scope_kind"],
            b["scope"],
            period,
            b["currency"],
            Decimal(str(b["amount"])),
            [Decimal(str(t)) for t in b.get("thresholds", ("0.8", "1"))],
        )
    return len(budgets)


async def check(conn: asyncpg.Connection, period: datetime) -> list[BudgetAlerted]:
    """Forecast every budgeted scope of `period`'s month and queue the alerts not sent before; returns them.
    Budgets are keyed by their month's UTC start (`period: YYYY-MM`); their cost is that of every billing period
    of the month's name (finops_contracts.periods), over the UTC days from its start to its BillingPeriodEnd."""
    period = utc_month_start(period_label(period))
    budgets = await conn.fetch("SELECT * FROM budget WHERE billing_period_start = $1", period)
    if not budgets:
        return []
    wanted = {(b["scope_kind"], b["scope"], b["currency"].strip()) for b in budgets}
    starts = await periods_named(conn, period_label(period))
    series = await _daily(conn, starts, wanted)
    first_day = min(s.astimezone(UTC).date() for s in starts)
    end_day = max([_day_after(await period_end(conn, s)) for s in starts])
    events = []
    for b in budgets:
        scope = (b["scope_kind"], b["scope"], b["currency"].strip())
        days = series.get(scope, {})
        if not days:
            continue
        history = _contiguous(days)
        forecaster = holt_winters if len(history) >= 14 else seasonal_naive if len(history) >= 7 else None
        if forecaster is None:
            actual = sum((d.amount for d in history), Decimal(0))
            projected = actual
        else:
            outlook = forecast_period(history, period_start=first_day, period_end=end_day, forecaster=forecaster)
            actual, projected = outlook.actual, outlook.projected
        as_of = datetime.combine(history[-1].day, datetime.min.time(), tzinfo=UTC)
        for alert in check_budget(
            budget=b["amount"], actual=actual, forecast=projected, currency=scope[2], thresholds=b["thresholds"]
        ):
            inserted = await conn.fetchval(
                """INSERT INTO budget_alert_sent (scope_kind, scope, billing_period_start, currency, threshold, basis)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1""",
                scope[0], scope[1], period, scope[2], alert.threshold, alert.basis.value,
            )  # fmt: skip
            if not inserted:
                continue
            currency = scope[2]
            event = BudgetAlerted(
                scope_kind=scope[0],
                scope=scope[1],
                billing_period_start=period,
                threshold=alert.threshold,
                basis=alert.basis.value,
                amount=Money(amount=alert.amount, currency=currency),
                budget=Money(amount=alert.budget, currency=currency),
                actual=Money(amount=actual, currency=currency),
                projected=Money(amount=projected, currency=currency),
                as_of=as_of,
            )
            event_id = uuid.uuid5(_ALERT, f"{scope}/{period:%Y-%m}/{alert.threshold}/{alert.basis.value}")
            await outbox.add(conn, [outbox.message_for(event, source=SOURCE, event_id=event_id)])
            events.append(event)
    return events


def _day_after(end: datetime) -> date:
    """The first UTC day wholly after a period that ends at `end` (a 07:00Z end still has charges that day)."""
    day = end.astimezone(UTC)
    return day.date() if day.time() == datetime.min.time() else day.date() + timedelta(days=1)


async def _daily(
    conn: asyncpg.Connection, periods: list[datetime], wanted: set[tuple[str, str, str]]
) -> dict[tuple[str, str, str], dict[date, Decimal]]:
    """Daily direct EffectiveCost of the budgeted scopes, under the rules in force."""
    _, ruleset = await current_rules(conn)
    rows = await conn.fetch(
        """SELECT f.charge_date, f.billing_currency, s.facet_id, s.dims, s.tags, sum(f.effective_cost) AS cost
           FROM cost_fact f
           JOIN current_period p USING (billing_account_id, billing_period_start, ingest_id)
           JOIN facet s USING (facet_id)
           WHERE f.billing_period_start = ANY($1::timestamptz[])
           GROUP BY f.charge_date, f.billing_currency, s.facet_id""",
        periods,
    )
    decided = {}
    series: dict[tuple[str, str, str], dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    kinds = {kind for kind, _, _ in wanted}
    for r in rows:
        a = decided.get(r["facet_id"])
        if a is None:
            a = decided[r["facet_id"]] = assign(json.loads(r["dims"]), json.loads(r["tags"]), ruleset)
        if a.pool is not None:
            continue
        for kind in kinds:
            scope = (kind, getattr(a, kind), r["billing_currency"].strip())
            if scope in wanted:
                series[scope][r["charge_date"]] += r["cost"]
    return series


def _contiguous(days: dict[date, Decimal]) -> list[DailyCost]:
    first, last = min(days), max(days)
    return [
        DailyCost(first + timedelta(days=i), days.get(first + timedelta(days=i), Decimal(0)))
        for i in range((last - first).days + 1)
    ]
