"""Raw Kafka access for tests: produce records as any producer would, read a topic from the beginning.
The clients come from the runtime's factories, so they connect as the FINOPS_KAFKA_* settings say (PLAINTEXT
to the local test broker, or SASL_SSL / mTLS when `config` or the environment says so)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import ConsumerRecord, TopicPartition

from finops_runtime import kafka
from finops_runtime.settings import KafkaSettings


async def produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, bytes, dict[str, str]]],
    *,
    config: KafkaSettings | None = None,
) -> None:
    producer = kafka.create_producer(bootstrap, config=config)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, *, at_least: int, timeout: float = 30, config: KafkaSettings | None = None
) -> list[ConsumerRecord]:
    """Every record of `topic` from the beginning, once there are at least `at_least` of them."""
    consumer = kafka.create_consumer(
        bootstrap_servers=bootstrap, config=config, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic) or None
            if partitions is None:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        assert partitions, f"topic {topic} does not exist"
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for rs in batch.values():
                records.extend(rs)
            if len(records) >= at_least:
                await asyncio.sleep(0.5)  # let stragglers (duplicates) arrive too
                for rs in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(rs)
                return records
        raise AssertionError(f"{topic}: {len(records)} records after {timeout}s, wanted at least {at_least}")
    finally:
        await consumer.stop()


async def count_records(bootstrap: str, topic: str, *, config: KafkaSettings | None = None) -> int:
    """How many records the topic holds (end minus beginning offsets, all partitions)."""
    consumer = kafka.create_consumer(bootstrap_servers=bootstrap, config=config)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()


async def delete_topics(bootstrap: str, *, prefix: str, config: KafkaSettings | None = None) -> list[str]:
    """Delete every topic whose name starts with `prefix`; return their names."""
    admin = kafka.create_admin(bootstrap, config=config)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()
