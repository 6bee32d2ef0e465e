"""Decision and purchase events: how a recommendation is approved under the persona policy, bought exactly
once, and proven against the bill.

Topic finops.decision.v1 (owner: decision), keyed by the decision id, so one decision's events arrive in order:
proposed -> approval requested (again as an escalation reminder) -> approved | rejected | expired ->
purchase requested -> (the purchase service answers on finops.purchase.v1) -> savings verified | shortfall.

Topic finops.purchase.v1 (owner: purchase), keyed by the decision id: commitment purchased or purchase failed.
The decision id is the provider's idempotency token (an AWS `clientToken`), so a redelivered or retried
request can never buy twice.

Every decision event carries `state`, the decision's state after the event, so a read model (the console)
can follow the flow from any one event type.

Evolution rule: add optional fields only. A breaking change is a new `ce_type` major version.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from finops_contracts.events import Event, register
from finops_contracts.money import Amount, Money
from finops_contracts.recommendations import CommitmentPurchase, Kind, Persona
from finops_contracts.topics import DECISION, PURCHASE, Topic


class DecisionState(StrEnum):
    PROPOSED = "proposed"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    PURCHASE_REQUESTED = "purchase_requested"
    PURCHASED = "purchased"
    FAILED = "failed"
    SAVINGS_VERIFIED = "savings_verified"
    SAVINGS_SHORTFALL = "savings_shortfall"


FINAL_STATES: frozenset[DecisionState] = frozenset(
    {
        DecisionState.REJECTED,
        DecisionState.EXPIRED,
        DecisionState.FAILED,
        DecisionState.SAVINGS_VERIFIED,
        DecisionState.SAVINGS_SHORTFALL,
    }
)
"""States a decision never leaves. An approved decision of a kind that buys nothing (rightsizing, idle) is
final when approved: the owning team implements it."""


class Requirement(BaseModel):
    """One persona's part in an approval: how many distinct people of that persona must approve."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    persona: Persona
    quorum: int = Field(default=1, ge=1)
    team: str | None = None
    """For engineering: approvers must belong to this team (the owning team)."""


