"""SQL of the allocation schema."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from finops_allocation.allocate import OwnerTotal


async def add_allocations(
    conn: asyncpg.Connection,
    *,
    billing_account_id: str,
    billing_period_start: datetime,
    ingest_id: uuid.UUID,
    totals: dict[tuple[str, str], OwnerTotal],
) -> None:
    keys = list(totals)
    await conn.execute(
        """INSERT INTO cost_allocation AS c (billing_account_id, billing_period_start, billing_currency, owner,
                                             ingest_id, billed_cost, effective_cost, line_count)
           SELECT $1, $2, t.currency, t.owner, $3, t.billed, t.effective, t.lines
           FROM unnest($4::text[], $5::text[], $6::numeric[], $7::numeric[], $8::bigint[])
                AS t(owner, currency, billed, effective, lines)
           ON CONFLICT (billing_account_id, billing_period_start, billing_currency, owner, ingest_id) DO UPDATE
           SET billed_cost = c.billed_cost + excluded.billed_cost,
               effective_cost = c.effective_cost + excluded.effective_cost,
               line_count = c.line_count + excluded.line_count,
               updated_at = now()""",
        billing_account_id,
        billing_period_start,
        ingest_id,
        [owner for owner, _ in keys],
        [currency for _, currency in keys],
        [totals[k].billed_cost for k in keys],
        [totals[k].effective_cost for k in keys],
        [totals[k].line_count for k in keys],
    )


async def totals_by_account(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """BilledCost and EffectiveCost per billing account and currency, all periods and owners."""
    return await conn.fetch(
        """SELECT billing_account_id, billing_currency, sum(billed_cost) AS billed_cost,
                  sum(effective_cost) AS effective_cost, sum(line_count) AS line_count
           FROM cost_allocation GROUP BY 1, 2 ORDER BY 1, 2"""
    )


async def cost_by_owner(
    conn: asyncpg.Connection, *, billing_period_start: datetime | None = None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT billing_account_id, billing_period_start, billing_currency, owner, billed_cost, effective_cost,
                  line_count
           FROM cost_by_owner WHERE $1::timestamptz IS NULL OR billing_period_start = $1
           ORDER BY billing_period_start, billing_account_id, billing_currency, owner""",
        billing_period_start,
    )
