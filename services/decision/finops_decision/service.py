"""What happens to decisions: proposed from recommendations, judged by the policy, approved, rejected or expired,
purchased, and verified against the bill. Every function works inside the caller's transaction; it takes the
audit lock before it locks a decision, and records its events in the outbox and its steps in the audit log
through a `Trail` the caller flushes."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from finops_contracts.decisions import (
    Approval,
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
from finops_contracts.events import CostBatchIngested, CostPeriodCompleted, Event
from finops_contracts.recommendations import (
    Kind,
    Persona,
    RecommendationExpired,
    RecommendationIssued,
    RecommendationSuperseded,
    RecommendationUpdated,
)
from finops_decision import approvals, audit, guard, policy, proposals, repository, savings, states
from finops_decision.approvals import Actor, Given, Refused
from finops_decision.proposals import Proposal
from finops_decision.repository import Decision
from finops_runtime import outbox
from finops_runtime.access import Role

log = logging.getLogger(__name__)

SOURCE = "/finops/decision"
SYSTEM = "decision"
"""The actor of what the service does on its own (expiries, reminders, verification)."""
AUTOMATION = "automation"
"""The principal of an approval given under an autopilot rule."""
S = DecisionState
ENDED = frozenset({S.REJECTED, S.EXPIRED, S.FAILED})
VERIFIABLE = frozenset({S.PURCHASED, S.SAVINGS_VERIFIED, S.SAVINGS_SHORTFALL})
"""States whose savings the bill judges (again, when a period they cover is restated)."""
"""States after which the same recommendation and tranche may be proposed again."""

PROVIDERS = {"aws": "AWS", "azure": "Microsoft", "gcp": "Google Cloud", "oci": "Oracle"}
"""The FOCUS ProviderName of a commitment program, by its prefix, when the recommendation names none."""


class NotFound(Exception):
    pass


@dataclass
class Trail:
    """What one transaction causes: events for the outbox, transitions, audit rows."""

    events: list[Event] = field(default_factory=list)
    transitions: list[tuple[Any, ...]] = field(default_factory=list)
    audit: list[audit.Entry] = field(default_factory=list)
    guard: guard.Guard = field(default_factory=guard.Guard)
    """The guard's settings for the purchase requests this transaction may emit."""

    def note(self, actor: str, action: str, decision_id: uuid.UUID | None = None, **detail: Any) -> None:
        self.audit.append(audit.Entry(actor=actor, action=action, decision_id=decision_id, detail=detail))


async def flush(conn: asyncpg.Connection, trail: Trail) -> None:
    await repository.add_transitions(conn, trail.transitions)
    await outbox.add(conn, [outbox.message_for(e, source=SOURCE) for e in trail.events])
    await audit.append(conn, trail.audit)
    trail.events.clear()
    trail.transitions.clear()
    trail.audit.clear()


def move(d: Decision, target: DecisionState, trail: Trail, *, actor: str, now: datetime, reason: str = "") -> None:
    """Change `d`'s state if the transition table allows it (InvalidTransition otherwise), and record it."""
    states.check(d.id, d.state, target)
    trail.transitions.append((d.id, d.state.value, target.value, actor, reason, now))
    trail.note(actor, "transition", d.id, **{"from": d.state.value, "to": target.value, "reason": reason})
    d.state = target
    d.updated_at = now


def provider_of(d: Decision) -> str:
    if d.provider_name:
        return d.provider_name
    program = d.purchase.program if d.purchase else ""
    prefix = program.split("_", 1)[0]
    return PROVIDERS.get(prefix, prefix or "unknown")


# ------------------------------------------------------------------------------------------- proposing


