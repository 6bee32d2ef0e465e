"""The Kafka client factories and topic provisioning from the registry.

Every Kafka client the platform makes (the FastStream broker of a service or relay, and the raw aiokafka
admin, producer and consumer clients) is built here from one KafkaSettings, so a secured cluster
(SASL_SSL with SCRAM-SHA-512, or mTLS) is configured once, by environment, for all of them."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLScram512

from finops_contracts.topics import Topic
from finops_runtime.settings import KafkaSettings

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def _config(config: KafkaSettings | None) -> KafkaSettings:
    # No explicit config: the FINOPS_KAFKA_* environment, as a service started by an operator sees it.
    return config if config is not None else KafkaSettings()


def ssl_context(config: KafkaSettings) -> ssl.SSLContext:
    """TLS that verifies the broker (against FINOPS_KAFKA_SSL_CAFILE, else the system CAs) and, for mTLS,
    presents the client certificate."""
    context = ssl.create_default_context(cafile=str(config.ssl_cafile) if config.ssl_cafile else None)
    context.check_hostname = config.ssl_check_hostname
    if config.ssl_certfile is not None and config.ssl_keyfile is not None:
        password = config.ssl_key_password.get_secret_value() if config.ssl_key_password else None
        context.load_cert_chain(str(config.ssl_certfile), str(config.ssl_keyfile), password=password)
    return context


def broker_security(config: KafkaSettings | None = None) -> BaseSecurity | None:
    """FastStream's `security=` for a KafkaBroker: None (PLAINTEXT), TLS (with or without a client
    certificate) or SCRAM-SHA-512 over TLS."""
    config = _config(config)
    if config.security_protocol == "PLAINTEXT":
        return None
    context = ssl_context(config)
    if config.security_protocol == "SSL":
        return BaseSecurity(ssl_context=context)
    assert config.sasl_username is not None and config.sasl_password is not None  # checked by KafkaSettings
    return SASLScram512(config.sasl_username, config.sasl_password.get_secret_value(), ssl_context=context)


def client_options(config: KafkaSettings | None = None) -> dict[str, Any]:
    """Keyword arguments that make a raw aiokafka client (admin, producer, consumer) connect like the runtime."""
    config = _config(config)
    if config.security_protocol == "PLAINTEXT":
        return {"security_protocol": "PLAINTEXT"}
    options: dict[str, Any] = {"security_protocol": config.security_protocol, "ssl_context": ssl_context(config)}
    if config.security_protocol == "SASL_SSL":
        assert config.sasl_password is not None
        options.update(
            sasl_mechanism=config.sasl_mechanism,
            sasl_plain_username=config.sasl_username,
            sasl_plain_password=config.sasl_password.get_secret_value(),
        )
    return options


def create_broker(bootstrap_servers: str, *, client_id: str, config: KafkaSettings | None = None) -> KafkaBroker:
    """A broker whose producer never loses an acknowledged write: acks=all and idempotence."""
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        security=broker_security(config),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=MAX_MESSAGE_BYTES,
        request_timeout_ms=30_000,
    )


def create_admin(bootstrap_servers: str, *, config: KafkaSettings | None = None, **kwargs: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options(config), **kwargs)


def create_producer(bootstrap_servers: str, *, config: KafkaSettings | None = None, **kwargs: Any) -> AIOKafkaProducer:
    """A raw producer with the runtime's guarantees (acks=all, idempotence) unless the caller overrides them."""
    kwargs.setdefault("acks", "all")
    kwargs.setdefault("enable_idempotence", True)
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, **client_options(config), **kwargs)


def create_consumer(
    *topics: str, bootstrap_servers: str, config: KafkaSettings | None = None, **kwargs: Any
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap_servers, **client_options(config), **kwargs)


def durability(config: KafkaSettings, brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for new topics: the settings, else 3 and 2 on a cluster of
    at least 3 brokers (one broker may fail without losing an acknowledged write or blocking producers),
    else 1 and 1 (a development broker)."""
    replication = config.replication_factor or (3 if brokers >= 3 else 1)
    min_insync = config.min_insync_replicas or (2 if brokers >= 3 else 1)
    if replication > brokers:
        raise ValueError(
            f"replication factor {replication} (FINOPS_KAFKA_REPLICATION_FACTOR) exceeds the cluster's {brokers} "
            "broker(s): lower it or add brokers"
        )
    if min_insync > replication:
        raise ValueError(
            f"min.insync.replicas {min_insync} (FINOPS_KAFKA_MIN_INSYNC_REPLICAS) exceeds the replication "
            f"factor {replication}: producers with acks=all could never write"
        )
    return replication, min_insync


async def cluster_size(admin: AIOKafkaAdminClient) -> int:
    """How many brokers the cluster has, as its metadata says."""
    return len((await admin.describe_cluster())["brokers"])


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[Topic],
    *,
    namespace: str = "",
    with_dlq: bool = True,
    config: KafkaSettings | None = None,
) -> None:
    """Create the registry's topics (and their dead-letter topics) that do not exist yet, replicated as
    `durability` says. Existing topics are left as they are."""
    config = _config(config)
    admin = create_admin(bootstrap_servers, config=config)
    await admin.start()
    try:
        replication, min_insync = durability(config, await cluster_size(admin))
        topic_config = {"max.message.bytes": str(MAX_MESSAGE_BYTES), "min.insync.replicas": str(min_insync)}
        wanted: list[NewTopic] = []
        for topic in topics:
            wanted.append(NewTopic(namespace + topic.name, topic.partitions, replication, topic_configs=topic_config))
            if with_dlq:
                wanted.append(NewTopic(namespace + topic.dlq, 1, replication, topic_configs=topic_config))
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            response = await admin.create_topics(missing)
            failed = {
                topic: f"{for_code(code).__name__}: {rest[0] if rest else ''}".strip(": ")
                for topic, code, *rest in response.topic_errors
                # another instance may have created one between our list and create
                if code not in (0, TopicAlreadyExistsError.errno)
            }
            if failed:
                raise RuntimeError(f"could not create topics {failed}")
            log.info(
                "created topics",
                extra={"topics": [t.name for t in missing], "replication": replication, "min_insync": min_insync},
            )
    finally:
        await admin.close()
