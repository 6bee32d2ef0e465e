"""Unit economics for the business persona: business metrics per product and period (posted to the API or
published as finops.business.metric_reported.v1) over the product's allocated EffectiveCost, announced as
finops.allocation.unit_cost_reported.v1."""

from __future__ import annotations

import uuid

import asyncpg

from finops_allocation import ledger, runs
from finops_contracts.events import UnitCostReported
from finops_contracts.money import Money
from finops_runtime import outbox

SOURCE = "/finops/allocation"
_UNIT = uuid.UUID("c0a1d6a2-21f4-4f0b-9a57-5d3e8f7b2c64")


async def report(conn: asyncpg.Connection, metrics: list[dict[str, object]], *, by: str) -> list[dict[str, object]]:
    """Store the metrics, then compute and announce the unit cost of each; the unit costs, in the caller's
    transaction. The event id is derived from the numbers, so reporting the same thing twice announces once."""
    reported = []
    for period in await ledger.set_metrics(conn, metrics, by=by):
        await runs.settle(conn, period)
        for u in await ledger.unit_costs(conn, period):
            if not any(m["product"] == u["product"] and m["metric"] == u["metric"] for m in metrics):
                continue
            event = UnitCostReported(
                product=u["product"],
                billing_period_start=period,
                metric=u["metric"],
                units=u["units"],
                cost=Money(amount=u["cost"], currency=u["currency"]),
                unit_cost=Money(amount=u["unit_cost"], currency=u["currency"]),
            )
            key = f"{u['product']}/{period:%Y-%m}/{u['metric']}/{u['currency']}/{u['units']}/{u['cost']}"
            await outbox.add(conn, [outbox.message_for(event, source=SOURCE, event_id=uuid.uuid5(_UNIT, key))])
            reported.append({**u, "period": f"{period:%Y-%m}"})
    return reported