async def propose(conn: asyncpg.Connection, p: Proposal, trail: Trail, *, now: datetime) -> Decision | None:
    """A new decision, judged by the policy in force; None when it exists already."""
    version, pol = await repository.current_policy(conn)
    verdict = policy.evaluate(pol, p.facts())
    d = Decision(
        id=p.decision_id,
        recommendation_id=p.recommendation_id,
        tranche=p.tranche,
        kind=p.kind,
        owner_team=p.owner_team,
        title=p.title,
        proposer=p.proposer,
        state=S.PROPOSED,
        currency=p.estimated_monthly_savings.currency,
        estimated_monthly_savings=p.estimated_monthly_savings.amount,
        monthly_commitment=p.monthly_commitment.amount if p.monthly_commitment else None,
        term_months=p.term_months,
        risk=p.risk,
        coverage=p.coverage,
        billing_account_id=p.billing_account_id,
        provider_name=p.provider_name,
        purchase=p.purchase,
        recommendation_version=p.recommendation_version,
        recommendation_expires_at=p.expires_at,
        lookback_hours=p.lookback_hours,
        policy_version=version,
        policy_rule=verdict.rule.name,
        rule=verdict.rule,
        savings_tolerance=pol.savings_tolerance,
        requirements=verdict.rule.requirements_for(p.owner_team),
        proposed_at=now,
        updated_at=now,
    )
    if not await repository.insert(conn, d):
        return None
    trail.transitions.append((d.id, None, S.PROPOSED.value, p.proposer, "", now))
    trail.note(
        p.proposer, "proposed", d.id, recommendation_id=p.recommendation_id, tranche=p.tranche,
        policy_version=version, policy_rule=verdict.rule.name, autopilot=verdict.reason,
    )  # fmt: skip
    trail.events.append(
        DecisionProposed(
            **d.event_fields(),
            title=d.title,
            proposer=d.proposer,
            estimated_monthly_savings=d.money(d.estimated_monthly_savings),
            monthly_commitment=d.money(d.monthly_commitment) if d.monthly_commitment is not None else None,
            term_months=d.term_months,
            risk=d.risk,
            policy_version=version,
            billing_account_id=d.billing_account_id,
            provider_name=d.provider_name,
            purchase=d.purchase,
        )
    )
    await _judge(conn, d, verdict, trail, now=now)
    await repository.save(conn, d)
    return d


async def _judge(
    conn: asyncpg.Connection, d: Decision, verdict: policy.Verdict, trail: Trail, *, now: datetime
) -> None:
    """Approve under autopilot, or ask the rule's approvers."""
    if verdict.automatic:
        given = Given(principal=AUTOMATION, persona=None, at=now, comment=verdict.reason, rule=verdict.rule.name)
        await repository.add_approval(conn, d, given)
        trail.note(AUTOMATION, "approval", d.id, rule=verdict.rule.name, reason=verdict.reason)
        await _approved(conn, d, trail, automatic=True, now=now, actor=AUTOMATION)
        return
    await _ask(conn, d, trail, now=now)


async def _ask(conn: asyncpg.Connection, d: Decision, trail: Trail, *, now: datetime) -> None:
    """Ask the decision's approvers, by a due date."""
    d.due_at = now + d.rule.expires_after
    if d.recommendation_expires_at is not None:
        d.due_at = min(d.due_at, d.recommendation_expires_at)
    if d.state is S.PROPOSED:
        move(d, S.PENDING_APPROVAL, trail, actor=SYSTEM, now=now, reason=f"policy rule {d.policy_rule}")
    d.reminders = 0
    d.shown_commitment = d.monthly_commitment
    d.next_reminder_at = now + d.rule.remind_every
    await _request_approval(conn, d, trail, now=now)


async def _request_approval(conn: asyncpg.Connection, d: Decision, trail: Trail, *, now: datetime) -> None:
    assert d.due_at is not None
    counted = {g.person for g in approvals.counting(d.approvals, validity=d.rule.approval_validity, now=now)}
    waiting_for = approvals.open_requirements(d.case(), now)
    named = await repository.approvers_for(conn, waiting_for, now)
    trail.events.append(
        ApprovalRequested(
            **d.event_fields(),
            title=d.title,
            requirements=d.requirements,
            approvers=tuple(n for n in named if n != d.proposer and n not in counted),
            policy_version=d.policy_version,
            policy_rule=d.policy_rule,
            due_at=d.due_at,
            estimated_monthly_savings=d.money(d.estimated_monthly_savings),
            monthly_commitment=d.money(d.monthly_commitment) if d.monthly_commitment is not None else None,
            reminder=d.reminders,
        )
    )