class Approval(BaseModel):
    """One approval given, by a person (or by automation under an autopilot rule)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    principal: str
    persona: Persona | None
    """None for automation."""
    at: datetime
    comment: str = ""
    on_behalf_of: str | None = None
    """Set when the approver acts under a delegation."""
    rule: str | None = None
    """For an automatic approval: the policy rule that allowed it."""


class _DecisionEvent(Event):
    TOPIC: ClassVar[Topic] = DECISION

    decision_id: uuid.UUID
    recommendation_id: uuid.UUID
    kind: Kind
    owner_team: str
    state: DecisionState

    def key(self) -> str:
        return str(self.decision_id)

    def subject(self) -> str:
        return str(self.recommendation_id)


class DecisionProposed(_DecisionEvent):
    """A recommendation became a decision to take, with the numbers the policy judges it by."""

    TYPE: ClassVar[str] = "finops.decision.proposed.v1"

    title: str
    proposer: str
    """Who proposed it: the recommend service, or a person; the proposer can never approve it."""
    estimated_monthly_savings: Money
    monthly_commitment: Money | None = None
    """For a commitment: what it costs per month, used or not."""
    term_months: int | None = None
    risk: str = "low"
    policy_version: int
    billing_account_id: str | None = None
    provider_name: str | None = None
    purchase: CommitmentPurchase | None = None
    """For a commitment plan: the tranche this decision buys."""


class ApprovalRequested(_DecisionEvent):
    """Approvals are needed: the policy names the personas (and people, when it does) who must act by `due_at`.
    Sent again, with a higher `reminder`, as an escalation while approvals are missing."""

    TYPE: ClassVar[str] = "finops.decision.approval_requested.v1"

    title: str
    requirements: tuple[Requirement, ...]
    approvers: tuple[str, ...] = ()
    """People named by the policy or by delegation, when it names any."""
    policy_version: int
    policy_rule: str
    due_at: datetime
    estimated_monthly_savings: Money
    monthly_commitment: Money | None = None
    reminder: int = Field(default=0, ge=0)


class DecisionApproved(_DecisionEvent):
    """Every requirement is met (or an autopilot rule allowed it)."""

    TYPE: ClassVar[str] = "finops.decision.approved.v1"

    approvals: tuple[Approval, ...]
    automatic: bool = False
    policy_version: int
    policy_rule: str
    waited_seconds: Amount
    """From proposed to approved."""


class DecisionRejected(_DecisionEvent):
    """A person the policy asks refused it, with a comment; final."""

    TYPE: ClassVar[str] = "finops.decision.rejected.v1"

    principal: str
    persona: Persona | None
    comment: str
    at: datetime


class DecisionExpired(_DecisionEvent):
    """Approvals did not arrive in time, or the recommendation was superseded or expired first."""

    TYPE: ClassVar[str] = "finops.decision.expired.v1"

    reason: str
    at: datetime


class PurchaseRequested(_DecisionEvent):
    """Automation should buy this commitment. `client_token` (the decision id) makes the buy idempotent."""

    TYPE: ClassVar[str] = "finops.decision.purchase_requested.v1"

    client_token: str
    provider_name: str
    billing_account_id: str | None = None
    purchase: CommitmentPurchase
    estimated_monthly_savings: Money


class _Verification(_DecisionEvent):
    commitment_id: str
    window_start: datetime
    window_end: datetime
    estimated_savings: Money
    """The estimate pro-rated to the window."""
    realized_savings: Money
    """On-demand-equivalent cost of the usage the commitment covered, less what the commitment cost."""
    realization: Amount
    """realized / estimated."""
    lines_matched: int = Field(ge=0)


class SavingsVerified(_Verification):
    """Cost lines that use the commitment show at least the tolerated share of the estimated savings."""

    TYPE: ClassVar[str] = "finops.decision.savings_verified.v1"


class SavingsShortfall(_Verification):
    """The bill shows less saving than estimated, beyond the tolerance."""

    TYPE: ClassVar[str] = "finops.decision.savings_shortfall.v1"

    reason: str


class _PurchaseEvent(Event):
    TOPIC: ClassVar[Topic] = PURCHASE

    decision_id: uuid.UUID
    client_token: str
    provider_name: str
    dry_run: bool
    """True when nothing was really bought (the default: real money needs explicit configuration)."""

    def key(self) -> str:
        return str(self.decision_id)


class CommitmentPurchased(_PurchaseEvent):
    """The commitment was bought (with dry_run: would have been): the provider's id and its terms."""

    TYPE: ClassVar[str] = "finops.purchase.commitment_purchased.v1"

    commitment_id: str
    """The provider's id of the commitment (a Savings Plan ARN, a reservation order id...); cost lines that use
    it carry it as CommitmentDiscountId."""
    program: str
    term_months: int
    payment: str
    start: datetime
    end: datetime
    commitment_per_hour: Money
    upfront: Money
    attempts: int = Field(default=1, ge=1)


class PurchaseFailed(_PurchaseEvent):
    """Final: the provider refused, or retries ran out. Nothing was bought."""

    TYPE: ClassVar[str] = "finops.purchase.failed.v1"

    reason: str
    attempts: int = Field(ge=1)


DECISION_EVENTS: tuple[type[Event], ...] = (
    DecisionProposed,
    ApprovalRequested,
    DecisionApproved,
    DecisionRejected,
    DecisionExpired,
    PurchaseRequested,
    SavingsVerified,
    SavingsShortfall,
)
PURCHASE_EVENTS: tuple[type[Event], ...] = (CommitmentPurchased, PurchaseFailed)

register(*DECISION_EVENTS, *PURCHASE_EVENTS)
