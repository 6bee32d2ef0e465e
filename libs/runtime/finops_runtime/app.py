"""Wiring shared by every service: pool, migrations, broker, outbox relay, idempotent subscribers,
and the HTTP routes /health, /ready and /metrics. A service's create_app builds one ServiceRuntime,
adds its subscribers and routes, and returns `runtime.app()`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import request_response

from finops_contracts.events import Event
from finops_contracts.topics import Topic
from finops_runtime import access, db, kafka, oidc, telemetry
from finops_runtime.inbox import Handler, Inbox
from finops_runtime.outbox import Relay, backlog
from finops_runtime.settings import Settings

log = logging.getLogger(__name__)


async def _raw_records(msg: StreamMessage[Any]) -> Any:
    # The Inbox reads raw records itself, so a malformed payload reaches it instead of failing in decode.
    return None


class _Assignment(ConsumerRebalanceListener):
    """Which partitions this instance holds, for /ready and for operators."""

    def __init__(self) -> None:
        self.partitions: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.partitions.difference_update(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.partitions.update(assigned)


class ServiceRuntime:
    def __init__(
        self,
        settings: Settings,
        *,
        schema: str,
        migrations: Path,
        topics: Sequence[Topic] = (),
        publishes: Sequence[type[Event]] = (),
        description: str = "",
    ) -> None:
        self.settings = settings
        self.schema = schema
        self._migrations = migrations
        self._topics = tuple(topics)
        self.publishes = tuple(publishes)
        self.description = description
        self.broker: KafkaBroker = kafka.create_broker(
            settings.kafka_bootstrap_servers, client_id=schema, config=settings.kafka
        )
        self._pool: asyncpg.Pool | None = None
        self.relay: Relay | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inboxes: list[Inbox] = []
        self._routes: list[tuple[str, Any]] = [
            ("/health", request_response(self._health)),
            ("/ready", request_response(self._ready)),
            ("/metrics", request_response(self._metrics)),
            ("/v1/tokens", request_response(self._tokens)),
        ]
        self._on_started: list[Callable[[], Sequence[asyncio.Task[None]]]] = []
        self._assignment = _Assignment()
        self._pending_inboxes: list[tuple[str, Topic, Mapping[str, Handler], dict[str, Inbox]]] = []
        self.ready = False
        self.oidc: oidc.OidcVerifier | None = oidc.OidcVerifier(settings.oidc) if settings.oidc.enabled else None
        """The OIDC verifier for JWT bearer tokens, when FINOPS_OIDC_ISSUER is set."""

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the service has not started: the database pool does not exist yet")
        return self._pool

    @property
    def subscriptions(self) -> list[tuple[Topic, str, tuple[str, ...]]]:
        """(topic, consumer group, handled ce_types) of each subscription, for the AsyncAPI document."""
        return [(topic, group, tuple(handlers)) for group, topic, handlers, _ in self._pending_inboxes]

    def subscribe(self, topic: Topic, *, group: str, handlers: Mapping[str, Handler]) -> None:
        """Consume `topic` in consumer group `group` through an idempotent Inbox."""
        # The Inbox needs the pool, which exists only once the lifespan has started: it is filled in then.
        inbox_ref: dict[str, Inbox] = {}

        async def on_records(body: Any, message: KafkaMessage) -> None:
            records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
            await inbox_ref["inbox"].process(records, getattr(message.consumer, "_consumer", message.consumer))

        on_records.__name__ = f"on_{topic.name.replace('.', '_')}"
        self.broker.subscriber(
            self.settings.kafka_name(topic.name),
            group_id=self.settings.kafka_name(group),
            batch=True,
            max_records=self.settings.consumer_max_records,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=_raw_records,
            max_partition_fetch_bytes=kafka.MAX_MESSAGE_BYTES,
            listener=self._assignment,
            title=f"{group}:{topic.name}",
            description=topic.description,
        )(on_records)
        self._pending_inboxes.append((group, topic, handlers, inbox_ref))

    def on_started(self, start: Callable[[], Sequence[asyncio.Task[None]]]) -> None:
        """Run `start` once the pool and broker are up; the tasks it returns are cancelled at shutdown."""
        self._on_started.append(start)

    def route(self, path: str, endpoint: Any) -> None:
        """Serve a Starlette-style `async def endpoint(request) -> Response` at `path`."""
        self._routes.append((path, request_response(endpoint)))

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        s = self.settings
        telemetry.configure_tracing(service_name=s.service_name, exporter=s.otel_exporter)
        self._pool = await db.create_pool(
            s.database_url, schema=self.schema, min_size=s.db_pool_min, max_size=s.db_pool_max
        )
        async with self._pool.acquire() as conn:
            await db.migrate(
                conn,
                schema=self.schema,
                migrations=[*db.runtime_migrations(), *db.service_migrations(self._migrations)],
            )
            await access.ensure_admin(conn, s.admin_token)
        topics = list(self._topics)
        await kafka.ensure_topics(s.kafka_bootstrap_servers, topics, namespace=s.kafka_namespace, config=s.kafka)
        for group, topic, handlers, ref in self._pending_inboxes:
            ref["inbox"] = Inbox(
                consumer=group,
                topic=topic,
                pool=self._pool,
                service=s.service_name,
                instance=s.instance_id,
                handlers=handlers,
                max_backoff_s=s.consumer_retry_max_backoff_s,
            )
            self._inboxes.append(ref["inbox"])
        if s.relay_enabled:
            self.relay = Relay(
                pool=self._pool,
                broker=self.broker,
                schema=self.schema,
                service=s.service_name,
                namespace=s.kafka_namespace,
                batch_size=s.relay_batch_size,
                max_bytes=s.relay_max_bytes,
                poll_interval_s=s.relay_poll_interval_s,
            )
        if self.oidc is not None:
            access.add_bearer_verifier(self.oidc)
        try:
            yield
        finally:
            self.ready = False
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._pool.close()
            if self.oidc is not None:
                access.remove_bearer_verifier(self.oidc)

    async def _after_startup(self) -> None:
        if self.relay is not None:
            self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.schema}-relay"))
        for start in self._on_started:
            self._tasks.extend(start())
        self.ready = True
        log.info("service ready", extra={"service": self.settings.service_name, "instance": self.settings.instance_id})

    def app(self) -> AsgiFastStream:
        return AsgiFastStream(
            self.broker,
            asgi_routes=self._routes,
            lifespan=lambda: self.lifespan(),
            after_startup=[self._after_startup],
        )

    async def _tokens(self, request: Request) -> Response:
        """POST {name, role, teams?, products?} as admin: a new API token, shown once."""
        if request.method != "POST":
            return JSONResponse({"error": "use POST"}, status_code=405)
        async with self.pool.acquire() as conn:
            try:
                await access.authenticate(conn, request, allowed={access.Role.ADMIN})
                body = await request.json()
                role = access.Role(body["role"])
                token = await access.issue(
                    conn,
                    name=str(body["name"]),
                    role=role,
                    teams=[str(t) for t in body.get("teams", [])],
                    products=[str(p) for p in body.get("products", [])],
                )
            except access.Denied as denied:
                return denied.response()
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"error": f"send name, role and optional teams/products: {exc!r}"}, status_code=400)
        return JSONResponse({"token": token, "role": role.value}, status_code=201)

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": self.settings.service_name})

    async def _ready(self, request: Request) -> Response:
        checks: dict[str, Any] = {"started": self.ready}
        try:
            async with self.pool.acquire(timeout=2) as conn:
                checks["database"] = True
                checks["outbox_backlog"] = await backlog(conn)
        except Exception as exc:
            checks["database"] = False
            checks["database_error"] = repr(exc)
        checks["kafka"] = await self.broker.ping(timeout=2)
        if self._pending_inboxes:
            checks["partitions"] = sorted(f"{tp.topic}/{tp.partition}" for tp in self._assignment.partitions)
        if self.relay is not None:
            checks["relay"] = "leader" if self.relay.is_leader else "standby"
        ok = bool(checks["started"] and checks["database"] and checks["kafka"])
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    async def _metrics(self, request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