def _seconds(delta: timedelta) -> Decimal:
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000


async def _guarded(conn: asyncpg.Connection, d: Decision, trail: Trail, *, now: datetime) -> guard.Check:
    """The guard's finding on `d`'s purchase request, from the pool usage this service observed."""
    assert d.purchase is not None
    pool = guard.pool_of_program(d.purchase.program)
    per_hour = d.purchase.commitment_per_hour
    usage = (
        await repository.pool_hours(
            conn, billing_account_id=d.billing_account_id, pool=pool, currency=per_hour.currency
        )
        if d.billing_account_id
        else {}
    )
    check = guard.judge(
        usage=usage, commitment_per_hour=per_hour.amount, guard=trail.guard, lookback_hours=d.lookback_hours,
        pool=pool, billing_account_id=d.billing_account_id, currency=per_hour.currency,
    )  # fmt: skip
    d.guard = {**check.detail(), "checked_at": now.isoformat()}
    return check


async def _refused(
    conn: asyncpg.Connection, d: Decision, check: guard.Check, trail: Trail, *, automatic: bool, now: datetime
) -> None:
    """The guard refused the purchase request: nothing is requested; the decision stays pending (an autopilot's
    becomes pending) and needs a practitioner's approval it does not have yet; the practitioner is asked, and the
    refusal is audited with both figures. The guard is not overridden: every later approval that completes the
    requirements runs it again on the usage observed by then."""
    practitioner = [r for r in d.requirements if r.persona is Persona.PRACTITIONER]
    if practitioner:
        given = [
            g
            for g in approvals.counting(d.approvals, validity=d.rule.approval_validity, now=now)
            if g.persona is Persona.PRACTITIONER
        ]
        if len(given) >= practitioner[0].quorum:  # a practitioner approved already: another one must look
            bumped = practitioner[0].model_copy(update={"quorum": len(given) + 1})
            d.requirements = tuple(bumped if r is practitioner[0] else r for r in d.requirements)
    else:
        d.requirements = (*d.requirements, Requirement(persona=Persona.PRACTITIONER))
    trail.note(
        SYSTEM, "guard_refused", d.id, path="autopilot" if automatic else "approval", escalated_to="practitioner",
        **check.detail(),
    )  # fmt: skip
    log.warning("purchase request refused by the guard", extra={"decision_id": str(d.id), "reason": check.reason})
    if d.state is S.PROPOSED:
        await _ask(conn, d, trail, now=now)  # the autopilot's decision now waits for people
    else:
        d.updated_at = now
        await _request_approval(conn, d, trail, now=now)


