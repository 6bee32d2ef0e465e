"""The sandbox provider's HTTP API.

    GET  /v1/offerings                       what it sells
    POST /v1/commitments                     buy: {client_token, program, term_months, payment, start,
                                             commitment_per_hour: {amount, currency}, billing_account_id}
                                             201 bought, 200 the same token again (same commitment),
                                             409 the token was used with other parameters, 400 bad request,
                                             503 injected failure (nothing bought)
    GET  /v1/commitments[?client_token=]     its ledger (what each token bought)
    GET  /v1/faults, PUT /v1/faults          injected failure rates, and how many of each were injected
    GET  /v1/calls                           purchase calls by outcome, from its ledger

Injected failures, seeded: `error_rate` answers 503 without buying; `timeout_rate` hangs for `hang_s` (longer
than a client waits) and buys nothing; `timeout_after_success_rate` buys, then hangs, so the client never learns
it bought; `latency_ms` delays every purchase and lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from finops_purchase.provider import Order, Refused, add_months, upfront_amount
from finops_purchase.sandbox import catalog
from finops_runtime import db

log = logging.getLogger(__name__)

SCHEMA = "sandbox_provider"


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINOPS_SANDBOX_", extra="ignore")

    database_url: str = Field(validation_alias=AliasChoices("FINOPS_SANDBOX_DATABASE_URL", "DATABASE_URL"))
    http_host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("FINOPS_SANDBOX_HTTP_HOST", "FINOPS_HTTP_HOST")
    )
    http_port: int = Field(default=8066, validation_alias=AliasChoices("FINOPS_SANDBOX_HTTP_PORT", "FINOPS_HTTP_PORT"))
    error_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_after_success_rate: float = Field(default=0.0, ge=0, le=1)
    latency_ms: int = Field(default=0, ge=0)
    hang_s: float = Field(default=30.0, ge=0)
    """How long an injected timeout holds the request: longer than the purchase service's provider timeout."""
    seed: int | None = None
    account_id: str = "000000000000"
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("FINOPS_SANDBOX_LOG_LEVEL", "FINOPS_LOG_LEVEL")
    )
    log_format: str = Field(
        default="json", validation_alias=AliasChoices("FINOPS_SANDBOX_LOG_FORMAT", "FINOPS_LOG_FORMAT")
    )


class Faults:
    """Seeded failure injection; rates can be changed while running (PUT /v1/faults)."""

    RATES = ("error_rate", "timeout_rate", "timeout_after_success_rate")

    def __init__(self, settings: SandboxSettings) -> None:
        self.rates = {name: float(getattr(settings, name)) for name in self.RATES}
        self.latency_ms = settings.latency_ms
        self.hang_s = settings.hang_s
        self._rng = random.Random(settings.seed)
        self.injected: Counter[str] = Counter()

    def update(self, body: dict[str, Any]) -> None:
        unknown = set(body) - {*self.RATES, "latency_ms", "hang_s", "seed"}
        if unknown:
            raise ValueError(
                f"unknown fault settings {sorted(unknown)}; use {', '.join(self.RATES)}, latency_ms, hang_s, seed"
            )
        for name in self.RATES:
            if name in body:
                rate = float(body[name])
                if not 0 <= rate <= 1:
                    raise ValueError(f"{name} must be between 0 and 1, got {rate}")
                self.rates[name] = rate
        if sum(self.rates.values()) > 1:
            raise ValueError("the failure rates add up to more than 1")
        self.latency_ms = int(body.get("latency_ms", self.latency_ms))
        self.hang_s = float(body.get("hang_s", self.hang_s))
        if "seed" in body:
            self._rng.seed(body["seed"])

    def draw(self) -> str:
        """'error', 'timeout', 'timeout_after_success' or 'ok' for the next purchase call."""
        r = self._rng.random()
        for name in self.RATES:
            rate = self.rates[name]
            if r < rate:
                return name.removesuffix("_rate")
            r -= rate
        return "ok"

    def as_json(self) -> dict[str, Any]:
        return {**self.rates, "latency_ms": self.latency_ms, "hang_s": self.hang_s, "injected": dict(self.injected)}


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status)


