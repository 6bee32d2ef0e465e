"""The recommend service: consumes cost batches into its usage model and, after billing periods complete,
publishes recommendations (commitment plans, rightsizing, idle resources, anomalies) and commitment KPIs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
from faststream.asgi import AsgiFastStream
from starlette.requests import Request
from starlette.responses import JSONResponse

from finops_contracts.cloudevents import Envelope
from finops_contracts.events import CostBatchIngested, CostPeriodCompleted, Event
from finops_contracts.recommendations import RECOMMENDATION_EVENTS
from finops_contracts.topics import COST, RECOMMENDATION
from finops_recommend import analysis, repository, runs, usage
from finops_runtime.access import Denied, Role, authenticate
from finops_runtime.app import ServiceRuntime
from finops_runtime.settings import Settings

SCHEMA = "recommend"
CONSUMER_GROUP = "recommend"
READERS = frozenset({Role.ENGINEERING, Role.FINANCE, Role.PRACTITIONER, Role.AUTOMATION, Role.ADMIN})
STATUSES = ("open", "issued", "updated", "superseded", "expired")


class RecommendSettings(Settings):
    service_name: str = "recommend"
    http_port: int = 8003
    analysis_quiet_s: float = 1.0
    """FINOPS_ANALYSIS_QUIET_S: how long the model must be untouched after a period completes before a run."""


async def on_cost_batch(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Add a batch of cost lines to the usage model, once per batch whatever its ce_id."""
    assert isinstance(event, CostBatchIngested)
    first = await repository.claim_batch(
        conn,
        ingest_id=event.ingest_id,
        batch_seq=event.batch_seq,
        billing_account_id=event.billing_account_id,
        period=event.billing_period_start,
    )
    if not first:
        return
    await repository.add_pool_usage(conn, event.ingest_id, usage.pool_usage(event.frame))
    await repository.add_resource_days(conn, event.ingest_id, usage.resource_days(event.frame))


async def on_period_completed(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """The newest complete version of a period counts; the analysis runs once the model is quiet."""
    assert isinstance(event, CostPeriodCompleted)
    key = dict(billing_account_id=event.billing_account_id, period=event.billing_period_start)
    current = await repository.current_version(conn, **key)
    if current is None or event.version > current["version"]:
        await repository.make_current(
            conn, **key, ingest_id=event.ingest_id, version=event.version, provider_name=event.provider_name
        )
        if current is not None and current["ingest_id"] != event.ingest_id:
            await repository.drop_ingest(conn, current["ingest_id"])
    elif event.ingest_id != current["ingest_id"]:
        await repository.drop_ingest(conn, event.ingest_id)  # an older version completing late never counts
    await repository.mark(conn)


def build_runtime(
    settings: RecommendSettings | None = None, *, model: analysis.Settings | None = None, **fields: object
) -> ServiceRuntime:
    """The recommend service's runtime with its subscription, analysis loop and routes."""
    settings = settings or RecommendSettings(**fields)
    model = model or analysis.Settings()
    runtime = ServiceRuntime(
        settings,
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        topics=[COST, RECOMMENDATION],
        publishes=RECOMMENDATION_EVENTS,
        description="Turns cost into recommendations (commitment purchase plans, rightsizing, idle resources, cost "
        "anomalies) with owner team and savings, and measures commitment KPIs per pool and month.",
    )
    runtime.subscribe(
        COST,
        group=CONSUMER_GROUP,
        handlers={CostBatchIngested.TYPE: on_cost_batch, CostPeriodCompleted.TYPE: on_period_completed},
    )

    async def recommendations(request: Request) -> JSONResponse:
        """GET ?status=open|issued|updated|superseded|expired&kind=...: recommendations, largest savings first.
        Engineering sees its own teams' only."""
        status = request.query_params.get("status")
        if status is not None and status not in STATUSES:
            return JSONResponse({"error": f"status must be one of {', '.join(STATUSES)}"}, status_code=400)
        async with runtime.pool.acquire() as conn:
            try:
                who = await authenticate(conn, request, allowed=READERS)
            except Denied as denied:
                return denied.response()
            teams = set(who.teams) if who.role is Role.ENGINEERING else None
            rows = await repository.list_recommendations(
                conn, status=status, kind=request.query_params.get("kind"), teams=teams
            )
        return JSONResponse(
            [
                {
                    **json.loads(r["content"]),
                    "status": r["status"],
                    "version": r["version"],
                    "superseded_by": str(r["superseded_by"]) if r["superseded_by"] else None,
                    "updated_at": r["updated_at"].isoformat(),
                }
                for r in rows
            ]
        )

    runtime.route("/v1/recommendations", recommendations)
    runtime.on_started(
        lambda: [
            asyncio.create_task(
                runs.loop(runtime.pool, model, quiet_s=settings.analysis_quiet_s), name="recommend-analysis"
            )
        ]
    )
    return runtime


def create_app(settings: RecommendSettings) -> AsgiFastStream:
    return build_runtime(settings).app()