async def _approved(
    conn: asyncpg.Connection, d: Decision, trail: Trail, *, automatic: bool, now: datetime, actor: str
) -> None:
    """Every requirement met (or autopilot): approved; a commitment goes on to its purchase request, unless the
    guard refuses it (then it waits for the practitioner instead)."""
    if d.kind is Kind.COMMITMENT_PLAN and d.purchase is not None:
        check = await _guarded(conn, d, trail, now=now)
        if not check.allowed:
            await _refused(conn, d, check, trail, automatic=automatic, now=now)
            return
        trail.note(SYSTEM, "guard_passed", d.id, **check.detail())
    move(d, S.APPROVED, trail, actor=actor, now=now, reason="autopilot" if automatic else "requirements met")
    d.approved_at = now
    d.automatic = automatic
    d.next_reminder_at = None
    trail.events.append(
        DecisionApproved(
            **d.event_fields(),
            approvals=tuple(
                Approval(
                    principal=g.principal,
                    persona=g.persona,
                    at=g.at,
                    comment=g.comment,
                    on_behalf_of=g.on_behalf_of,
                    rule=g.rule,
                )  # fmt: skip
                for g in (
                    d.approvals
                    if automatic
                    else approvals.counting(d.approvals, validity=d.rule.approval_validity, now=now)
                )
            ),
            automatic=automatic,
            policy_version=d.policy_version,
            policy_rule=d.policy_rule,
            waited_seconds=_seconds(now - d.proposed_at),
        )
    )
    if d.kind is Kind.COMMITMENT_PLAN and d.purchase is not None:
        move(d, S.PURCHASE_REQUESTED, trail, actor=SYSTEM, now=now, reason="approved commitment")
        trail.events.append(
            PurchaseRequested(
                **d.event_fields(),
                client_token=str(d.id),
                provider_name=provider_of(d),
                billing_account_id=d.billing_account_id,
                purchase=d.purchase,
                estimated_monthly_savings=d.money(d.estimated_monthly_savings),
            )
        )


# ------------------------------------------------------------------------------------ recommendations


async def on_recommendation(
    conn: asyncpg.Connection,
    rec: RecommendationIssued | RecommendationUpdated,
    *,
    now: datetime,
    limits: guard.Guard | None = None,
) -> None:
    """Make the recommendation's decisions exist and carry its newest numbers."""
    wanted = {p.decision_id: p for p in proposals.proposals(rec)}
    if not wanted and rec.kind not in proposals.DECIDED:
        return  # anomalies are not decisions
    await audit.lock(conn)
    trail = Trail(guard=limits or guard.Guard())
    existing = await repository.of_recommendation(conn, rec.recommendation_id)
    by_id = {d.id: d for d in existing}
    newer = isinstance(rec, RecommendationUpdated)
    for d in existing:
        if d.state not in states.OPEN or d.proposer != proposals.RECOMMEND:
            continue
        p = wanted.get(d.id)
        if p is None:
            _expire(d, trail, now=now, reason=f"version {rec.version} of the recommendation no longer buys this now")
        elif newer and rec.version > d.recommendation_version:
            d.approvals = await repository.approvals_of(conn, d.id, d.round)
            await _update(conn, d, p, trail, now=now)
        else:
            continue
        await repository.save(conn, d)
    by_people = {d.tranche for d in existing if d.proposer != proposals.RECOMMEND and d.state not in ENDED}
    for p in wanted.values():
        if p.decision_id in by_id or p.tranche in by_people:
            continue  # decided already, or a person's proposal covers it
        if p.expires_at is not None and p.expires_at <= now:
            log.warning(
                "recommendation arrived expired; no decision", extra={"recommendation_id": str(p.recommendation_id)}
            )
            continue
        await propose(conn, p, trail, now=now)
    await flush(conn, trail)


