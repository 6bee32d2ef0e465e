"""Decision and purchase events, built from their contracts, route as issue 7 says: an approval request to the
approvers its policy names (the personas of its requirements, engineering only of the requirement's team, and
the people named in `approvers`); a purchase, and savings verified or short, to finance and the practitioner;
a decision taken to the practitioner and the owning team. Every decision and purchase type but the proposal is
consumed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from finops_contracts.decisions import (
    DECISION_EVENTS,
    PURCHASE_EVENTS,
    ApprovalRequested,
    CommitmentPurchased,
    DecisionApproved,
    DecisionExpired,
    DecisionProposed,
    DecisionRejected,
    DecisionState,
    PurchaseFailed,
    PurchaseRequested,
    Requirement,
    SavingsShortfall,
    SavingsVerified,
)
from finops_contracts.money import Money
from finops_contracts.recommendations import CommitmentPurchase, Kind, Persona
from finops_notify.routing import Notification, matches, route, routed
from tests.unit.notify.test_routing import sub

T = datetime(2026, 11, 2, 9, tzinfo=UTC)
DECISION = uuid.UUID("00000000-0000-4000-8000-000000000042")


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def decision_fields(kind: Kind = Kind.COMMITMENT_PLAN, state: DecisionState = DecisionState.PENDING_APPROVAL) -> dict:
    return dict(decision_id=DECISION, recommendation_id=uuid.uuid4(), kind=kind, owner_team="payments", state=state)


def routed_event(event) -> Notification:
    n = route(event.TYPE, event.subject(), json.loads(event.model_dump_json()))
    assert n is not None, f"{event.TYPE} routes nowhere"
    return n


def approval(*requirements: Requirement, approvers: tuple[str, ...] = (), reminder: int = 0) -> ApprovalRequested:
    return ApprovalRequested(
        **decision_fields(), title="Buy a 1-year compute savings plan", requirements=requirements,
        approvers=approvers, policy_version=3, policy_rule="commitment-over-10k", due_at=T,
        estimated_monthly_savings=usd("1250.00"), monthly_commitment=usd("8760.00"), reminder=reminder,
    )  # fmt: skip


def test_an_approval_request_reaches_the_personas_of_its_requirements_and_engineering_of_the_named_team():
    event = approval(
        Requirement(persona=Persona.FINANCE, quorum=2), Requirement(persona=Persona.ENGINEERING, team="payments")
    )

    n = routed_event(event)

    assert n.severity == "warning" and n.title == "Approval requested: Buy a 1-year compute savings plan"
    assert matches(sub("finance"), n)
    assert matches(sub("engineering", teams={"payments"}), n)
    assert not matches(sub("engineering", teams={"search"}), n)
    assert not matches(sub("practitioner"), n) and not matches(sub("business"), n)
    facts = dict(n.facts)
    assert facts["Needs"] == "2 finance, 1 engineering of team payments"
    assert facts["Estimated monthly savings"] == "1,250.00 USD" and facts["Due"] == "2026-11-02"


def test_an_approval_request_also_reaches_the_people_it_names_whatever_their_persona():
    event = approval(Requirement(persona=Persona.FINANCE), approvers=("alice", "bob"))

    n = routed_event(event)

    assert matches(sub("business", name="alice"), n)
    assert matches(sub("engineering", name="bob", teams={"search"}), n)
    assert not matches(sub("business", name="carol"), n)
    assert matches(sub("finance", name="carol"), n)
    assert dict(n.facts)["Approvers"] == "alice, bob"


def test_an_engineering_requirement_without_a_team_is_scoped_to_the_owning_team():
    n = routed_event(approval(Requirement(persona=Persona.ENGINEERING)))

    assert matches(sub("engineering", teams={"payments"}), n)
    assert not matches(sub("engineering", teams={"search"}), n)
    assert not matches(sub("finance"), n)


def test_an_escalation_reminder_is_new_news_not_a_duplicate():
    first = routed_event(approval(Requirement(persona=Persona.FINANCE)))
    reminder = routed_event(approval(Requirement(persona=Persona.FINANCE), reminder=1))

    assert first.dedup_key != reminder.dedup_key
    assert reminder.title.startswith("Reminder: ")


def test_a_commitment_purchased_reaches_finance_and_the_practitioner_with_its_numbers():
    event = CommitmentPurchased(
        decision_id=DECISION, client_token=str(DECISION), provider_name="AWS", dry_run=False,
        commitment_id="arn:aws:savingsplans::111122223333:savingsplan/sp-1", program="aws_compute_savings_plan",
        term_months=12, payment="no_upfront", start=T, end=T.replace(year=2027),
        commitment_per_hour=usd("12.00"), upfront=usd("0"),
    )  # fmt: skip

    n = routed_event(event)

    assert n.severity == "info" and set(n.personas) == {"finance", "practitioner"}
    assert n.title == "Commitment purchased: aws_compute_savings_plan for 12 months"
    assert matches(sub("finance"), n) and matches(sub("practitioner"), n)
    assert not matches(sub("engineering", teams={"payments"}), n) and not matches(sub("business"), n)
    facts = dict(n.facts)
    assert facts["Commitment per hour"] == "12.00 USD" and facts["Decision"] == str(DECISION)


def test_a_failed_purchase_is_critical_for_finance_and_the_practitioner():
    event = PurchaseFailed(
        decision_id=DECISION, client_token=str(DECISION), provider_name="AWS", dry_run=True,
        reason="quota exceeded", attempts=3,
    )  # fmt: skip

    n = routed_event(event)

    assert n.severity == "critical" and n.title == "Commitment purchase failed (dry run): quota exceeded"
    assert matches(sub("finance"), n) and matches(sub("practitioner"), n)
    assert not matches(sub("engineering", teams={"payments"}), n)


def verification(cls, **extra):
    return cls(
        **decision_fields(state=DecisionState.SAVINGS_VERIFIED), commitment_id="sp-1", window_start=T,
        window_end=T.replace(month=12), estimated_savings=usd("1250.00"), realized_savings=usd("1187.50"),
        realization=Decimal("0.95"), lines_matched=744, **extra,
    )  # fmt: skip


def test_savings_verified_and_shortfall_reach_finance_and_the_practitioner():
    verified = routed_event(verification(SavingsVerified))
    short = routed_event(verification(SavingsShortfall, reason="usage moved to Graviton"))

    for n in (verified, short):
        assert set(n.personas) == {"finance", "practitioner"}
        assert matches(sub("finance"), n) and matches(sub("practitioner"), n)
        assert not matches(sub("engineering", teams={"payments"}), n)
    assert verified.severity == "info" and short.severity == "warning"
    assert verified.title == "Savings verified: 1,187.50 USD of 1,250.00 USD (95%)"
    assert dict(short.facts)["Reason"] == "usage moved to Graviton"
    assert matches(sub("finance", teams={"payments"}), verified)
    assert not matches(sub("finance", teams={"search"}), verified)  # a team-scoped finance subscriber


def test_a_decision_taken_reaches_the_practitioner_and_the_owning_team_and_finance_for_a_commitment():
    approved = DecisionApproved(
        **decision_fields(state=DecisionState.APPROVED), approvals=(), automatic=True, policy_version=3,
        policy_rule="autopilot", waited_seconds=Decimal("12"),
    )  # fmt: skip
    rejected = DecisionRejected(
        **decision_fields(Kind.RIGHTSIZING, DecisionState.REJECTED), principal="dana", persona=Persona.ENGINEERING,
        comment="needed for the sale", at=T,
    )  # fmt: skip
    expired = DecisionExpired(**decision_fields(state=DecisionState.EXPIRED), reason="no quorum in time", at=T)

    a, r, e = routed_event(approved), routed_event(rejected), routed_event(expired)

    assert matches(sub("practitioner"), a) and matches(sub("engineering", teams={"payments"}), a)
    assert matches(sub("finance"), a) and not matches(sub("finance"), r)
    assert not matches(sub("engineering", teams={"search"}), r)
    assert r.title == "Decision rejected (rightsizing, team payments): by dana: needed for the sale"
    assert e.severity == "warning" and a.severity == "info"


def test_a_purchase_request_only_feeds_the_stream_and_the_digest():
    event = PurchaseRequested(
        **decision_fields(state=DecisionState.PURCHASE_REQUESTED), client_token=str(DECISION), provider_name="AWS",
        purchase=CommitmentPurchase(program="aws_compute_savings_plan", term_months=12, payment="no_upfront",
                                    start=T, commitment_per_hour=usd("12.00"), covered_usage_per_hour=Decimal("18")),
        estimated_monthly_savings=usd("1250.00"),
    )  # fmt: skip

    n = routed_event(event)

    assert not n.immediate and set(n.personas) == {"finance", "practitioner"}


def test_every_decision_and_purchase_type_but_the_proposal_is_consumed():
    types = {e.TYPE for e in (*DECISION_EVENTS, *PURCHASE_EVENTS)}

    assert {t for t in types if not routed(t)} == {DecisionProposed.TYPE}
