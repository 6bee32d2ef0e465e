"""From a recommendation to the decisions it asks for: one per tranche of a commitment plan to buy now, one for a
rightsizing or idle finding, none for an anomaly. Decision ids derive from the recommendation id and the
tranche index, so a redelivered or replayed recommendation never makes a second decision."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from finops_contracts.money import Money
from finops_contracts.recommendations import CommitmentPurchase, Kind, RecommendationIssued, RecommendationUpdated
from finops_decision.policy import RISKS, Facts

NAMESPACE = uuid.UUID("3f0e8b7e-5d3a-4f53-9a51-0c9d0f6a2b17")
HOURS_PER_MONTH = Decimal(730)
"""Months are 730 hours, as in the recommend service's planner."""
DECIDED = frozenset({Kind.COMMITMENT_PLAN, Kind.RIGHTSIZING, Kind.IDLE})
RATIO = Decimal("0.0001")
Recommendation = RecommendationIssued | RecommendationUpdated
RECOMMEND = "recommend"
"""The proposer of decisions that come from the recommend service."""


def decision_id(recommendation_id: uuid.UUID, tranche: int | None) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{recommendation_id}/{'-' if tranche is None else tranche}")


@dataclass(frozen=True)
class Proposal:
    decision_id: uuid.UUID
    recommendation_id: uuid.UUID
    tranche: int | None
    kind: Kind
    owner_team: str
    title: str
    proposer: str
    estimated_monthly_savings: Money
    monthly_commitment: Money | None = None
    term_months: int | None = None
    risk: str = "low"
    coverage: Decimal | None = None
    billing_account_id: str | None = None
    provider_name: str | None = None
    purchase: CommitmentPurchase | None = None
    recommendation_version: int = 1
    expires_at: datetime | None = None
    lookback_hours: int | None = None
    """The plan's own lookback (its evidence's `lookback_hours`), which the guard then uses."""

    def facts(self) -> Facts:
        return Facts(
            kind=self.kind,
            monthly_commitment=self.monthly_commitment.amount if self.monthly_commitment else None,
            term_months=self.term_months,
            risk=self.risk,
            coverage=self.coverage,
            payment=self.purchase.payment if self.purchase else None,
        )


def buy_now(rec: Recommendation) -> list[tuple[int, CommitmentPurchase]]:
    """The tranches of a plan to buy now: those starting no later than the data the plan was computed from."""
    return [(i, p) for i, p in enumerate(rec.purchases) if p.start <= rec.as_of]


def monthly_commitment(purchase: CommitmentPurchase) -> Money:
    return Money(
        amount=purchase.commitment_per_hour.amount * HOURS_PER_MONTH, currency=purchase.commitment_per_hour.currency
    )


def pool_usage_per_hour(evidence: dict[str, Any]) -> Decimal | None:
    """The pool's on-demand-equivalent usage per hour from a plan's evidence (its recent median), if present."""
    for key in ("pool_usage_per_hour", "recent_p50"):
        raw = evidence.get(key)
        if raw is None or isinstance(raw, bool):
            continue
        try:
            value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(str(raw))
        except InvalidOperation:
            continue
        if value.is_finite() and value > 0:
            return value
    return None


def lookback_of(evidence: dict[str, Any]) -> int | None:
    """The lookback hours a plan's evidence names, if any."""
    raw = evidence.get("lookback_hours")
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = int(Decimal(str(raw)))
    except (InvalidOperation, ValueError):
        return None
    return value if value > 0 else None


def risk_of(evidence: dict[str, Any]) -> str:
    risk = evidence.get("risk")
    return risk if isinstance(risk, str) and risk in RISKS else "low"


def split(total: Money, weights: list[Decimal]) -> list[Money]:
    """`total` shared in proportion to `weights` (equally when they are all zero), in the amount's own precision
    (cents at least), by the largest remainder, so the shares add up to the total exactly."""
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [Decimal(1)] * len(weights)
    exponent = min(total.amount.as_tuple().exponent, -2)  # type: ignore[type-var]
    unit = Decimal(1).scaleb(exponent)
    whole = sum(weights)
    exact = [total.amount * w / whole for w in weights]
    floors = [e.quantize(unit, rounding=ROUND_DOWN) for e in exact]
    left = int(((total.amount - sum(floors)) / unit).to_integral_value(rounding=ROUND_HALF_EVEN))
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[: max(left, 0)]:
        floors[i] += unit
    return [Money(amount=f, currency=total.currency) for f in floors]


def proposals(rec: Recommendation, *, proposer: str = RECOMMEND) -> list[Proposal]:
    """The decisions `rec` asks for (none for an anomaly, none for a plan with nothing to buy now)."""
    if rec.kind not in DECIDED:
        return []
    common: dict[str, Any] = dict(
        recommendation_id=rec.recommendation_id,
        kind=rec.kind,
        owner_team=rec.owner_team,
        proposer=proposer,
        risk=risk_of(rec.evidence),
        billing_account_id=rec.billing_account_id,
        provider_name=rec.provider_name,
        recommendation_version=rec.version,
        expires_at=rec.expires_at,
    )
    if rec.kind is not Kind.COMMITMENT_PLAN:
        return [
            Proposal(
                decision_id=decision_id(rec.recommendation_id, None),
                tranche=None,
                title=rec.title,
                estimated_monthly_savings=rec.estimated_monthly_savings,
                **common,
            )
        ]
    now = buy_now(rec)
    # The plan's savings are shared among the tranches bought now by what each saves per hour when fully used.
    shares = split(
        rec.estimated_monthly_savings,
        [max(p.covered_usage_per_hour - p.commitment_per_hour.amount, Decimal(0)) for _, p in now],
    )
    usage = pool_usage_per_hour(rec.evidence)
    out = []
    for (index, purchase), savings in zip(now, shares, strict=True):
        coverage = None if usage is None else (purchase.covered_usage_per_hour / usage).quantize(RATIO)
        per_hour = purchase.commitment_per_hour
        out.append(
            Proposal(
                decision_id=decision_id(rec.recommendation_id, index),
                tranche=index,
                title=f"Commit {per_hour.amount} {per_hour.currency}/h of {purchase.program} for "
                f"{purchase.term_months} months ({rec.title})",
                estimated_monthly_savings=savings,
                monthly_commitment=monthly_commitment(purchase),
                term_months=purchase.term_months,
                coverage=coverage,
                purchase=purchase,
                lookback_hours=lookback_of(rec.evidence),
                **common,
            )
        )
    return out
