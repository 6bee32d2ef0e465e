"""The notify service: consumes every topic people act on, logs the routed events as notifications, fans them
out to subscribers through per-subscriber cursors over that log (email, Slack, Teams, batched signed webhooks),
and serves the same log as a resumable SSE stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
from faststream.asgi import AsgiFastStream
from pydantic import SecretStr

from finops_contracts.cloudevents import Envelope
from finops_contracts.decisions import DECISION_EVENTS  # noqa: F401  (registers their types)
from finops_contracts.events import EVENT_TYPES, Event, ResourceOwned
from finops_contracts.recommendations import RECOMMENDATION_EVENTS  # noqa: F401  (registers their types)
from finops_contracts.topics import ALLOCATION, COST, DECISION, INGEST, OWNERSHIP, PURCHASE, RECOMMENDATION
from finops_notify import api, channels, digest, policy, queue, routing, worker
from finops_notify.vault import Vault
from finops_runtime import owners
from finops_runtime.app import ServiceRuntime
from finops_runtime.settings import Settings

SCHEMA = "notify"
CONSUMER_GROUP = "notify"
TOPICS = (INGEST, ALLOCATION, RECOMMENDATION, COST, DECISION, PURCHASE)


class NotifySettings(Settings):
    service_name: str = "notify"
    http_port: int = 8004
    db_pool_max: int = 10
    notify_secret_key: SecretStr | None = None
    """FINOPS_NOTIFY_SECRET_KEY: encrypts webhook secrets and Slack/Teams URLs at rest."""
    webhook_allowlist: str = ""
    """FINOPS_WEBHOOK_ALLOWLIST: hosts (or host:port) in loopback or private ranges that webhooks may call."""
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "finops@localhost"
    smtp_starttls: bool = False
    delivery_concurrency: int = 32
    batch_max_events: int = 200
    """FINOPS_BATCH_MAX_EVENTS: events one webhook request carries at most."""
    batch_linger_ms: int = 250
    """FINOPS_BATCH_LINGER_MS: fan-out rounds start at most this often; a request gathers what arrived meanwhile."""
    delivery_max_attempts: int = 8
    retry_base_s: float = 2.0
    retry_cap_s: float = 600.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    http_timeout_s: float = 10.0
    digest_weekday: int = 0
    digest_hour: int = 8
    stream_poll_s: float = 0.25

    def allowlist(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.webhook_allowlist.split(",") if h.strip())

    def smtp(self) -> channels.Smtp | None:
        if not self.smtp_host:
            return None
        return channels.Smtp(
            host=self.smtp_host,
            port=self.smtp_port,
            sender=self.smtp_from,
            username=self.smtp_username,
            password=self.smtp_password.get_secret_value() if self.smtp_password else None,
            starttls=self.smtp_starttls,
        )

    def smtp_endpoint(self) -> str:
        return f"smtp://{self.smtp_host or 'unconfigured'}:{self.smtp_port}"

    def worker(self) -> worker.WorkerSettings:
        return worker.WorkerSettings(
            concurrency=self.delivery_concurrency,
            # A lease shorter than a request could time out would send it twice.
            lease_s=max(60.0, self.http_timeout_s + 30),
            http_timeout_s=self.http_timeout_s,
            batch_max_events=self.batch_max_events,
            batch_linger_s=self.batch_linger_ms / 1000,
            smtp_endpoint=self.smtp_endpoint(),
            retry=policy.Retry(
                max_attempts=self.delivery_max_attempts, base_s=self.retry_base_s, cap_s=self.retry_cap_s
            ),
            breaker=policy.Breaker(threshold=self.breaker_threshold, cooldown_s=self.breaker_cooldown_s),
            allowlist=self.allowlist(),
        )


async def on_resource_owned(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Keep the newest owner allocation published for a resource (notify's resource_owner table)."""
    assert isinstance(event, ResourceOwned)
    await owners.keep(conn, event)


async def on_event(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Route the event and log its notification, in the consumer's transaction; the fan-out delivers it."""
    payload = json.loads(event.model_dump_json())
    if envelope.type.startswith("finops.recommendation.") and payload.get("resource_id"):
        # A resource's owner is the one allocation published (ResourceOwned), as known when the notification is
        # made: the recommendation's own owner_team may predate it; no owner published: "unallocated".
        payload["owner_team"] = await owners.owner_of(
            conn, str(payload.get("billing_account_id")), payload["resource_id"]
        )
    n = routing.route(envelope.type, envelope.subject, payload)
    if n is not None:
        await queue.add_notification(conn, envelope, n, payload)


def build_runtime(settings: NotifySettings | None = None, **fields: object) -> ServiceRuntime:
    """The notify service's runtime: subscriptions, fan-out and delivery, digest loop and routes."""
    settings = settings or NotifySettings(**fields)
    runtime = ServiceRuntime(
        settings,
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        topics=[*TOPICS, OWNERSHIP],
        publishes=(),
        description="Routes platform events to the personas who act on them: email, Slack, Teams, signed "
        "webhooks with retries, circuit breakers and a dead-letter log, and a resumable server-sent event stream.",
    )
    # One group per topic, so a burst of cost batches never rebalances or holds up the alert consumers.
    for topic in TOPICS:
        handled = {t: on_event for t, model in EVENT_TYPES.items() if model.TOPIC == topic and routing.routed(t)}
        runtime.subscribe(topic, group=f"{CONSUMER_GROUP}-{topic.name.split('.')[1]}", handlers=handled)
    runtime.subscribe(OWNERSHIP, group=f"{CONSUMER_GROUP}-ownership", handlers={ResourceOwned.TYPE: on_resource_owned})
    vault = Vault(settings.notify_secret_key.get_secret_value() if settings.notify_secret_key else None)
    api.add_routes(runtime, settings=settings, vault=vault)

    def start() -> list[asyncio.Task[None]]:
        deliverer = worker.Deliverer(runtime.pool, settings=settings.worker(), vault=vault, smtp=settings.smtp())
        return [
            asyncio.create_task(deliverer.run(), name="notify-delivery"),
            asyncio.create_task(
                digest.loop(
                    runtime.pool,
                    weekday=settings.digest_weekday,
                    hour=settings.digest_hour,
                    smtp_endpoint=settings.smtp_endpoint(),
                ),
                name="notify-digest",
            ),
        ]

    runtime.on_started(start)
    return runtime


def create_app(settings: NotifySettings) -> AsgiFastStream:
    return build_runtime(settings).app()
