"""The first flow under test: read allocation's and ingest's tables directly."""

from __future__ import annotations

from decimal import Decimal

import asyncpg


async def allocated_totals(
    database_url: str, *, current: bool = True
) -> dict[tuple[str, str], tuple[Decimal, Decimal, int]]:
    """Per (billing account, currency): of the current period versions, or of every line allocated so far."""
    source = "allocation.current_allocation" if current else "allocation.cost_allocation"
    conn = await asyncpg.connect(database_url)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", source)
        if not exists:
            return {}
        rows = await conn.fetch(
            """SELECT billing_account_id, billing_currency, sum(billed_cost) b, sum(effective_cost) e,
                      sum(line_count) n FROM """
            + source
            + " GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    return {(r["billing_account_id"], r["billing_currency"].strip()): (r["b"], r["e"], int(r["n"])) for r in rows}


async def allocated_lines(database_url: str) -> int:
    """Lines that count: those of current period versions."""
    return sum(n for _, _, n in (await allocated_totals(database_url)).values())


async def scalar(database_url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
