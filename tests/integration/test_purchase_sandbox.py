"""The sandbox provider against real PostgreSQL, through its adapter and its HTTP API: one commitment per client
token however often it is asked, a token reused for other terms refused like AWS's IdempotentParameterMismatch,
bad requests refused naming the field, injected failures, and a ledger that outlives the server process."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from finops_purchase.adapters.sandbox import SandboxProvider
from finops_purchase.provider import IdempotencyMismatch, Order, OutcomeUnknown
from tests.support.purchase import sandbox, sandbox_ledger


def order(token: str, **changes) -> Order:
    fields = dict(
        decision_id=token,
        provider_name="AWS",
        billing_account_id="111122223333",
        program="aws_ec2_instance_savings_plan",
        term_months=36,
        payment="all_upfront",
        start=datetime(2026, 12, 1, tzinfo=UTC),
        commitment_per_hour=Decimal("0.75"),
        currency="USD",
        covered_usage_per_hour=Decimal("1.9"),
    )
    return Order(**{**fields, **changes})


async def test_one_token_buys_one_commitment_and_other_terms_under_it_are_refused(database_url):
    token = str(uuid.uuid4())
    async with sandbox(database_url) as url:
        provider = SandboxProvider(url)

        first = await provider.purchase(order(token), token)
        again = await provider.purchase(order(token, commitment_per_hour=Decimal("0.750")), token)
        with pytest.raises(IdempotencyMismatch, match=f"client token {token} was already used") as refused:
            await provider.purchase(order(token, payment="no_upfront"), token)
        found, missing = await provider.find(token), await provider.find(str(uuid.uuid4()))
        ledger = await sandbox_ledger(url)
        await provider.aclose()

    assert again == first and found == first
    assert first.commitment_id in str(refused.value)
    assert missing is None
    assert first.upfront == Decimal("19710.00"), "all upfront: 0.75 x 26,280 hours"
    assert first.end == datetime(2029, 12, 1, tzinfo=UTC)
    assert len(ledger) == 1


async def test_bad_purchase_requests_are_refused_naming_the_field(database_url):
    good = {
        "client_token": "t-1",
        "program": "aws_compute_savings_plan",
        "term_months": 12,
        "payment": "no_upfront",
        "start": "2026-12-01T00:00:00+00:00",
        "commitment_per_hour": {"amount": "1.00", "currency": "USD"},
    }
    async with sandbox(database_url) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        answers = {
            name: await client.post("/v1/commitments", json={**good, **change})
            for name, change in {
                "float": {"commitment_per_hour": {"amount": 1.0, "currency": "USD"}},
                "negative": {"commitment_per_hour": {"amount": "-1", "currency": "USD"}},
                "payment": {"program": "gcp_resource_cud", "payment": "all_upfront"},
                "term": {"term_months": 24},
                "naive": {"start": "2026-12-01T00:00:00"},
            }.items()
        }
        ledger = await sandbox_ledger(url)

    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 400)
    assert "decimal string" in answers["float"].json()["error"]
    assert "positive" in answers["negative"].json()["error"]
    assert "use one of no_upfront" in answers["payment"].json()["error"]
    assert "use 12 or 36" in answers["term"].json()["error"]
    assert "time zone" in answers["naive"].json()["error"]
    assert ledger == []


async def test_injected_failures_buy_nothing_except_the_timeout_after_success(database_url):
    failing, lost = str(uuid.uuid4()), str(uuid.uuid4())
    async with sandbox(database_url) as url:
        provider = SandboxProvider(url, timeout_s=0.5)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            await client.put("/v1/faults", json={"error_rate": 1.0})
            with pytest.raises(OutcomeUnknown, match="503"):
                await provider.purchase(order(failing), failing)
            await client.put("/v1/faults", json={"error_rate": 0, "timeout_rate": 1.0, "hang_s": 1.0})
            with pytest.raises(OutcomeUnknown, match="did not answer in time"):
                await provider.purchase(order(failing), failing)
            await client.put("/v1/faults", json={"timeout_rate": 0, "timeout_after_success_rate": 1.0})
            with pytest.raises(OutcomeUnknown, match="did not answer in time"):
                await provider.purchase(order(lost), lost)
            calls = (await client.get("/v1/calls")).json()
        ledger = await sandbox_ledger(url)
        await provider.aclose()

    assert [c["client_token"] for c in ledger] == [lost]
    assert calls == {"error": 1, "timeout": 1, "timeout_after_success": 1}


async def test_the_ledger_outlives_the_sandbox_server(database_url):
    token = str(uuid.uuid4())
    async with sandbox(database_url) as url:
        provider = SandboxProvider(url)
        bought = await provider.purchase(order(token), token)
        await provider.aclose()

    async with sandbox(database_url) as url:
        provider = SandboxProvider(url)
        found = await provider.find(token)
        replayed = await provider.purchase(order(token), token)
        await provider.aclose()

    assert found == bought and replayed == bought
