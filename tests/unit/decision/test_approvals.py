"""Separation of duties, quorum, expiring approvals and delegation: who may approve a decision, and what counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from finops_contracts.decisions import Requirement
from finops_contracts.recommendations import Persona
from finops_decision import approvals
from finops_decision.approvals import Actor, Case, Delegation, Given, Refused
from finops_runtime.access import Role

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
WEEK = timedelta(days=7)
FINANCE_AND_BUSINESS = (Requirement(persona=Persona.FINANCE), Requirement(persona=Persona.BUSINESS))


def case(*given: Given, requirements=FINANCE_AND_BUSINESS, proposer: str = "recommend") -> Case:
    return Case(
        proposer=proposer, owner_team="payments", requirements=requirements, approvals=given, approval_validity=WEEK
    )


def given(principal: str, persona: Persona, *, ago: timedelta = timedelta(hours=1), on_behalf_of=None) -> Given:
    return Given(principal=principal, persona=persona, at=NOW - ago, on_behalf_of=on_behalf_of)


FIONA = Actor("fiona", Role.FINANCE)
DAN = Actor("dan", Role.FINANCE)
BOB = Actor("bob", Role.BUSINESS)
PAT = Actor("pat", Role.PRACTITIONER)
ERIN = Actor("erin", Role.ENGINEERING, frozenset({"payments"}))
SAM = Actor("sam", Role.ENGINEERING, frozenset({"search"}))


def test_finance_and_business_each_fill_their_requirement_and_then_it_is_satisfied():
    c = case()

    assert approvals.may_approve(c, FIONA, [], NOW) == approvals.Grant(Persona.FINANCE)
    assert not approvals.satisfied(case(given("fiona", Persona.FINANCE)), NOW)
    assert approvals.satisfied(case(given("fiona", Persona.FINANCE), given("bob", Persona.BUSINESS)), NOW)


def test_the_proposer_never_approves_not_even_through_a_delegation():
    mine = case(proposer="fiona")
    by_delegation = [Delegation("fiona", Persona.FINANCE, "pat", NOW + WEEK)]

    with pytest.raises(Refused, match="proposer never approves") as refused:
        approvals.may_approve(mine, FIONA, [], NOW)
    assert refused.value.status == 403
    with pytest.raises(Refused, match="needs approval by finance, business"):
        approvals.may_approve(mine, PAT, by_delegation, NOW)  # the delegator proposed it
    with pytest.raises(Refused, match="proposer never approves"):
        approvals.may_reject(mine, FIONA, [], NOW)


def test_an_approval_older_than_its_validity_counts_for_nothing():
    stale = case(given("fiona", Persona.FINANCE, ago=WEEK + timedelta(seconds=1)), given("bob", Persona.BUSINESS))

    assert approvals.open_requirements(stale, NOW) == [Requirement(persona=Persona.FINANCE)]
    assert not approvals.satisfied(stale, NOW)
    # and its author may approve again, which renews it
    assert approvals.may_approve(stale, FIONA, [], NOW).persona is Persona.FINANCE
    fresh = case(given("fiona", Persona.FINANCE, ago=WEEK), given("bob", Persona.BUSINESS))
    assert approvals.satisfied(fresh, NOW)  # exactly the validity still counts


def test_a_quorum_needs_that_many_distinct_people_and_one_person_counts_once():
    two = (Requirement(persona=Persona.FINANCE, quorum=2),)
    once = case(given("fiona", Persona.FINANCE), requirements=two)

    assert approvals.missing(once, NOW) == [(two[0], 1)]
    with pytest.raises(Refused, match="one person counts once") as refused:
        approvals.may_approve(once, FIONA, [], NOW)
    assert refused.value.status == 409
    assert approvals.may_approve(once, DAN, [], NOW).persona is Persona.FINANCE
    twice_by_one = case(given("fiona", Persona.FINANCE), given("fiona", Persona.FINANCE), requirements=two)
    assert not approvals.satisfied(twice_by_one, NOW)
    assert approvals.satisfied(
        case(given("fiona", Persona.FINANCE), given("dan", Persona.FINANCE), requirements=two), NOW
    )


def test_a_delegate_approves_on_behalf_of_the_delegator_until_the_delegation_ends():
    delegation = [Delegation("fiona", Persona.FINANCE, "pat", valid_until=NOW + timedelta(hours=1))]

    grant = approvals.may_approve(case(), PAT, delegation, NOW)

    assert grant == approvals.Grant(Persona.FINANCE, on_behalf_of="fiona")
    with pytest.raises(Refused):
        approvals.may_approve(case(), PAT, delegation, NOW + timedelta(hours=2))


def test_an_approval_by_delegation_is_the_delegators_so_they_count_once():
    two = (Requirement(persona=Persona.FINANCE, quorum=2),)
    by_pat = case(given("pat", Persona.FINANCE, on_behalf_of="fiona"), requirements=two)

    with pytest.raises(Refused, match="fiona already approved"):
        approvals.may_approve(by_pat, FIONA, [], NOW)
    assert approvals.missing(by_pat, NOW)[0][1] == 1
    both = case(given("pat", Persona.FINANCE, on_behalf_of="fiona"), given("fiona", Persona.FINANCE), requirements=two)
    assert not approvals.satisfied(both, NOW)


def test_an_engineer_may_not_approve_what_finance_must_and_only_the_owning_team_approves_its_change():
    team_change = (Requirement(persona=Persona.ENGINEERING, team="payments"),)

    with pytest.raises(Refused, match="needs approval by finance, business") as gated:
        approvals.may_approve(case(), ERIN, [], NOW)
    with pytest.raises(Refused, match="belongs to team payments") as foreign:
        approvals.may_approve(case(requirements=team_change), SAM, [], NOW)

    assert gated.value.status == foreign.value.status == 403
    assert approvals.may_approve(case(requirements=team_change), ERIN, [], NOW).persona is Persona.ENGINEERING


def test_an_engineering_delegation_carries_the_delegators_teams():
    team_change = (Requirement(persona=Persona.ENGINEERING, team="payments"),)
    from_erin = [Delegation("erin", Persona.ENGINEERING, "sam", NOW + WEEK, teams=frozenset({"payments"}))]

    grant = approvals.may_approve(case(requirements=team_change), SAM, from_erin, NOW)

    assert grant == approvals.Grant(Persona.ENGINEERING, on_behalf_of="erin")


def test_a_persona_whose_part_is_done_waits_and_automation_never_approves_by_hand():
    done = case(given("fiona", Persona.FINANCE))

    with pytest.raises(Refused, match="finance approval of this decision is already complete") as refused:
        approvals.may_approve(done, DAN, [], NOW)
    assert refused.value.status == 409
    with pytest.raises(Refused, match="role automation does not approve") as robot:
        approvals.may_approve(case(), Actor("bot", Role.AUTOMATION), [], NOW)
    assert robot.value.status == 403


def test_any_persona_the_decision_needs_may_reject_it_others_may_not():
    assert approvals.may_reject(case(), BOB, [], NOW).persona is Persona.BUSINESS
    with pytest.raises(Refused, match="only the approvers this decision needs"):
        approvals.may_reject(case(), ERIN, [], NOW)


def test_automatic_approvals_do_not_fill_a_persona():
    robot = Given(principal="automation", persona=None, at=NOW, rule="commitment-autopilot")

    assert approvals.counting([robot], validity=WEEK, now=NOW) == []
    assert len(approvals.open_requirements(case(robot), NOW)) == 2
