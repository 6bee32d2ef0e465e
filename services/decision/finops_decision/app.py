"""The decision service: recommendations become decisions judged by the persona approval policy; approved
commitments are requested from the purchase service once (the decision id is the client token); the bill then
shows whether the savings were realized."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import Field

from finops_contracts.cloudevents import Envelope
from finops_contracts.decisions import DECISION_EVENTS, CommitmentPurchased, PurchaseFailed
from finops_contracts.events import CostBatchIngested, CostPeriodCompleted, Event
from finops_contracts.recommendations import (
    RecommendationExpired,
    RecommendationIssued,
    RecommendationSuperseded,
    RecommendationUpdated,
)
from finops_contracts.topics import COST, DECISION, PURCHASE, RECOMMENDATION
from finops_decision import api, guard, service
from finops_runtime.app import ServiceRuntime
from finops_runtime.inbox import Rejected
from finops_runtime.jobs import repeat
from finops_runtime.settings import Settings

SCHEMA = "decision"
CONSUMER_GROUP = "decision"


class DecisionSettings(Settings):
    service_name: str = "decision"
    http_port: int = 8005
    verify_min_hours: Decimal = Field(default=Decimal(168), gt=0)
    """FINOPS_VERIFY_MIN_HOURS: hours of cost lines using a commitment before its savings are judged."""
    decision_tick_s: float = Field(default=5.0, gt=0)
    """FINOPS_DECISION_TICK_S: how often the loop looks for decisions to expire or remind when none was due."""
    guard_max_usage_share: Decimal = Field(default=Decimal(1), gt=0)
    """FINOPS_GUARD_MAX_USAGE_SHARE: a purchase request is refused when its hourly commitment exceeds this share of
    the pool's median hourly usage over the lookback (as this service observed it from the cost batches)."""
    guard_lookback_days: int = Field(default=30, gt=0)
    """FINOPS_GUARD_LOOKBACK_DAYS: the days of usage the guard's median covers, unless the plan names its own."""

    def limits(self) -> guard.Guard:
        return guard.Guard(max_usage_share=self.guard_max_usage_share, lookback_days=self.guard_lookback_days)


def _now() -> datetime:
    return datetime.now(UTC)


def on_recommendation_for(settings: DecisionSettings) -> Any:
    async def on_recommendation(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, RecommendationIssued | RecommendationUpdated)
        await service.on_recommendation(conn, event, now=_now(), limits=settings.limits())

    return on_recommendation


def on_period_completed_for(settings: DecisionSettings) -> Any:
    async def on_period_completed(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        """The newest complete version of an account-period counts: for the guard's usage and for the savings,
        judged (again) from it."""
        assert isinstance(event, CostPeriodCompleted)
        await service.on_period_completed(conn, event, now=_now(), min_hours=settings.verify_min_hours)

    return on_period_completed


async def on_recommendation_closed(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, RecommendationSuperseded | RecommendationExpired)
    await service.on_recommendation_closed(conn, event, now=_now())


async def on_purchase(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, CommitmentPurchased | PurchaseFailed)
    try:
        await service.on_purchase(conn, event, now=_now())
    except service.NotFound as exc:
        raise Rejected(str(exc)) from exc


def on_cost_batch_for(settings: DecisionSettings) -> Any:
    async def on_cost_batch(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        """Keep the pool usage the guard checks, and match the batch's lines to purchased commitments, once per
        batch."""
        assert isinstance(event, CostBatchIngested)
        await service.on_cost_batch(conn, event, now=_now())

    return on_cost_batch


def build_runtime(settings: DecisionSettings | None = None, **fields: object) -> ServiceRuntime:
    """The decision service's runtime: subscriptions, the expiry and reminder loop, and the API."""
    settings = settings or DecisionSettings(**fields)
    runtime = ServiceRuntime(
        settings,
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        topics=[RECOMMENDATION, PURCHASE, COST, DECISION],
        publishes=DECISION_EVENTS,
        description="Turns recommendations into decisions approved under the persona policy (who approves what, "
        "by kind, amount, term and risk; separation of duties; expiring approvals; autopilot guardrails), "
        "requests approved commitments once, and verifies their savings against the bill.",
    )
    runtime.subscribe(
        RECOMMENDATION,
        group=CONSUMER_GROUP,
        handlers={
            RecommendationIssued.TYPE: on_recommendation_for(settings),
            RecommendationUpdated.TYPE: on_recommendation_for(settings),
            RecommendationSuperseded.TYPE: on_recommendation_closed,
            RecommendationExpired.TYPE: on_recommendation_closed,
        },
    )
    # Own groups for the purchase answers and the bill, so a burst of cost batches never holds up approvals.
    runtime.subscribe(
        PURCHASE,
        group=f"{CONSUMER_GROUP}-purchase",
        handlers={CommitmentPurchased.TYPE: on_purchase, PurchaseFailed.TYPE: on_purchase},
    )
    runtime.subscribe(
        COST,
        group=f"{CONSUMER_GROUP}-cost",
        handlers={
            CostBatchIngested.TYPE: on_cost_batch_for(settings),
            CostPeriodCompleted.TYPE: on_period_completed_for(settings),
        },
    )
    runtime.path_routes = api.add_routes(runtime, limits=settings.limits())  # type: ignore[attr-defined]

    async def step(conn: asyncpg.Connection) -> bool:
        return await service.tick(conn, now=_now())

    runtime.on_started(
        lambda: [
            asyncio.create_task(
                repeat(runtime.pool, step, what="decision expiries and reminders", idle_s=settings.decision_tick_s),
                name="decision-tick",
            )
        ]
    )
    return runtime


def create_app(settings: DecisionSettings) -> api.WithPathRoutes:
    runtime = build_runtime(settings)
    return api.WithPathRoutes(runtime.app(), runtime.path_routes)  # type: ignore[attr-defined]
