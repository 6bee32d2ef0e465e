"""The recommend service's other inputs, through real Kafka and PostgreSQL: the utilization metrics feed turns an
idle-looking instance into a rightsizing finding with its owner and savings; a Contract Commitment upload is
netted out of the plan with its expiry; the decision service's answers come back (a purchase counts as held
from its start, a rejection ends the advice and keeps it from being given again during the cool-down)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from finops_contracts.decisions import CommitmentPurchased, DecisionRejected, DecisionState, PurchaseRequested
from finops_contracts.money import Money
from finops_contracts.recommendations import (
    RecommendationExpired,
    RecommendationIssued,
    RecommendationUpdated,
)
from finops_contracts.topics import COST, DECISION, PURCHASE, RECOMMENDATION
from finops_recommend.app import RecommendSettings, create_app
from tests.integration.test_recommend import ACCOUNT, FAMILY_POOL, _record, cost_records, decoded, month_of_lines
from tests.support.flow import scalar
from tests.support.kafka import produce, read_topic
from tests.support.platform import ADMIN, ADMIN_TOKEN
from tests.support.services import free_port, serve_in_process, wait_until

SEPTEMBER = datetime(2024, 9, 1, tzinfo=UTC)
OCTOBER = datetime(2024, 10, 1, tzinfo=UTC)


def settings_for(service_env, database_url) -> RecommendSettings:
    return RecommendSettings(
        database_url=database_url, kafka_bootstrap_servers=service_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_namespace=service_env["FINOPS_KAFKA_NAMESPACE"], relay_poll_interval_s=0.2, admin_token=ADMIN_TOKEN,
        analysis_quiet_s=0.5,
    )  # fmt: skip


async def quiet(database_url: str) -> bool:
    """No analysis waiting and nothing left to publish."""
    return (
        await scalar(database_url, "SELECT count(*) FROM recommend.analysis_mark") == 0
        and await scalar(database_url, "SELECT count(*) FROM recommend.outbox") == 0
    )


async def consumed(database_url: str, count: int) -> bool:
    return await scalar(database_url, "SELECT count(*) FROM recommend.processed_event") >= count and await quiet(
        database_url
    )


async def test_metrics_feed_and_contract_commitments_shape_the_recommendations(service_env, database_url):
    bootstrap, ns = service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"]
    september = cost_records(month_of_lines(SEPTEMBER))
    data_end = OCTOBER
    # the web instance peaks at 20% CPU and 35% memory, hour after hour
    metrics = "resource_id,timestamp,cpu_utilization,memory_utilization\n" + "".join(
        f"i-0web,{(SEPTEMBER + timedelta(hours=h)).isoformat()},{0.1 + (h % 24) / 240:.4f},0.35\n"
        for h in range(24 * 30)
    )
    # a 1-year Compute Savings Plan of the account, 1.44 USD/h (2.00 of usage at 28% off), ending 2 months on
    contract = (
        "ContractCommitmentId,ContractCommitmentType,ContractCommitmentCategory,ContractCommitmentCost,"
        "ContractCommitmentDescription,ContractCommitmentPeriodStart,ContractCommitmentPeriodEnd,BillingCurrency\n"
        f"arn:aws:savingsplans::{ACCOUNT}:savingsplan/held,Savings Plan,Spend,12614.40,"
        f"ComputeSavingsPlan-1yr-NoUpfront,{(data_end - timedelta(hours=8760 - 1460)).isoformat()},"
        f"{(data_end + timedelta(hours=1460)).isoformat()},USD\n"
        "CC-MIN,Usage Commitment,Usage,1000,Contracted minimum usage,2024-01-01T00:00:00Z,2025-01-01T00:00:00Z,USD\n"
    )

    async with (
        serve_in_process(create_app(settings_for(service_env, database_url)), free_port()) as url,
        httpx.AsyncClient(timeout=30, headers=ADMIN) as client,
    ):
        # Given bad uploads, refused with what to fix
        percent = await client.post(f"{url}/v1/metrics", content=b"resource_id,timestamp,cpu\ni-0web,2024-09-01,45\n",
                                    headers={"content-type": "text/csv"})  # fmt: skip
        no_end = await client.post(
            f"{url}/v1/commitments", json=[{"ContractCommitmentId": "x", "ContractCommitmentPeriodStart": "2024-09-01"}]
        )
        anonymous = await client.post(f"{url}/v1/metrics", content=metrics, headers={"authorization": ""})
        assert percent.status_code == 400 and "divided by 100" in percent.json()["error"]
        assert no_end.status_code == 400 and "ContractCommitmentPeriodEnd" in no_end.json()["error"]
        assert anonymous.status_code == 401

        # When the feed, the dataset and a month of cost arrive
        fed = await client.post(f"{url}/v1/metrics", content=metrics, headers={"content-type": "text/csv"})
        uploaded = await client.post(
            f"{url}/v1/commitments", params={"billing_account_id": ACCOUNT}, content=contract,
            headers={"content-type": "text/csv"},
        )  # fmt: skip
        assert fed.json() == {"stored": 720, "resources": 1}
        assert uploaded.json()["stored"] == 1 and len(uploaded.json()["skipped"]) == 1
        await produce(bootstrap, ns + COST.name, september)
        await wait_until(lambda: consumed(database_url, len(september)), timeout=90, what="September analysed")
        events = [e for _, e in decoded(await read_topic(bootstrap, ns + RECOMMENDATION.name, at_least=4))]

    # Then the web instance (an m5.xlarge) is over-provisioned: its 35% peak allows a type half its size, m5.large,
    # which saves half its run rate of 75.60 a day (2.00 + hour / 10, 24 hours)
    issued = {(e.kind.value, e.resource_id or e.target): e for e in events if isinstance(e, RecommendationIssued)}
    rightsizing = issued[("rightsizing", "i-0web")]
    assert rightsizing.owner_team == "unallocated"  # allocation published no owner for it; its tag is not one
    assert rightsizing.estimated_monthly_savings.amount == (Decimal("75.60") * Decimal("365.25") / 12 / 2).quantize(
        Decimal("0.01")
    )
    assert rightsizing.evidence["rule"] == "overprovisioned"
    assert Decimal(rightsizing.evidence["cpu_p95"]) < Decimal("0.2")
    assert rightsizing.evidence["memory_p95"] == "0.3500"
    assert (
        rightsizing.evidence["instance_type"] == "m5.xlarge" and rightsizing.evidence["recommended_type"] == "m5.large"
    )
    # and the m5 plan buys only what the held savings plan leaves: usage runs 2.00 to 4.30 an hour; the held plan
    # covers 2.00; an instance plan pays for the layers used more than 44% of the hours, up to 3.30
    plan = issued[("commitment_plan", f"pool/{FAMILY_POOL}/USD")]
    now = [p for p in plan.purchases if p.start == data_end]
    assert sum(p.covered_usage_per_hour for p in now) == Decimal("1.3000")
    (held,) = plan.evidence["existing_commitments"]
    assert held["commitment_id"] == f"arn:aws:savingsplans::{ACCOUNT}:savingsplan/held"
    assert held["covered_usage_per_hour"] == "2.0000" and held["sources"] == ["contract_dataset"]
    assert held["ends_at"] == (data_end + timedelta(hours=1460)).isoformat()
    # the expiry two months on is anticipated: the plan buys the 2.00 layer again when it ends
    later = [p for p in plan.purchases if p.start > data_end]
    assert later and later[0].start == data_end + timedelta(hours=1460)


async def test_purchases_count_as_held_and_rejected_advice_cools_down(service_env, database_url):
    bootstrap, ns = service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"]
    topic = ns + RECOMMENDATION.name
    september = cost_records(month_of_lines(SEPTEMBER))

    async with serve_in_process(create_app(settings_for(service_env, database_url)), free_port()):
        await produce(bootstrap, ns + COST.name, september)
        await wait_until(lambda: consumed(database_url, len(september)), timeout=90, what="September analysed")
        first = [e for _, e in decoded(await read_topic(bootstrap, topic, at_least=4))]
        (plan,) = [e for e in first if isinstance(e, RecommendationIssued) and e.kind == "commitment_plan"]
        bought = plan.purchases[0]

        # Given the decision service asked to buy half the first tranche, and the purchase service bought it
        decision_id = uuid.uuid4()
        half = bought.covered_usage_per_hour / 2
        per_hour = (bought.commitment_per_hour.amount / 2).quantize(Decimal("0.0001"))
        common = dict(decision_id=decision_id, recommendation_id=plan.recommendation_id, kind=plan.kind,
                      owner_team=plan.owner_team)  # fmt: skip
        requested = PurchaseRequested(
            **common, state=DecisionState.PURCHASE_REQUESTED, client_token=str(decision_id), provider_name="AWS",
            billing_account_id=ACCOUNT,
            purchase=bought.model_copy(update={"covered_usage_per_hour": half,
                                               "commitment_per_hour": Money(amount=per_hour, currency="USD")}),
            estimated_monthly_savings=plan.estimated_monthly_savings,
        )  # fmt: skip
        purchased = CommitmentPurchased(
            decision_id=decision_id, client_token=str(decision_id), provider_name="AWS", dry_run=False,
            commitment_id="arn:aws:savingsplans::111122223333:savingsplan/bought", program=bought.program,
            term_months=bought.term_months, payment=bought.payment, start=bought.start,
            end=bought.start + timedelta(days=3 * 365), commitment_per_hour=Money(amount=per_hour, currency="USD"),
            upfront=Money(amount=Decimal(0), currency="USD"),
        )  # fmt: skip
        await produce(bootstrap, ns + DECISION.name, [_record(requested)])
        await produce(bootstrap, ns + PURCHASE.name, [_record(purchased)])

        # When the analysis runs again
        await wait_until(lambda: consumed(database_url, len(september) + 2), timeout=90, what="purchase analysed")
        second_records = decoded(await read_topic(bootstrap, topic, at_least=len(first) + 1))
        second = [e for _, e in second_records]

        # Then the plan is updated: the half bought is held from its start, and only the other half is advised
        (updated,) = [e for e in second if isinstance(e, RecommendationUpdated)]
        assert updated.recommendation_id == plan.recommendation_id and updated.version == 2
        (held,) = updated.evidence["existing_commitments"]
        assert held["commitment_id"].endswith("savingsplan/bought") and held["sources"] == ["purchase"]
        assert Decimal(held["covered_usage_per_hour"]) == half
        assert updated.purchases[0].covered_usage_per_hour == bought.covered_usage_per_hour - half

        # Given a person then rejects the advice
        rejected = DecisionRejected(
            **{**common, "decision_id": uuid.uuid4()}, state=DecisionState.REJECTED, principal="cfo@example.com",
            persona="finance", comment="not this quarter", at=datetime.now(UTC),
        )  # fmt: skip
        await produce(bootstrap, ns + DECISION.name, [_record(rejected)])
        expired = await wait_until(
            lambda: _expired(bootstrap, topic, plan.recommendation_id), timeout=60, what="the rejected plan expired"
        )

        # When October's cost arrives
        october = cost_records(month_of_lines(OCTOBER))
        await produce(bootstrap, ns + COST.name, october)
        await wait_until(
            lambda: consumed(database_url, len(september) + 3 + len(october)), timeout=90, what="October analysed"
        )
        after = decoded(await read_topic(bootstrap, topic, at_least=len(second) + 2))

    # Then the rejection ended the advice, and October does not give it again (the idle findings move on)
    assert "rejected by cfo@example.com" in expired.reason
    seen = {ce_id for ce_id, _ in second_records}
    new = [e for ce_id, e in after if ce_id not in seen]
    assert not [e for e in new if isinstance(e, RecommendationIssued) and e.target == plan.target]
    assert [e for e in new if isinstance(e, RecommendationIssued) and e.kind == "idle"]


async def _expired(bootstrap: str, topic: str, rec_id: uuid.UUID) -> RecommendationExpired | None:
    for _, e in decoded(await read_topic(bootstrap, topic, at_least=1)):
        if isinstance(e, RecommendationExpired) and e.recommendation_id == rec_id:
            return e
    return None
