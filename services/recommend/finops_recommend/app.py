"""The recommend service: consumes cost batches into its usage model and, after billing periods complete,
publishes recommendations (commitment plans, rightsizing, idle resources, anomalies) and commitment KPIs."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
from faststream.asgi import AsgiFastStream
from pydantic import Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse

from finops_contracts.cloudevents import Envelope
from finops_contracts.decisions import CommitmentPurchased, DecisionRejected, PurchaseRequested
from finops_contracts.events import CostBatchIngested, CostPeriodCompleted, Event, ResourceOwned
from finops_contracts.recommendations import RECOMMENDATION_EVENTS
from finops_contracts.topics import COST, DECISION, OWNERSHIP, PURCHASE, RECOMMENDATION
from finops_recommend import analysis, existing, prices, repository, runs, usage, utilization
from finops_recommend.commitments import Settings as PlannerSettings
from finops_recommend.prices import NO_UPFRONT, UPFRONT_SHARE, PriceTable, Program, allowed_payments
from finops_recommend.uploads import UnreadableUpload, read_rows
from finops_runtime import outbox, owners
from finops_runtime.access import Denied, Role, authenticate
from finops_runtime.app import ServiceRuntime
from finops_runtime.inbox import Handler
from finops_runtime.settings import Settings

SCHEMA = "recommend"
CONSUMER_GROUP = "recommend"
READERS = frozenset({Role.ENGINEERING, Role.FINANCE, Role.PRACTITIONER, Role.AUTOMATION, Role.ADMIN})
COMMITMENT_WRITERS = frozenset({Role.FINANCE, Role.PRACTITIONER, Role.AUTOMATION, Role.ADMIN})
METRICS_WRITERS = frozenset({Role.PRACTITIONER, Role.AUTOMATION, Role.ADMIN})
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
STATUSES = ("open", "issued", "updated", "superseded", "expired")


class RecommendSettings(Settings):
    service_name: str = "recommend"
    http_port: int = 8003
    analysis_quiet_s: float = 1.0
    """FINOPS_ANALYSIS_QUIET_S: how long the model must be untouched after a period completes before a run."""
    coverage_target: float = Field(default=1.0, gt=0, le=1)
    """FINOPS_COVERAGE_TARGET: the most a plan may cover of an account's projected usage, all its pools together
    (1.0: no bound; 0.8 keeps a fifth on demand, whatever the quantile rule says)."""
    risk_margin: float = Field(default=0.0, ge=0, lt=0.5)
    """FINOPS_RISK_MARGIN: commit at the (discount - margin)-quantile, a little under the rule (off by default:
    see the planner's Settings)."""
    payment_options: str = NO_UPFRONT
    """FINOPS_PAYMENT_OPTIONS: the payment options plans may choose, comma-separated (no_upfront, partial_upfront,
    all_upfront); no upfront always. Paying upfront is finance's call, so it is off until finance allows it."""
    price_table: Path | None = None
    """FINOPS_PRICE_TABLE: a CSV or JSON file of discount rates (program, term_months, payment, discount, source,
    note) replacing the shipped defaults of the same program, term and payment: negotiated or current rates."""
    cost_of_capital: Decimal = Field(default=Decimal("0.08"), ge=0, lt=1)
    """FINOPS_COST_OF_CAPITAL: the yearly cost of money paid upfront, against which an upfront discount is
    weighed."""

    @field_validator("payment_options")
    @classmethod
    def _known_payments(cls, value: str) -> str:
        names = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [n for n in names if n not in UPFRONT_SHARE]
        if unknown:
            raise ValueError(f"unknown payment option {', '.join(unknown)}: use {', '.join(UPFRONT_SHARE)}")
        return ",".join(names)


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
    await repository.add_pool_usage(conn, event.ingest_id, event.billing_period_start, usage.pool_usage(event.frame))
    await repository.add_resource_days(
        conn, event.ingest_id, event.billing_period_start, usage.resource_days(event.frame)
    )
    await repository.add_family_usage(
        conn, event.ingest_id, event.billing_period_start, usage.family_usage(event.frame)
    )
    await repository.add_commitment_usage(
        conn, event.ingest_id, event.billing_period_start, usage.commitment_usage(event.frame)
    )


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
            await repository.drop_version(conn, **key, ingest_id=current["ingest_id"])
    elif event.ingest_id != current["ingest_id"]:
        await repository.drop_version(
            conn, **key, ingest_id=event.ingest_id
        )  # an older version completing late never counts
    await repository.mark(conn)


async def on_resource_owned(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Keep the owner allocation published for a resource; a newer one marks the model, so the next analysis run
    gives the resource's recommendations that owner (whether the owner came before or after them)."""
    assert isinstance(event, ResourceOwned)
    if await owners.keep(conn, event):
        await repository.mark(conn)


async def on_purchase_requested(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Remember what a requested purchase covers (account, program, scope, usage per hour) until it is bought."""
    assert isinstance(event, PurchaseRequested)
    p = event.purchase
    await repository.save_purchase_request(
        conn,
        decision_id=event.decision_id,
        recommendation_id=event.recommendation_id,
        billing_account_id=event.billing_account_id,
        provider_name=event.provider_name,
        program=p.program,
        term_months=p.term_months,
        payment=p.payment,
        scope=dict(p.scope),
        commitment_per_hour=p.commitment_per_hour.amount,
        covered_usage_per_hour=p.covered_usage_per_hour,
        currency=p.commitment_per_hour.currency,
    )


async def on_commitment_purchased(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """A bought commitment counts as held from its start; the next analysis plans with it."""
    assert isinstance(event, CommitmentPurchased)
    program = Program(event.program) if event.program in Program._value2member_map_ else None
    await repository.save_commitment(
        conn,
        existing.KnownCommitment(
            commitment_id=event.commitment_id,
            source="purchase",
            program=program,
            starts_at=event.start,
            ends_at=event.end,
            term_months=event.term_months,
            payment=event.payment,
            provider_name=event.provider_name,
            commitment_per_hour=event.commitment_per_hour.amount,
            currency=event.commitment_per_hour.currency,
            dry_run=event.dry_run,
        ),
        decision_id=event.decision_id,
    )
    await repository.mark(conn)


def on_decision_rejected_for(model: analysis.Settings) -> Handler:
    async def on_decision_rejected(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        """Advice a person rejected is not given again for its target during the cool-down; the open one ends."""
        assert isinstance(event, DecisionRejected)
        rec = await repository.recommendation(conn, event.recommendation_id)
        if rec is None:
            return  # a decision on advice this service did not give (proposed by a person)
        until = event.at + timedelta(days=model.rejection_cooldown_days)
        await repository.save_rejection(
            conn, recommendation_id=event.recommendation_id, decision_id=event.decision_id, kind=rec["kind"],
            target=rec["target"], principal=event.principal, comment=event.comment, rejected_at=event.at, until=until,
        )  # fmt: skip
        opened = await repository.open_recommendations(conn)
        current = opened.get((rec["kind"], rec["target"]))
        if current is not None:
            reason = f"rejected by {event.principal}: not advised again for {rec['target']} before {until:%Y-%m-%d}"
            messages = await runs.expire(conn, current, now=event.at, reason=reason)
            await outbox.add(conn, messages)

    return on_decision_rejected


def build_runtime(
    settings: RecommendSettings | None = None, *, model: analysis.Settings | None = None, **fields: object
) -> ServiceRuntime:
    """The recommend service's runtime with its subscription, analysis loop and routes."""
    settings = settings or RecommendSettings(**fields)
    model = model or analysis.Settings(
        planner=PlannerSettings(coverage_target=settings.coverage_target, risk_margin=settings.risk_margin),
        payment_options=tuple(settings.payment_options.split(",")),
        cost_of_capital=settings.cost_of_capital,
        prices=prices.load(settings.price_table) if settings.price_table else PriceTable(),
    )
    runtime = ServiceRuntime(
        settings,
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        topics=[COST, OWNERSHIP, RECOMMENDATION, DECISION, PURCHASE],
        publishes=RECOMMENDATION_EVENTS,
        description="Turns cost into recommendations (commitment purchase plans, rightsizing, idle resources, cost "
        "anomalies) with owner team and savings, and measures commitment KPIs per pool and month.",
    )
    runtime.subscribe(
        COST,
        group=CONSUMER_GROUP,
        handlers={CostBatchIngested.TYPE: on_cost_batch, CostPeriodCompleted.TYPE: on_period_completed},
    )
    runtime.subscribe(
        DECISION,
        group=f"{CONSUMER_GROUP}-decision",
        handlers={
            DecisionRejected.TYPE: on_decision_rejected_for(model),
            PurchaseRequested.TYPE: on_purchase_requested,
        },
    )
    runtime.subscribe(OWNERSHIP, group=f"{CONSUMER_GROUP}-ownership", handlers={ResourceOwned.TYPE: on_resource_owned})
    runtime.subscribe(
        PURCHASE, group=f"{CONSUMER_GROUP}-purchase", handlers={CommitmentPurchased.TYPE: on_commitment_purchased}
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

    async def body_of(request: Request) -> bytes:
        if request.method != "POST":
            raise Denied(405, "use POST")
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_UPLOAD_BYTES:
            raise Denied(413, f"the body is over {MAX_UPLOAD_BYTES // 2**20} MiB: send it in parts")
        body = await request.body()
        if len(body) > MAX_UPLOAD_BYTES:
            raise Denied(413, f"the body is over {MAX_UPLOAD_BYTES // 2**20} MiB: send it in parts")
        return body

    async def commitments(request: Request) -> JSONResponse:
        """POST a FOCUS Contract Commitment dataset (CSV or JSON rows; ?billing_account_id= places rows the cost
        lines do not): the commitments held, with their terms and expiry, for the planner."""
        async with runtime.pool.acquire() as conn:
            try:
                await authenticate(conn, request, allowed=COMMITMENT_WRITERS)
                body = await body_of(request)
                rows = read_rows(body, request.headers.get("content-type", ""))
                found, skipped = existing.parse_contract_commitments(
                    rows, billing_account_id=request.query_params.get("billing_account_id")
                )
            except Denied as denied:
                return denied.response()
            except (UnreadableUpload, existing.InvalidCommitments) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            async with conn.transaction():
                for c in found:
                    await repository.save_commitment(conn, c)
                if found:
                    await repository.mark(conn)
                seen = {s.commitment_id for s in await repository.commitment_lines(conn)}
        unplaced = [c.commitment_id for c in found if not c.billing_account_id and c.commitment_id not in seen]
        return JSONResponse(
            {
                "stored": len(found),
                "skipped": skipped,
                "unplaced": unplaced,
                **(
                    {"note": "unplaced commitments name no billing account and no cost line uses them yet: send "
                             "?billing_account_id= to place them"} if unplaced else {}
                ),
            },
            status_code=200,
        )  # fmt: skip

    async def metrics(request: Request) -> JSONResponse:
        """POST utilization rows (CSV or JSON: resource_id, timestamp, cpu_utilization, memory_utilization as
        fractions): the feed behind over-provisioned instance findings."""
        async with runtime.pool.acquire() as conn:
            try:
                await authenticate(conn, request, allowed=METRICS_WRITERS)
                body = await body_of(request)
                rows = utilization.parse(read_rows(body, request.headers.get("content-type", "")))
            except Denied as denied:
                return denied.response()
            except (UnreadableUpload, utilization.InvalidMetrics) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            async with conn.transaction():
                stored = await repository.add_utilization(conn, rows)
                if stored:
                    await repository.mark(conn)
        return JSONResponse({"stored": stored, "resources": len({r[0] for r in rows})}, status_code=200)

    async def price_table(request: Request) -> JSONResponse:
        """GET: the discount rates plans are computed with, and how upfront payments are weighed."""
        async with runtime.pool.acquire() as conn:
            try:
                await authenticate(conn, request, allowed=READERS)
            except Denied as denied:
                return denied.response()
        return JSONResponse(
            {
                "rates": model.prices.to_rows(),
                "payment_options": allowed_payments(model.payment_options),
                "cost_of_capital": str(settings.cost_of_capital),
                "source": str(settings.price_table) if settings.price_table else "defaults",
            }
        )

    runtime.route("/v1/recommendations", recommendations)
    runtime.route("/v1/prices", price_table)
    runtime.route("/v1/commitments", commitments)
    runtime.route("/v1/metrics", metrics)
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
