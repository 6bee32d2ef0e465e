"""Notify addresses a resource's recommendation to the owner allocation published (ResourceOwned), through real
Kafka and PostgreSQL: an allocation rule gave the volume to team storage while the recommendation (and its tag)
say data, so the notification goes to storage; a resource with no published owner goes to "unallocated"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from finops_contracts.events import ResourceOwned
from finops_contracts.money import Money
from finops_contracts.recommendations import Kind, Persona, RecommendationIssued
from finops_contracts.topics import OWNERSHIP, RECOMMENDATION
from finops_notify.app import create_app
from tests.integration.test_notify import record, settings_for
from tests.support.flow import scalar
from tests.support.kafka import produce
from tests.support.services import free_port, serve_in_process, wait_until


def idle(resource_id: str, owner_team: str) -> RecommendationIssued:
    t = datetime.now(UTC)
    return RecommendationIssued(
        recommendation_id=uuid.uuid4(), kind=Kind.IDLE, target=f"resource/{resource_id}", title="idle",
        owner_team=owner_team, personas=(Persona.ENGINEERING,), billing_account_id="acct", resource_id=resource_id,
        estimated_monthly_savings=Money(amount=Decimal("12.00"), currency="USD"), expires_at=t, as_of=t,
    )  # fmt: skip


async def teams_of(database_url: str, resource_id: str) -> list[str] | None:
    return await scalar(
        database_url, "SELECT teams FROM notify.notification WHERE payload->>'resource_id' = $1", resource_id
    )


async def test_a_recommendation_goes_to_the_owner_allocation_published(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    owned = ResourceOwned(
        billing_account_id="acct", resource_id="vol-1", billing_period_start=datetime(2026, 1, 1, tzinfo=UTC),
        owner_team="storage", decided_by="rule:volumes", run=1, ruleset_version=1,
    )  # fmt: skip
    async with serve_in_process(create_app(settings_for(service_env, 25)), free_port()):
        await produce(bootstrap, ns + OWNERSHIP.name, [record(owned)])

        async def kept():
            return await scalar(
                database_url, "SELECT owner_team FROM notify.resource_owner WHERE resource_id = 'vol-1'"
            )

        assert await wait_until(kept, timeout=60, what="the owner kept") == "storage"
        await produce(
            bootstrap, ns + RECOMMENDATION.name, [record(idle("vol-1", "data")), record(idle("vol-2", "data"))]
        )

        async def both():
            return await teams_of(database_url, "vol-1") and await teams_of(database_url, "vol-2")

        await wait_until(both, timeout=60, what="both notifications logged")

    assert await teams_of(database_url, "vol-1") == ["storage"]
    assert await teams_of(database_url, "vol-2") == ["unallocated"]
