"""SQL of the ingest schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

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
