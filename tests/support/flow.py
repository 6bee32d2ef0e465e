"""The first flow under test: read allocation's and ingest's tables directly."""

from __future__ import annotations

from decimal import Decimal

import asyncpg


async def allocated_totals(database_url: str) -> dict[tuple[str, str], tuple[Decimal, Decimal, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        exists = await conn.fetchval("SELECT to_regclass('allocation.cost_allocation') IS NOT NULL")
        if not exists:
            return {}
        rows = await conn.fetch(
            """SELECT billing_account_id, billing_currency, sum(billed_cost) b, sum(effective_cost) e,
                      sum(line_count) n FROM allocation.cost_allocation GROUP BY 1, 2"""
        )
    finally:
        await conn.close()
    return {(r["billing_account_id"], r["billing_currency"].strip()): (r["b"], r["e"], int(r["n"])) for r in rows}


async def allocated_lines(database_url: str) -> int:
    return sum(n for _, _, n in (await allocated_totals(database_url)).values())


async def scalar(database_url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
