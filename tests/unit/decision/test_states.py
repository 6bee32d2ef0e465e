"""The decision state machine: the allowed transitions, and a clear refusal of the others."""

from __future__ import annotations

import re
import uuid

import pytest

from finops_contracts.decisions import FINAL_STATES, DecisionState
from finops_decision import states
from finops_decision.states import InvalidTransition

S = DecisionState


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PROPOSED, S.PENDING_APPROVAL),
        (S.PROPOSED, S.APPROVED),
        (S.PENDING_APPROVAL, S.APPROVED),
        (S.PENDING_APPROVAL, S.REJECTED),
        (S.PENDING_APPROVAL, S.EXPIRED),
        (S.APPROVED, S.PURCHASE_REQUESTED),
        (S.PURCHASE_REQUESTED, S.PURCHASED),
        (S.PURCHASE_REQUESTED, S.FAILED),
        (S.PURCHASED, S.SAVINGS_VERIFIED),
        (S.PURCHASED, S.SAVINGS_SHORTFALL),
    ],
)
def test_the_flow_moves_forward(current, target):
    states.check("d", current, target)


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        (
            S.REJECTED,
            S.APPROVED,
            "is rejected; approve is refused: rejected cannot become approved (rejected is final)",
        ),
        (S.PURCHASE_REQUESTED, S.APPROVED, "from purchase_requested it can become failed, purchased"),
        (S.APPROVED, S.PURCHASED, "approved cannot become purchased"),
        (S.PENDING_APPROVAL, S.PURCHASE_REQUESTED, "pending_approval cannot become purchase_requested"),
        (S.SAVINGS_VERIFIED, S.PURCHASED, "from savings_verified it can become savings_shortfall"),
        (S.REJECTED, S.APPROVED, "rejected is final"),
    ],
)
def test_an_invalid_transition_is_refused_saying_what_could_follow(current, target, message):
    decision = uuid.uuid4()

    with pytest.raises(InvalidTransition, match=re.escape(message)) as refused:
        states.check(decision, current, target, "approve")

    assert str(decision) in str(refused.value)
    assert (refused.value.current, refused.value.target) == (current, target)


def test_every_final_state_of_the_contract_has_no_way_out_and_every_state_is_in_the_table():
    assert set(states.TRANSITIONS) == set(DecisionState)
    # a savings verdict is judged again when a billing period it covers is restated: only to the other verdict
    verdicts = {S.SAVINGS_VERIFIED, S.SAVINGS_SHORTFALL}
    assert all(not states.TRANSITIONS[s] for s in FINAL_STATES - verdicts)
    assert all(states.TRANSITIONS[s] == verdicts - {s} for s in verdicts)
