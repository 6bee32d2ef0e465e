"""Google Cloud: resource-based committed use discounts through Compute Engine's `regionCommitments.insert`.

`POST /compute/v1/projects/{project}/regions/{region}/commitments?requestId={decision id}` with a commitment
named after the decision id. Compute Engine keeps a `requestId` for a limited time only, so the name is the
lasting guard: inserting a name that exists answers 409, and the adapter then reads the existing commitment
(`GET .../commitments/{name}`), which is also how it reconciles.

Spend-based (flexible) CUDs are bought on the billing account in the console: Compute Engine has no API for
them, so the adapter refuses them with that reason.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from finops_purchase.adapters.rest import RestProvider, parse_time
from finops_purchase.provider import (
    NO_UPFRONT,
    Commitment,
    IdempotencyMismatch,
    Offering,
    Order,
    Refused,
    add_months,
)

RESOURCE_CUD = "gcp_resource_cud"
FLEXIBLE_CUD = "gcp_flexible_cud"
PLANS = {12: "TWELVE_MONTH", 36: "THIRTY_SIX_MONTH"}


@dataclass(frozen=True)
class GcpOptions:
    project: str | None = None
    region: str = "us-central1"
    commitment_type: str = "GENERAL_PURPOSE_N2"
    vcpu_hourly: Decimal | None = None
    """Committed price of one vCPU-hour for the commitment type and term, in the order's currency."""
    memory_gb_hourly: Decimal | None = None
    """Committed price of one GB-hour of memory."""
    memory_gb_per_vcpu: int = 4
    base_url: str = "https://compute.googleapis.com/compute/v1"
    timeout_s: float = 10.0


def commitment_name(client_token: str) -> str:
    """A valid resource name ([a-z]([-a-z0-9]*[a-z0-9])?, at most 63) derived from the token."""
    try:
        token = str(uuid.UUID(client_token))
    except ValueError:
        token = str(uuid.uuid5(uuid.NAMESPACE_URL, f"finops:decision:{client_token}"))
    return f"finops-{token}"


def request_id(client_token: str) -> str:
    """Compute Engine's requestId must be a UUID."""
    return commitment_name(client_token).removeprefix("finops-")


class GcpProvider(RestProvider):
    name = "gcp"
    api_name = "Google Cloud"
    options: GcpOptions

    def __init__(
        self,
        options: GcpOptions | None = None,
        *,
        token: Callable[[], str | None] = lambda: None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(options or GcpOptions(), token=token, transport=transport)

    @property
    def _collection(self) -> str:
        return f"/projects/{self.options.project}/regions/{self.options.region}/commitments"

    def validate(self, order: Order) -> None:
        if order.program == FLEXIBLE_CUD:
            raise Refused(
                "spend-based (flexible) CUDs are bought on the Cloud Billing account in the console; "
                "Compute Engine has no API for them: buy it there, or plan a gcp_resource_cud"
            )
        if order.program != RESOURCE_CUD:
            raise Refused(f"Google Cloud cannot buy program {order.program!r}; use {RESOURCE_CUD}")
        if order.term_months not in PLANS:
            raise Refused(f"Google Cloud sells 12- or 36-month commitments, not {order.term_months}")
        if order.payment != NO_UPFRONT:
            raise Refused(
                f"Google Cloud commitments are billed monthly: payment must be {NO_UPFRONT}, not {order.payment!r}"
            )
        o = self.options
        if not o.project:
            raise Refused("set FINOPS_GCP_PROJECT to buy Google Cloud commitments")
        if o.vcpu_hourly is None or o.memory_gb_hourly is None:
            raise Refused(
                "set FINOPS_GCP_VCPU_HOURLY and FINOPS_GCP_MEMORY_GB_HOURLY (committed prices) to size the commitment"
            )

    def vcpus(self, order: Order) -> int:
        o = self.options
        assert o.vcpu_hourly is not None and o.memory_gb_hourly is not None
        per_vcpu = o.vcpu_hourly + o.memory_gb_hourly * o.memory_gb_per_vcpu
        count = math.floor(order.commitment_per_hour / per_vcpu)
        if count < 1:
            raise Refused(
                f"{order.commitment_per_hour} {order.currency}/h buys no vCPU (one with its memory costs {per_vcpu}/h)"
            )
        return count

    def insert_request(self, order: Order, client_token: str) -> dict[str, Any]:
        vcpus = self.vcpus(order)
        return {
            "name": commitment_name(client_token),
            "description": f"FinOps decision {order.decision_id}",
            "plan": PLANS[order.term_months],
            "type": self.options.commitment_type,
            "category": "MACHINE",
            "resources": [
                {"type": "VCPU", "amount": str(vcpus)},
                {"type": "MEMORY", "amount": str(vcpus * self.options.memory_gb_per_vcpu * 1024)},
            ],
            "autoRenew": False,
        }

    async def purchase(self, order: Order, client_token: str) -> Commitment:
        self.validate(order)
        body = self.insert_request(order, client_token)
        try:
            operation = await self.api.call(
                "POST", self._collection, params={"requestId": request_id(client_token)}, body=body
            )
        except IdempotencyMismatch:
            existing = await self.find(client_token)  # 409 alreadyExists: this token's commitment exists
            if existing is None:
                raise
            return existing
        if (operation or {}).get("error"):
            raise Refused(f"Google Cloud refused the commitment: {operation['error']}")
        start = datetime.now(UTC)
        vcpus = int(body["resources"][0]["amount"])
        o = self.options
        assert o.vcpu_hourly is not None and o.memory_gb_hourly is not None
        return Commitment(
            commitment_id=f"projects/{o.project}/regions/{o.region}/commitments/{body['name']}",
            program=RESOURCE_CUD,
            term_months=order.term_months,
            payment=NO_UPFRONT,
            start=start,
            end=add_months(start, order.term_months),
            commitment_per_hour=(o.vcpu_hourly + o.memory_gb_hourly * o.memory_gb_per_vcpu) * vcpus,
            currency=order.currency,
            upfront=Decimal(0),
        )

    async def find(self, client_token: str) -> Commitment | None:
        name = commitment_name(client_token)
        found = await self.api.call("GET", f"{self._collection}/{name}", missing_ok=True)
        if found is None:
            return None
        now = datetime.now(UTC)
        term = {v: k for k, v in PLANS.items()}.get(found.get("plan", ""), 12)
        start = parse_time(found.get("startTimestamp"), now)
        return Commitment(
            commitment_id=f"projects/{self.options.project}/regions/{self.options.region}/commitments/{name}",
            program=RESOURCE_CUD,
            term_months=term,
            payment=NO_UPFRONT,
            start=start,
            end=parse_time(found.get("endTimestamp"), add_months(start, term)),
            commitment_per_hour=None,
            currency="USD",
            upfront=Decimal(0),
        )

    async def offerings(self) -> list[Offering]:
        return [
            Offering(
                self.name,
                RESOURCE_CUD,
                term,
                NO_UPFRONT,
                Decimal(0),
                "Compute Engine resource-based CUD (regionCommitments.insert)",
            )
            for term in PLANS
        ]
