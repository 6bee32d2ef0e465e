"""Event contracts shared by every service: the envelope, the topics, money and the payloads."""

from finops_contracts.cloudevents import Envelope, InvalidEnvelope
from finops_contracts.events import (
    EVENT_TYPES,
    BillingPeriodSuperseded,
    CostAllocated,
    CostBatchIngested,
    CostLine,
    CostPeriodCompleted,
    CurrencyTotal,
    Event,
    IngestAccepted,
    IngestCompleted,
    IngestRejected,
    OwnerCost,
    RejectionDetail,
    period_key,
)
from finops_contracts.money import Amount, CurrencyCode, Money
from finops_contracts.topics import ALLOCATION, COST, INGEST, TOPICS, Topic

__all__ = [
    "ALLOCATION",
    "COST",
    "EVENT_TYPES",
    "INGEST",
    "TOPICS",
    "Amount",
    "BillingPeriodSuperseded",
    "CostAllocated",
    "CostBatchIngested",
    "CostLine",
    "CostPeriodCompleted",
    "CurrencyCode",
    "CurrencyTotal",
    "Envelope",
    "Event",
    "IngestAccepted",
    "IngestCompleted",
    "IngestRejected",
    "InvalidEnvelope",
    "Money",
    "OwnerCost",
    "RejectionDetail",
    "Topic",
    "period_key",
]
