"""Who may approve or reject a decision, and which approvals count.

- The proposer never approves (nor rejects) their own decision, directly or through a delegation.
- One person counts once: an approval counts for the person it was given for (the delegator, under a
  delegation), and a person already counted cannot approve again.
- An approval older than its rule's validity counts for nothing; the requirement is open again.
- A requirement is met when `quorum` distinct people of its persona approved; engineering approvers must belong
  to the decision's owning team.
- A delegation lets its delegate approve, until it ends, for the delegator's persona (and teams), on their behalf.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from finops_contracts.decisions import Requirement
from finops_contracts.recommendations import Persona
from finops_runtime.access import Role

APPROVER_ROLES = frozenset({Role.ENGINEERING, Role.FINANCE, Role.BUSINESS, Role.PRACTITIONER})


@dataclass(frozen=True)
class Given:
    """An approval as recorded."""

    principal: str
    persona: Persona | None
    at: datetime
    on_behalf_of: str | None = None
    comment: str = ""
    rule: str | None = None

    @property
    def person(self) -> str:
        """Whose approval this is: the delegator's when given under a delegation."""
        return self.on_behalf_of or self.principal


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role
    teams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Delegation:
    delegator: str
    persona: Persona
    delegate: str
    valid_until: datetime
    teams: frozenset[str] = frozenset()

    def active(self, now: datetime) -> bool:
        return now < self.valid_until


@dataclass(frozen=True)
class Case:
    """What these rules need to know about one decision."""

    proposer: str
    owner_team: str
    requirements: tuple[Requirement, ...]
    approvals: tuple[Given, ...]
    """The approvals of the current round."""
    approval_validity: timedelta


@dataclass(frozen=True)
class Grant:
    """An approval (or rejection) may be given, for this persona, on behalf of this person (or not)."""

    persona: Persona
    on_behalf_of: str | None = None


class Refused(Exception):
    """The caller may not do this: 403 when it is not theirs to do, 409 when the decision's state forbids it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def counting(approvals: Iterable[Given], *, validity: timedelta, now: datetime) -> list[Given]:
    """The approvals that count: by a person, not older than `validity`, each person once (their first)."""
    seen: set[str] = set()
    out = []
    for g in sorted(approvals, key=lambda g: g.at):
        if g.persona is None or now - g.at > validity or g.person in seen:
            continue
        seen.add(g.person)
        out.append(g)
    return out


def missing(case: Case, now: datetime) -> list[tuple[Requirement, int]]:
    """Each requirement with how many approvals it still lacks."""
    valid = counting(case.approvals, validity=case.approval_validity, now=now)
    return [(r, max(0, r.quorum - sum(1 for g in valid if g.persona == r.persona))) for r in case.requirements]


def open_requirements(case: Case, now: datetime) -> list[Requirement]:
    return [r for r, lacking in missing(case, now) if lacking > 0]


def satisfied(case: Case, now: datetime) -> bool:
    return not open_requirements(case, now)


def _in_scope(requirement: Requirement, teams: frozenset[str]) -> bool:
    return requirement.team is None or requirement.team in teams


def _persona(actor: Actor) -> Persona:
    if actor.role not in APPROVER_ROLES:
        raise Refused(
            403,
            f"role {actor.role} does not approve or reject decisions; people of the personas "
            "engineering, finance, business or practitioner do (automation approves only under an autopilot rule)",
        )
    return Persona(actor.role.value)


def _not_proposer(case: Case, actor: Actor) -> None:
    if actor.name == case.proposer:
        raise Refused(403, f"{actor.name} proposed this decision; the proposer never approves or rejects it")


def _delegations(actor: Actor, delegations: Sequence[Delegation], case: Case, now: datetime) -> list[Delegation]:
    return [
        d
        for d in delegations
        if d.delegate == actor.name and d.active(now) and d.delegator != case.proposer and d.delegator != actor.name
    ]


def may_approve(case: Case, actor: Actor, delegations: Sequence[Delegation], now: datetime) -> Grant:
    """The persona (and delegator) `actor` approves for now, or Refused saying why not."""
    own = _persona(actor)
    _not_proposer(case, actor)
    valid = counting(case.approvals, validity=case.approval_validity, now=now)
    counted = {g.person for g in valid} | {g.principal for g in valid}
    if actor.name in counted:
        raise Refused(409, f"{actor.name} already approved this decision; one person counts once")
    still_open = {r.persona: r for r in open_requirements(case, now)}
    if not still_open:
        raise Refused(409, "every requirement of this decision is already met")
    if own in still_open and _in_scope(still_open[own], actor.teams):
        return Grant(persona=own)
    for d in _delegations(actor, delegations, case, now):
        if d.delegator in counted:
            continue
        if d.persona in still_open and _in_scope(still_open[d.persona], d.teams):
            return Grant(persona=d.persona, on_behalf_of=d.delegator)
    waiting = ", ".join(_describe(r) for r in still_open.values())
    needed = {r.persona: r for r in case.requirements}
    if own in needed and own not in still_open:
        raise Refused(409, f"the {own} approval of this decision is already complete; it now waits for {waiting}")
    if own in needed and not _in_scope(needed[own], actor.teams):
        raise Refused(
            403,
            f"this decision belongs to team {case.owner_team}; {actor.name} approves for "
            f"{', '.join(sorted(actor.teams)) or 'no team'}",
        )
    raise Refused(
        403, f"this decision needs approval by {waiting}; {actor.name} is {own} and holds no delegation for it"
    )


def may_reject(case: Case, actor: Actor, delegations: Sequence[Delegation], now: datetime) -> Grant:
    """Any persona the decision needs (engineering of the owning team) may reject it; not its proposer."""
    own = _persona(actor)
    _not_proposer(case, actor)
    needed = {r.persona: r for r in case.requirements}
    if own in needed and _in_scope(needed[own], actor.teams):
        return Grant(persona=own)
    for d in _delegations(actor, delegations, case, now):
        if d.persona in needed and _in_scope(needed[d.persona], d.teams):
            return Grant(persona=d.persona, on_behalf_of=d.delegator)
    raise Refused(
        403,
        f"only the approvers this decision needs ({', '.join(_describe(r) for r in needed.values())}) may reject it; "
        f"{actor.name} is {own}",
    )


def can_approve(case: Case, actor: Actor, delegations: Sequence[Delegation], now: datetime) -> Grant | None:
    try:
        return may_approve(case, actor, delegations, now)
    except Refused:
        return None


def _describe(r: Requirement) -> str:
    who = f"{r.persona} of team {r.team}" if r.team else str(r.persona)
    return f"{who} (quorum {r.quorum})" if r.quorum > 1 else who
