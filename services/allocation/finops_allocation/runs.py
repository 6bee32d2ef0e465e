"""Allocation runs off the consumer's path: a period completion only marks its period; this loop runs each
marked period once (its allocation, then its budgets), however many billing accounts completed it meanwhile.
Readers settle a marked period first, so what they see is never older than the facts."""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from finops_allocation import budgets, ledger, ownership
from finops_runtime import jobs

log = logging.getLogger(__name__)


async def settle(conn: asyncpg.Connection, period: datetime | None = None, *, quiet_s: float = 0.0) -> datetime | None:
    """Run one marked period (`period` if marked, else the oldest quiet one) in the caller's transaction."""
    claimed = await ledger.take_marked(conn, period, quiet_s=quiet_s)
    if claimed is not None:
        try:
            async with conn.transaction():  # a savepoint: a run that fails its conservation check leaves nothing
                await ledger.run_period(conn, claimed)
                version, ruleset = await ledger.current_rules(conn)
                await ownership.publish(conn, claimed, ruleset_version=version, ruleset=ruleset)
                await budgets.check(conn, claimed)
        except ledger.ConservationViolated as exc:
            log.error("allocation run stopped: %s", exc)
            await ledger.record_violation(conn, exc)
    return claimed


async def loop(pool: asyncpg.Pool, *, idle_s: float = 0.3, quiet_s: float = 1.0) -> None:
    async def step(conn: asyncpg.Connection) -> bool:
        return await settle(conn, quiet_s=quiet_s) is not None

    await jobs.repeat(pool, step, what="allocation run", idle_s=idle_s)
