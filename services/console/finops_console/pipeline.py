"""Pipeline health from Kafka itself: end offsets of every platform topic and its dead-letter topic, sampled
periodically (events per second is the growth of end offsets between samples), and the lag of every consumer
group of the namespace (end offsets less its committed offsets, read with the admin API)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from finops_contracts.topics import TOPICS
from finops_runtime import kafka

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    at: float
    ends: dict[str, int]
    """Topic (without namespace) -> sum of end offsets over its partitions."""
    starts: dict[str, int]
    lag: dict[str, dict[str, int]] = field(default_factory=dict)
    """Group (without namespace) -> topic -> lag summed over partitions."""


class Sampler:
    """Keeps the last hour of samples in memory; each console instance samples on its own."""

    def __init__(self, bootstrap: str, *, namespace: str, every_s: float, keep_s: float = 3600) -> None:
        self._bootstrap = bootstrap
        self._namespace = namespace
        self._every_s = every_s
        self._samples: deque[Sample] = deque(maxlen=max(2, int(keep_s / every_s) + 1))
        self.last_error: str | None = None

    @property
    def topics(self) -> list[str]:
        return [name for t in TOPICS for name in (t.name, t.dlq)]

    async def run(self) -> None:
        while True:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = repr(exc)
                log.warning("pipeline sampler restarting", extra={"error": repr(exc)})
                await asyncio.sleep(self._every_s)

    async def _run(self) -> None:
        # The runtime's factories: the same FINOPS_KAFKA_* security as the console's broker.
        consumer = kafka.create_consumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        admin = kafka.create_admin(self._bootstrap)
        await consumer.start()
        try:
            await admin.start()
            try:
                while True:
                    self._samples.append(await self.sample(consumer, admin))
                    self.last_error = None
                    await asyncio.sleep(self._every_s)
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
        finally:
            await consumer.stop()

    async def sample(self, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> Sample:
        ns = self._namespace
        await consumer._client.force_metadata_update()
        partitions: list[TopicPartition] = []
        for name in self.topics:
            for p in consumer.partitions_for_topic(ns + name) or ():
                partitions.append(TopicPartition(ns + name, p))
        ends = await consumer.end_offsets(partitions) if partitions else {}
        starts = await consumer.beginning_offsets(partitions) if partitions else {}
        end_by_topic: dict[str, int] = {}
        start_by_topic: dict[str, int] = {}
        for tp in partitions:
            name = tp.topic[len(ns) :]
            end_by_topic[name] = end_by_topic.get(name, 0) + ends[tp]
            start_by_topic[name] = start_by_topic.get(name, 0) + starts[tp]
        lag: dict[str, dict[str, int]] = {}
        for group_id, _protocol in await admin.list_consumer_groups():
            if not group_id.startswith(ns):
                continue
            committed = await admin.list_consumer_group_offsets(group_id)
            per_topic: dict[str, int] = {}
            for tp, meta in committed.items():
                if tp not in ends or not tp.topic.startswith(ns):
                    continue
                name = tp.topic[len(ns) :]
                behind = ends[tp] - meta.offset if meta.offset >= 0 else ends[tp] - starts[tp]
                per_topic[name] = per_topic.get(name, 0) + max(0, behind)
            if per_topic:
                lag[group_id[len(ns) :]] = per_topic
        return Sample(at=time.time(), ends=end_by_topic, starts=start_by_topic, lag=lag)

    def report(self, *, window_s: float = 60.0) -> dict[str, Any]:
        """Events per second per topic over about the last `window_s`, dead letters, and lag per group."""
        if not self._samples:
            return {"sampled_at": None, "topics": [], "groups": [], "error": self.last_error}
        latest = self._samples[-1]
        base = self._samples[0]  # the newest sample at least window_s old, else the oldest
        for s in self._samples:
            if latest.at - s.at >= window_s:
                base = s
        span = latest.at - base.at
        topics = []
        for t in TOPICS:
            end = latest.ends.get(t.name, 0)
            rate = (end - base.ends.get(t.name, 0)) / span if span > 0 else 0.0
            topics.append(
                {
                    "topic": t.name,
                    "owner": t.owner,
                    "events": end - latest.starts.get(t.name, 0),
                    "events_per_second": round(rate, 3),
                    "dead_letters": latest.ends.get(t.dlq, 0) - latest.starts.get(t.dlq, 0),
                }
            )
        groups = [
            {"group": g, "lag": sum(per.values()), "topics": [{"topic": k, "lag": v} for k, v in sorted(per.items())]}
            for g, per in sorted(latest.lag.items())
        ]
        return {
            "sampled_at": latest.at,
            "window_seconds": round(span, 3),
            "topics": topics,
            "groups": groups,
            "error": self.last_error,
        }