async def _update(conn: asyncpg.Connection, d: Decision, p: Proposal, trail: Trail, *, now: datetime) -> None:
    """New numbers for a decision still waiting. When the commitment grew past what the approvers saw (or its
    term changed), their approvals no longer hold: a new round is judged by the policy in force and asked."""
    grew = (
        p.monthly_commitment is not None
        and d.shown_commitment is not None
        and p.monthly_commitment.amount > d.shown_commitment
    )
    term_changed = d.term_months != p.term_months
    before = {"monthly_commitment": d.monthly_commitment, "estimated_monthly_savings": d.estimated_monthly_savings}
    d.title = p.title
    d.estimated_monthly_savings = p.estimated_monthly_savings.amount
    d.monthly_commitment = p.monthly_commitment.amount if p.monthly_commitment else None
    d.term_months = p.term_months
    d.coverage = p.coverage
    d.risk = p.risk
    d.purchase = p.purchase
    d.recommendation_version = p.recommendation_version
    d.recommendation_expires_at = p.expires_at
    d.lookback_hours = p.lookback_hours
    d.updated_at = now
    if p.owner_team != d.owner_team:
        # Owners come from allocation (ResourceOwned) and may reach recommend after its first version: the
        # decision follows the newest owner, and so do the approvals its policy asks of that team.
        trail.note(SYSTEM, "owner_changed", d.id, before=d.owner_team, after=p.owner_team)
        d.owner_team = p.owner_team
        d.requirements = d.rule.requirements_for(d.owner_team)
    trail.note(
        proposals.RECOMMEND, "updated", d.id, version=p.recommendation_version, before=before,
        after={"monthly_commitment": d.monthly_commitment, "estimated_monthly_savings": d.estimated_monthly_savings},
    )  # fmt: skip
    if d.state is not S.PENDING_APPROVAL or not (grew or term_changed):
        return
    version, pol = await repository.current_policy(conn)
    verdict = policy.evaluate(pol, p.facts())
    d.round += 1
    d.approvals = []
    d.policy_version, d.policy_rule, d.rule = version, verdict.rule.name, verdict.rule
    d.requirements = verdict.rule.requirements_for(d.owner_team)
    d.savings_tolerance = pol.savings_tolerance
    reason = (
        f"the monthly commitment grew from {d.shown_commitment} to {d.monthly_commitment}"
        if grew
        else f"the term changed to {d.term_months} months"
    )
    trail.note(SYSTEM, "approvals_reset", d.id, reason=reason, round=d.round, policy_rule=d.policy_rule)
    await _judge(conn, d, verdict, trail, now=now)


def _expire(d: Decision, trail: Trail, *, now: datetime, reason: str) -> None:
    move(d, S.EXPIRED, trail, actor=SYSTEM, now=now, reason=reason)
    d.next_reminder_at = None
    trail.events.append(DecisionExpired(**d.event_fields(), reason=reason, at=now))


async def on_recommendation_closed(
    conn: asyncpg.Connection, event: RecommendationSuperseded | RecommendationExpired, *, now: datetime
) -> None:
    """A superseded or expired recommendation no longer needs action: its waiting decisions expire."""
    await audit.lock(conn)
    trail = Trail()
    if isinstance(event, RecommendationSuperseded):
        reason = f"the recommendation was superseded by {event.superseded_by}: {event.reason}"
    else:
        reason = f"the recommendation expired: {event.reason}"
    for d in await repository.of_recommendation(conn, event.recommendation_id):
        if d.state in states.OPEN:
            _expire(d, trail, now=now, reason=reason)
            await repository.save(conn, d)
    await flush(conn, trail)


# ------------------------------------------------------------------------------------------- people


async def lock_decision(conn: asyncpg.Connection, decision_id: uuid.UUID) -> Decision:
    await audit.lock(conn)
    d = await repository.load(conn, decision_id, lock=True)
    if d is None:
        raise NotFound(f"no decision {decision_id}; list them with GET /v1/decisions")
    return d


def visible(d: Decision, actor: Actor, delegations: list[approvals.Delegation]) -> bool:
    """Engineering sees its own teams' decisions, and those it may approve through a delegation."""
    if actor.role is not Role.ENGINEERING or d.owner_team in actor.teams:
        return True
    personas = {r.persona for r in d.requirements}
    return any(dl.persona in personas and dl.persona is not Persona.ENGINEERING for dl in delegations)


async def _scope(conn: asyncpg.Connection, d: Decision, actor: Actor, now: datetime) -> list[approvals.Delegation]:
    delegations = await repository.delegations_to(conn, actor.name, now)
    if not visible(d, actor, delegations):
        raise Refused(
            403,
            f"decision {d.id} belongs to team {d.owner_team}; {actor.name} sees teams "
            f"{', '.join(sorted(actor.teams)) or '(none)'}",
        )
    return delegations


