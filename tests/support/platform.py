"""The ingest and allocation services running inside the test's event loop, on free ports, against the test's
own database and Kafka namespace."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from finops_allocation.app import AllocationSettings
from finops_allocation.app import create_app as allocation_app
from finops_ingest.app import IngestSettings
from finops_ingest.app import create_app as ingest_app
from tests.support.services import free_port, serve_in_process

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
"""Headers of the bootstrap admin every test platform starts with (FINOPS_ADMIN_TOKEN)."""


@dataclass(frozen=True)
class Urls:
    ingest: str | None
    allocation: str | None


@contextlib.asynccontextmanager
async def running(
    service_env: dict[str, str], *, ingest: bool = True, allocation: bool = True, **settings: object
) -> AsyncIterator[Urls]:
    common = {
        "database_url": service_env["DATABASE_URL"],
        "kafka_bootstrap_servers": service_env["KAFKA_BOOTSTRAP_SERVERS"],
        "kafka_namespace": service_env["FINOPS_KAFKA_NAMESPACE"],
        "relay_poll_interval_s": 0.2,
        "admin_token": ADMIN_TOKEN,
        **settings,
    }
    async with contextlib.AsyncExitStack() as stack:
        ingest_url = (
            await stack.enter_async_context(serve_in_process(ingest_app(IngestSettings(**common)), free_port()))
            if ingest
            else None
        )
        allocation_url = (
            await stack.enter_async_context(serve_in_process(allocation_app(AllocationSettings(**common)), free_port()))
            if allocation
            else None
        )
        yield Urls(ingest_url, allocation_url)
