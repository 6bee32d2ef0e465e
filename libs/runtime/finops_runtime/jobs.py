"""A background job that claims and does one piece of work per transaction, until cancelled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)


async def repeat(
    pool: asyncpg.Pool,
    step: Callable[[asyncpg.Connection], Awaitable[bool]],
    *,
    what: str,
    idle_s: float = 0.3,
    retry_s: float = 2.0,
) -> None:
    """Run `step` in a transaction of its own, again at once while it reports work done, after `idle_s` when
    it found none, and after `retry_s` when it failed (the transaction rolled back, so nothing is half done)."""
    while True:
        try:
            async with pool.acquire() as conn, conn.transaction():
                worked = await step(conn)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", what)
            worked = False
            await asyncio.sleep(retry_s)
        if not worked:
            await asyncio.sleep(idle_s)
