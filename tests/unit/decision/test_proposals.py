"""From recommendations to proposals: one per tranche bought now, deterministic ids, savings shared exactly."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from finops_contracts.money import Money
from finops_contracts.recommendations import Kind
from finops_decision import proposals
from tests.support.decision import AS_OF, finding, plan, tranche


def test_one_proposal_per_tranche_to_buy_now_with_ids_that_redelivery_repeats():
    rec = plan(
        tranche("2.0000", "3.0000"),
        tranche("1.5000", "2.2500", term=36),
        tranche("1.0000", "1.5000", start=AS_OF + timedelta(days=31)),
        savings="600.00",
        recent_p50="10",
    )

    made = proposals.proposals(rec)

    assert [p.tranche for p in made] == [0, 1]
    assert [p.decision_id for p in made] == [p.decision_id for p in proposals.proposals(rec)]
    assert made[0].decision_id == proposals.decision_id(rec.recommendation_id, 0) != made[1].decision_id
    assert made[0].monthly_commitment == Money(amount=Decimal("1460"), currency="USD")
    assert made[1].term_months == 36 and made[1].purchase == rec.purchases[1]
    assert [p.coverage for p in made] == [Decimal("0.3000"), Decimal("0.2250")]
    assert all(p.proposer == "recommend" and p.owner_team == "payments" for p in made)


def test_the_plans_savings_are_shared_by_what_each_tranche_saves_and_add_up_to_the_cent():
    rec = plan(tranche("2.0000", "3.0000"), tranche("1.5000", "2.2500"), savings="600.00")

    shares = [p.estimated_monthly_savings.amount for p in proposals.proposals(rec)]

    assert shares == [Decimal("342.86"), Decimal("257.14")]
    assert sum(shares) == Decimal("600.00")


def test_splitting_keeps_every_digit_and_shares_equally_when_nothing_weighs():
    thirds = proposals.split(Money(amount=Decimal("100.00"), currency="EUR"), [Decimal(0)] * 3)
    fine = proposals.split(Money(amount=Decimal("1.0001"), currency="EUR"), [Decimal(1), Decimal(1)])

    assert [m.amount for m in thirds] == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    assert [m.amount for m in fine] == [Decimal("0.5001"), Decimal("0.5000")]


def test_a_rightsizing_or_idle_finding_is_one_decision_and_an_anomaly_none():
    idle = finding(Kind.IDLE, team="search")

    (one,) = proposals.proposals(idle)

    assert one.tranche is None and one.decision_id == proposals.decision_id(idle.recommendation_id, None)
    assert one.monthly_commitment is None and one.facts().kind is Kind.IDLE
    assert proposals.proposals(finding(Kind.ANOMALY, team="search")) == []


def test_a_plan_with_nothing_to_buy_now_asks_for_no_decision():
    later = plan(tranche("1.0000", "1.5000", start=AS_OF + timedelta(days=31)), savings="10.00")

    assert proposals.proposals(later) == []


def test_pool_usage_and_risk_come_from_the_evidence_when_it_has_them():
    assert proposals.pool_usage_per_hour({"recent_p50": "12.5"}) == Decimal("12.5")
    assert proposals.pool_usage_per_hour({"pool_usage_per_hour": "3", "recent_p50": "9"}) == Decimal("3")
    assert proposals.pool_usage_per_hour({"recent_p50": "0"}) is None
    assert proposals.pool_usage_per_hour({"recent_p50": "n/a"}) is None
    assert proposals.risk_of({"risk": "high"}) == "high" and proposals.risk_of({"risk": "extreme"}) == "low"
    risky = plan(tranche("0.1000", "0.2000"), savings="5.00", risk="high")
    assert proposals.proposals(risky)[0].risk == "high"


def test_decision_ids_differ_by_recommendation_and_tranche():
    rec = uuid.uuid4()

    ids = {proposals.decision_id(rec, 0), proposals.decision_id(rec, 1), proposals.decision_id(rec, None)}

    assert len(ids) == 3 and proposals.decision_id(uuid.uuid4(), 0) not in ids
