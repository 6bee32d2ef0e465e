"""Fixtures: real Kafka and PostgreSQL for the session, and for each test a fresh database and a fresh
Kafka namespace (topic and group prefix), so tests never see each other's data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.support.endpoints import Endpoints, provide
from tests.support.kafka import delete_topics


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with provide() as found:
        yield found


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def kafka_namespace(endpoints: Endpoints, test_id: str) -> AsyncIterator[str]:
    """A topic and group prefix of this test's own; its topics are deleted afterwards, so a long-lived local
    broker does not pile up thousands of partitions."""
    namespace = f"t{test_id}."
    yield namespace
    await delete_topics(endpoints.kafka, prefix=namespace)


@pytest.fixture
async def database_url(endpoints: Endpoints, test_id: str) -> AsyncIterator[str]:
    name = f"t_{test_id}"
    admin = await asyncpg.connect(endpoints.database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    base, _, _ = endpoints.database_url.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(endpoints.database_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
def service_env(endpoints: Endpoints, database_url: str, kafka_namespace: str) -> dict[str, str]:
    """The environment a service process of this test runs with."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka,
        "DATABASE_URL": database_url,
        "FINOPS_KAFKA_NAMESPACE": kafka_namespace,
        "FINOPS_RELAY_POLL_INTERVAL_S": "0.2",
        "FINOPS_ADMIN_TOKEN": "test-admin-token",
    }


@pytest.fixture(scope="session")
def _span_exporter():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def spans(_span_exporter):
    """The spans finished during this test, in an in-memory exporter."""
    _span_exporter.clear()
    return _span_exporter


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `samples` read the third-party billing samples of ../shared. A clone without that folder
    beside it does not run them (one line says so); CI, which has it, runs them like any other test."""
    from tests.support.focus_files import SHARED_DATA

    if SHARED_DATA.is_dir():
        return
    deselected = [item for item in items if item.get_closest_marker("samples") is not None]
    if not deselected:
        return
    items[:] = [item for item in items if item.get_closest_marker("samples") is None]
    config.hook.pytest_deselected(items=deselected)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"samples: {len(deselected)} tests not run: ../shared (third-party billing samples) is not beside"
            " this clone; CI runs them where it is"
        )
