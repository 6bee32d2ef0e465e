"""SQL of the allocation schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

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
    """BilledCost and EffectiveCost per billing account and currency, current period versions only."""
    return await conn.fetch(
        """SELECT billing_account_id, billing_currency, sum(billed_cost) AS billed_cost,
                  sum(effective_cost) AS effective_cost, sum(line_count) AS line_count
           FROM current_allocation GROUP BY 1, 2 ORDER BY 1, 2"""
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


async def allocated_for(
    conn: asyncpg.Connection, *, billing_account_id: str, billing_period_start: datetime, ingest_id: uuid.UUID
) -> dict[str, tuple[Decimal, Decimal, int]]:
    """What this ingest allocated for the period, per currency."""
    rows = await conn.fetch(
        """SELECT billing_currency, sum(billed_cost) b, sum(effective_cost) e, sum(line_count) n
           FROM cost_allocation WHERE billing_account_id = $1 AND billing_period_start = $2 AND ingest_id = $3
           GROUP BY 1""",
        billing_account_id,
        billing_period_start,
        ingest_id,
    )
    return {r["billing_currency"].strip(): (r["b"], r["e"], int(r["n"])) for r in rows}


async def current_version(
    conn: asyncpg.Connection, *, billing_account_id: str, billing_period_start: datetime
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT ingest_id, version FROM current_period
           WHERE billing_account_id = $1 AND billing_period_start = $2 FOR UPDATE""",
        billing_account_id,
        billing_period_start,
    )


async def make_current(
    conn: asyncpg.Connection,
    *,
    billing_account_id: str,
    billing_period_start: datetime,
    ingest_id: uuid.UUID,
    version: int,
    provider_name: str,
    line_count: int,
) -> int:
    """Make this version the period's current one and drop the lines of every other version; rows dropped."""
    await conn.execute(
        """INSERT INTO current_period (billing_account_id, billing_period_start, ingest_id, version, provider_name,
                                       line_count)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (billing_account_id, billing_period_start) DO UPDATE
           SET ingest_id = excluded.ingest_id, version = excluded.version, provider_name = excluded.provider_name,
               line_count = excluded.line_count, completed_at = now()""",
        billing_account_id,
        billing_period_start,
        ingest_id,
        version,
        provider_name,
        line_count,
    )
    return await drop_other_versions(
        conn, billing_account_id=billing_account_id, billing_period_start=billing_period_start, keep=ingest_id
    )


async def drop_other_versions(
    conn: asyncpg.Connection, *, billing_account_id: str, billing_period_start: datetime, keep: uuid.UUID
) -> int:
    status = await conn.execute(
        """DELETE FROM cost_allocation
           WHERE billing_account_id = $1 AND billing_period_start = $2 AND ingest_id <> $3""",
        billing_account_id,
        billing_period_start,
        keep,
    )
    return int(status.split()[-1])