async def approve(
    conn: asyncpg.Connection, decision_id: uuid.UUID, actor: Actor, comment: str, trail: Trail, *, now: datetime
) -> Decision:
    """Record `actor`'s approval; approve the decision when every requirement is met."""
    d = await lock_decision(conn, decision_id)
    delegations = await _scope(conn, d, actor, now)
    if d.state is not S.PENDING_APPROVAL:
        raise states.InvalidTransition(d.id, d.state, S.APPROVED, "approve")
    grant = approvals.may_approve(d.case(), actor, delegations, now)
    given = Given(principal=actor.name, persona=grant.persona, at=now, comment=comment, on_behalf_of=grant.on_behalf_of)
    await repository.add_approval(conn, d, given)
    trail.note(
        actor.name, "approval", d.id, persona=grant.persona.value, on_behalf_of=grant.on_behalf_of, comment=comment
    )
    if approvals.satisfied(d.case(), now):
        await _approved(conn, d, trail, automatic=False, now=now, actor=actor.name)
    else:
        d.updated_at = now
    await repository.save(conn, d)
    return d


async def reject(
    conn: asyncpg.Connection, decision_id: uuid.UUID, actor: Actor, comment: str, trail: Trail, *, now: datetime
) -> Decision:
    d = await lock_decision(conn, decision_id)
    delegations = await _scope(conn, d, actor, now)
    states.check(d.id, d.state, S.REJECTED, "reject")
    grant = approvals.may_reject(d.case(), actor, delegations, now)
    trail.note(actor.name, "rejection", d.id, persona=grant.persona.value, on_behalf_of=grant.on_behalf_of)
    move(d, S.REJECTED, trail, actor=actor.name, now=now, reason=comment)
    d.next_reminder_at = None
    trail.events.append(
        DecisionRejected(**d.event_fields(), principal=actor.name, persona=grant.persona, comment=comment, at=now)
    )
    await repository.save(conn, d)
    return d


async def propose_by(conn: asyncpg.Connection, p: Proposal, trail: Trail, *, now: datetime) -> Decision:
    """A person's proposal: refused while an open decision covers the same recommendation and tranche."""
    await audit.lock(conn)
    for d in await repository.of_recommendation(conn, p.recommendation_id):
        if d.tranche == p.tranche and d.state not in ENDED:
            raise Refused(409, f"decision {d.id} ({d.state}) already decides this recommendation and tranche")
    d = await propose(conn, p, trail, now=now)
    assert d is not None  # a fresh id
    return d


# ------------------------------------------------------------------------------- expiries, reminders


async def tick(conn: asyncpg.Connection, *, now: datetime) -> bool:
    """Expire or remind one due decision; False when none is due."""
    if not await repository.anything_due(conn, now):
        return False
    await audit.lock(conn)
    d = await repository.due(conn, now)
    if d is None:
        return False
    trail = Trail()
    if d.due_at is not None and d.due_at <= now:
        _expire(d, trail, now=now, reason=f"approvals did not arrive by {d.due_at.isoformat()}")
    else:
        d.reminders += 1
        n = d.rule.escalate_after_reminders
        if n and d.reminders >= n and all(r.persona is not Persona.PRACTITIONER for r in d.requirements):
            d.requirements = (*d.requirements, Requirement(persona=Persona.PRACTITIONER))
            trail.note(SYSTEM, "escalated", d.id, reminders=d.reminders, added="practitioner")
        d.next_reminder_at = now + d.rule.remind_every
        if d.due_at is not None and d.next_reminder_at >= d.due_at:
            d.next_reminder_at = None  # the expiry comes first
        trail.note(SYSTEM, "reminder", d.id, reminder=d.reminders)
        await _request_approval(conn, d, trail, now=now)
    await repository.save(conn, d)
    await flush(conn, trail)
    return True


# ------------------------------------------------------------------------------------------ purchases


