"""The Kafka broker factory and topic provisioning from the registry."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker

from finops_contracts.topics import Topic

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def create_broker(bootstrap_servers: str, *, client_id: str) -> KafkaBroker:
    """A broker whose producer never loses an acknowledged write: acks=all and idempotence."""
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=MAX_MESSAGE_BYTES,
        request_timeout_ms=30_000,
    )


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[Topic], *, namespace: str = "", with_dlq: bool = True
) -> None:
    """Create the registry's topics (and their dead-letter topics) that do not exist yet."""
    wanted: list[NewTopic] = []
    for topic in topics:
        config = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
        wanted.append(NewTopic(namespace + topic.name, topic.partitions, 1, topic_configs=config))
        if with_dlq:
            wanted.append(NewTopic(namespace + topic.dlq, 1, 1, topic_configs=config))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another instance created it between our list and create
            log.info("created topics", extra={"topics": [t.name for t in missing]})
    finally:
        await admin.close()
