"""Transactional outbox: a service writes its state change and the events it causes in one transaction;
the relay publishes them to Kafka afterwards and deletes what Kafka acknowledged.

Delivery is at least once (the relay can die between publish and delete); consumers deduplicate on ce_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from faststream.kafka import KafkaBroker
from opentelemetry import trace

from finops_contracts.cloudevents import Envelope, now
from finops_contracts.events import Event
from finops_runtime import metrics, telemetry
from finops_runtime.chaos import fault_point

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    topic: str
    key: bytes | None
    headers: dict[str, str]
    payload: bytes


def message_for(event: Event, *, source: str, event_id: uuid.UUID | None = None) -> OutboxMessage:
    """Wrap an event in its CloudEvents envelope, carrying the current trace context."""
    envelope = Envelope(
        id=event_id or uuid.uuid4(),
        type=event.TYPE,
        source=source,
        time=now(),
        subject=event.subject(),
        content_type=event.CONTENT_TYPE,
    )
    headers = telemetry.inject(envelope.to_headers())
    return OutboxMessage(topic=event.TOPIC.name, key=event.key().encode(), headers=headers, payload=event.encode())


async def add(conn: asyncpg.Connection, messages: Sequence[OutboxMessage]) -> None:
    """Queue messages in the caller's transaction; COPY when there are many."""
    if not messages:
        return
    records = [(m.topic, m.key, json.dumps(m.headers), m.payload) for m in messages]
    if len(records) < 8:
        await conn.executemany(
            "INSERT INTO outbox (topic, key, headers, payload) VALUES ($1, $2, $3::jsonb, $4)", records
        )
    else:
        await conn.copy_records_to_table("outbox", records=records, columns=("topic", "key", "headers", "payload"))


class Relay:
    """Publishes one service's outbox in id order. One relay per service holds an advisory lock; others wait."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        broker: KafkaBroker,
        schema: str,
        service: str,
        namespace: str = "",
        batch_size: int = 2000,
        max_bytes: int = 32 << 20,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._pool = pool
        self._broker = broker
        self._schema = schema
        self._service = service
        self._namespace = namespace
        self._batch_size = batch_size
        self._max_bytes = max_bytes
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self.is_leader = False
        self.last_error: str | None = None

    async def run(self) -> None:
        """Run until cancelled; survives database and broker outages by starting over."""
        while True:
            try:
                await self._run_as_leader()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.is_leader = False
                self.last_error = repr(exc)
                log.warning("outbox relay restarting", extra={"error": repr(exc)})
                await asyncio.sleep(self._poll_interval_s)

    async def _run_as_leader(self) -> None:
        conn: asyncpg.Connection = await self._pool.acquire()
        try:
            # Standby relays poll the lock: there is no event for "the leader died".
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._lock_name):  # noqa: ASYNC110
                await asyncio.sleep(self._poll_interval_s)
            self.is_leader = True
            await conn.add_listener(f"{self._schema}_outbox", self._on_notify)
            try:
                while True:
                    self._wake.clear()
                    published = await self.publish_once()
                    if not published:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
            finally:
                self.is_leader = False
                try:
                    await conn.remove_listener(f"{self._schema}_outbox", self._on_notify)
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock_name)
                except BaseException:
                    # A pooled connection must never keep the lock: close it, and the lock goes with it.
                    conn.terminate()
                    raise
        finally:
            await self._pool.release(conn, timeout=5)

    @property
    def _lock_name(self) -> str:
        return f"finops.relay.{self._schema}"

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def publish_once(self) -> int:
        """Publish the oldest chunk of the outbox, wait for Kafka's acks, then delete it."""
        started = time.perf_counter()
        # At most batch_size rows and about max_bytes of payload (always at least one row), so a backlog of
        # large cost batches never has to fit in memory at once.
        rows = await self._pool.fetch(
            """SELECT id, topic, key, headers, payload FROM (
                   SELECT id, topic, key, headers, payload,
                          sum(octet_length(payload)) OVER (ORDER BY id) - octet_length(payload) AS before
                   FROM (SELECT * FROM outbox ORDER BY id LIMIT $1) AS head
               ) AS sized
               WHERE before < $2 ORDER BY id""",
            self._batch_size,
            self._max_bytes,
        )
        if not rows:
            return 0
        pending = []
        published: Counter[str] = Counter()
        for row in rows:
            headers = json.loads(row["headers"])
            topic = self._namespace + row["topic"]
            published[row["topic"]] += 1
            with telemetry.tracer().start_as_current_span(
                f"{row['topic']} publish",
                context=telemetry.extract(headers),
                kind=trace.SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic,
                    "messaging.message.id": headers.get("ce_id", ""),
                },
            ):
                telemetry.inject(headers)
                pending.append(
                    await self._broker.publish(row["payload"], topic, key=row["key"], headers=headers, no_confirm=True)
                )
        await asyncio.gather(*pending)
        fault_point("relay.after_publish")
        await self._pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        for logical_topic, count in published.items():
            metrics.EVENTS_PUBLISHED.labels(self._service, logical_topic).inc(count)
        metrics.OUTBOX_PUBLISH_SECONDS.labels(self._service).observe(time.perf_counter() - started)
        return len(rows)


async def backlog(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM outbox")
