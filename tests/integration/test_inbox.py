"""The idempotent inbox against real PostgreSQL: duplicates, transient failures, domain rejections."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from finops_contracts.cloudevents import Envelope
from finops_contracts.events import IngestCompleted
from finops_contracts.topics import INGEST
from finops_runtime import db, metrics
from finops_runtime.inbox import Inbox, Rejected


def record(offset: int, event: IngestCompleted, event_id: uuid.UUID | None = None) -> ConsumerRecord:
    headers = Envelope(
        id=event_id or uuid.uuid4(), type=event.TYPE, source="/test", time=datetime.now(UTC)
    ).to_headers()
    value = event.model_dump_json().encode()
    return ConsumerRecord(
        topic="finops.ingest.v1",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )


def completed(name: str) -> IngestCompleted:
    return IngestCompleted(
        ingest_id=uuid.uuid4(), file_name=name, sha256="0" * 64, row_count=1, batch_count=1, totals=()
    )


@pytest.fixture
async def pool(database_url):
    pool = await db.create_pool(database_url, schema="inboxtest")
    async with pool.acquire() as conn:
        await db.migrate(
            conn,
            schema="inboxtest",
            migrations=[
                *db.runtime_migrations(),
                db.Migration("0001", "0001_seen.sql", "CREATE TABLE seen (name text)"),
            ],
        )
    yield pool
    await pool.close()


async def remember(conn: asyncpg.Connection, envelope: Envelope, event) -> None:
    if event.file_name.startswith("bad"):
        raise Rejected(f"{event.file_name} breaks a domain rule")
    await conn.execute("INSERT INTO seen (name) VALUES ($1)", event.file_name)


def inbox(pool, handler=remember) -> Inbox:
    return Inbox(
        consumer="tester",
        topic=INGEST,
        pool=pool,
        service="test",
        instance="i1",
        handlers={IngestCompleted.TYPE: handler},
        max_backoff_s=0.05,
    )


async def test_the_same_event_delivered_twice_is_applied_once(pool):
    same = uuid.uuid4()
    event = completed("a.csv")

    await inbox(pool).process([record(0, event, same)])
    await inbox(pool).process([record(0, event, same), record(1, event, same)])

    assert await pool.fetchval("SELECT count(*) FROM seen") == 1
    assert await pool.fetchval("SELECT count(*) FROM processed_event") == 1


async def test_transient_failures_are_retried_and_applied_once(pool):
    failures = 2

    async def flaky(conn, envelope, event):
        nonlocal failures
        await remember(conn, envelope, event)
        if failures:
            failures -= 1
            raise ConnectionResetError("database went away")

    before = metrics.TRANSIENT_RETRIES.labels("test", INGEST.name)._value.get()

    await inbox(pool, flaky).process([record(0, completed("a.csv")), record(1, completed("b.csv"))])

    assert sorted(r["name"] for r in await pool.fetch("SELECT name FROM seen")) == ["a.csv", "b.csv"]
    assert metrics.TRANSIENT_RETRIES.labels("test", INGEST.name)._value.get() - before == 2


async def test_a_rejected_event_is_dead_lettered_and_the_rest_applied(pool):
    records = [record(0, completed("a.csv")), record(1, completed("bad.csv")), record(2, completed("c.csv"))]

    await inbox(pool).process(records)

    assert sorted(r["name"] for r in await pool.fetch("SELECT name FROM seen")) == ["a.csv", "c.csv"]
    dead = await pool.fetch("SELECT topic, headers, payload FROM outbox")
    assert len(dead) == 1
    headers = json.loads(dead[0]["headers"])
    assert dead[0]["topic"] == "finops.ingest.v1.dlq"
    assert headers["dlq_reason"] == "rejected by tester: bad.csv breaks a domain rule"
    assert (headers["dlq_origin_topic"], headers["dlq_origin_offset"]) == ("finops.ingest.v1", "1")
    assert dead[0]["payload"] == records[1].value
    outcomes = {r["outcome"] for r in await pool.fetch("SELECT outcome FROM processed_event")}
    assert outcomes == {"processed", "dead_lettered"}


async def test_unknown_event_types_are_skipped(pool):
    event = completed("a.csv")
    rec = record(0, event)
    rec.headers = [(k, b"finops.ingest.something_new.v1" if k == "ce_type" else v) for k, v in rec.headers]

    await inbox(pool).process([rec])

    assert await pool.fetchval("SELECT count(*) FROM seen") == 0
    assert await pool.fetchval("SELECT outcome FROM processed_event") == "skipped"