def _order(body: Any) -> tuple[str, Order]:
    """The client token and the order of a purchase request; ValueError naming what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("send a JSON object")
    missing = [
        k
        for k in ("client_token", "program", "term_months", "payment", "start", "commitment_per_hour")
        if k not in body
    ]
    if missing:
        raise ValueError(f"missing fields {missing}")
    token = str(body["client_token"])
    if not 1 <= len(token) <= 64:
        raise ValueError("client_token must be 1 to 64 characters")
    money = body["commitment_per_hour"]
    if not isinstance(money, dict) or isinstance(money.get("amount"), float):
        raise ValueError('commitment_per_hour must be {"amount": "<decimal string>", "currency": "USD"}')
    try:
        amount = Decimal(str(money["amount"]))
    except (InvalidOperation, KeyError) as exc:
        raise ValueError(f"commitment_per_hour.amount must be a decimal string: {exc!r}") from exc
    if not amount.is_finite() or amount <= 0:
        raise ValueError("commitment_per_hour.amount must be a positive amount")
    currency = str(money.get("currency", ""))
    if len(currency) != 3 or not currency.isupper():
        raise ValueError("commitment_per_hour.currency must be an ISO 4217 code such as USD")
    try:
        start = datetime.fromisoformat(str(body["start"]))
    except ValueError as exc:
        raise ValueError(f"start must be an ISO 8601 time: {exc}") from exc
    if start.tzinfo is None:
        raise ValueError("start must carry a time zone (use Z or +00:00)")
    program = catalog.check(str(body["program"]), int(body["term_months"]), str(body["payment"]))
    return token, Order(
        decision_id=token,
        provider_name="sandbox",
        billing_account_id=body.get("billing_account_id"),
        program=program,
        term_months=int(body["term_months"]),
        payment=str(body["payment"]),
        start=start.astimezone(UTC),
        commitment_per_hour=amount,
        currency=currency,
        covered_usage_per_hour=Decimal(str(body.get("covered_usage_per_hour", "0"))),
    )


def _commitment_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "client_token": row["client_token"],
        "commitment_id": row["commitment_id"],
        "billing_account_id": row["billing_account_id"],
        "program": row["program"],
        "term_months": row["term_months"],
        "payment": row["payment"],
        "start": row["start_at"].isoformat(),
        "end": row["end_at"].isoformat(),
        "commitment_per_hour": {"amount": format(row["commitment_per_hour"], "f"), "currency": row["currency"]},
        "upfront": {"amount": format(row["upfront"], "f"), "currency": row["currency"]},
        "purchased_at": row["purchased_at"].isoformat(),
    }


class Sandbox:
    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.faults = Faults(settings)
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the sandbox has not started")
        return self._pool

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._pool = await db.create_pool(self.settings.database_url, schema=SCHEMA, min_size=1, max_size=10)
        async with self._pool.acquire() as conn:
            await db.migrate(
                conn, schema=SCHEMA, migrations=db.service_migrations(Path(__file__).parent / "migrations")
            )
        log.info("sandbox provider ready", extra={"faults": self.faults.as_json()})
        try:
            yield
        finally:
            await self._pool.close()

    async def _delay(self) -> None:
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "sandbox-provider"})

    async def ready(self, request: Request) -> JSONResponse:
        try:
            await self.pool.fetchval("SELECT 1")
        except Exception as exc:
            return JSONResponse({"ready": False, "error": repr(exc)}, status_code=503)
        return JSONResponse({"ready": True})

    async def offerings(self, request: Request) -> JSONResponse:
        return JSONResponse({"offerings": [o.as_json() for o in catalog.offerings()]})

    async def commitments(self, request: Request) -> JSONResponse:
        if request.method == "POST":
            return await self.purchase(request)
        await self._delay()
        token = request.query_params.get("client_token")
        if token is None:
            rows = await self.pool.fetch("SELECT * FROM commitment ORDER BY purchased_at, client_token")
        else:
            rows = await self.pool.fetch("SELECT * FROM commitment WHERE client_token = $1", token)
        return JSONResponse({"commitments": [_commitment_json(r) for r in rows], "count": len(rows)})

    async def purchase(self, request: Request) -> JSONResponse:
        try:
            token, order = _order(await request.json())
        except (ValueError, Refused) as exc:
            return _error(400, f"invalid purchase request: {exc}", "ValidationException")
        await self._delay()
        fate = self.faults.draw()
        if fate != "ok":
            self.faults.injected[fate] += 1
        if fate == "error":
            await self._record_call(token, "error")
            return _error(
                503,
                "sandbox injected failure: nothing was bought; retry with the same client token",
                "ServiceUnavailable",
            )
        if fate == "timeout":
            await self._record_call(token, "timeout")
            await asyncio.sleep(self.faults.hang_s)
            return _error(504, "sandbox injected timeout: nothing was bought", "RequestTimeout")
        status, body = await self._buy(token, order)
        await self._record_call(token, fate if status < 300 else f"refused_{status}")
        if fate == "timeout_after_success":
            await asyncio.sleep(self.faults.hang_s)
        return JSONResponse(body, status_code=status)

    async def _buy(self, token: str, order: Order) -> tuple[int, dict[str, Any]]:
        commitment_id = f"sandbox/{order.program}/{uuid.uuid4()}"
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                """INSERT INTO commitment (client_token, commitment_id, fingerprint, billing_account_id, program,
                       term_months, payment, start_at, end_at, commitment_per_hour, currency, upfront)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                   ON CONFLICT (client_token) DO NOTHING RETURNING *""",
                token,
                commitment_id,
                order.fingerprint(),
                order.billing_account_id,
                order.program,
                order.term_months,
                order.payment,
                order.start,
                add_months(order.start, order.term_months),
                order.commitment_per_hour,
                order.currency,
                upfront_amount(order.commitment_per_hour, order.term_months, order.payment),
            )
            if row is not None:
                return 201, _commitment_json(row)
            row = await conn.fetchrow("SELECT * FROM commitment WHERE client_token = $1", token)
        if row["fingerprint"] != order.fingerprint():
            return 409, {
                "error": f"client token {token} was already used for another purchase ({row['commitment_id']}: "
                f"{row['program']}, {row['term_months']} months, {row['payment']}, "
                f"{format(row['commitment_per_hour'], 'f')} {row['currency']}/h from {row['start_at'].isoformat()}); "
                "a token buys one thing: send the same parameters, or a new token for a new purchase",
                "code": "IdempotentParameterMismatch",
                "commitment_id": row["commitment_id"],
            }
        return 200, _commitment_json(row)

    async def _record_call(self, token: str, outcome: str) -> None:
        await self.pool.execute("INSERT INTO call (client_token, outcome) VALUES ($1, $2)", token, outcome)

    async def calls(self, request: Request) -> JSONResponse:
        rows = await self.pool.fetch("SELECT outcome, count(*) AS n FROM call GROUP BY outcome")
        return JSONResponse({r["outcome"]: r["n"] for r in rows})

    async def fault_settings(self, request: Request) -> JSONResponse:
        if request.method == "PUT":
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("send a JSON object")
                self.faults.update(body)
            except ValueError as exc:
                return _error(400, f"invalid fault settings: {exc}", "ValidationException")
        return JSONResponse(self.faults.as_json())


def create_app(settings: SandboxSettings | None = None) -> Starlette:
    sandbox = Sandbox(settings or SandboxSettings())
    app = Starlette(
        routes=[
            Route("/health", sandbox.health),
            Route("/ready", sandbox.ready),
            Route("/v1/offerings", sandbox.offerings),
            Route("/v1/commitments", sandbox.commitments, methods=["GET", "POST"]),
            Route("/v1/faults", sandbox.fault_settings, methods=["GET", "PUT"]),
            Route("/v1/calls", sandbox.calls),
        ],
        lifespan=sandbox.lifespan,
    )
    app.state.sandbox = sandbox
    return app
