"""SQL of the ingest schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import asyncpg


async def claim_file(
    conn: asyncpg.Connection, *, ingest_id: uuid.UUID, file_name: str, sha256: str, size_bytes: int
) -> bool:
    """Record the file; False when a file with this checksum was accepted before."""
    inserted = await conn.fetchval(
        """INSERT INTO ingest_file (ingest_id, file_name, sha256, size_bytes, row_count, batch_count)
           VALUES ($1, $2, $3, $4, 0, 0) ON CONFLICT (sha256) DO NOTHING RETURNING ingest_id""",
        ingest_id,
        file_name,
        sha256,
        size_bytes,
    )
    return inserted is not None


async def complete_file(
    conn: asyncpg.Connection,
    *,
    ingest_id: uuid.UUID,
    row_count: int,
    batch_count: int,
    totals: Iterable[tuple[str, str, object, object, int]],
) -> None:
    await conn.execute(
        "UPDATE ingest_file SET row_count = $2, batch_count = $3 WHERE ingest_id = $1",
        ingest_id,
        row_count,
        batch_count,
    )
    await conn.executemany(
        """INSERT INTO ingest_total (ingest_id, billing_account_id, billing_currency, billed_cost, effective_cost,
                                     line_count) VALUES ($1, $2, $3, $4, $5, $6)""",
        [(ingest_id, *t) for t in totals],
    )


async def find_file(conn: asyncpg.Connection, *, sha256: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM ingest_file WHERE sha256 = $1", sha256)


async def file_totals(conn: asyncpg.Connection, *, ingest_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM ingest_total WHERE ingest_id = $1 ORDER BY billing_account_id, billing_currency", ingest_id
    )


async def recent_files(conn: asyncpg.Connection, *, limit: int = 50) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM ingest_file ORDER BY received_at DESC LIMIT $1", limit)


async def next_period_version(
    conn: asyncpg.Connection, *, billing_account_id: str, billing_period_start: datetime
) -> tuple[int, asyncpg.Record | None]:
    """The version this ingest gets for the period, and the version it supersedes (if any).

    A transaction-scoped advisory lock serializes concurrent ingests of the same period."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))", f"period:{billing_account_id}:{billing_period_start.isoformat()}"
    )
    previous = await conn.fetchrow(
        """SELECT version, ingest_id FROM billing_period_version
           WHERE billing_account_id = $1 AND billing_period_start = $2 ORDER BY version DESC LIMIT 1""",
        billing_account_id,
        billing_period_start,
    )
    return (previous["version"] + 1 if previous else 1), previous


async def add_period_version(
    conn: asyncpg.Connection,
    *,
    billing_account_id: str,
    billing_period_start: datetime,
    version: int,
    ingest_id: uuid.UUID,
    provider_name: str,
    line_count: int,
) -> None:
    await conn.execute(
        """INSERT INTO billing_period_version
           (billing_account_id, billing_period_start, version, ingest_id, provider_name, line_count)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        billing_account_id,
        billing_period_start,
        version,
        ingest_id,
        provider_name,
        line_count,
    )


async def record_rejection(
    conn: asyncpg.Connection, *, sha256: str, ingest_id: uuid.UUID, file_name: str, errors: str
) -> bool:
    """Record why a file was refused; False when this very file was refused before."""
    inserted = await conn.fetchval(
        """INSERT INTO ingest_rejection (sha256, ingest_id, file_name, errors) VALUES ($1, $2, $3, $4::jsonb)
           ON CONFLICT (sha256) DO NOTHING RETURNING sha256""",
        sha256,
        ingest_id,
        file_name,
        errors,
    )
    return inserted is not None
