"""Azure: reservations through the Reservation Order API (Microsoft.Capacity) and savings plans through the
Billing Benefits API (Microsoft.BillingBenefits), on Azure Resource Manager.

Reservation: `POST /providers/Microsoft.Capacity/calculatePrice` prices one unit of the configured VM size for
the term and billing plan; the quantity is what the hourly commitment buys; then
`PUT /providers/Microsoft.Capacity/reservationOrders/{reservationOrderId}` buys it. The reservation order id is
the decision id (a GUID): a PUT to the same id never creates a second order, which is Azure's idempotency, and
`GET` on that id reconciles.

Savings plan: `PUT /providers/Microsoft.BillingBenefits/savingsPlanOrderAliases/{name}` with the alias name
derived from the decision id, reconciled by `GET` on the alias.
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
    ALL_UPFRONT,
    NO_UPFRONT,
    UPFRONT_SHARE,
    Commitment,
    Offering,
    Order,
    Refused,
    add_months,
    term_hours,
)

API_VERSION = "2022-11-01"
RESERVATION = "azure_reservation"
SAVINGS_PLAN = "azure_savings_plan"
TERMS = {12: "P1Y", 36: "P3Y"}
BILLING_PLANS = {ALL_UPFRONT: "Upfront", NO_UPFRONT: "Monthly"}


@dataclass(frozen=True)
class AzureOptions:
    billing_scope_id: str | None = None
    """The subscription (or billing profile) charged: /subscriptions/<id>."""
    location: str = "eastus"
    sku: str | None = None
    """For a reservation: the VM size (Standard_D2s_v5...); the request does not carry one."""
    reserved_resource_type: str = "VirtualMachines"
    instance_flexibility: str = "On"
    base_url: str = "https://management.azure.com"
    timeout_s: float = 10.0


def order_id(client_token: str) -> str:
    """The reservation order id of a token: the token itself when it is a GUID (a decision id is)."""
    try:
        return str(uuid.UUID(client_token))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"finops:decision:{client_token}"))


def alias_name(client_token: str) -> str:
    return f"finops-{order_id(client_token)}"


class AzureProvider(RestProvider):
    name = "azure"
    api_name = "Azure"
    options: AzureOptions

    def __init__(
        self,
        options: AzureOptions | None = None,
        *,
        token: Callable[[], str | None] = lambda: None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(options or AzureOptions(), token=token, transport=transport)

    def validate(self, order: Order) -> None:
        if order.program not in (RESERVATION, SAVINGS_PLAN):
            raise Refused(f"Azure cannot buy program {order.program!r}; use {RESERVATION} or {SAVINGS_PLAN}")
        if order.term_months not in TERMS:
            raise Refused(f"Azure sells 12- or 36-month terms, not {order.term_months}")
        if order.payment not in BILLING_PLANS:
            raise Refused(
                f"Azure bills monthly or upfront: payment must be {NO_UPFRONT} or {ALL_UPFRONT}, not {order.payment!r}"
            )
        if not self.options.billing_scope_id:
            raise Refused("set FINOPS_AZURE_BILLING_SCOPE_ID (/subscriptions/<id>) to buy on Azure")
        if order.program == RESERVATION and not self.options.sku:
            raise Refused("an Azure reservation needs a VM size: set FINOPS_AZURE_SKU (Standard_D2s_v5...)")

    # ---- requests

    def reservation_request(self, order: Order, *, quantity: int) -> dict[str, Any]:
        o = self.options
        return {
            "sku": {"name": o.sku},
            "location": o.location,
            "properties": {
                "reservedResourceType": o.reserved_resource_type,
                "billingScopeId": o.billing_scope_id,
                "term": TERMS[order.term_months],
                "billingPlan": BILLING_PLANS[order.payment],
                "quantity": quantity,
                "displayName": f"finops-{order.decision_id}",
                "appliedScopeType": "Shared",
                "renew": False,
                "reservedResourceProperties": {"instanceFlexibility": o.instance_flexibility},
            },
        }

    def savings_plan_request(self, order: Order) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "displayName": f"finops-{order.decision_id}",
            "billingScopeId": self.options.billing_scope_id,
            "term": TERMS[order.term_months],
            "appliedScopeType": "Shared",
            "commitment": {"grain": "Hourly", "currencyCode": order.currency, "amount": order.commitment_per_hour},
        }
        if order.payment == NO_UPFRONT:
            properties["billingPlan"] = "P1M"
        return {"sku": {"name": "Compute_Savings_Plan"}, "properties": properties}

    # ---- calls

    async def purchase(self, order: Order, client_token: str) -> Commitment:
        self.validate(order)
        if order.program == SAVINGS_PLAN:
            return await self._buy_savings_plan(order, client_token)
        return await self._buy_reservation(order, client_token)

    async def _buy_reservation(self, order: Order, client_token: str) -> Commitment:
        priced = await self.api.call(
            "POST",
            "/providers/Microsoft.Capacity/calculatePrice",
            params={"api-version": API_VERSION},
            body=self.reservation_request(order, quantity=1),
        )
        total = ((priced or {}).get("properties") or {}).get("billingCurrencyTotal") or {}
        if "amount" not in total:
            raise Refused(f"Azure priced no {self.options.sku} reservation: {priced}")
        one = Decimal(str(total["amount"]))
        hourly = one / term_hours(order.term_months)
        quantity = math.floor(order.commitment_per_hour / hourly) if hourly > 0 else 0
        if quantity < 1:
            raise Refused(
                f"{order.commitment_per_hour} {order.currency}/h buys no {self.options.sku} reservation "
                f"(one costs {hourly:.6f}/h)"
            )
        answer = await self.api.call(
            "PUT",
            f"/providers/Microsoft.Capacity/reservationOrders/{order_id(client_token)}",
            params={"api-version": API_VERSION},
            body=self.reservation_request(order, quantity=quantity),
        )
        bought = self._order_commitment(answer or {}, fallback=order)
        upfront = one * quantity if order.payment == ALL_UPFRONT else Decimal(0)
        return Commitment(
            commitment_id=bought.commitment_id,
            program=RESERVATION,
            term_months=order.term_months,
            payment=order.payment,
            start=bought.start,
            end=bought.end,
            commitment_per_hour=hourly * quantity,
            currency=str(total.get("currencyCode", order.currency)),
            upfront=upfront,
        )

    def _order_commitment(self, answer: dict[str, Any], *, fallback: Order | None = None) -> Commitment:
        props = answer.get("properties") or {}
        now = datetime.now(UTC)
        began = props.get("benefitStartTime") or props.get("createdDateTime")
        start = parse_time(began, fallback.start if fallback else now)
        term = {v: k for k, v in TERMS.items()}.get(props.get("term", ""), fallback.term_months if fallback else 12)
        payment = {v: k for k, v in BILLING_PLANS.items()}.get(
            props.get("billingPlan", ""), fallback.payment if fallback else NO_UPFRONT
        )
        return Commitment(
            commitment_id=answer.get("id") or f"/providers/Microsoft.Capacity/reservationOrders/{answer.get('name')}",
            program=RESERVATION,
            term_months=term,
            payment=payment,
            start=start,
            end=parse_time(props.get("expiryDateTime") or props.get("expiryDate"), add_months(start, term)),
            commitment_per_hour=None,
            currency=fallback.currency if fallback else "USD",
            upfront=None,
        )

    async def _buy_savings_plan(self, order: Order, client_token: str) -> Commitment:
        answer = await self.api.call(
            "PUT",
            f"/providers/Microsoft.BillingBenefits/savingsPlanOrderAliases/{alias_name(client_token)}",
            params={"api-version": API_VERSION},
            body=self.savings_plan_request(order),
        )
        found = self._plan_commitment(answer or {}, fallback=order)
        return Commitment(
            commitment_id=found.commitment_id,
            program=SAVINGS_PLAN,
            term_months=order.term_months,
            payment=order.payment,
            start=found.start,
            end=found.end,
            commitment_per_hour=order.commitment_per_hour,
            currency=order.currency,
            upfront=(order.commitment_per_hour * term_hours(order.term_months) * UPFRONT_SHARE[order.payment]).quantize(
                Decimal("0.01")
            ),
        )

    def _plan_commitment(self, answer: dict[str, Any], *, fallback: Order | None = None) -> Commitment:
        props = answer.get("properties") or {}
        start = parse_time(props.get("benefitStartTime"), fallback.start if fallback else datetime.now(UTC))
        term = {v: k for k, v in TERMS.items()}.get(props.get("term", ""), fallback.term_months if fallback else 12)
        commitment = props.get("commitment") or {}
        return Commitment(
            commitment_id=props.get("savingsPlanOrderId") or answer.get("id", ""),
            program=SAVINGS_PLAN,
            term_months=term,
            payment=NO_UPFRONT if props.get("billingPlan") == "P1M" else ALL_UPFRONT,
            start=start,
            end=add_months(start, term),
            commitment_per_hour=Decimal(str(commitment["amount"])) if "amount" in commitment else None,
            currency=commitment.get("currencyCode", fallback.currency if fallback else "USD"),
            upfront=None,
        )

    async def find(self, client_token: str) -> Commitment | None:
        found = await self.api.call(
            "GET",
            f"/providers/Microsoft.Capacity/reservationOrders/{order_id(client_token)}",
            params={"api-version": API_VERSION},
            missing_ok=True,
        )
        if found is not None:
            return self._order_commitment(found)
        alias = await self.api.call(
            "GET",
            f"/providers/Microsoft.BillingBenefits/savingsPlanOrderAliases/{alias_name(client_token)}",
            params={"api-version": API_VERSION},
            missing_ok=True,
        )
        return None if alias is None else self._plan_commitment(alias)

    async def offerings(self) -> list[Offering]:
        described = {
            RESERVATION: "Azure Reservation (Microsoft.Capacity reservationOrders)",
            SAVINGS_PLAN: "Azure Savings Plan for compute (Microsoft.BillingBenefits savingsPlanOrderAliases)",
        }
        return [
            Offering(self.name, program, term, payment, UPFRONT_SHARE[payment], text)
            for program, text in described.items()
            for term in TERMS
            for payment in BILLING_PLANS
        ]
