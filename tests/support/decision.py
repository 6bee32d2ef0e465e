"""The decision service inside the test's event loop, people with tokens, and the events tests publish to it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from finops_contracts.cloudevents import Envelope, now
from finops_contracts.decisions import CommitmentPurchased
from finops_contracts.events import EVENT_TYPES, Event
from finops_contracts.money import Money
from finops_contracts.recommendations import CommitmentPurchase, Kind, Persona, RecommendationIssued
from finops_decision.app import DecisionSettings, create_app
from tests.support.kafka import read_topic
from tests.support.platform import ADMIN, ADMIN_TOKEN
from tests.support.services import free_port, serve_in_process

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


@contextlib.asynccontextmanager
async def running(service_env: dict[str, str], **settings: object) -> AsyncIterator[str]:
    """The decision service on a free port, against the test's database and Kafka namespace."""
    config = DecisionSettings(
        database_url=service_env["DATABASE_URL"],
        kafka_bootstrap_servers=service_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_namespace=service_env["FINOPS_KAFKA_NAMESPACE"],
        relay_poll_interval_s=0.2,
        admin_token=ADMIN_TOKEN,
        decision_tick_s=0.5,
        **settings,
    )
    async with serve_in_process(create_app(config), free_port()) as url:
        yield url


async def people(url: str, **who: tuple[str, list[str]]) -> dict[str, dict[str, str]]:
    """name=(role, teams) -> that person's Authorization headers."""
    headers = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for name, (role, teams) in who.items():
            response = await client.post(
                f"{url}/v1/tokens", headers=ADMIN, json={"name": name, "role": role, "teams": teams}
            )
            assert response.status_code == 201, response.text
            headers[name] = {"Authorization": f"Bearer {response.json()['token']}"}
    return headers


def record(event: Event, *, source: str, event_id: uuid.UUID | None = None) -> tuple[bytes, bytes, dict[str, str]]:
    envelope = Envelope(
        id=event_id or uuid.uuid4(),
        type=event.TYPE,
        source=source,
        time=now(),
        subject=event.subject(),
        content_type=event.CONTENT_TYPE,
    )
    return event.key().encode(), event.encode(), envelope.to_headers()


def tranche(per_hour: str, covered: str, *, term: int = 12, start: datetime = AS_OF) -> CommitmentPurchase:
    return CommitmentPurchase(
        program="aws_compute_savings_plan", term_months=term, payment="no_upfront", start=start,
        commitment_per_hour=Money(amount=Decimal(per_hour), currency="USD"), covered_usage_per_hour=Decimal(covered),
    )  # fmt: skip


def plan(*purchases: CommitmentPurchase, savings: str, team: str = "payments", **evidence: str) -> RecommendationIssued:
    return RecommendationIssued(
        recommendation_id=uuid.uuid4(), kind=Kind.COMMITMENT_PLAN, target="pool/aws_compute_savings_plan/1111/USD",
        title="Commit to compute in billing account 1111", owner_team=team,
        personas=(Persona.PRACTITIONER, Persona.FINANCE), estimated_monthly_savings=usd(savings),
        evidence=dict(evidence), expires_at=datetime.now(UTC) + timedelta(days=30), as_of=AS_OF,
        billing_account_id="1111", purchases=purchases,
    )  # fmt: skip


def finding(kind: Kind, *, team: str, savings: str = "45.00") -> RecommendationIssued:
    return RecommendationIssued(
        recommendation_id=uuid.uuid4(), kind=kind, target=f"resource/i-{uuid.uuid4().hex[:8]}",
        title=f"{kind} of a resource of team {team}", owner_team=team, personas=(Persona.ENGINEERING,),
        estimated_monthly_savings=usd(savings), expires_at=datetime.now(UTC) + timedelta(days=30),
        as_of=AS_OF, resource_id="i-0abc",
    )  # fmt: skip


def purchased(decision_id: uuid.UUID, commitment_id: str, per_hour: str, *, start: datetime) -> CommitmentPurchased:
    return CommitmentPurchased(
        decision_id=decision_id, client_token=str(decision_id), provider_name="AWS", dry_run=True,
        commitment_id=commitment_id, program="aws_compute_savings_plan", term_months=12, payment="no_upfront",
        start=start, end=start + timedelta(days=365), commitment_per_hour=usd(per_hour), upfront=usd("0"),
    )  # fmt: skip


async def decision_events(bootstrap: str, topic: str, *, at_least: int, timeout: float = 60) -> list[Event]:
    records = await read_topic(bootstrap, topic, at_least=at_least, timeout=timeout)
    out = []
    for r in records:
        headers = {k: v.decode() for k, v in r.headers}
        out.append(EVENT_TYPES[headers["ce_type"]].decode(r.value))
    return out


async def decision(client: httpx.AsyncClient, url: str, decision_id: uuid.UUID, headers: dict[str, str]) -> dict:
    response = await client.get(f"{url}/v1/decisions/{decision_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()
