"""asyncpg pool per service schema, and ordered plain-SQL migrations applied at start-up."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration file is misnamed, was edited after it was applied, or failed to apply."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def runtime_migrations() -> list[Migration]:
    """The outbox and processed-event tables, carried by every service schema."""
    files = resources.files("finops_runtime").joinpath("sql")
    return [
        Migration(version=f"runtime-{f.name[:4]}", name=f.name, sql=f.read_text())
        for f in sorted(files.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".sql")
    ]


def service_migrations(folder: Path) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_description.sql; rename it")
        migrations.append(Migration(version=match.group(1), name=path.name, sql=path.read_text()))
    return migrations


def _check_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema name {schema!r} must match {_SCHEMA_NAME.pattern}")
    return schema


async def create_pool(dsn: str, *, schema: str, min_size: int = 1, max_size: int = 5) -> asyncpg.Pool:
    """A pool whose connections resolve unqualified names in the service's own schema."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": _check_schema(schema), "application_name": f"finops-{schema}"},
    )


async def migrate(conn: asyncpg.Connection, *, schema: str, migrations: Iterable[Migration]) -> list[str]:
    """Apply the migrations not yet applied, in order, each in its own transaction; return their names."""
    _check_schema(schema)
    applied_now: list[str] = []
    # Two instances starting together must not both migrate.
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"finops.migrate.{schema}")
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migration (
                    version text PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch(f"SELECT version, checksum FROM {schema}.schema_migration")
        }
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.name} of schema {schema} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {schema}")
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"migration {migration.name} of schema {schema} failed: {exc}") from exc
                await conn.execute(
                    f"INSERT INTO {schema}.schema_migration (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.name)
            log.info("applied migration", extra={"schema": schema, "migration": migration.name})
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"finops.migrate.{schema}")
    return applied_now
