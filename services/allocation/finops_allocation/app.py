"""The allocation service: consumes cost batches, allocates them to owners, publishes CostAllocated."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg
from faststream.asgi import AsgiFastStream
from starlette.requests import Request
from starlette.responses import JSONResponse

from finops_allocation import ledger, ownership, repository, runs, unit_economics
from finops_allocation.allocate import owner_totals
from finops_allocation.api import add_routes
from finops_contracts.cloudevents import Envelope
from finops_contracts.events import (
    BudgetAlerted,
    BusinessMetricReported,
    CostAllocated,
    CostBatchIngested,
    CostPeriodCompleted,
    CoverageMeasured,
    Event,
    JournalExported,
    OwnerCost,
    ResourceOwned,
    UnitCostReported,
)
from finops_contracts.topics import ALLOCATION, BUSINESS, COST, OWNERSHIP
from finops_runtime import outbox
from finops_runtime.app import ServiceRuntime
from finops_runtime.inbox import Rejected
from finops_runtime.settings import Settings

SCHEMA = "allocation"
CONSUMER_GROUP = "allocation"
SOURCE = "/finops/allocation"
_ALLOCATED = uuid.UUID("a3b9f6de-5a55-4c1b-8a7e-0d1c9b4f2e10")


class AllocationSettings(Settings):
    service_name: str = "allocation"
    http_port: int = 8002


async def on_cost_batch(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Allocate one batch of cost lines and announce it, in the consumer's transaction."""
    assert isinstance(event, CostBatchIngested)
    facts = ledger.facts_of(event.frame)  # one pass over the lines; owners follow from the facts (rules, tags)
    _, ruleset = await ledger.current_rules(conn)
    totals = owner_totals(facts, ruleset)
    await ledger.add_facts(
        conn,
        billing_account_id=event.billing_account_id,
        billing_period_start=event.billing_period_start,
        ingest_id=event.ingest_id,
        facts=facts,
    )
    await ownership.add_resources(
        conn,
        billing_account_id=event.billing_account_id,
        billing_period_start=event.billing_period_start,
        ingest_id=event.ingest_id,
        frame=event.frame,
    )
    await repository.add_allocations(
        conn,
        billing_account_id=event.billing_account_id,
        billing_period_start=event.billing_period_start,
        ingest_id=event.ingest_id,
        totals=totals,
    )
    allocated = CostAllocated(
        source_event_id=envelope.id,
        ingest_id=event.ingest_id,
        billing_account_id=event.billing_account_id,
        billing_period_start=event.billing_period_start,
        allocations=tuple(
            OwnerCost(
                owner=owner,
                currency=currency,
                billed_cost=t.billed_cost,
                effective_cost=t.effective_cost,
                line_count=t.line_count,
            )
            for (owner, currency), t in sorted(totals.items())
        ),
    )
    # Derived from the source event id, so a redelivered batch can never announce twice.
    await outbox.add(
        conn, [outbox.message_for(allocated, source=SOURCE, event_id=uuid.uuid5(_ALLOCATED, str(envelope.id)))]
    )


async def on_business_metric(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """A business system's metric: store it and announce the product's unit cost."""
    assert isinstance(event, BusinessMetricReported)
    metric = {"product": event.product, "period": event.period, "metric": event.metric, "units": event.units}
    await unit_economics.report(conn, [metric], by=envelope.source)


async def on_period_completed(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Check conservation for the version just completed, then let the newest complete version count."""
    assert isinstance(event, CostPeriodCompleted)
    key = dict(billing_account_id=event.billing_account_id, billing_period_start=event.billing_period_start)
    expected = {t.currency: (t.billed_cost, t.effective_cost, t.line_count) for t in event.totals}
    # The ledger (which feeds chargeback and journals) must hold exactly the file's lines; each run of the
    # period checks its allocation against these totals again (ledger.check_conservation).
    found = await ledger.fact_totals(conn, **key, ingest_id=event.ingest_id)
    if found != expected:
        # Every batch precedes its completion on the partition, so a gap means batches were dead-lettered.
        raise Rejected(
            f"conservation check failed for {event.key()} version {event.version}: "
            f"the ledger holds {_describe(found)}, the file has {_describe(expected)}"
        )
    await ledger.record_bill(
        conn,
        **key,
        ingest_id=event.ingest_id,
        version=event.version,
        totals=[(t.currency, t.billed_cost, t.effective_cost, t.line_count) for t in event.totals],
    )
    current = await repository.current_version(conn, **key)
    if current is None or event.version > current["version"]:
        await repository.make_current(
            conn,
            **key,
            ingest_id=event.ingest_id,
            version=event.version,
            provider_name=event.provider_name,
            line_count=event.line_count,
        )
        await ledger.mark(conn, event.billing_period_start)
    else:
        # An older version completing late never counts.
        await repository.drop_other_versions(conn, **key, keep=current["ingest_id"])


def _describe(totals: dict[str, tuple[Decimal, Decimal, int]]) -> str:
    return (
        "; ".join(f"{c}: billed {b}, effective {e}, {n} lines" for c, (b, e, n) in sorted(totals.items())) or "nothing"
    )


def build_runtime(settings: AllocationSettings | None = None, **fields: object) -> ServiceRuntime:
    """The allocation service's runtime with its subscription and routes."""
    settings = settings or AllocationSettings(**fields)
    runtime = ServiceRuntime(
        settings,
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        topics=[ALLOCATION, OWNERSHIP, COST, BUSINESS],
        publishes=[CostAllocated, JournalExported, BudgetAlerted, CoverageMeasured, UnitCostReported, ResourceOwned],
        description="Allocates ingested cost to owners (allocation rules, else the team tag) and announces each "
        "allocation and, per allocation run, each resource's owner (ResourceOwned).",
    )
    # A group of its own: the business topic's members never make the cost consumers rebalance.
    runtime.subscribe(
        BUSINESS, group=f"{CONSUMER_GROUP}-business", handlers={BusinessMetricReported.TYPE: on_business_metric}
    )
    runtime.subscribe(
        COST,
        group=CONSUMER_GROUP,
        handlers={CostBatchIngested.TYPE: on_cost_batch, CostPeriodCompleted.TYPE: on_period_completed},
    )

    async def totals(request: Request) -> JSONResponse:
        """BilledCost and EffectiveCost per billing account and currency."""
        async with runtime.pool.acquire() as conn:
            rows = await repository.totals_by_account(conn)
        return JSONResponse([_jsonable(dict(r)) for r in rows])

    async def by_owner(request: Request) -> JSONResponse:
        async with runtime.pool.acquire() as conn:
            rows = await repository.cost_by_owner(conn)
        return JSONResponse([_jsonable(dict(r)) for r in rows])

    add_routes(runtime)
    runtime.on_started(lambda: [asyncio.create_task(runs.loop(runtime.pool), name="allocation-runs")])
    runtime.route("/v1/allocation/totals", totals)
    runtime.route("/v1/allocation/by-owner", by_owner)
    return runtime


def create_app(settings: AllocationSettings) -> AsgiFastStream:
    return build_runtime(settings).app()


def _jsonable(row: dict[str, object]) -> dict[str, object]:
    return {
        k: format(v, "f") if isinstance(v, Decimal) else v if isinstance(v, (str, int)) else str(v)
        for k, v in row.items()
    }
