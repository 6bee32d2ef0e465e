"""The topic registry: every topic, who owns it, its partition count and what its key is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    owner: str
    partitions: int
    key: str
    description: str

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


COST = Topic(
    name="finops.cost.v1",
    owner="ingest",
    partitions=6,
    key="billing account id and billing period, '<account>/<YYYY-MM>'",
    description="Batches of normalized cost lines, as ingested from billing files.",
)
INGEST = Topic(
    name="finops.ingest.v1",
    owner="ingest",
    partitions=3,
    key="ingest id",
    description="Lifecycle of each billing file: accepted, completed, rejected, superseded.",
)
ALLOCATION = Topic(
    name="finops.allocation.v1",
    owner="allocation",
    partitions=6,
    key="billing account id and billing period, '<account>/<YYYY-MM>'",
    description="Cost allocated to owners, one event per cost batch allocated.",
)
OWNERSHIP = Topic(
    name="finops.ownership.v1",
    owner="allocation",
    partitions=6,
    key="billing account id and resource id, '<account>/<resource id>' (compactable: the newest record per key "
    "is the resource's owner)",
    description="Who owns each resource, as allocation decided it: one ResourceOwned per resource per allocation run.",
)

RECOMMENDATION = Topic(
    name="finops.recommendation.v1",
    owner="recommend",
    partitions=6,
    key="recommendation id",
    description="Recommendations (commitment plans, rightsizing, idle resources, anomalies) through their "
    "lifecycle: issued, updated, superseded, expired; and the optimization KPIs.",
)

BUSINESS = Topic(
    name="finops.business.v1",
    owner="business systems",
    partitions=3,
    key="product",
    description="Business metrics (transactions, active customers...) per product and period, for unit economics.",
)

DECISION = Topic(
    name="finops.decision.v1",
    owner="decision",
    partitions=6,
    key="decision id",
    description="Decisions on recommendations under the persona approval policy: proposed, approval requested, "
    "approved, rejected, expired, purchase requested, savings verified or shortfall.",
)
PURCHASE = Topic(
    name="finops.purchase.v1",
    owner="purchase",
    partitions=6,
    key="decision id",
    description="Results of commitment purchases executed through provider adapters: purchased or failed.",
)

TOPICS: tuple[Topic, ...] = (COST, INGEST, ALLOCATION, OWNERSHIP, RECOMMENDATION, BUSINESS, DECISION, PURCHASE)
BY_NAME: dict[str, Topic] = {t.name: t for t in TOPICS}
