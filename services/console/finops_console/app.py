"""The console service: consumes every topic into read models of its own schema, and serves the practitioner
dashboard and the public query API over them. It publishes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from faststream.asgi import AsgiFastStream

from finops_console import api, readmodels
from finops_console.pipeline import Sampler
from finops_contracts.decisions import DECISION_EVENTS, PURCHASE_EVENTS  # noqa: F401  (registers their types)
from finops_contracts.events import EVENT_TYPES
from finops_contracts.recommendations import RECOMMENDATION_EVENTS  # noqa: F401  (registers their types)
from finops_contracts.topics import (
    ALLOCATION,
    BUSINESS,
    COST,
    DECISION,
    INGEST,
    OWNERSHIP,
    PURCHASE,
    RECOMMENDATION,
    TOPICS,
)
from finops_runtime.app import ServiceRuntime
from finops_runtime.settings import Settings

SCHEMA = "console"
CONSUMER_GROUP = "console"
CONSUMED = (COST, INGEST, ALLOCATION, OWNERSHIP, RECOMMENDATION, DECISION, PURCHASE, BUSINESS)


class ConsoleSettings(Settings):
    service_name: str = "console"
    http_port: int = 8007
    session_hours: float = 12.0
    """FINOPS_SESSION_HOURS: how long a dashboard sign-in lasts."""
    secure_cookies: bool = False
    """FINOPS_SECURE_COOKIES: mark the session cookie Secure even when TLS ends before the console."""
    pipeline_sample_s: float = 5.0
    """FINOPS_PIPELINE_SAMPLE_S: how often Kafka end offsets and consumer group offsets are read."""
    rate_window_s: float = 60.0
    """FINOPS_RATE_WINDOW_S: events per second are measured over about this long."""
    asyncapi_dir: str | None = None
    """FINOPS_ASYNCAPI_DIR: the services' AsyncAPI documents to merge into /asyncapi.json (default: the
    repository's docs/asyncapi when it is there)."""


class ConsoleApp:
    """The runtime's app (lifespan, /health, /ready, /metrics, /v1/tokens) with the console's routes beside it:
    the runtime matches exact paths only, the console needs path parameters and static files."""

    def __init__(self, runtime_app: AsgiFastStream, router: Any, runtime_paths: set[str]) -> None:
        self.runtime_app = runtime_app
        self.router = router
        self.runtime_paths = runtime_paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in self.runtime_paths:
            await self.router(scope, receive, send)
        else:
            await self.runtime_app(scope, receive, send)


def build_runtime(settings: ConsoleSettings | None = None, **fields: object) -> ServiceRuntime:
    """The console's runtime: one subscription per topic, every event type of it (consumer group console)."""
    settings = settings or ConsoleSettings(**fields)
    runtime = ServiceRuntime(
        settings,
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        topics=TOPICS,
        publishes=(),
        description="Read models of every platform event behind the practitioner dashboard (decision flow, "
        "pipeline health, shared KPIs, cost explorer) and the public query API for teams.",
    )
    for topic in CONSUMED:
        types = {name: model for name, model in EVENT_TYPES.items() if model.TOPIC == topic}
        handlers = readmodels.handlers(types)
        if topic is BUSINESS:
            handlers = {name: readmodels.tally_only(topic.name) for name in types}
        runtime.subscribe(topic, group=CONSUMER_GROUP, handlers=handlers)
    return runtime


def create_app(settings: ConsoleSettings) -> ConsoleApp:
    runtime = build_runtime(settings)
    sampler = Sampler(
        settings.kafka_bootstrap_servers, namespace=settings.kafka_namespace, every_s=settings.pipeline_sample_s
    )
    runtime.on_started(lambda: [asyncio.create_task(sampler.run(), name="console-pipeline-sampler")])
    router = api.build_router(runtime, settings, sampler)
    return ConsoleApp(runtime.app(), router, {"/health", "/ready", "/metrics", "/v1/tokens"})