async def on_purchase(conn: asyncpg.Connection, event: CommitmentPurchased | PurchaseFailed, *, now: datetime) -> None:
    """The purchase service's answer: purchased (with the provider's commitment id) or failed."""
    await audit.lock(conn)
    trail = Trail()
    d = await repository.load(conn, event.decision_id, lock=True)
    if d is None:
        raise NotFound(f"{event.TYPE} names decision {event.decision_id}, which this service never requested")
    target = S.PURCHASED if isinstance(event, CommitmentPurchased) else S.FAILED
    if d.state is target:
        return  # the same answer again
    try:
        states.check(d.id, d.state, target, event.TYPE)
    except states.InvalidTransition as refused:
        log.warning("purchase result refused", extra={"decision_id": str(d.id), "reason": str(refused)})
        trail.note(event.provider_name, "refused", d.id, event=event.TYPE, reason=str(refused))
        await flush(conn, trail)
        return
    if isinstance(event, CommitmentPurchased):
        d.commitment_id = event.commitment_id
        d.commitment_start = event.start
        d.outcome = {
            "purchase": {
                "commitment_id": event.commitment_id, "program": event.program, "term_months": event.term_months,
                "start": event.start.isoformat(), "end": event.end.isoformat(), "dry_run": event.dry_run,
                "commitment_per_hour": event.commitment_per_hour.model_dump(mode="json"), "attempts": event.attempts,
            }
        }  # fmt: skip
        reason = f"commitment {event.commitment_id}" + (" (dry run)" if event.dry_run else "")
    else:
        d.outcome = {"failure": {"reason": event.reason, "attempts": event.attempts, "dry_run": event.dry_run}}
        reason = event.reason
    move(d, target, trail, actor=f"purchase/{event.provider_name}", now=now, reason=reason)
    await repository.save(conn, d)
    await flush(conn, trail)


# ---------------------------------------------------------------------------------------- verification


async def on_cost_batch(conn: asyncpg.Connection, event: CostBatchIngested, *, now: datetime) -> None:
    """Add the batch's hourly pool usage to the guard's usage model, and its lines that used purchased
    commitments to their matches, once per batch. Nothing is judged here: a batch is part of a file whose
    account-period is complete only when its CostPeriodCompleted arrives (see `on_period_completed`)."""
    if await repository.claim_usage_batch(conn, event.ingest_id, event.batch_seq):
        await repository.add_pool_usage(conn, event.ingest_id, guard.hourly_usage(event.frame))
    commitments = await repository.purchased_commitments(conn)
    if not commitments:
        return
    found = savings.match(event.frame, commitments)
    if not found:
        return
    await audit.lock(conn)
    for cid, m in sorted(found.items()):
        if m.other_currency_lines:
            log.warning(
                "cost lines of a commitment in another currency than its decision's are not counted",
                extra={"commitment_id": cid, "lines": m.other_currency_lines},
            )
        d = await repository.by_commitment(conn, cid)
        if d is None or d.state not in VERIFIABLE:
            continue
        await repository.add_match(
            conn, d.id, ingest_id=event.ingest_id, batch_seq=event.batch_seq,
            billing_account_id=event.billing_account_id, billing_period_start=event.billing_period_start,
            lines=m.lines, covered_savings=m.covered_savings, unused_cost=m.unused_cost,
            window_start=m.window_start, window_end=m.window_end,
        )  # fmt: skip


