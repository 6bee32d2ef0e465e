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
from finops_contracts.events import EVENT_TYPES, CostBatchIngested, CostLine, CostPeriodCompleted, CurrencyTotal, Event
from finops_contracts.money import Money
from finops_contracts.recommendations import CommitmentPurchase, Kind, Persona, RecommendationIssued
from finops_contracts.topics import COST
from finops_decision.app import DecisionSettings, create_app
from tests.support.flow import scalar
from tests.support.kafka import produce, read_topic
from tests.support.platform import ADMIN, ADMIN_TOKEN
from tests.support.services import free_port, serve_in_process, wait_until

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


# ----------------------------------------------------------------- usage the decision service's guard observes


def usage_lines(
    per_hour: str,
    *,
    hours: int = 24,
    start: datetime = AS_OF - timedelta(days=1),
    account: str = "1111",
    provider: str = "AWS",
    period: datetime | None = None,
) -> list[CostLine]:
    """Hourly on-demand compute usage of `per_hour` an hour (EffectiveCost, what on demand cost) for `hours` hours
    from `start`, in the billing period `period` (the month of `start` by default)."""
    begin = period or start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (begin + timedelta(days=32)).replace(day=1)
    return [
        CostLine(
            billing_account_id=account, billing_period_start=begin, billing_period_end=end,
            charge_period_start=start + timedelta(hours=h), charge_period_end=start + timedelta(hours=h + 1),
            charge_category="Usage", billing_currency="USD", billed_cost=Decimal(per_hour),
            effective_cost=Decimal(per_hour), list_cost=Decimal(per_hour), provider_name=provider,
            service_category="Compute", service_name="Amazon Elastic Compute Cloud", resource_id="i-usage",
        )
        for h in range(hours)
    ]  # fmt: skip


def usage_records(
    lines: list[CostLine], *, ingest_id: uuid.UUID | None = None, version: int = 1, batch_seq: int = 0
) -> list[tuple[bytes, bytes, dict[str, str]]]:
    """One file's batch and the completion of its (single) account-period, as ingest publishes them."""
    ingest_id = ingest_id or uuid.uuid4()
    first = lines[0]
    batch = CostBatchIngested.of_lines(
        lines, ingest_id=ingest_id, batch_seq=batch_seq, billing_account_id=first.billing_account_id,
        billing_period_start=first.billing_period_start,
    )  # fmt: skip
    completed = period_completed(lines, ingest_id=ingest_id, version=version)
    return [record(batch, source="/test/ingest"), record(completed, source="/test/ingest")]


def period_completed(
    lines: list[CostLine], *, ingest_id: uuid.UUID, version: int = 1, batches: int = 1
) -> CostPeriodCompleted:
    """The completion of one file's account-period whose lines (all of them) are `lines`."""
    first = lines[0]
    total = sum((line.effective_cost for line in lines), Decimal(0))
    return CostPeriodCompleted(
        ingest_id=ingest_id, provider_name=first.provider_name, billing_account_id=first.billing_account_id,
        billing_period_start=first.billing_period_start, version=version, batch_count=batches, line_count=len(lines),
        totals=(CurrencyTotal(currency="USD", billed_cost=total, effective_cost=total, line_count=len(lines)),),
    )  # fmt: skip


async def feed_usage(
    service_env: dict[str, str],
    per_hour: str = "10",
    *,
    ingest_id: uuid.UUID | None = None,
    version: int = 1,
    batch_seq: int = 0,
    **where: object,
) -> uuid.UUID:
    """Publish a day of the pool's compute usage (`per_hour` an hour) on the cost topic and wait until the
    running decision service counts it as the current version of its account-period: the guard then lets a
    commitment up to `per_hour` an hour through."""
    ingest_id = ingest_id or uuid.uuid4()
    lines = usage_lines(per_hour, **where)  # type: ignore[arg-type]
    await produce(
        service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"] + COST.name,
        usage_records(lines, ingest_id=ingest_id, version=version, batch_seq=batch_seq),
    )  # fmt: skip

    async def counted() -> bool:
        sql = """SELECT count(*) FROM decision.period_version
                 WHERE ingest_id = $1 AND billing_account_id = $2 AND billing_period_start = $3"""
        first = lines[0]
        return bool(
            await scalar(
                service_env["DATABASE_URL"], sql, ingest_id, first.billing_account_id, first.billing_period_start
            )
        )

    await wait_until(counted, timeout=60, what=f"the decision service counting usage of ingest {ingest_id}")
    return ingest_id
