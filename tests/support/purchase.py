"""The purchase service and its sandbox provider for tests: PurchaseRequested events as the decision service
would publish them, and both servers running in the test's event loop on free ports."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx

from finops_contracts.cloudevents import Envelope, now
from finops_contracts.decisions import PurchaseRequested
from finops_contracts.events import EVENT_TYPES, Event
from finops_contracts.money import Money
from finops_contracts.recommendations import CommitmentPurchase, Kind
from finops_purchase.app import PurchaseSettings
from finops_purchase.app import create_app as purchase_app
from finops_purchase.sandbox.server import SandboxSettings
from finops_purchase.sandbox.server import create_app as sandbox_app
from tests.support.kafka import read_topic
from tests.support.platform import ADMIN_TOKEN
from tests.support.services import free_port, serve_in_process

CHAOS_SANDBOX = {
    "FINOPS_SANDBOX_ERROR_RATE": "0.05",
    "FINOPS_SANDBOX_TIMEOUT_RATE": "0.08",
    "FINOPS_SANDBOX_TIMEOUT_AFTER_SUCCESS_RATE": "0.12",
    "FINOPS_SANDBOX_LATENCY_MS": "20",
    "FINOPS_SANDBOX_HANG_S": "1.5",
    "FINOPS_SANDBOX_SEED": "2026",
}
"""The sandbox provider's faults in the chaos tests: errors, timeouts, and timeouts after buying."""


def chaos_purchase_env(sandbox_url: str) -> dict[str, str]:
    """The purchase service's settings in the chaos tests: short timeouts and retries, small consumer batches."""
    return {
        "FINOPS_SANDBOX_URL": sandbox_url,
        "FINOPS_PURCHASE_TIMEOUT_S": "0.75",
        "FINOPS_PURCHASE_RETRY_BASE_S": "0.2",
        "FINOPS_PURCHASE_RETRY_CAP_S": "2",
        "FINOPS_PURCHASE_MAX_ATTEMPTS": "12",
        "FINOPS_PURCHASE_POLL_S": "0.3",
        "FINOPS_CONSUMER_MAX_RECORDS": "10",
    }


START = datetime(2026, 12, 1, tzinfo=UTC)


def purchase_requested(
    decision_id: uuid.UUID | None = None,
    *,
    program: str = "aws_compute_savings_plan",
    term_months: int = 12,
    payment: str = "no_upfront",
    per_hour: str = "1.250",
    account: str = "111122223333",
    provider: str = "AWS",
) -> PurchaseRequested:
    decision_id = decision_id or uuid.uuid4()
    return PurchaseRequested(
        decision_id=decision_id,
        recommendation_id=uuid.uuid5(decision_id, "recommendation"),
        kind=Kind.COMMITMENT_PLAN,
        owner_team="payments",
        state="purchase_requested",
        client_token=str(decision_id),
        provider_name=provider,
        billing_account_id=account,
        purchase=CommitmentPurchase(
            program=program,
            term_months=term_months,
            payment=payment,
            start=START,
            commitment_per_hour=Money(amount=Decimal(per_hour), currency="USD"),
            covered_usage_per_hour=Decimal(per_hour) * 2,
        ),
        estimated_monthly_savings=Money(amount=Decimal("300.00"), currency="USD"),
    )


def record(event: Event, ce_id: uuid.UUID | None = None) -> tuple[bytes, bytes, dict[str, str]]:
    """A Kafka record (key, value, CloudEvents headers) as the decision service's relay would publish it."""
    envelope = Envelope(
        id=ce_id or uuid.uuid4(),
        type=event.TYPE,
        source="finops/decision",
        time=now(),
        subject=event.subject(),
        content_type=event.CONTENT_TYPE,
    )
    return event.key().encode(), event.encode(), envelope.to_headers()


@contextlib.asynccontextmanager
async def sandbox(database_url: str, **faults: object) -> AsyncIterator[str]:
    """The sandbox provider in this event loop; yields its base URL."""
    settings = SandboxSettings(database_url=database_url, hang_s=2.0, **faults)
    async with serve_in_process(sandbox_app(settings), free_port()) as url:
        yield url


@contextlib.asynccontextmanager
async def purchase_service(service_env: dict[str, str], **settings: object) -> AsyncIterator[str]:
    """The purchase service in this event loop; yields its base URL."""
    fields: dict[str, object] = {
        "database_url": service_env["DATABASE_URL"],
        "kafka_bootstrap_servers": service_env["KAFKA_BOOTSTRAP_SERVERS"],
        "kafka_namespace": service_env["FINOPS_KAFKA_NAMESPACE"],
        "relay_poll_interval_s": 0.2,
        "admin_token": ADMIN_TOKEN,
        "purchase_poll_s": 0.2,
        "purchase_retry_base_s": 0.1,
        "purchase_timeout_s": 1.0,
        **settings,
    }
    async with serve_in_process(purchase_app(PurchaseSettings(**fields)), free_port()) as url:
        yield url


async def sandbox_ledger(url: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{url}/v1/commitments")
    assert response.status_code == 200, response.text
    return response.json()["commitments"]


async def purchase_rows(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        if not await conn.fetchval("SELECT to_regclass('purchase.purchase') IS NOT NULL"):
            return []
        return await conn.fetch("SELECT * FROM purchase.purchase ORDER BY decision_id")
    finally:
        await conn.close()


async def provider_calls(database_url: str, decision_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(
            "SELECT * FROM purchase.provider_call WHERE $1::uuid IS NULL OR decision_id = $1 ORDER BY id", decision_id
        )
    finally:
        await conn.close()


async def final_events(bootstrap: str, topic: str, *, at_least: int, timeout: float = 60) -> list[tuple[str, Event]]:
    """(ce_id, event) of every record on the purchase topic, once there are at least `at_least`."""
    found = []
    for r in await read_topic(bootstrap, topic, at_least=at_least, timeout=timeout):
        headers = {k: v.decode() for k, v in r.headers}
        found.append((headers["ce_id"], EVENT_TYPES[headers["ce_type"]].decode(r.value)))
    return found
