"""Recommendation events (topic finops.recommendation.v1): what the recommend service advises, through its
lifecycle, and the commitment KPIs it measures.

Lifecycle of one recommendation id: issued, then updated any number of times (new numbers, same advice), then
one final state: superseded (a newer recommendation for the same pool or resource replaces it) or expired (its
expiry passed, or the finding no longer holds). Each transition is its own past-tense event type; all of them
are keyed by the recommendation id, so a consumer sees one recommendation's events in order.

Evolution rule: add optional fields only. A breaking change is a new `ce_type` major version.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from finops_contracts.events import Event, register
from finops_contracts.money import Amount, Money
from finops_contracts.topics import RECOMMENDATION, Topic


class Kind(StrEnum):
    COMMITMENT_PLAN = "commitment_plan"
    RIGHTSIZING = "rightsizing"
    IDLE = "idle"
    ANOMALY = "anomaly"


class Persona(StrEnum):
    """FinOps Foundation personas; the ones named on a recommendation must act on it."""

    ENGINEERING = "engineering"
    FINANCE = "finance"
    BUSINESS = "business"
    PRACTITIONER = "practitioner"


class CommitmentPurchase(BaseModel):
    """One tranche of a commitment plan: what to buy, from when."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    program: str
    """The commitment program (aws_compute_savings_plan, azure_savings_plan, gcp_flexible_cud...)."""
    term_months: int
    payment: str
    start: datetime
    """The month start from which the tranche is bought: now for the first, later for anticipated ones."""
    commitment_per_hour: Money
    """What the tranche costs per hour, used or not (an AWS Savings Plan's hourly commitment)."""
    covered_usage_per_hour: Amount
    """On-demand-equivalent usage it covers per hour, in the same currency."""
    scope: dict[str, str] = Field(default_factory=dict)
    """Where the commitment applies, for instruments narrower than a whole account: region, instance_family,
    instance_type, sku... (empty for a Compute Savings Plan or another account-wide instrument)."""


class _Recommendation(Event):
    """The full content of a recommendation, shared by the issued and updated events."""

    TOPIC: ClassVar[Topic] = RECOMMENDATION

    recommendation_id: uuid.UUID
    kind: Kind
    target: str
    """What it is about: a commitment pool, a resource, or an anomaly's series and start day."""
    title: str
    owner_team: str
    """The team that owns the cost, from the `team` tag ("unallocated" when no line carries one)."""
    personas: tuple[Persona, ...]
    estimated_monthly_savings: Money
    evidence: dict[str, Any] = Field(default_factory=dict)
    """What the recommendation rests on; numbers are decimal strings."""
    expires_at: datetime
    as_of: datetime
    """The end of the cost data it was computed from."""
    version: int = Field(default=1, ge=1)
    billing_account_id: str | None = None
    provider_name: str | None = None
    resource_id: str | None = None
    purchases: tuple[CommitmentPurchase, ...] = ()
    """For a commitment plan: the tranches, the ones to buy now first."""

    def key(self) -> str:
        return str(self.recommendation_id)

    def subject(self) -> str:
        return self.target


class RecommendationIssued(_Recommendation):
    """A new recommendation: someone (its personas) should act on it before it expires."""

    TYPE: ClassVar[str] = "finops.recommendation.issued.v1"


class RecommendationUpdated(_Recommendation):
    """The same recommendation with new numbers or evidence (a restated bill, more days of data)."""

    TYPE: ClassVar[str] = "finops.recommendation.updated.v1"


class RecommendationSuperseded(Event):
    """A recommendation was replaced by a newer one for the same subject; it no longer needs action."""

    TYPE: ClassVar[str] = "finops.recommendation.superseded.v1"
    TOPIC: ClassVar[Topic] = RECOMMENDATION

    recommendation_id: uuid.UUID
    kind: Kind
    target: str
    owner_team: str
    superseded_by: uuid.UUID
    reason: str

    def key(self) -> str:
        return str(self.recommendation_id)

    def subject(self) -> str:
        return self.target


class RecommendationExpired(Event):
    """A recommendation reached its expiry, or its finding no longer holds in the data; it is final."""

    TYPE: ClassVar[str] = "finops.recommendation.expired.v1"
    TOPIC: ClassVar[Topic] = RECOMMENDATION

    recommendation_id: uuid.UUID
    kind: Kind
    target: str
    owner_team: str
    expired_at: datetime
    reason: str

    def key(self) -> str:
        return str(self.recommendation_id)

    def subject(self) -> str:
        return self.target


class KpiMeasured(Event):
    """Commitment KPIs of one pool, provider and month, measured from the cost lines.

    ESR (FinOps Foundation): (on-demand-equivalent cost - actual cost) / on-demand-equivalent cost, where the
    actual cost includes the unused commitment. Coverage: the share of on-demand-equivalent usage covered by
    commitments. Utilization: the share of commitment cost that covered usage. Waste: the unused commitment cost.
    """

    TYPE: ClassVar[str] = "finops.recommendation.kpi_measured.v1"
    TOPIC: ClassVar[Topic] = RECOMMENDATION

    pool: str
    provider_name: str
    billing_account_id: str
    month: datetime
    on_demand_equivalent: Money
    actual_cost: Money
    savings: Money
    effective_savings_rate: Amount
    coverage: Amount
    utilization: Amount | None
    """1 when nothing is committed; None when the bill cannot tell: an actual-cost bill (Azure's actual export)
    carries its commitments' fees but no unused-commitment lines, so what the fee bought and left unused is not
    in it (the amortized export is)."""
    unused_commitment_cost: Money
    scope: dict[str, str] = Field(default_factory=dict)
    """Empty for an account's flexible pool (all its compute); `region` and `instance_family` for a scoped pool,
    whose usage is also in its account's flexible pool: a total over pools sums the flexible ones only."""

    def key(self) -> str:
        return f"kpi/{self.pool}"

    def subject(self) -> str:
        return f"{self.pool}/{self.month:%Y-%m}"


RECOMMENDATION_EVENTS: tuple[type[Event], ...] = (
    RecommendationIssued,
    RecommendationUpdated,
    RecommendationSuperseded,
    RecommendationExpired,
    KpiMeasured,
)

register(*RECOMMENDATION_EVENTS)
