"""Routing rules: budget alerts to finance and the team, anomalies to the team's engineers and the practitioner;
subscription filters by persona, team, cost center, event type and severity. Decision and purchase events are in
test_routing_decisions.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from finops_contracts.events import BudgetAlerted
from finops_contracts.money import Money
from finops_contracts.recommendations import Kind, Persona, RecommendationIssued
from finops_notify.routing import Subscriber, matches, route

T = datetime(2026, 10, 1, tzinfo=UTC)


def sub(persona: str, **kw) -> Subscriber:
    return Subscriber(id=str(uuid.uuid4()), name=kw.pop("name", persona), persona=persona, channel="webhook",
                      target="https://example.com", **{k: frozenset(v) if isinstance(v, set) else v
                                                        for k, v in kw.items()})  # fmt: skip


def payload(event) -> dict:
    return json.loads(event.model_dump_json())


def budget(scope_kind="team", scope="payments", actual="1200") -> BudgetAlerted:
    usd = lambda a: Money(amount=Decimal(a), currency="USD")  # noqa: E731
    return BudgetAlerted(
        scope_kind=scope_kind, scope=scope, billing_period_start=T, threshold=Decimal("0.8"), basis="actual",
        amount=usd("800"), budget=usd("1000"), actual=usd(actual), projected=usd("1500"), as_of=T,
    )  # fmt: skip


def anomaly() -> RecommendationIssued:
    return RecommendationIssued(
        recommendation_id=uuid.uuid4(), kind=Kind.ANOMALY, target="Amazon EC2/i-1", title="EC2 cost spiked",
        owner_team="search", personas=(Persona.ENGINEERING,),
        estimated_monthly_savings=Money(amount=Decimal("310.50"), currency="USD"), expires_at=T, as_of=T,
    )  # fmt: skip


def test_a_budget_alert_reaches_finance_and_the_team_engineers_only():
    n = route(BudgetAlerted.TYPE, "budget/team/payments/2026-10", payload(budget()))

    assert n is not None and n.severity == "critical" and n.teams == ("payments",)
    assert ("Actual", "1,200.00 USD") in n.facts
    assert matches(sub("finance"), n)
    assert matches(sub("engineering", teams={"payments"}), n)
    assert not matches(sub("engineering", teams={"search"}), n)
    assert not matches(sub("practitioner"), n)


def test_a_budget_alert_below_the_budget_is_a_warning_and_cost_center_filters_apply():
    n = route(BudgetAlerted.TYPE, None, payload(budget("cost_center", "CC-42", actual="900")))

    assert n is not None and n.severity == "warning" and n.cost_centers == ("CC-42",)
    assert matches(sub("finance", cost_centers={"CC-42"}), n)
    assert not matches(sub("finance", cost_centers={"CC-7"}), n)
    assert not matches(sub("finance", min_severity="critical"), n)


def test_an_anomaly_reaches_the_owning_teams_engineers_and_the_practitioner():
    n = route(RecommendationIssued.TYPE, "x", payload(anomaly()))

    assert n is not None and n.personas == ("engineering", "practitioner")
    assert matches(sub("engineering", teams={"search"}), n)
    assert matches(sub("practitioner"), n)
    assert not matches(sub("finance"), n)
    assert not matches(sub("engineering", teams={"payments"}), n)


def test_event_type_filters_accept_exact_names_and_prefixes():
    n = route(BudgetAlerted.TYPE, None, payload(budget()))

    assert matches(sub("finance", event_types={"finops.allocation.*"}), n)
    assert matches(sub("finance", event_types={BudgetAlerted.TYPE}), n)
    assert not matches(sub("finance", event_types={"finops.recommendation.*"}), n)


def test_measurements_are_digest_only_and_unknown_types_route_nowhere():
    n = route("finops.recommendation.kpi_measured.v1", "pool/2026-10", {})

    assert n is not None and not n.immediate
    assert route("finops.allocation.cost_allocated.v1", None, {}) is None
