"""Ordered plain-SQL migrations per service schema, against real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from finops_runtime.db import Migration, MigrationError, migrate, runtime_migrations


async def test_migrations_apply_once_in_order(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        first = await migrate(
            conn,
            schema="svc",
            migrations=[*runtime_migrations(), Migration("0001", "0001_a.sql", "CREATE TABLE a (id int)")],
        )
        second = await migrate(
            conn,
            schema="svc",
            migrations=[
                *runtime_migrations(),
                Migration("0001", "0001_a.sql", "CREATE TABLE a (id int)"),
                Migration("0002", "0002_b.sql", "ALTER TABLE a ADD COLUMN b text"),
            ],
        )

        columns = await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'svc' AND table_name = 'a'"
        )
    finally:
        await conn.close()

    assert first == ["0000_runtime.sql", "0001_access.sql", "0001_a.sql"]
    assert second == ["0002_b.sql"]
    assert columns == 2


async def test_an_edited_applied_migration_is_refused(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, schema="svc", migrations=[Migration("0001", "0001_a.sql", "CREATE TABLE a (id int)")])

        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, schema="svc", migrations=[Migration("0001", "0001_a.sql", "CREATE TABLE a (x int)")])
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        bad = Migration("0001", "0001_bad.sql", "CREATE TABLE ok (id int); CREATE TABLE broken (id nosuchtype)")

        with pytest.raises(MigrationError, match="0001_bad.sql"):
            await migrate(conn, schema="svc", migrations=[bad])

        assert await conn.fetchval("SELECT to_regclass('svc.ok')") is None
        assert await conn.fetchval("SELECT count(*) FROM svc.schema_migration") == 0
    finally:
        await conn.close()
