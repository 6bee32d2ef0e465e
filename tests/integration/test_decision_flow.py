"""A commitment plan through the decision service, against real Kafka and PostgreSQL: a RecommendationIssued on
finops.recommendation.v1 becomes one pending decision per tranche to buy now (redelivery makes no second one);
an engineer may not approve what finance and business must; finance and business approve over HTTP; a
PurchaseRequested with the decision id as client token appears on finops.decision.v1; CommitmentPurchased on
finops.purchase.v1 moves each to purchased; cost lines that use the commitments (one batch delivered twice)
verify one tranche's savings to the cent and find a shortfall for the other."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import httpx

from finops_contracts.decisions import (
    ApprovalRequested,
    DecisionApproved,
    DecisionProposed,
    PurchaseRequested,
    SavingsShortfall,
    SavingsVerified,
)
from finops_contracts.events import CostBatchIngested, CostLine
from finops_contracts.recommendations import Kind
from finops_contracts.topics import COST, DECISION, PURCHASE, RECOMMENDATION
from finops_decision.proposals import decision_id
from tests.support.decision import (
    AS_OF,
    decision,
    decision_events,
    feed_usage,
    finding,
    people,
    period_completed,
    plan,
    purchased,
    record,
    running,
    tranche,
)
from tests.support.flow import scalar
from tests.support.kafka import produce
from tests.support.platform import ADMIN
from tests.support.services import wait_until

ACCOUNT = "1111"


def hours_of_lines(first_hour: int, last_hour: int) -> list[CostLine]:
    """Hourly lines of March 2026: usage covered by sp-good (list 3.00, effective 2.00), by sp-poor (list 2.25,
    effective 1.50) with 0.70 of sp-poor unused each hour, and on-demand usage that uses no commitment."""
    start = AS_OF
    period = dict(
        billing_account_id=ACCOUNT, billing_period_start=start, billing_period_end=start + timedelta(days=31),
        billing_currency="USD", provider_name="AWS",
    )  # fmt: skip
    lines = []
    for h in range(first_hour, last_hour + 1):
        hour = dict(charge_period_start=start + timedelta(hours=h), charge_period_end=start + timedelta(hours=h + 1))
        usage = dict(**period, **hour, charge_category="Usage")
        lines += [
            CostLine(**usage, billed_cost=Decimal("0"), effective_cost=Decimal("2.00"), list_cost=Decimal("3.00"),
                     commitment_discount_id="sp-good", commitment_discount_status="Used", resource_id="i-1"),
            CostLine(**usage, billed_cost=Decimal("0"), effective_cost=Decimal("1.50"), list_cost=Decimal("2.25"),
                     commitment_discount_id="sp-poor", commitment_discount_status="Used", resource_id="i-2"),
            CostLine(**usage, billed_cost=Decimal("0"), effective_cost=Decimal("0.70"), list_cost=Decimal("0"),
                     commitment_discount_id="sp-poor", commitment_discount_status="Unused"),
            CostLine(**usage, billed_cost=Decimal("4.00"), effective_cost=Decimal("4.00"), list_cost=Decimal("4.00"),
                     resource_id="i-3"),
        ]  # fmt: skip
    return lines


def batch(lines: list[CostLine], seq: int, ingest_id: uuid.UUID) -> CostBatchIngested:
    return CostBatchIngested.of_lines(
        lines, ingest_id=ingest_id, batch_seq=seq, billing_account_id=ACCOUNT, billing_period_start=AS_OF
    )


async def test_plan_is_approved_purchased_and_verified_against_the_bill(service_env, database_url):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    # Given a plan with two tranches to buy now (1,460 and 1,095 a month) and one anticipated next month,
    # its redelivery under a new ce_id, and an anomaly (never a decision)
    rec = plan(
        tranche("2.0000", "3.0000"),
        tranche("1.5000", "2.2500"),
        tranche("1.0000", "1.5000", start=AS_OF + timedelta(days=31)),
        savings="600.00",
        recent_p50="10",
    )
    anomaly = finding(Kind.ANOMALY, team="payments")
    first, second = decision_id(rec.recommendation_id, 0), decision_id(rec.recommendation_id, 1)

    async with running(service_env, verify_min_hours=Decimal(24)) as url:
        who = await people(url, fiona=("finance", []), bob=("business", []), erin=("engineering", ["payments"]))
        await feed_usage(service_env, "10.00")  # February 28th's compute usage, which the guard checks against
        src = "/test/recommend"
        await produce(
            bootstrap,
            ns + RECOMMENDATION.name,
            [record(rec, source=src), record(rec, source=src), record(anomaly, source=src)],
        )

        async with httpx.AsyncClient(timeout=30) as client:

            async def pending() -> list[dict]:
                r = await client.get(f"{url}/v1/decisions", params={"state": "pending_approval"}, headers=ADMIN)
                found = r.json()["decisions"]
                return found if len(found) == 2 else []

            listed = await wait_until(pending, timeout=60, what="two pending decisions")
            # Then one decision per tranche to buy now, with deterministic ids and the plan's savings shared
            assert {d["id"] for d in listed} == {str(first), str(second)}
            by_id = {d["id"]: d for d in listed}
            one, two = by_id[str(first)], by_id[str(second)]
            assert one["proposer"] == "recommend" and one["policy"] == {
                "version": 1, "rule": "commitment-large", "approval_validity": "P7D"
            }  # fmt: skip
            assert [(r["persona"], r["missing"]) for r in one["requirements"]] == [("finance", 1), ("business", 1)]
            assert one["monthly_commitment"] == {"amount": "1460.0000", "currency": "USD"}
            assert Decimal(one["estimated_monthly_savings"]["amount"]) == Decimal("342.86")
            assert Decimal(two["estimated_monthly_savings"]["amount"]) == Decimal("257.14")
            assert one["coverage"] == "0.3000"
            page = (await client.get(f"{url}/v1/decisions", params={"limit": "1"}, headers=ADMIN)).json()
            rest = await client.get(f"{url}/v1/decisions", params={"cursor": page["next_cursor"]}, headers=ADMIN)
            assert [d["id"] for d in page["decisions"] + rest.json()["decisions"]] == [str(second), str(first)]
            assert rest.json()["next_cursor"] is None

            # When an engineer approves a decision that finance and business must approve
            denied = await client.post(f"{url}/v1/decisions/{first}/approve", headers=who["erin"], json={})

            # Then 403, saying who must approve, and the denial is in the audit log
            assert denied.status_code == 403
            assert "finance" in denied.json()["error"] and "business" in denied.json()["error"]
            rows = (await client.get(f"{url}/v1/audit", params={"decision_id": str(first)}, headers=ADMIN)).json()
            assert any(
                r["actor"] == "erin" and r["status"] == 403 and r["path"] == f"/v1/decisions/{first}/approve"
                for r in rows["rows"]
            )

            # When finance sees what waits for it, then finance and business approve both
            waiting = (await client.get(f"{url}/v1/decisions/waiting", headers=who["fiona"])).json()["decisions"]
            assert {d["id"] for d in waiting} == {str(first), str(second)}
            assert waiting[0]["you_approve_as"] == {"persona": "finance", "on_behalf_of": None}
            for d in (first, second):
                r = await client.post(f"{url}/v1/decisions/{d}/approve", headers=who["fiona"], json={"comment": "ok"})
                assert r.status_code == 200 and r.json()["state"] == "pending_approval", r.text
                r = await client.post(f"{url}/v1/decisions/{d}/approve", headers=who["bob"], json={"comment": "go"})
                assert r.status_code == 200 and r.json()["state"] == "purchase_requested", r.text

            # Then each decision's events are on finops.decision.v1 in order, the purchase request carrying the
            # decision id as client token
            events = await decision_events(bootstrap, ns + DECISION.name, at_least=8)
            assert Counter(type(e).__name__ for e in events) == {
                "DecisionProposed": 2, "ApprovalRequested": 2, "DecisionApproved": 2, "PurchaseRequested": 2
            }  # fmt: skip
            for d in (first, second):
                mine = [type(e) for e in events if e.decision_id == d]
                assert mine == [DecisionProposed, ApprovalRequested, DecisionApproved, PurchaseRequested]
            asked = next(e for e in events if isinstance(e, ApprovalRequested) and e.decision_id == first)
            assert asked.approvers == ("bob", "fiona")  # who can fill finance and business: notify reaches them
            assert [r.persona for r in asked.requirements] == ["finance", "business"]
            requests = {e.decision_id: e for e in events if isinstance(e, PurchaseRequested)}
            assert requests[first].client_token == str(first) and requests[second].client_token == str(second)
            assert requests[first].purchase == rec.purchases[0] and requests[first].provider_name == "AWS"
            approved = next(e for e in events if isinstance(e, DecisionApproved) and e.decision_id == first)
            assert {(a.principal, a.persona) for a in approved.approvals} == {("fiona", "finance"), ("bob", "business")}
            assert approved.policy_rule == "commitment-large" and not approved.automatic

            # When the purchase service answers with the commitments bought
            answers = [
                purchased(first, "sp-good", "2.0000", start=AS_OF),
                purchased(second, "sp-poor", "1.5000", start=AS_OF),
            ]
            await produce(bootstrap, ns + PURCHASE.name, [record(e, source="/test/purchase") for e in answers])

            async def both_purchased() -> bool:
                states = [(await decision(client, url, d, ADMIN))["state"] for d in (first, second)]
                return states == ["purchased", "purchased"]

            # Then both are purchased, with the provider's commitment ids
            await wait_until(both_purchased, timeout=60, what="both decisions purchased")
            assert (await decision(client, url, first, ADMIN))["commitment_id"] == "sp-good"

            # When the bill's first 12 hours arrive, twice (a redelivery under a new ce_id)
            ingest_id = uuid.uuid4()
            morning = batch(hours_of_lines(0, 11), 0, ingest_id)
            await produce(
                bootstrap,
                ns + COST.name,
                [record(morning, source="/test/ingest"), record(morning, source="/test/ingest")],
            )

            async def consumed(n: int) -> bool:
                sql = "SELECT count(*) FROM decision.processed_event WHERE consumer = 'decision-cost'"
                return await scalar(database_url, sql) >= n

            # the usage fed before (a batch and its completion) and both deliveries of the first batch
            await wait_until(lambda: consumed(4), timeout=60, what="both deliveries of the first batch")

            # Then the window (12 of the 24 hours asked) is not judged yet, and the batch counted once
            assert (await decision(client, url, first, ADMIN))["state"] == "purchased"
            matched = await scalar(
                database_url, "SELECT sum(lines) FROM decision.savings_match WHERE decision_id = $1", first
            )
            assert matched == 12

            # When the next 12 hours arrive
            evening = batch(hours_of_lines(12, 23), 1, ingest_id)
            # and the file's account-period is complete (every batch of it was published): only then is it judged
            done = period_completed(hours_of_lines(0, 23), ingest_id=ingest_id, batches=2)
            await produce(
                bootstrap, ns + COST.name, [record(evening, source="/test/ingest"), record(done, source="/test/ingest")]
            )

            async def judged() -> bool:
                states = {(await decision(client, url, d, ADMIN))["state"] for d in (first, second)}
                return states == {"savings_verified", "savings_shortfall"}

            await wait_until(judged, timeout=60, what="both decisions judged against the bill")

            # Then sp-good saved 24 x 1.00 = 24.00 against 11.27 estimated for 24 hours: verified
            assert (await decision(client, url, first, ADMIN))["state"] == "savings_verified"
            assert (await decision(client, url, second, ADMIN))["state"] == "savings_shortfall"
            events = await decision_events(bootstrap, ns + DECISION.name, at_least=10)
            (verified,) = [e for e in events if isinstance(e, SavingsVerified)]
            (short,) = [e for e in events if isinstance(e, SavingsShortfall)]
            assert verified.decision_id == first and verified.commitment_id == "sp-good"
            assert verified.realized_savings.amount == Decimal("24.00") and verified.realized_savings.currency == "USD"
            assert verified.estimated_savings.amount == Decimal("11.27")  # 342.86 x 24 / 730
            assert verified.lines_matched == 24
            assert verified.window_end - verified.window_start == timedelta(hours=24)
            # And sp-poor saved 24 x 0.75 = 18.00 but left 24 x 0.70 = 16.80 unused: 1.20 against 8.45
            assert short.decision_id == second
            assert short.realized_savings.amount == Decimal("1.20")
            assert short.estimated_savings.amount == Decimal("8.45")
            assert short.realization == Decimal("0.1420")
            assert "unused commitment cost 16.80" in short.reason
            history = (await client.get(f"{url}/v1/decisions/{second}/history", headers=ADMIN)).json()
            assert [t["to_state"] for t in history["transitions"]] == [
                "proposed", "pending_approval", "approved", "purchase_requested", "purchased", "savings_shortfall"
            ]  # fmt: skip
