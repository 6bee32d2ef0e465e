"""Event payloads. The only place a schema is defined; the AsyncAPI document is generated from these.

Evolution rule: add optional fields only. A breaking change is a new `ce_type` major version.
Consumers ignore unknown fields (extra="ignore") and skip unknown types.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from finops_contracts.money import Amount, CurrencyCode, Money
from finops_contracts.topics import ALLOCATION, BUSINESS, COST, INGEST, OWNERSHIP, Topic

if TYPE_CHECKING:
    import pyarrow as pa

JSON = "application/json"


class Event(BaseModel):
    """Base of every event payload: frozen, tolerant of fields added by newer producers."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    TOPIC: ClassVar[Topic]
    CONTENT_TYPE: ClassVar[str] = JSON

    def encode(self) -> bytes:
        """The Kafka record value."""
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        """The event from a Kafka record value; pydantic.ValidationError (or ValueError) when it is not one."""
        return cls.model_validate_json(payload)

    def key(self) -> str:
        """The Kafka key: the aggregate whose order matters."""
        raise NotImplementedError

    def subject(self) -> str | None:
        return None


def period_key(billing_account_id: str, billing_period_start: datetime) -> str:
    return f"{billing_account_id}/{billing_period_start:%Y-%m}"


class CostLine(BaseModel):
    """One normalized cost line; names follow FOCUS 1.2 columns in snake case."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    billing_account_id: str
    billing_period_start: datetime
    billing_period_end: datetime
    charge_period_start: datetime
    charge_period_end: datetime
    charge_category: str
    charge_class: str | None = None
    charge_frequency: str | None = None
    billing_currency: CurrencyCode
    billed_cost: Amount
    effective_cost: Amount
    list_cost: Amount | None = None
    contracted_cost: Amount | None = None
    provider_name: str
    sub_account_id: str | None = None
    service_name: str | None = None
    service_category: str | None = None
    region_id: str | None = None
    resource_id: str | None = None
    sku_id: str | None = None
    consumed_quantity: Amount | None = None
    consumed_unit: str | None = None
    pricing_category: str | None = None
    pricing_quantity: Amount | None = None
    pricing_unit: str | None = None
    commitment_discount_id: str | None = None
    commitment_discount_category: str | None = None
    commitment_discount_status: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class CostBatchIngested(Event):
    """A batch of cost lines of one billing account and period, read from one billing file.

    The record value is an Arrow IPC stream (see `finops_contracts.costframe`): these fields travel in its
    metadata, the lines as columns named and typed after `CostLine`. `frame` holds the lines; `lines()` turns
    them into models for code that is not on the volume path."""

    TYPE: ClassVar[str] = "finops.cost.batch_ingested.v2"
    TOPIC: ClassVar[Topic] = COST
    CONTENT_TYPE: ClassVar[str] = "application/vnd.apache.arrow.stream"

    ingest_id: uuid.UUID
    batch_seq: int = Field(ge=0)
    billing_account_id: str
    billing_period_start: datetime
    line_count: int = Field(ge=1)
    _frame: pa.Table | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, frame: pa.Table, **fields: object) -> CostBatchIngested:
        """A batch of the lines in `frame` (a cost-line frame); the other fields as keywords."""
        from finops_contracts import costframe

        event = cls.model_validate({**fields, "line_count": frame.num_rows})
        event._frame = costframe.conform(frame)
        return event

    @classmethod
    def of_lines(cls, lines: tuple[CostLine, ...] | list[CostLine], **fields: object) -> CostBatchIngested:
        from finops_contracts import costframe

        return cls.of(costframe.frame_of(lines), **fields)

    @property
    def frame(self) -> pa.Table:
        if self._frame is None:
            raise ValueError("this CostBatchIngested carries no lines")
        return self._frame

    def lines(self) -> list[CostLine]:
        from finops_contracts import costframe

        return costframe.lines_of(self.frame)

    def encode(self) -> bytes:
        from finops_contracts import costframe

        return costframe.encode(self.model_dump(mode="json"), self.frame)

    @classmethod
    def decode(cls, payload: bytes) -> CostBatchIngested:
        from finops_contracts import costframe

        header, frame = costframe.decode(payload)
        event = cls.model_validate(header)
        if event.line_count != frame.num_rows:
            raise costframe.FrameError(f"line_count is {event.line_count} but the stream has {frame.num_rows} lines")
        event._frame = frame
        return event

    def key(self) -> str:
        return period_key(self.billing_account_id, self.billing_period_start)

    def subject(self) -> str:
        return self.key()


class CurrencyTotal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    currency: CurrencyCode
    billed_cost: Amount
    effective_cost: Amount
    line_count: int


class CostPeriodCompleted(Event):
    """Every batch of one billing account and period from one file was published before this, on the same
    partition. Its version supersedes lower versions of the period: consumers replace, never add."""

    TYPE: ClassVar[str] = "finops.cost.period_completed.v1"
    TOPIC: ClassVar[Topic] = COST

    ingest_id: uuid.UUID
    provider_name: str
    billing_account_id: str
    billing_period_start: datetime
    version: int = Field(ge=1)
    batch_count: int = Field(ge=1)
    line_count: int = Field(ge=1)
    totals: tuple[CurrencyTotal, ...]

    def key(self) -> str:
        return period_key(self.billing_account_id, self.billing_period_start)

    def subject(self) -> str:
        return self.key()


class BillingPeriodSuperseded(Event):
    """A newer file restated a billing period; the older version no longer counts downstream."""

    TYPE: ClassVar[str] = "finops.ingest.period_superseded.v1"
    TOPIC: ClassVar[Topic] = INGEST

    provider_name: str
    billing_account_id: str
    billing_period_start: datetime
    superseded_ingest_id: uuid.UUID
    superseded_version: int
    ingest_id: uuid.UUID
    version: int

    def key(self) -> str:
        return str(self.ingest_id)

    def subject(self) -> str:
        return period_key(self.billing_account_id, self.billing_period_start)


class RejectionDetail(BaseModel):
    """One kind of error in a rejected file: the first place it occurs, and how many rows have it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    row: int | None = None
    column: str | None = None
    value: str | None = None
    rule: str
    hint: str
    count: int = 1


