"""The decision state machine: which state may follow which. Anything else is refused."""

from __future__ import annotations

from finops_contracts.decisions import DecisionState

S = DecisionState

TRANSITIONS: dict[DecisionState, frozenset[DecisionState]] = {
    S.PROPOSED: frozenset({S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.EXPIRED}),
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED}),
    S.APPROVED: frozenset({S.PURCHASE_REQUESTED}),
    S.PURCHASE_REQUESTED: frozenset({S.PURCHASED, S.FAILED}),
    S.PURCHASED: frozenset({S.SAVINGS_VERIFIED, S.SAVINGS_SHORTFALL}),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.FAILED: frozenset(),
    # a verdict is judged again when a billing period it covers is restated
    S.SAVINGS_VERIFIED: frozenset({S.SAVINGS_SHORTFALL}),
    S.SAVINGS_SHORTFALL: frozenset({S.SAVINGS_VERIFIED}),
}

OPEN: frozenset[DecisionState] = frozenset({S.PROPOSED, S.PENDING_APPROVAL})
"""States in which a decision still waits for approval (and can be updated, expired or rejected)."""


class InvalidTransition(Exception):
    """A decision was asked to move to a state its current state cannot lead to."""

    def __init__(self, decision_id: object, current: DecisionState, target: DecisionState, action: str = "") -> None:
        nexts = ", ".join(sorted(TRANSITIONS[current]))
        refused = f"{action} is refused: " if action else ""
        super().__init__(
            f"decision {decision_id} is {current}; {refused}{current} cannot become {target} "
            + (f"(from {current} it can become {nexts})" if nexts else f"({current} is final)")
        )
        self.current = current
        self.target = target


def check(decision_id: object, current: DecisionState, target: DecisionState, action: str = "") -> None:
    """Raise InvalidTransition unless `target` may follow `current`."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(decision_id, current, target, action)
