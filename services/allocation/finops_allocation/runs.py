"""Allocation runs off the consumer's path: a period completion only marks its period; this loop runs each
marked period once (its allocation, then its budgets), however many billing accounts completed it meanwhile.
Readers settle a marked period first, so what they see is never older than the facts."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import asyncpg

from finops_allocation import budgets, ledger

log = logging.getLogger(__name__)


async def settle(conn: asyncpg.Connection, period: datetime | None = None) -> datetime | None:
    """Run one marked period (the oldest, or `period` if marked) in the caller's transaction."""
    claimed = await ledger.take_marked(conn, period)
    if claimed is not None:
        await ledger.run_period(conn, claimed)
        await budgets.check(conn, claimed)
    return claimed


async def loop(pool: asyncpg.Pool, *, idle_s: float = 0.3) -> None:
    while True:
        try:
            async with pool.acquire() as conn, conn.transaction():
                claimed = await settle(conn)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("allocation run failed; retrying")
            claimed = None
            await asyncio.sleep(2)
        if claimed is None:
            await asyncio.sleep(idle_s)