class IngestAccepted(Event):
    """A billing file was read and validated whole; its batches follow on the cost topic."""

    TYPE: ClassVar[str] = "finops.ingest.accepted.v1"
    TOPIC: ClassVar[Topic] = INGEST

    ingest_id: uuid.UUID
    file_name: str
    sha256: str
    format: str
    size_bytes: int
    warnings: dict[str, int] = Field(default_factory=dict)

    def key(self) -> str:
        return str(self.ingest_id)

    def subject(self) -> str:
        return self.file_name


class IngestRejected(Event):
    """A billing file was refused whole; nothing of it was published."""

    TYPE: ClassVar[str] = "finops.ingest.rejected.v1"
    TOPIC: ClassVar[Topic] = INGEST

    ingest_id: uuid.UUID
    file_name: str
    sha256: str
    errors: tuple[RejectionDetail, ...]

    def key(self) -> str:
        return str(self.ingest_id)

    def subject(self) -> str:
        return self.file_name


class IngestCompleted(Event):
    """A billing file was read whole and all its cost batches are in the outbox."""

    TYPE: ClassVar[str] = "finops.ingest.completed.v1"
    TOPIC: ClassVar[Topic] = INGEST

    ingest_id: uuid.UUID
    file_name: str
    sha256: str
    row_count: int
    batch_count: int
    totals: tuple[CurrencyTotal, ...]

    def key(self) -> str:
        return str(self.ingest_id)

    def subject(self) -> str:
        return self.file_name


