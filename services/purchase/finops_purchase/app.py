"""The purchase service: consumes PurchaseRequested from the decision topic and buys each approved commitment
exactly once through a provider adapter, answering CommitmentPurchased or PurchaseFailed on finops.purchase.v1.

The inbox handler only records the intent (committed with the processed ce_id); the executor makes the provider
calls outside any consumer transaction, so a slow or failing provider never holds a partition."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import asyncpg
from pydantic import SecretStr, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from finops_contracts.cloudevents import Envelope
from finops_contracts.decisions import PURCHASE_EVENTS, PurchaseRequested
from finops_contracts.events import Event
from finops_contracts.topics import DECISION, PURCHASE
from finops_purchase import ledger
from finops_purchase.adapters import CLOUDS, Registry
from finops_purchase.adapters.aws import AwsOptions, AwsProvider
from finops_purchase.adapters.azure import AzureOptions, AzureProvider
from finops_purchase.adapters.gcp import GcpOptions, GcpProvider
from finops_purchase.adapters.sandbox import SandboxProvider
from finops_purchase.executor import WAKE_CHANNEL, Executor, RetryPolicy
from finops_purchase.provider import Commitment, Order, Provider, Refused
from finops_runtime.access import Denied, Role, authenticate
from finops_runtime.app import ServiceRuntime
from finops_runtime.inbox import Rejected
from finops_runtime.settings import Settings

SCHEMA = "purchase"
CONSUMER_GROUP = "purchase"
READERS = frozenset({Role.AUTOMATION, Role.FINANCE, Role.PRACTITIONER, Role.ADMIN})
ONE_PURCHASE = "/v1/purchases/{decision_id}"


class PurchaseSettings(Settings):
    service_name: str = "purchase"
    http_port: int = 8006
    db_pool_max: int = 12

    purchase_provider: Literal["sandbox", "cloud"] = "sandbox"
    """FINOPS_PURCHASE_PROVIDER: `sandbox` buys everything from the sandbox provider; `cloud` buys each program
    from its cloud (aws_*, azure_*, gcp_*), in dry run unless live buying is configured."""
    sandbox_url: str = "http://127.0.0.1:8066"
    purchase_live: str = ""
    """FINOPS_PURCHASE_LIVE: clouds that may really buy (aws,azure,gcp). Needs FINOPS_PURCHASE_LIVE_ACCOUNTS."""
    purchase_live_accounts: str = ""
    """FINOPS_PURCHASE_LIVE_ACCOUNTS: the billing accounts that may be charged; the second confirmation."""
    purchase_timeout_s: float = 10.0
    purchase_max_attempts: int = 5
    purchase_retry_base_s: float = 1.0
    purchase_retry_cap_s: float = 60.0
    purchase_concurrency: int = 4
    purchase_poll_s: float = 1.0

    aws_region: str = "us-east-1"
    aws_instance_family: str | None = None
    aws_ri_instance_type: str | None = None
    aws_ri_product_description: str = "Linux/UNIX"
    aws_endpoint_url: str | None = None

    azure_billing_scope_id: str | None = None
    azure_location: str = "eastus"
    azure_sku: str | None = None
    azure_access_token: SecretStr | None = None
    azure_base_url: str = "https://management.azure.com"

    gcp_project: str | None = None
    gcp_region: str = "us-central1"
    gcp_commitment_type: str = "GENERAL_PURPOSE_N2"
    gcp_vcpu_hourly: Decimal | None = None
    gcp_memory_gb_hourly: Decimal | None = None
    gcp_access_token: SecretStr | None = None
    gcp_base_url: str = "https://compute.googleapis.com/compute/v1"

    @staticmethod
    def _names(text: str) -> frozenset[str]:
        return frozenset(n.strip() for n in text.split(",") if n.strip())

    @property
    def live(self) -> frozenset[str]:
        return frozenset(n.lower() for n in self._names(self.purchase_live))

    @property
    def live_accounts(self) -> frozenset[str]:
        return self._names(self.purchase_live_accounts)

    @model_validator(mode="after")
    def _live_needs_confirmation(self) -> PurchaseSettings:
        unknown = self.live - set(CLOUDS)
        if unknown:
            raise ValueError(f"FINOPS_PURCHASE_LIVE names {sorted(unknown)}; use any of {', '.join(CLOUDS)}")
        if self.live and not self.live_accounts:
            raise ValueError(
                f"FINOPS_PURCHASE_LIVE={','.join(sorted(self.live))} buys with real money: also set "
                "FINOPS_PURCHASE_LIVE_ACCOUNTS to the billing account ids that may be charged"
            )
        if self.live and self.purchase_provider != "cloud":
            raise ValueError("FINOPS_PURCHASE_LIVE applies to FINOPS_PURCHASE_PROVIDER=cloud; set it, or unset LIVE")
        return self

    def registry(self) -> Registry:
        providers: dict[str, Provider] = {}
        if self.purchase_provider == "sandbox":
            providers["sandbox"] = SandboxProvider(self.sandbox_url, timeout_s=self.purchase_timeout_s)
        else:
            azure_token, gcp_token = self.azure_access_token, self.gcp_access_token
            providers["aws"] = AwsProvider(
                AwsOptions(
                    region=self.aws_region,
                    instance_family=self.aws_instance_family,
                    ri_instance_type=self.aws_ri_instance_type,
                    ri_product_description=self.aws_ri_product_description,
                    endpoint_url=self.aws_endpoint_url,
                    timeout_s=self.purchase_timeout_s,
                )
            )
            providers["azure"] = AzureProvider(
                AzureOptions(
                    billing_scope_id=self.azure_billing_scope_id,
                    location=self.azure_location,
                    sku=self.azure_sku,
                    base_url=self.azure_base_url,
                    timeout_s=self.purchase_timeout_s,
                ),
                token=lambda: azure_token.get_secret_value() if azure_token else None,
            )
            providers["gcp"] = GcpProvider(
                GcpOptions(
                    project=self.gcp_project,
                    region=self.gcp_region,
                    commitment_type=self.gcp_commitment_type,
                    vcpu_hourly=self.gcp_vcpu_hourly,
                    memory_gb_hourly=self.gcp_memory_gb_hourly,
                    base_url=self.gcp_base_url,
                    timeout_s=self.purchase_timeout_s,
                ),
                token=lambda: gcp_token.get_secret_value() if gcp_token else None,
            )
        return Registry(self.purchase_provider, providers, live=self.live, live_accounts=self.live_accounts)


def on_purchase_requested_for(registry: Registry):
    async def on_purchase_requested(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        """Record the intent of a new decision (the executor buys it after this commits); for a decision already
        known, never buy again: answer a repeated request with its final event when it has one."""
        assert isinstance(event, PurchaseRequested)
        if event.client_token != str(event.decision_id):
            raise Rejected(
                f"client_token {event.client_token!r} is not the decision id {event.decision_id}: the decision id "
                "is the provider's idempotency token; send it as client_token"
            )
        order = Order.of(event)
        existing = await ledger.get(conn, event.decision_id)
        if existing is None:
            await _new_intent(conn, registry, event, order)
            return
        if existing["fingerprint"] != order.fingerprint():
            raise Rejected(
                f"decision {event.decision_id} was already requested with other terms "
                f"({existing['program']}, {existing['term_months']} months, {existing['payment']}, "
                f"{format(existing['commitment_per_hour'], 'f')} {existing['currency']}/h from "
                f"{existing['start_at'].isoformat()}); a decision buys one thing: make a new decision to buy another"
            )
        await ledger.note_delivery(conn, event.decision_id)
        if existing["state"] != ledger.IN_FLIGHT:
            await ledger.announce(conn, await ledger.get(conn, event.decision_id), again_for=envelope.id)

    return on_purchase_requested


async def _new_intent(conn: asyncpg.Connection, registry: Registry, event: PurchaseRequested, order: Order) -> None:
    try:
        choice = registry.choose(order)
    except Refused as refusal:
        await ledger.record_intent(conn, event, order, adapter="none", dry_run=True)
        await ledger.settle_failed(conn, event.decision_id, reason=str(refusal))
        return
    await ledger.record_intent(conn, event, order, adapter=choice.adapter, dry_run=choice.dry_run)
    if not choice.dry_run:
        await conn.execute("SELECT pg_notify($1, $2)", WAKE_CHANNEL, str(event.decision_id))
        return
    # Dry run: validate the request as the adapter would build it, record it, and call nobody.
    try:
        registry.get(choice.adapter).validate(order)
    except Refused as refusal:
        await ledger.settle_failed(conn, event.decision_id, reason=f"dry run: {choice.adapter} would refuse: {refusal}")
        return
    dry = Commitment(
        commitment_id=f"dry-run:{choice.adapter}:{event.decision_id}",
        program=order.program,
        term_months=order.term_months,
        payment=order.payment,
        start=order.start,
        end=order.end,
        commitment_per_hour=order.commitment_per_hour,
        currency=order.currency,
        upfront=order.upfront,
    )
    await ledger.settle_purchased(conn, event.decision_id, dry, reconciled=False, order=order)


def build_runtime(settings: PurchaseSettings | None = None, **fields: object) -> ServiceRuntime:
    """The purchase service's runtime: the decision-topic subscription, the executor and the routes."""
    settings = settings or PurchaseSettings(**fields)
    registry = settings.registry()
    runtime = ServiceRuntime(
        settings,
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        topics=[DECISION, PURCHASE],
        publishes=PURCHASE_EVENTS,
        description="Buys approved commitments exactly once through provider adapters (sandbox, AWS, Azure, GCP) "
        "with the decision id as client token; dry run unless live buying is configured.",
    )
    runtime.subscribe(
        DECISION, group=CONSUMER_GROUP, handlers={PurchaseRequested.TYPE: on_purchase_requested_for(registry)}
    )

    async def reader(request: Request, conn: asyncpg.Connection) -> JSONResponse | None:
        try:
            await authenticate(conn, request, allowed=READERS)
        except Denied as denied:
            return denied.response()
        return None

    async def purchases(request: Request) -> JSONResponse:
        """GET ?state=in_flight|purchased|failed&limit=: the ledger, newest first."""
        state = request.query_params.get("state")
        if state is not None and state not in ledger.STATES:
            return JSONResponse({"error": f"state must be one of {', '.join(ledger.STATES)}"}, status_code=400)
        try:
            limit = int(request.query_params.get("limit", "100"))
            if not 1 <= limit <= 1000:
                raise ValueError
        except ValueError:
            return JSONResponse({"error": "limit must be a whole number from 1 to 1000"}, status_code=400)
        async with runtime.pool.acquire() as conn:
            if (denied := await reader(request, conn)) is not None:
                return denied
            rows = await ledger.list_purchases(conn, state=state, limit=limit)
        return JSONResponse([ledger.as_json(r) for r in rows])

    async def one_purchase(request: Request) -> JSONResponse:
        """GET /v1/purchases/{decision_id}: one decision's purchase and every provider call made for it."""
        try:
            decision_id = uuid.UUID(request.path_params["decision_id"])
        except ValueError:
            return JSONResponse({"error": "the decision id in the path must be a UUID"}, status_code=400)
        async with runtime.pool.acquire() as conn:
            if (denied := await reader(request, conn)) is not None:
                return denied
            row = await ledger.get(conn, decision_id)
            if row is None:
                return JSONResponse({"error": f"no purchase was requested for decision {decision_id}"}, status_code=404)
            calls = await ledger.calls(conn, decision_id)
        return JSONResponse(
            {
                **ledger.as_json(row),
                "calls": [
                    {
                        "call": c["call"],
                        "attempt": c["attempt"],
                        "instance": c["instance"],
                        "started_at": c["started_at"].isoformat(),
                        "finished_at": c["finished_at"].isoformat() if c["finished_at"] else None,
                        "outcome": c["outcome"],
                        "detail": c["detail"],
                    }
                    for c in calls
                ],
            }
        )

    async def offerings(request: Request) -> JSONResponse:
        """GET: what the configured adapters sell (programs, terms, payment options, upfront shares)."""
        async with runtime.pool.acquire() as conn:
            if (denied := await reader(request, conn)) is not None:
                return denied
        try:
            found = await registry.offerings()
        except Exception as exc:
            return JSONResponse({"error": f"the provider did not list its offerings: {exc}"}, status_code=502)
        return JSONResponse({"provider": settings.purchase_provider, "offerings": [o.as_json() for o in found]})

    runtime.route("/v1/purchases", purchases)
    runtime.route(ONE_PURCHASE, one_purchase)
    runtime.route("/v1/offerings", offerings)

    def start() -> list[asyncio.Task[None]]:
        executor = Executor(
            runtime.pool,
            registry,
            retry=RetryPolicy(
                max_attempts=settings.purchase_max_attempts,
                base_s=settings.purchase_retry_base_s,
                cap_s=settings.purchase_retry_cap_s,
            ),
            instance=settings.instance_id,
            concurrency=settings.purchase_concurrency,
            poll_s=settings.purchase_poll_s,
        )
        return [asyncio.create_task(executor.run(), name="purchase-executor")]

    runtime.on_started(start)
    return runtime


class _PathParams:
    """The runtime routes exact paths; this maps /v1/purchases/<id> onto the one-purchase route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = ONE_PURCHASE.split("{", 1)[0]
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(prefix) and len(path) > len(prefix):
            scope = {**scope, "path": ONE_PURCHASE, "path_params": {"decision_id": path[len(prefix) :]}}
        await self.app(scope, receive, send)


def create_app(settings: PurchaseSettings) -> Any:
    return _PathParams(build_runtime(settings).app())
