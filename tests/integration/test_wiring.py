"""The runtime's promises that are configuration: the producer never loses an acknowledged write, the consumer
never commits before processing, and each service exports its metrics."""

from __future__ import annotations

import httpx
from faststream import AckPolicy

from finops_allocation.app import build_runtime
from finops_runtime import kafka
from tests.support.focus_files import write_focus_csv
from tests.support.platform import running


async def test_the_producer_waits_for_all_replicas_and_is_idempotent(endpoints):
    broker = kafka.create_broker(endpoints.kafka, client_id="wiring")
    await broker.connect()
    try:
        producer = broker.config.producer._producer.producer  # the aiokafka producer FastStream wraps
        assert producer._sender._acks == -1, "acks=all"
        assert producer._txn_manager is not None, "enable_idempotence=True"
    finally:
        await broker.stop()


def test_the_consumer_commits_offsets_only_after_processing():
    runtime = build_runtime(database_url="postgresql://unused/unused", kafka_bootstrap_servers="unused:9092")

    subscribers = runtime.broker.subscribers

    assert len(subscribers) == 2  # cost batches, and business metrics
    for subscriber in subscribers:
        assert subscriber.ack_policy is AckPolicy.NACK_ON_ERROR
        assert subscriber.ack_policy is not AckPolicy.ACK_FIRST


async def test_metrics_count_what_was_consumed_and_published(service_env, database_url, tmp_path):
    bill = write_focus_csv(tmp_path / "bill.csv", rows=1000, accounts=5)
    async with running(service_env) as urls, httpx.AsyncClient(timeout=60) as client:
        ingest, allocation = urls.ingest, urls.allocation
        before = _value(
            (await client.get(f"{allocation}/metrics")).text, "finops_events_consumed_total", 'outcome="processed"'
        )
        report = (await client.post(f"{ingest}/v1/ingest", content=bill.read_bytes())).json()
        events = report["batch_count"] + len(report["periods"])  # cost batches + period completions
        for _ in range(300):
            text = (await client.get(f"{allocation}/metrics")).text
            if _value(text, "finops_events_consumed_total", 'outcome="processed"') - before >= events:
                break
            await __import__("asyncio").sleep(0.1)
        ingest_metrics = (await client.get(f"{ingest}/metrics")).text

    assert _value(text, "finops_events_consumed_total", 'outcome="processed"') - before == events
    assert _value(ingest_metrics, "finops_events_published_total", 'topic="finops.cost.v1"') >= report["batch_count"]
    assert "finops_handler_seconds_bucket" in text
    assert "finops_consumer_lag" in text


def _value(exposition: str, name: str, label: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith(name + "{") and label in line
    )
