"""The Azure and Google Cloud adapters over real HTTP against a local server that records each request: the
documented REST calls, with the decision id as Azure's reservation order id and Compute Engine's requestId."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from finops_purchase.adapters.azure import AzureOptions, AzureProvider
from finops_purchase.adapters.gcp import GcpOptions, GcpProvider
from finops_purchase.adapters.rest import json_text
from finops_purchase.provider import Order, OutcomeUnknown, Refused, Transient
from tests.support.purchase_recorder import recording_server

TOKEN = str(uuid.UUID("0f8e2d4c-3b1a-4c5d-9e6f-7a8b9c0d1e2f"))
SCOPE = "/subscriptions/00000000-0000-0000-0000-000000000001"
ORDER_PATH = f"/providers/Microsoft.Capacity/reservationOrders/{TOKEN}"
ALIAS_PATH = f"/providers/Microsoft.BillingBenefits/savingsPlanOrderAliases/finops-{TOKEN}"
COMMITMENTS = "/projects/acme-prod/regions/us-central1/commitments"


def order(**changes) -> Order:
    base = Order(
        decision_id=TOKEN,
        provider_name="Microsoft",
        billing_account_id="ea-1234",
        program="azure_reservation",
        term_months=12,
        payment="no_upfront",
        start=datetime(2026, 12, 1, tzinfo=UTC),
        commitment_per_hour=Decimal("0.35"),
        currency="USD",
        covered_usage_per_hour=Decimal("0.6"),
    )
    return replace(base, **changes)


def azure(url: str, token: str | None = "azure-token") -> AzureProvider:
    options = AzureOptions(billing_scope_id=SCOPE, location="westeurope", sku="Standard_D2s_v5", base_url=url)
    return AzureProvider(options, token=lambda: token)


def gcp(url: str) -> GcpProvider:
    options = GcpOptions(
        project="acme-prod", vcpu_hourly=Decimal("0.02"), memory_gb_hourly=Decimal("0.003"), base_url=url
    )
    return GcpProvider(options, token=lambda: "gcp-token")


async def test_an_azure_reservation_is_priced_then_bought_under_the_decision_id_as_order_id():
    with recording_server() as arm:
        arm.answer(
            "POST",
            "/providers/Microsoft.Capacity/calculatePrice",
            200,
            {"properties": {"billingCurrencyTotal": {"currencyCode": "USD", "amount": 613.2}}},
        )
        arm.answer(
            "PUT",
            ORDER_PATH,
            202,
            {
                "id": ORDER_PATH.lower(),
                "name": TOKEN,
                "properties": {
                    "term": "P1Y",
                    "billingPlan": "Monthly",
                    "provisioningState": "Creating",
                    "benefitStartTime": "2026-12-01T00:00:00Z",
                    "expiryDateTime": "2027-12-01T00:00:00Z",
                },
            },
        )
        provider = azure(arm.url)

        bought = await provider.purchase(order(), TOKEN)
        await provider.aclose()

    price, buy = arm.requests
    assert (price.method, price.path, price.query) == (
        "POST",
        "/providers/Microsoft.Capacity/calculatePrice",
        {"api-version": ["2022-11-01"]},
    )
    assert price.json()["properties"]["quantity"] == 1
    assert (buy.method, buy.path, buy.query["api-version"]) == ("PUT", ORDER_PATH, ["2022-11-01"])
    assert buy.headers["Authorization"] == "Bearer azure-token"
    assert buy.json() == {
        "sku": {"name": "Standard_D2s_v5"},
        "location": "westeurope",
        "properties": {
            "reservedResourceType": "VirtualMachines",
            "billingScopeId": SCOPE,
            "term": "P1Y",
            "billingPlan": "Monthly",
            "quantity": 5,  # one costs 613.20 / 8,760 h = 0.07 /h; 0.35 /h buys 5
            "displayName": f"finops-{TOKEN}",
            "appliedScopeType": "Shared",
            "renew": False,
            "reservedResourceProperties": {"instanceFlexibility": "On"},
        },
    }
    assert bought.commitment_id == ORDER_PATH.lower()
    assert bought.commitment_per_hour == Decimal("0.35") and bought.upfront == Decimal(0)
    assert bought.end == datetime(2027, 12, 1, tzinfo=UTC)


async def test_an_azure_savings_plan_alias_carries_the_exact_hourly_commitment():
    with recording_server() as arm:
        arm.answer(
            "PUT",
            ALIAS_PATH,
            201,
            {"properties": {"savingsPlanOrderId": "/providers/Microsoft.BillingBenefits/savingsPlanOrders/sp-order-1"}},
        )
        provider = azure(arm.url)

        bought = await provider.purchase(
            order(program="azure_savings_plan", commitment_per_hour=Decimal("1.250")), TOKEN
        )
        await provider.aclose()

    (put,) = arm.requests
    assert put.path == ALIAS_PATH
    assert b'"commitment":{"grain":"Hourly","currencyCode":"USD","amount":1.250}' in put.body
    assert json.loads(put.body)["properties"]["billingPlan"] == "P1M"
    assert bought.commitment_id.endswith("/savingsPlanOrders/sp-order-1")


async def test_azure_reconciles_by_reading_the_order_and_alias_of_the_token():
    with recording_server() as arm:
        arm.answer("GET", ORDER_PATH, 200, {"id": ORDER_PATH, "properties": {"term": "P3Y", "billingPlan": "Upfront"}})
        provider = azure(arm.url)

        found = await provider.find(TOKEN)
        missing = await provider.find(TOKEN)  # the script is used up: 404 for the order and the alias
        await provider.aclose()

    assert found is not None and found.commitment_id == ORDER_PATH
    assert (found.term_months, found.payment, found.commitment_per_hour) == (36, "all_upfront", None)
    assert missing is None
    assert [(r.method, r.path) for r in arm.requests] == [("GET", ORDER_PATH), ("GET", ORDER_PATH), ("GET", ALIAS_PATH)]


async def test_azure_answers_split_into_retry_and_refusal():
    with recording_server() as arm:
        arm.answer("POST", "/providers/Microsoft.Capacity/calculatePrice", 503, {"error": {"code": "ServerBusy"}})
        arm.answer("POST", "/providers/Microsoft.Capacity/calculatePrice", 400, {"error": {"code": "InvalidSku"}})
        provider = azure(arm.url)
        no_token = azure(arm.url, token=None)

        with pytest.raises(OutcomeUnknown, match="503"):
            await provider.purchase(order(), TOKEN)
        with pytest.raises(Refused, match="InvalidSku"):
            await provider.purchase(order(), TOKEN)
        with pytest.raises(Transient, match="no Azure access token"):
            await no_token.purchase(order(), TOKEN)
        await provider.aclose()
        await no_token.aclose()

    with pytest.raises(Refused, match="monthly or upfront"):
        azure("http://127.0.0.1:9").validate(order(payment="partial_upfront"))


async def test_a_gcp_commitment_is_inserted_with_the_decision_id_as_request_id_and_name():
    with recording_server() as compute:
        compute.answer(
            "POST",
            COMMITMENTS,
            200,
            {"kind": "compute#operation", "name": "operation-1", "status": "PENDING", "operationType": "insert"},
        )
        provider = gcp(compute.url)

        bought = await provider.purchase(order(program="gcp_resource_cud", commitment_per_hour=Decimal("0.70")), TOKEN)
        await provider.aclose()

    (insert,) = compute.requests
    assert insert.query == {"requestId": [TOKEN]}
    assert insert.headers["Authorization"] == "Bearer gcp-token"
    # One vCPU with its 4 GB costs 0.02 + 4 x 0.003 = 0.032 /h: 0.70 /h commits 21 vCPUs and 84 GB.
    assert insert.json() == {
        "name": f"finops-{TOKEN}",
        "description": f"FinOps decision {TOKEN}",
        "plan": "TWELVE_MONTH",
        "type": "GENERAL_PURPOSE_N2",
        "category": "MACHINE",
        "resources": [{"type": "VCPU", "amount": "21"}, {"type": "MEMORY", "amount": "86016"}],
        "autoRenew": False,
    }
    assert bought.commitment_id == f"projects/acme-prod/regions/us-central1/commitments/finops-{TOKEN}"
    assert bought.commitment_per_hour == Decimal("0.672")


async def test_a_gcp_commitment_that_already_exists_is_returned_not_bought_again():
    with recording_server() as compute:
        compute.answer("POST", COMMITMENTS, 409, {"error": {"code": 409, "message": "already exists"}})
        compute.answer(
            "GET",
            f"{COMMITMENTS}/finops-{TOKEN}",
            200,
            {"name": f"finops-{TOKEN}", "plan": "THIRTY_SIX_MONTH", "startTimestamp": "2026-12-01T00:00:00.000-08:00"},
        )
        provider = gcp(compute.url)

        existing = await provider.purchase(order(program="gcp_resource_cud", commitment_per_hour=Decimal("1")), TOKEN)
        missing = await provider.find(str(uuid.uuid4()))
        await provider.aclose()

    assert existing.commitment_id.endswith(f"finops-{TOKEN}") and existing.term_months == 36
    assert missing is None
    assert [r.method for r in compute.requests] == ["POST", "GET", "GET"]


def test_gcp_refuses_what_compute_engine_cannot_buy():
    provider = gcp("http://127.0.0.1:9")

    with pytest.raises(Refused, match="console"):
        provider.validate(order(program="gcp_flexible_cud"))
    with pytest.raises(Refused, match="billed monthly"):
        provider.validate(order(program="gcp_resource_cud", payment="all_upfront"))
    with pytest.raises(Refused, match="buys no vCPU"):
        provider.vcpus(order(program="gcp_resource_cud", commitment_per_hour=Decimal("0.01")))


def test_json_bodies_carry_money_as_exact_numbers_and_never_floats():
    assert json_text({"amount": Decimal("0.10"), "n": [1, "a", None, True]}) == '{"amount":0.10,"n":[1,"a",null,true]}'
    with pytest.raises(TypeError, match="float"):
        json_text({"amount": 0.1})
