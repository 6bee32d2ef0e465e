"""Recommendations through the real pipeline: cost batches in Kafka -> the recommend service's usage model in
PostgreSQL -> recommendation and KPI events on finops.recommendation.v1, through its outbox. A month of hourly
compute of one instance family gives a commitment plan owned by the team that runs it (an EC2 Instance Savings
Plan for that family and region: its deeper discount beats the Compute plan's flexibility); an unattached
address with a steady tiny cost and a volume with no compute near it give idle findings owned by their teams.
Re-sending the same cost events, under their own or new ce_ids, publishes nothing new; the next month's data
supersedes the plan."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from finops_contracts.cloudevents import Envelope, now
from finops_contracts.events import (
    CostBatchIngested,
    CostLine,
    CostPeriodCompleted,
    CurrencyTotal,
    Event,
    ResourceOwned,
)
from finops_contracts.recommendations import (
    KpiMeasured,
    RecommendationIssued,
    RecommendationSuperseded,
    RecommendationUpdated,
)
from finops_contracts.topics import COST, OWNERSHIP, RECOMMENDATION
from finops_recommend.app import RecommendSettings, create_app
from tests.support.flow import scalar
from tests.support.kafka import count_records, produce, read_topic
from tests.support.platform import ADMIN, ADMIN_TOKEN
from tests.support.services import free_port, serve_in_process, wait_until

ACCOUNT = "111122223333"
POOL = f"aws_compute_savings_plan/{ACCOUNT}"
FAMILY_POOL = f"aws_ec2_instance_savings_plan/{ACCOUNT}/us-east-1/m5"


def month_of_lines(start: datetime) -> list[CostLine]:
    """A month of an AWS account: hourly EC2 (team payments) with a daily cycle, an Elastic IP of team search
    costing the same every day, and a volume of team data in an account and region with no compute."""
    end = (start + timedelta(days=32)).replace(day=1)
    period = dict(billing_account_id=ACCOUNT, billing_period_start=start, billing_period_end=end)
    common = dict(**period, charge_category="Usage", billing_currency="USD", provider_name="AWS")
    lines = []
    hour = start
    while hour < end:
        cost = Decimal("2.00") + Decimal(hour.hour) / 10
        lines.append(
            CostLine(
                **common,
                charge_period_start=hour,
                charge_period_end=hour + timedelta(hours=1),
                billed_cost=cost,
                effective_cost=cost,
                service_name="Amazon EC2",
                service_category="Compute",
                region_id="us-east-1",
                sub_account_id="app-prod",
                resource_id="i-0web",
                sku_id="BoxUsage:m5.xlarge",
                pricing_category="Standard",
                tags={"team": "payments"},
            )  # fmt: skip
        )
        hour += timedelta(hours=1)
    day = start
    while day < end:
        daily = dict(**common, charge_period_start=day, charge_period_end=day + timedelta(days=1))
        lines.append(
            CostLine(
                **daily,
                billed_cost=Decimal("0.12"),
                effective_cost=Decimal("0.12"),
                service_name="Amazon VPC",
                service_category="Networking",
                region_id="us-east-1",
                sub_account_id="app-prod",
                resource_id="eipalloc-0idle",
                tags={"team": "search"},
            )  # fmt: skip
        )
        lines.append(
            CostLine(
                **daily,
                billed_cost=Decimal("0.80"),
                effective_cost=Decimal("0.80"),
                service_name="Amazon EBS",
                service_category="Storage",
                region_id="eu-west-1",
                sub_account_id="data-archive",
                resource_id="vol-0orphan",
                tags={"Team": "data"},
            )  # fmt: skip
        )
        day += timedelta(days=1)
    return lines


def cost_records(lines: list[CostLine], *, version: int = 1) -> list[tuple[bytes, bytes, dict[str, str]]]:
    """The period's lines as two batches and the period's completion, as ingest would publish them."""
    start = lines[0].billing_period_start
    ingest_id = uuid.uuid5(uuid.NAMESPACE_URL, f"test-recommend/{start:%Y-%m}/{version}")
    half = len(lines) // 2
    events: list[Event] = [
        CostBatchIngested.of_lines(
            chunk, ingest_id=ingest_id, batch_seq=seq, billing_account_id=ACCOUNT, billing_period_start=start
        )
        for seq, chunk in enumerate((lines[:half], lines[half:]))
    ]
    total = sum((line.effective_cost for line in lines), Decimal(0))
    events.append(
        CostPeriodCompleted(
            ingest_id=ingest_id,
            provider_name="AWS",
            billing_account_id=ACCOUNT,
            billing_period_start=start,
            version=version,
            batch_count=2,
            line_count=len(lines),
            totals=(CurrencyTotal(currency="USD", billed_cost=total, effective_cost=total, line_count=len(lines)),),
        )  # fmt: skip
    )
    return [_record(e) for e in events]


def owned(resource_id: str, team: str, decided_by: str, *, run: int = 1) -> tuple[bytes, bytes, dict[str, str]]:
    """A ResourceOwned as allocation publishes it."""
    event = ResourceOwned(
        billing_account_id=ACCOUNT, resource_id=resource_id, billing_period_start=datetime(2024, 9, 1, tzinfo=UTC),
        owner_team=team, decided_by=decided_by, run=run, ruleset_version=1,
    )  # fmt: skip
    return _record(event)


def _record(event: Event, event_id: uuid.UUID | None = None) -> tuple[bytes, bytes, dict[str, str]]:
    envelope = Envelope(
        id=event_id or uuid.uuid4(),
        type=event.TYPE,
        source="/test/ingest",
        time=now(),
        subject=event.subject(),
        content_type=event.CONTENT_TYPE,
    )
    return event.key().encode(), event.encode(), envelope.to_headers()


def decoded(records) -> list[tuple[str, Event]]:
    from finops_contracts.events import EVENT_TYPES

    out = []
    for r in records:
        headers = {k: v.decode() for k, v in r.headers}
        out.append((headers["ce_id"], EVENT_TYPES[headers["ce_type"]].decode(r.value)))
    return out


async def settled(database_url: str, processed: int) -> bool:
    """Every cost record consumed, the analysis it triggered committed, and its outbox published."""
    return (
        await scalar(database_url, "SELECT count(*) FROM recommend.processed_event") >= processed
        and await scalar(database_url, "SELECT count(*) FROM recommend.analysis_mark") == 0
        and await scalar(database_url, "SELECT count(*) FROM recommend.outbox") == 0
    )


async def test_cost_events_become_recommendations_with_owner_and_savings(service_env, database_url, tmp_path):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    # a negotiated rate for the EC2 Instance Savings Plan, 3 years (the default is 0.56)
    rates = tmp_path / "negotiated.csv"
    rates.write_text("program,term_months,discount,source\naws_ec2_instance_savings_plan,36,0.60,EDP 2026\n")
    settings = RecommendSettings(
        database_url=database_url, kafka_bootstrap_servers=bootstrap, kafka_namespace=ns,
        relay_poll_interval_s=0.2, admin_token=ADMIN_TOKEN, analysis_quiet_s=0.5, price_table=rates,
    )  # fmt: skip
    september = cost_records(month_of_lines(datetime(2024, 9, 1, tzinfo=UTC)))
    topic = ns + RECOMMENDATION.name

    # Owners come from allocation only. Before the cost: the compute and the address (as their tags say, and a
    # rule says otherwise for the address: allocation's rule wins). The volume has none yet: "unallocated",
    # though its tag says "data".
    owners_before = [owned("i-0web", "payments", "tag:team"), owned("eipalloc-0idle", "network", "rule:ips")]

    async with serve_in_process(create_app(settings), free_port()) as url:
        await produce(bootstrap, ns + OWNERSHIP.name, owners_before)
        await produce(bootstrap, ns + COST.name, september)

        first = decoded(await read_topic(bootstrap, topic, at_least=5, timeout=90))

        issued = {e.kind.value: e for _, e in first if isinstance(e, RecommendationIssued) and e.kind != "idle"}
        idle = {e.resource_id: e for _, e in first if isinstance(e, RecommendationIssued) and e.kind == "idle"}
        plan = issued["commitment_plan"]
        assert plan.owner_team == "payments"
        assert plan.target == f"pool/{FAMILY_POOL}/USD"
        assert plan.purchases[0].program == "aws_ec2_instance_savings_plan"
        assert plan.purchases[0].scope == {"region": "us-east-1", "instance_family": "m5"}
        assert plan.estimated_monthly_savings.currency == "USD"
        assert plan.estimated_monthly_savings.amount > 0
        assert plan.purchases and plan.purchases[0].commitment_per_hour.amount > 0
        # bought at the negotiated rate: 3 years, 0.40 of the usage it covers per hour
        bought = plan.purchases[0]
        assert bought.term_months == 36 and bought.payment == "no_upfront"
        assert abs(bought.commitment_per_hour.amount - bought.covered_usage_per_hour * Decimal("0.40")) <= Decimal(
            "0.0001"
        )
        assert {p.value for p in plan.personas} == {"practitioner", "finance"}
        assert idle["eipalloc-0idle"].owner_team == "network"  # the rule's team, not the tag's "search"
        assert idle["eipalloc-0idle"].evidence["rule"] == "steady_tiny_cost"
        # 0.12 a day for a month
        assert idle["eipalloc-0idle"].estimated_monthly_savings.amount == Decimal("3.65")
        assert idle["vol-0orphan"].owner_team == "unallocated"  # no owner published yet; the tag is not one
        assert idle["vol-0orphan"].evidence["rule"] == "storage_without_compute"
        assert idle["vol-0orphan"].estimated_monthly_savings.amount > 0
        assert "i-0web" not in idle
        # KPIs for the flexible pool and for the scoped one (m5 in us-east-1), which here hold the same usage
        kpis = {e.pool: e for _, e in first if isinstance(e, KpiMeasured)}
        assert set(kpis) == {POOL, FAMILY_POOL}
        assert kpis[POOL].scope == {} and kpis[FAMILY_POOL].scope == {"region": "us-east-1", "instance_family": "m5"}
        month_usage = sum(Decimal("2.00") + Decimal(h) / 10 for h in range(24)) * 30
        for kpi in kpis.values():
            assert kpi.month == datetime(2024, 9, 1, tzinfo=UTC) and kpi.provider_name == "AWS"
            assert kpi.coverage == 0 and kpi.effective_savings_rate == 0 and kpi.utilization == 1
            assert kpi.on_demand_equivalent.amount == kpi.actual_cost.amount == month_usage
        extra = len(owners_before)
        await wait_until(lambda: settled(database_url, len(september) + extra), timeout=60, what="the first analysis")
        published = await count_records(bootstrap, topic)
        assert published == len(first) == 5

        # The same events again, under their own ce_ids and under new ones (an upstream replay): nothing new.
        await produce(bootstrap, ns + COST.name, september)
        replay = [(k, v, {**h, "ce_id": str(uuid.uuid4())}) for k, v, h in september]
        await produce(bootstrap, ns + COST.name, replay)
        await wait_until(
            lambda: settled(database_url, len(september) * 2 + extra),
            timeout=60,
            what="the replay consumed and analysed",
        )
        assert await count_records(bootstrap, topic) == published

        # The volume's owner arrives after its recommendation: the recommendation is updated to it. A stale owner
        # (an older run) after it changes nothing.
        await produce(bootstrap, ns + OWNERSHIP.name, [owned("vol-0orphan", "storage", "rule:volumes", run=3)])
        updated = decoded(await read_topic(bootstrap, topic, at_least=published + 1, timeout=60))[published:]
        assert [(type(e), e.owner_team) for _, e in updated] == [(RecommendationUpdated, "storage")]
        assert updated[0][1].recommendation_id == idle["vol-0orphan"].recommendation_id
        await produce(bootstrap, ns + OWNERSHIP.name, [owned("vol-0orphan", "data", "tag:team", run=2)])
        extra += 2
        await wait_until(lambda: settled(database_url, len(september) * 2 + extra), timeout=60, what="owners kept")
        assert await scalar(database_url, "SELECT owner_team FROM recommend.resource_owner WHERE resource_id = $1",
                            "vol-0orphan") == "storage"  # fmt: skip
        published += 1

        async with httpx.AsyncClient(timeout=30, headers=ADMIN) as client:
            listed = (await client.get(f"{url}/v1/recommendations", params={"status": "open"})).json()
            table = (await client.get(f"{url}/v1/prices")).json()
        assert table["source"] == str(rates) and table["payment_options"] == ["no_upfront"]
        negotiated = [r for r in table["rates"] if r["program"] == "aws_ec2_instance_savings_plan"]
        assert {(r["term_months"], r["payment"]): r["discount"] for r in negotiated}[(36, "no_upfront")] == "0.60"
        assert {(r["kind"], r["owner_team"]) for r in listed} == {
            ("commitment_plan", "payments"),
            ("idle", "network"),
            ("idle", "storage"),
        }
        assert all(Decimal(r["estimated_monthly_savings"]["amount"]) > 0 for r in listed)

        # October's data: a newer plan for the pool supersedes September's.
        october = cost_records(month_of_lines(datetime(2024, 10, 1, tzinfo=UTC)))
        await produce(bootstrap, ns + COST.name, october)
        await wait_until(
            lambda: settled(database_url, len(september) * 2 + extra + len(october)),
            timeout=90,
            what="October analysed",
        )
        after = decoded(await read_topic(bootstrap, topic, at_least=published + 1, timeout=30))

    ids = Counter(ce_id for ce_id, _ in after)
    assert max(ids.values()) == 1, "every event id is published once"
    (superseded,) = [e for _, e in after if isinstance(e, RecommendationSuperseded) and e.kind == "commitment_plan"]
    plans = {
        e.recommendation_id: e for _, e in after if isinstance(e, RecommendationIssued) and e.kind == "commitment_plan"
    }
    assert superseded.recommendation_id == plan.recommendation_id
    assert superseded.superseded_by in plans and superseded.superseded_by != plan.recommendation_id
    new_plan = plans[superseded.superseded_by]
    assert new_plan.as_of > plan.as_of
    assert new_plan.owner_team == "payments" and new_plan.estimated_monthly_savings.amount > 0
