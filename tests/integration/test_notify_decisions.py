"""Decision and purchase events through Kafka and PostgreSQL to signed webhooks on a real local HTTP server: an
approval request reaches the personas its policy requires (engineering of the named team only) and the person it
names; a commitment purchase and a savings shortfall reach finance and the practitioner; each subscriber gets each
event once, whatever batches carried them, and the delivery log lists the events each request carried."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from finops_contracts.decisions import (
    ApprovalRequested,
    CommitmentPurchased,
    DecisionState,
    Requirement,
    SavingsShortfall,
)
from finops_contracts.money import Money
from finops_contracts.recommendations import Kind, Persona
from finops_contracts.topics import DECISION, PURCHASE
from finops_notify import signing
from finops_notify.app import create_app
from tests.integration.test_notify import deliveries, http_sink, record, settings_for, subscribe
from tests.support.kafka import produce
from tests.support.services import free_port, serve_in_process, wait_until

T = datetime(2026, 11, 2, 9, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def events_for(decision: uuid.UUID) -> tuple[ApprovalRequested, CommitmentPurchased, SavingsShortfall]:
    common = dict(
        decision_id=decision, recommendation_id=uuid.uuid4(), kind=Kind.COMMITMENT_PLAN, owner_team="payments"
    )
    approval = ApprovalRequested(
        **common, state=DecisionState.PENDING_APPROVAL, title="Buy a 1-year compute savings plan",
        requirements=(Requirement(persona=Persona.FINANCE), Requirement(persona=Persona.ENGINEERING, team="payments")),
        approvers=("alice",), policy_version=1, policy_rule="commitment-over-10k", due_at=T,
        estimated_monthly_savings=usd("1250.00"), monthly_commitment=usd("8760.00"),
    )  # fmt: skip
    purchased = CommitmentPurchased(
        decision_id=decision, client_token=str(decision), provider_name="AWS", dry_run=True, commitment_id="sp-1",
        program="aws_compute_savings_plan", term_months=12, payment="no_upfront", start=T, end=T.replace(year=2027),
        commitment_per_hour=usd("12.00"), upfront=usd("0.00"),
    )  # fmt: skip
    shortfall = SavingsShortfall(
        **common, state=DecisionState.SAVINGS_SHORTFALL, commitment_id="sp-1", window_start=T,
        window_end=T.replace(month=12), estimated_savings=usd("1250.00"), realized_savings=usd("700.00"),
        realization=Decimal("0.56"), lines_matched=744, reason="usage moved to another region",
    )  # fmt: skip
    return approval, purchased, shortfall


async def test_decision_and_purchase_events_reach_the_people_the_issue_names(service_env):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    async with (
        http_sink() as (sink, hooks),
        serve_in_process(create_app(settings_for(service_env, 25)), free_port()) as url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        who = {
            "finance": dict(persona="finance"),
            "payments-eng": dict(persona="engineering", teams=["payments"]),
            "search-eng": dict(persona="engineering", teams=["search"]),
            "alice": dict(persona="business"),
            "practitioner": dict(persona="practitioner"),
        }
        subs = {
            name: await subscribe(client, url, name=name, channel="webhook", target=f"{hooks}/hooks/{name}", **kw)
            for name, kw in who.items()
        }
        approval, purchased, shortfall = events_for(uuid.uuid4())

        await produce(bootstrap, ns + DECISION.name, [record(approval), record(shortfall)])
        await produce(bootstrap, ns + PURCHASE.name, [record(purchased)])

        def received(name: str) -> list[str]:
            return [item["type"] for _, body in sink.received[name] for item in json.loads(body)["events"]]

        expected = {
            "finance": sorted([approval.TYPE, purchased.TYPE, shortfall.TYPE]),
            "payments-eng": [approval.TYPE],
            "alice": [approval.TYPE],
            "practitioner": sorted([purchased.TYPE, shortfall.TYPE]),
        }

        async def all_arrived() -> bool:
            return all(sorted(received(name)) == types for name, types in expected.items())

        await wait_until(all_arrived, timeout=60, what="each subscriber's decision and purchase events")

        assert received("search-eng") == [] and await deliveries(client, url, subs["search-eng"]) == []
        headers, body = sink.received["alice"][0]
        assert signing.verify(subs["alice"]["secret"].encode(), headers, body)
        [item] = json.loads(body)["events"]
        assert item["title"] == "Approval requested: Buy a 1-year compute savings plan"
        assert item["facts"]["Needs"] == "1 finance, 1 engineering of team payments"
        assert item["data"]["approvers"] == ["alice"]
        finance_log = await deliveries(client, url, subs["finance"])
        assert sum(d["event_count"] for d in finance_log) == 3
        assert sorted(e["ce_type"] for d in finance_log for e in d["events"]) == expected["finance"]
        assert all(d["status"] == "delivered" for d in finance_log)
