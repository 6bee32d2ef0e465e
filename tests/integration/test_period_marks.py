"""A period completion that commits while a run of its period is about to start is never lost: the run cannot
claim the period before the completion's transaction commits (real PostgreSQL, two connections)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg

import finops_allocation
from finops_allocation import ledger
from finops_runtime.db import migrate, runtime_migrations, service_migrations

PERIOD = datetime(2026, 4, 1, 7, tzinfo=UTC)


async def connect(database_url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database_url)
    await conn.execute("SET search_path TO allocation")
    return conn


async def test_a_run_waits_for_a_completion_marking_an_already_marked_period(database_url):
    setup = await asyncpg.connect(database_url)
    migrations = Path(finops_allocation.__file__).parent / "migrations"
    await migrate(setup, schema="allocation", migrations=[*runtime_migrations(), *service_migrations(migrations)])
    await setup.close()
    completion, runner = await connect(database_url), await connect(database_url)
    try:
        # Given the period is marked by one billing account's completion, already committed
        await ledger.mark(completion, PERIOD)

        # When a second account's completion marks it again, and a run tries to claim it before that commits
        tx = completion.transaction()
        await tx.start()
        await ledger.mark(completion, PERIOD)
        async with runner.transaction():
            claimed_meanwhile = await ledger.take_marked(runner, quiet_s=0.0)
        await tx.commit()
        async with runner.transaction():
            claimed_after = await ledger.take_marked(runner, quiet_s=0.0)

        # Then the run could not claim it until the second completion was visible, and claims it after
        assert claimed_meanwhile is None
        assert claimed_after == PERIOD
    finally:
        await completion.close()
        await runner.close()
