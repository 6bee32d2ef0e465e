"""The outbox relay against real Kafka and PostgreSQL: one leader per schema, order, take-over."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from finops_contracts.events import IngestCompleted
from finops_runtime import db, kafka, outbox
from finops_runtime.outbox import Relay
from tests.support.kafka import read_topic
from tests.support.services import wait_until


def completed(i: int) -> IngestCompleted:
    return IngestCompleted(
        ingest_id=uuid.UUID(int=1), file_name=f"f{i}.csv", sha256="0" * 64, row_count=i, batch_count=1, totals=()
    )


@pytest.fixture
async def pool(database_url):
    pool = await db.create_pool(database_url, schema="relaytest", max_size=6)
    async with pool.acquire() as conn:
        await db.migrate(conn, schema="relaytest", migrations=db.runtime_migrations())
    yield pool
    await pool.close()


async def test_one_relay_leads_publishes_in_order_and_a_standby_takes_over(pool, endpoints, kafka_namespace):
    topic = kafka_namespace + "finops.ingest.v1"
    brokers = [kafka.create_broker(endpoints.kafka, client_id=f"relay-{i}") for i in range(2)]
    for b in brokers:
        await b.connect()
    relays = [
        Relay(
            pool=pool,
            broker=b,
            schema="relaytest",
            service="test",
            namespace=kafka_namespace,
            batch_size=7,
            poll_interval_s=0.1,
        )
        for b in brokers
    ]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await wait_until(lambda: _any_leader(relays), timeout=10, what="a leader")
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, [outbox.message_for(completed(i), source="/test") for i in range(20)])

        first = await read_topic(endpoints.kafka, topic, at_least=20)
        leader = next(i for i, r in enumerate(relays) if r.is_leader)
        tasks[leader].cancel()
        await wait_until(lambda: _leader_is(relays[1 - leader]), timeout=10, what="the standby to take over")
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, [outbox.message_for(completed(i), source="/test") for i in range(20, 25)])
        everything = await read_topic(endpoints.kafka, topic, at_least=25)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for b in brokers:
            await b.stop()

    assert sum(r.is_leader for r in relays) <= 1
    assert [json.loads(r.value)["row_count"] for r in first] == list(range(20)), "same key: one partition, in order"
    assert [json.loads(r.value)["row_count"] for r in everything] == list(range(25))
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def _any_leader(relays) -> bool:
    return sum(r.is_leader for r in relays) == 1


async def _leader_is(relay) -> bool:
    return relay.is_leader


async def test_the_relay_holds_a_bounded_number_of_bytes_and_still_publishes_everything_in_order(
    pool, endpoints, kafka_namespace
):
    topic = kafka_namespace + "finops.ingest.v1"
    broker = kafka.create_broker(endpoints.kafka, client_id="relay-bytes")
    await broker.connect()
    relay = Relay(
        pool=pool,
        broker=broker,
        schema="relaytest",
        service="test",
        namespace=kafka_namespace,
        batch_size=100,
        max_bytes=1,
    )
    try:
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, [outbox.message_for(completed(i), source="/test") for i in range(12)])

        chunks = []
        while published := await relay.publish_once():
            chunks.append(published)
        records = await read_topic(endpoints.kafka, topic, at_least=12)
    finally:
        await broker.stop()

    assert chunks == [1] * 12, "one row per chunk when a single payload exceeds max_bytes"
    assert [json.loads(r.value)["row_count"] for r in records] == list(range(12))