async def on_period_completed(
    conn: asyncpg.Connection, event: CostPeriodCompleted, *, now: datetime, min_hours: Decimal
) -> None:
    """A version of one billing account and period is complete: the highest version counts, the older
    version's usage and matches of that account-period only are dropped (an older version completing late never
    counts). Then the savings of every decision with lines in either version are judged (again) from the
    current versions: a restatement re-judges a verdict, and the change is audited and published.

    Completeness: a verdict counts only the lines of account-periods whose file completed (CostPeriodCompleted:
    every batch of that file's account-period was published), and needs `min_hours` of them; it is judged again
    whenever a version of a period it covers completes, so it always stands for the newest complete bill."""
    key = dict(billing_account_id=event.billing_account_id, period=event.billing_period_start)
    current = await repository.current_period_version(conn, event.billing_account_id, event.billing_period_start)
    touched = [event.ingest_id]
    if current is None or event.version > current["version"]:
        await repository.make_period_current(conn, **key, ingest_id=event.ingest_id, version=event.version, now=now)
        if current is not None and current["ingest_id"] != event.ingest_id:
            touched.append(current["ingest_id"])
            stale = current["ingest_id"]
        else:
            stale = None
    elif event.ingest_id != current["ingest_id"]:
        stale = event.ingest_id
    else:
        stale = None
    affected = await repository.matched_in(conn, **key, ingest_ids=touched)
    if stale is not None:
        await repository.drop_usage_version(conn, **key, ingest_id=stale)
        await repository.drop_match_version(conn, **key, ingest_id=stale)
    if not affected or stale == event.ingest_id:
        return
    await audit.lock(conn)
    trail = Trail()
    for decision_id in affected:
        d = await repository.lock(conn, decision_id)
        if d is None or d.state not in VERIFIABLE:
            continue
        total = await repository.matched(conn, d.id)
        if total["window_start"] is None or savings.hours(total["window_start"], total["window_end"]) < min_hours:
            continue
        if _verify(d, total, trail, now=now, restated_by=event if d.state is not S.PURCHASED else None):
            await repository.save(conn, d)
    await flush(conn, trail)


def _verify(
    d: Decision, total: Any, trail: Trail, *, now: datetime, restated_by: CostPeriodCompleted | None = None
) -> bool:
    """Judge `d`'s savings on `total`; False when a verdict on the same figures stands already. A verdict judged
    again (`restated_by` names the version that completed) moves to the other verdict state when it changed,
    is audited with the figures before and after, and published again."""
    assert d.commitment_id is not None
    verdict = savings.judge(
        estimated_monthly=d.estimated_monthly_savings,
        covered_savings=total["covered_savings"],
        unused_cost=total["unused_cost"],
        window_start=total["window_start"],
        window_end=total["window_end"],
        tolerance=d.savings_tolerance,
        currency=d.currency,
    )
    target = S.SAVINGS_VERIFIED if verdict.verified else S.SAVINGS_SHORTFALL
    before = (d.outcome or {}).get("verification")
    d.outcome = {
        **(d.outcome or {}),
        "verification": {
            "window_start": total["window_start"].isoformat(), "window_end": total["window_end"].isoformat(),
            "hours": format(verdict.hours, "f"), "estimated": format(verdict.estimated, "f"),
            "realized": format(verdict.realized, "f"), "realization": format(verdict.realization, "f"),
            "lines": total["lines"], "reason": verdict.reason,
        },
    }  # fmt: skip
    after = d.outcome["verification"]
    if before is not None and d.state is not S.PURCHASED:
        if before == after:
            return False
        trail.note(
            SYSTEM, "savings_rejudged", d.id, before=before, after=after,
            restated={"billing_account_id": restated_by.billing_account_id,
                      "billing_period_start": restated_by.billing_period_start.isoformat(),
                      "version": restated_by.version, "ingest_id": str(restated_by.ingest_id)}
            if restated_by is not None else None,
        )  # fmt: skip
    if d.state is not target:
        move(d, target, trail, actor=SYSTEM, now=now, reason=verdict.reason or f"realized {verdict.realized}")
    else:
        d.updated_at = now
    fields: dict[str, Any] = dict(
        **d.event_fields(),
        commitment_id=d.commitment_id,
        window_start=total["window_start"],
        window_end=total["window_end"],
        estimated_savings=d.money(verdict.estimated),
        realized_savings=d.money(verdict.realized),
        realization=verdict.realization,
        lines_matched=total["lines"],
    )
    trail.events.append(
        SavingsVerified(**fields) if verdict.verified else SavingsShortfall(**fields, reason=verdict.reason)
    )
    return True