class OwnerCost(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    owner: str
    currency: CurrencyCode
    billed_cost: Amount
    effective_cost: Amount
    line_count: int


class CostAllocated(Event):
    """The lines of one cost batch were allocated to owners."""

    TYPE: ClassVar[str] = "finops.allocation.cost_allocated.v1"
    TOPIC: ClassVar[Topic] = ALLOCATION

    source_event_id: uuid.UUID
    ingest_id: uuid.UUID
    billing_account_id: str
    billing_period_start: datetime
    allocations: tuple[OwnerCost, ...]

    def key(self) -> str:
        return period_key(self.billing_account_id, self.billing_period_start)

    def subject(self) -> str:
        return self.key()


class JournalExported(Event):
    """A billing period was closed and its general-ledger journal is ready for the ERP: balanced debit and
    credit lines per cost center and GL account. The same period always has the same journal id and content."""

    TYPE: ClassVar[str] = "finops.allocation.journal_exported.v1"
    TOPIC: ClassVar[Topic] = ALLOCATION

    billing_period_start: datetime
    journal_id: uuid.UUID
    entity: str
    closed_by: str
    line_count: int
    debits: tuple[Money, ...]
    csv_url: str
    json_url: str

    def key(self) -> str:
        return f"period/{self.billing_period_start:%Y-%m}"

    def subject(self) -> str:
        return self.key()


class BudgetAlerted(Event):
    """A budget threshold was crossed by the actual cost so far, or by the forecast of the period's total.
    Published once per budget, threshold and basis."""

    TYPE: ClassVar[str] = "finops.allocation.budget_alerted.v1"
    TOPIC: ClassVar[Topic] = ALLOCATION

    scope_kind: str
    scope: str
    billing_period_start: datetime
    threshold: Amount
    basis: str
    amount: Money
    budget: Money
    actual: Money
    projected: Money
    as_of: datetime

    def key(self) -> str:
        return f"budget/{self.scope_kind}/{self.scope}"

    def subject(self) -> str:
        return f"{self.key()}/{self.billing_period_start:%Y-%m}"


class Coverage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    scope_kind: str
    scope: str
    total: Money
    tagged_share: Amount
    allocated_share: Amount


class CoverageMeasured(Event):
    """Tag coverage and allocation coverage per billing account and team of a period, after an allocation run:
    the share of EffectiveCost that carries tags, and the share allocated to a team and a cost center."""

    TYPE: ClassVar[str] = "finops.allocation.coverage_measured.v1"
    TOPIC: ClassVar[Topic] = ALLOCATION

    billing_period_start: datetime
    ruleset_version: int
    items: tuple[Coverage, ...]

    def key(self) -> str:
        return f"period/{self.billing_period_start:%Y-%m}"


class UnitCostReported(Event):
    """Unit economics: a product's allocated EffectiveCost in a period divided by a business metric."""

    TYPE: ClassVar[str] = "finops.allocation.unit_cost_reported.v1"
    TOPIC: ClassVar[Topic] = ALLOCATION

    product: str
    billing_period_start: datetime
    metric: str
    units: Amount
    cost: Money
    unit_cost: Money

    def key(self) -> str:
        return f"product/{self.product}"

    def subject(self) -> str:
        return f"{self.key()}/{self.billing_period_start:%Y-%m}/{self.metric}"


class ResourceOwned(Event):
    """Who owns a resource, as the allocation run `run` (under rule set `ruleset_version`) decided it for the
    billing period: the allocation rules first, then the resource's tags, else "unallocated". `decided_by` names
    the deciding rule ("rule:<name>"), tag ("tag:<key>") or "unallocated".

    Allocation is the only place an owner is decided; other services keep the newest of these per resource and
    treat a resource with none as "unallocated". An event is stale, and ignored, when the consumer already holds
    one for the resource with a later (billing_period_start, run)."""

    TYPE: ClassVar[str] = "finops.ownership.resource_owned.v1"
    TOPIC: ClassVar[Topic] = OWNERSHIP

    billing_account_id: str
    resource_id: str = Field(min_length=1)
    billing_period_start: datetime
    owner_team: str = Field(min_length=1)
    cost_center: str | None = None
    decided_by: str
    run: int
    ruleset_version: int

    def key(self) -> str:
        return f"{self.billing_account_id}/{self.resource_id}"

    def subject(self) -> str:
        return self.key()


class BusinessMetricReported(Event):
    """A business system reports a metric of a product for a billing period (units such as orders)."""

    TYPE: ClassVar[str] = "finops.business.metric_reported.v1"
    TOPIC: ClassVar[Topic] = BUSINESS

    product: str = Field(min_length=1)
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    metric: str = Field(min_length=1)
    units: Amount

    def key(self) -> str:
        return self.product


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        CostBatchIngested,
        CostPeriodCompleted,
        IngestAccepted,
        IngestCompleted,
        IngestRejected,
        BillingPeriodSuperseded,
        CostAllocated,
        JournalExported,
        BudgetAlerted,
        CoverageMeasured,
        UnitCostReported,
        ResourceOwned,
        BusinessMetricReported,
    )
}


def register(*events: type[Event]) -> None:
    """Add event types defined in other contract modules (finops_contracts.recommendations, say) to
    EVENT_TYPES, so consumers can decode them."""
    for event in events:
        EVENT_TYPES[event.TYPE] = event
