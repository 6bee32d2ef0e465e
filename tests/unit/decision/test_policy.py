"""The default approval policy, rule by rule, and what a policy document may say."""

from __future__ import annotations

from decimal import Decimal

import pytest

from finops_contracts.recommendations import Kind, Persona
from finops_decision import policy
from finops_decision.policy import Facts, PolicyError

DEFAULT = policy.default()


def commitment(
    monthly: str, *, term: int = 12, risk: str = "low", coverage: str | None = "0.5", payment: str = "no_upfront"
) -> Facts:
    return Facts(
        kind=Kind.COMMITMENT_PLAN,
        monthly_commitment=Decimal(monthly),
        term_months=term,
        risk=risk,
        coverage=Decimal(coverage) if coverage else None,
        payment=payment,
    )


def personas(facts: Facts, owner_team: str = "payments") -> list[tuple[str, int, str | None]]:
    rule = policy.select(DEFAULT, facts)
    return [(r.persona.value, r.quorum, r.team) for r in rule.requirements_for(owner_team)]


def test_a_commitment_over_1000_a_month_needs_finance_and_business():
    verdict = policy.evaluate(DEFAULT, commitment("1460"))

    assert verdict.rule.name == "commitment-large" and not verdict.automatic
    assert personas(commitment("1460")) == [("finance", 1, None), ("business", 1, None)]


def test_a_36_month_commitment_also_needs_the_practitioner():
    assert personas(commitment("1460", term=36)) == [
        ("finance", 1, None), ("business", 1, None), ("practitioner", 1, None)
    ]  # fmt: skip
    assert policy.select(DEFAULT, commitment("500", term=36)).name == "commitment-36-month"
    assert personas(commitment("500", term=36)) == [("finance", 1, None), ("practitioner", 1, None)]


def test_a_mid_sized_one_year_commitment_needs_finance():
    assert policy.select(DEFAULT, commitment("1000")).name == "commitment"  # 1,000 is not over 1,000
    assert personas(commitment("200")) == [("finance", 1, None)]  # 200 is not under 200


def test_a_high_risk_commitment_needs_all_three_whatever_its_size():
    assert personas(commitment("150", risk="high")) == [
        ("finance", 1, None), ("business", 1, None), ("practitioner", 1, None)
    ]  # fmt: skip


@pytest.mark.parametrize("payment", ["partial_upfront", "all_upfront"])
def test_an_upfront_payment_needs_finance_and_the_practitioner_and_never_the_autopilot(payment):
    # Given a tranche the autopilot would buy if it were paid monthly
    assert policy.evaluate(DEFAULT, commitment("150")).automatic

    # When it is paid upfront
    verdict = policy.evaluate(DEFAULT, commitment("150", payment=payment))

    # Then
    assert verdict.rule.name == "commitment-upfront" and not verdict.automatic
    assert personas(commitment("150", payment=payment)) == [("finance", 1, None), ("practitioner", 1, None)]


@pytest.mark.parametrize("kind", [Kind.RIGHTSIZING, Kind.IDLE])
def test_rightsizing_and_idle_need_the_owning_teams_engineering(kind):
    facts = Facts(kind=kind)

    assert policy.select(DEFAULT, facts).name == "team-change"
    assert personas(facts, owner_team="search") == [("engineering", 1, "search")]


def test_autopilot_approves_a_small_commitment_within_coverage_and_says_which_rule():
    verdict = policy.evaluate(DEFAULT, commitment("146", coverage="0.0300"))

    assert verdict.automatic and verdict.rule.name == "commitment-autopilot"
    assert verdict.reason.startswith("rule commitment-autopilot:")


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        (commitment("146", coverage="0.95"), "coverage 0.95 exceeds the target 0.8"),
        (commitment("146", coverage=None), "the pool's usage is unknown"),
    ],
)
def test_autopilot_refuses_outside_its_guardrails_and_the_rule_asks_a_person(facts, why):
    verdict = policy.evaluate(DEFAULT, facts)

    assert not verdict.automatic and why in verdict.reason
    assert [r.persona for r in verdict.rule.requirements] == [Persona.PRACTITIONER]


def test_autopilot_limit_is_checked_even_when_the_rule_matches_more():
    loose = policy.parse(
        """
rules:
  - name: loose
    match: {kinds: [commitment_plan]}
    autopilot: {max_monthly_commitment: 100, max_coverage: 1}
    requirements: [finance]
"""
    )

    verdict = policy.evaluate(loose, commitment("146"))

    assert not verdict.automatic and "not under the autopilot limit 100" in verdict.reason


def test_rules_apply_by_priority_then_document_order_and_nothing_matched_asks_the_practitioner():
    p = policy.parse(
        """
rules:
  - {name: later, priority: 5, match: {kinds: [idle]}, requirements: [business]}
  - {name: first, priority: 1, match: {kinds: [idle]}, requirements: [finance]}
  - {name: tie, priority: 5, match: {kinds: [idle]}, requirements: [engineering]}
"""
    )

    assert policy.select(p, Facts(kind=Kind.IDLE)).name == "first"
    assert [r.name for r in p.ordered()] == ["first", "later", "tie"]
    fallback = policy.select(p, Facts(kind=Kind.RIGHTSIZING))
    assert fallback.name == "no-rule-matched" and fallback.requirements[0].persona is Persona.PRACTITIONER


def test_a_stored_policy_document_reads_back_the_same():
    again = policy.Policy.model_validate_json(policy.Policy.model_validate(policy.document(DEFAULT)).model_dump_json())

    assert again == DEFAULT
    assert policy.document(DEFAULT)["rules"][1]["approval_validity"] == "P7D"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{name: a, match: {kinds: [anomaly]}, requirements: [finance]}]", "anomalies are not decisions"),
        ("rules: [{name: a, requirements: []}]", "rule a: requirements"),
        ("rules: [{name: a, requirements: [finance, finance]}]", "names a persona twice"),
        ("rules: [{name: a, requirements: [cfo]}]", "rule a: requirements.0.persona"),
        ("rules: [{name: a, requirements: [finance], approval_validity: PT0S}]", "positive duration"),
        ("rules: [{name: a, requirements: [finance]}, {name: a, requirements: [business]}]", "a appear more than once"),
        ("rules: [{name: a, requirements: [finance], match: {monthly_commitment_above: 1.5}}]", "never a float"),
        ("rules: [{name: a, requirements: [finance], colour: red}]", "rule a: colour"),
        ("- just a list", "must be a mapping"),
        ("rules: [", "not valid YAML or JSON"),
    ],
)
def test_a_bad_policy_is_refused_naming_what_is_wrong(text, message):
    with pytest.raises(PolicyError, match=message):
        policy.parse(text)


def test_json_is_accepted_too_and_a_fetched_version_number_is_ignored():
    p = policy.parse(
        '{"version": 7, "savings_tolerance": 0.85, "rules": [{"name": "a", "requirements": ["finance"]}]}',
        content_type="application/json",
    )

    assert p.savings_tolerance == Decimal("0.85") and p.rules[0].name == "a"
