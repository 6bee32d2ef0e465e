"""The idempotent consumer. For each polled batch of Kafka records, in one PostgreSQL transaction:
claim each record's ce_id in `processed_event`, apply the handlers' effects for the first deliveries, and
queue dead letters in the outbox. The subscriber acks (commits offsets) only after that transaction commits.

- Invalid records (bad envelope, payload that fails its schema, a handler's `Rejected`) go to `<topic>.dlq`
  with the reason and origin in headers; the records after them are processed.
- Transient failures (database, network) are retried with backoff while the partition waits.
- Unknown `ce_type`s are skipped (recorded, no effect), so producers can add types first.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import asyncpg
import pydantic
from aiokafka import ConsumerRecord, TopicPartition
from opentelemetry import trace

from finops_contracts.cloudevents import Envelope, InvalidEnvelope
from finops_contracts.events import EVENT_TYPES, Event
from finops_contracts.topics import Topic
from finops_runtime import metrics, outbox, telemetry
from finops_runtime.chaos import fault_point

log = logging.getLogger(__name__)

_RECORD_NAMESPACE = uuid.UUID("6f1c0a52-7d0e-4b7c-9d55-2f4f0f1e9a01")


class Retry(Exception):
    """Raised by a handler whose effect must be applied again from scratch (it repaired a cache, say):
    the transaction rolls back and the batch is retried like after a transient error."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    Retry,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
)


class Rejected(Exception):
    """A domain rule says this event can never be applied; it goes to the dead-letter topic."""


Handler = Callable[[asyncpg.Connection, Envelope, Event], Awaitable[None]]


@dataclass(slots=True)
class Delivery:
    record: ConsumerRecord
    headers: dict[str, str]
    event_id: uuid.UUID
    envelope: Envelope | None = None
    event: Event | None = None
    error: str | None = None

    @property
    def origin(self) -> str:
        return f"{self.record.topic}/{self.record.partition}@{self.record.offset}"


def decode(record: ConsumerRecord, handled_types: Mapping[str, object]) -> Delivery:
    """Turn a record into a Delivery; a record that cannot be read carries its error instead of an event."""
    headers = {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}
    fallback_id = uuid.uuid5(_RECORD_NAMESPACE, f"{record.topic}/{record.partition}/{record.offset}")
    try:
        envelope = Envelope.from_headers(headers)
    except InvalidEnvelope as exc:
        return Delivery(record, headers, fallback_id, error=f"invalid CloudEvents envelope: {exc}")
    delivery = Delivery(record, headers, envelope.id, envelope=envelope)
    model = EVENT_TYPES.get(envelope.type)
    if model is None or envelope.type not in handled_types:
        return delivery  # skipped: a type this consumer does not handle
    if envelope.content_type != model.CONTENT_TYPE:
        delivery.error = f"{envelope.type} must be {model.CONTENT_TYPE}, the record says {envelope.content_type}"
        return delivery
    try:
        delivery.event = model.decode(record.value or b"")
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(payload)"
        delivery.error = (
            f"payload does not match {envelope.type}: {where}: {first['msg']} ({exc.error_count()} error(s) in all)"
        )
    except ValueError as exc:
        delivery.error = f"payload does not match {envelope.type}: {exc}"
    return delivery


class Inbox:
    """One consumer group's idempotent processing of polled batches."""

    def __init__(
        self,
        *,
        consumer: str,
        topic: Topic,
        pool: asyncpg.Pool,
        service: str,
        instance: str,
        handlers: Mapping[str, Handler],
        max_backoff_s: float = 30.0,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self._pool = pool
        self._service = service
        self._instance = instance
        self._handlers = dict(handlers)
        self._max_backoff_s = max_backoff_s

    async def process(self, records: Sequence[ConsumerRecord], kafka_consumer: object | None = None) -> None:
        """Apply a polled batch exactly once in effect; return only after the transaction committed."""
        if not records:
            return
        started = time.perf_counter()
        deliveries = [decode(r, self._handlers) for r in records]
        attempt = 0
        while True:
            try:
                outcomes = await self._apply(deliveries)
                break
            except _RejectedDelivery as rejected:
                # Roll back, then apply the batch again with this one record dead-lettered.
                rejected.delivery.error = f"rejected by {self.consumer}: {rejected.reason}"
            except TRANSIENT_ERRORS as exc:
                attempt += 1
                delay = min(self._max_backoff_s, 0.1 * 2**attempt)
                metrics.TRANSIENT_RETRIES.labels(self._service, self.topic.name).inc()
                log.warning(
                    "transient failure, retrying",
                    extra={"consumer": self.consumer, "attempt": attempt, "delay_s": delay, "error": repr(exc)},
                )
                await asyncio.sleep(delay)
        fault_point("inbox.after_commit")
        topic = self.topic.name
        for outcome, count in outcomes.items():
            metrics.EVENTS_CONSUMED.labels(self._service, topic, outcome).inc(count)
        if outcomes.get("dead_lettered"):
            metrics.DEAD_LETTERS.labels(self._service, topic).inc(outcomes["dead_lettered"])
        metrics.HANDLER_SECONDS.labels(self._service, topic).observe(time.perf_counter() - started)
        self._observe_lag(records, kafka_consumer)

    async def _apply(self, deliveries: list[Delivery]) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        async with self._pool.acquire() as conn, conn.transaction():
            first = await self._claim(conn, deliveries)
            dead: list[outbox.OutboxMessage] = []
            for delivery in deliveries:
                if delivery.event_id not in first:
                    outcomes["duplicate"] += 1
                    continue
                first.discard(delivery.event_id)  # the same ce_id twice in one poll is applied once
                if delivery.error is not None:
                    dead.append(self._dead_letter(delivery))
                    outcomes["dead_lettered"] += 1
                    continue
                if delivery.event is None:
                    outcomes["skipped"] += 1
                    continue
                await self._handle(conn, delivery)
                outcomes["processed"] += 1
            await outbox.add(conn, dead)
            await self._record_outcomes(conn, deliveries)
        return outcomes

    async def _claim(self, conn: asyncpg.Connection, deliveries: list[Delivery]) -> set[uuid.UUID]:
        rows = await conn.fetch(
            """INSERT INTO processed_event (consumer, event_id, topic, kafka_partition, kafka_offset, outcome, instance)
               SELECT $1, e.id, e.topic, e.part, e.off, 'processed', $2
               FROM unnest($3::uuid[], $4::text[], $5::int[], $6::bigint[]) AS e(id, topic, part, off)
               ON CONFLICT (consumer, event_id) DO NOTHING
               RETURNING event_id""",
            self.consumer,
            self._instance,
            [d.event_id for d in deliveries],
            [d.record.topic for d in deliveries],
            [d.record.partition for d in deliveries],
            [d.record.offset for d in deliveries],
        )
        return {r["event_id"] for r in rows}

    async def _record_outcomes(self, conn: asyncpg.Connection, deliveries: list[Delivery]) -> None:
        dead = [d.event_id for d in deliveries if d.error is not None]
        skipped = [d.event_id for d in deliveries if d.error is None and d.event is None]
        for outcome, ids in (("dead_lettered", dead), ("skipped", skipped)):
            if ids:
                await conn.execute(
                    "UPDATE processed_event SET outcome = $1 WHERE consumer = $2 AND event_id = ANY($3::uuid[])",
                    outcome,
                    self.consumer,
                    ids,
                )

    async def _handle(self, conn: asyncpg.Connection, delivery: Delivery) -> None:
        assert delivery.envelope is not None and delivery.event is not None
        with telemetry.tracer().start_as_current_span(
            f"{self.topic.name} process",
            context=telemetry.extract(delivery.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": delivery.record.topic,
                "messaging.consumer.group.name": self.consumer,
                "messaging.message.id": str(delivery.event_id),
                "messaging.kafka.offset": delivery.record.offset,
            },
        ):
            try:
                await self._handlers[delivery.envelope.type](conn, delivery.envelope, delivery.event)
            except Rejected as exc:
                raise _RejectedDelivery(delivery, str(exc)) from exc

    def _dead_letter(self, delivery: Delivery) -> outbox.OutboxMessage:
        log.warning(
            "dead-lettering record",
            extra={"consumer": self.consumer, "origin": delivery.origin, "reason": delivery.error},
        )
        headers = dict(delivery.headers)
        headers.update(
            {
                "dlq_reason": delivery.error or "",
                "dlq_origin_topic": delivery.record.topic,
                "dlq_origin_partition": str(delivery.record.partition),
                "dlq_origin_offset": str(delivery.record.offset),
                "dlq_consumer": self.consumer,
            }
        )
        return outbox.OutboxMessage(
            topic=self.topic.dlq,
            key=delivery.record.key,
            headers=headers,
            payload=delivery.record.value or b"",
        )

    def _observe_lag(self, records: Sequence[ConsumerRecord], kafka_consumer: object | None) -> None:
        highwater = getattr(kafka_consumer, "highwater", None)
        if highwater is None:
            return
        last: dict[TopicPartition, int] = {}
        for r in records:
            last[TopicPartition(r.topic, r.partition)] = r.offset
        for tp, offset in last.items():
            hw = highwater(tp)
            if hw is not None:
                metrics.CONSUMER_LAG.labels(self._service, tp.topic, str(tp.partition)).set(hw - offset - 1)


class _RejectedDelivery(Exception):
    def __init__(self, delivery: Delivery, reason: str) -> None:
        super().__init__(reason)
        self.delivery = delivery
        self.reason = reason
