"""The purchase service on real Kafka and PostgreSQL with the sandbox provider: a PurchaseRequested on the
decision topic buys once and answers on the purchase topic; repeated requests never buy again; a reply lost
after the provider bought is reconciled by client token; retries end in PurchaseFailed only once the provider
confirms nothing was bought; a token already used for other terms is refused; real-money adapters run dry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from finops_contracts.decisions import CommitmentPurchased, DecisionExpired, PurchaseFailed
from finops_contracts.recommendations import Kind
from finops_contracts.topics import DECISION, PURCHASE
from tests.support.flow import scalar
from tests.support.kafka import produce
from tests.support.platform import ADMIN
from tests.support.purchase import (
    final_events,
    provider_calls,
    purchase_requested,
    purchase_rows,
    purchase_service,
    record,
    sandbox,
    sandbox_ledger,
)
from tests.support.purchase_recorder import recording_server
from tests.support.services import wait_until


async def settled(database_url: str, count: int) -> bool:
    rows = await purchase_rows(database_url)
    return len(rows) >= count and all(r["state"] != "in_flight" for r in rows)


async def token(url: str, role: str) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{url}/v1/tokens", headers=ADMIN, json={"name": f"a {role}", "role": role})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_a_purchase_request_buys_once_and_repeats_never_buy_again(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    request = purchase_requested(payment="partial_upfront", per_hour="1.25")
    first, other_id = uuid.uuid4(), uuid.uuid4()
    other = DecisionExpired(
        decision_id=uuid.uuid4(),
        recommendation_id=uuid.uuid4(),
        kind=Kind.COMMITMENT_PLAN,
        owner_team="payments",
        state="expired",
        reason="approvals did not arrive in time",
        at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    async with sandbox(database_url) as provider, purchase_service(service_env, sandbox_url=provider) as url:
        await produce(bootstrap, ns + DECISION.name, [record(request, first), record(other, other_id)])
        await wait_until(lambda: settled(database_url, 1), timeout=60, what="the purchase settled")

        await produce(bootstrap, ns + DECISION.name, [record(request, first), record(request)])

        async def repeats_seen() -> bool:
            return await scalar(database_url, "SELECT deliveries FROM purchase.purchase") == 2

        await wait_until(repeats_seen, timeout=60, what="the repeated request processed")
        events = await final_events(bootstrap, ns + PURCHASE.name, at_least=2)
        ledger = await sandbox_ledger(provider)
        calls = await provider_calls(database_url)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            listed = await client.get("/v1/purchases", headers=await token(url, "finance"))
            one = await client.get(f"/v1/purchases/{request.decision_id}", headers=ADMIN)
            engineer = await client.get("/v1/purchases", headers=await token(url, "engineering"))
            anonymous = await client.get("/v1/purchases")
            bad_id = await client.get("/v1/purchases/not-a-uuid", headers=ADMIN)
            unknown = await client.get(f"/v1/purchases/{uuid.uuid4()}", headers=ADMIN)
            bad_state = await client.get("/v1/purchases?state=bought", headers=ADMIN)
            offerings = await client.get("/v1/offerings", headers=await token(url, "automation"))
        skipped = await scalar(
            database_url, "SELECT outcome FROM purchase.processed_event WHERE event_id = $1", other_id
        )

    assert len(ledger) == 1 and ledger[0]["client_token"] == str(request.decision_id)
    assert [c["call"] for c in calls] == ["purchase"], "one provider call, whatever was repeated"
    bought = [e for _, e in events if isinstance(e, CommitmentPurchased)]
    assert len(bought) == 2, "the first answer, and one answer to the request under a new ce_id"
    assert len({ce_id for ce_id, _ in events}) == 2
    assert {e.commitment_id for e in bought} == {ledger[0]["commitment_id"]}
    assert all(e.dry_run is False and e.attempts == 1 for e in bought)
    assert str(bought[0].upfront.amount) == "5475.00", "half of 1.25 x 8,760 hours, to the cent"
    assert listed.status_code == 200 and [p["decision_id"] for p in listed.json()] == [str(request.decision_id)]
    assert one.json()["state"] == "purchased" and one.json()["deliveries"] == 2
    assert [c["outcome"] for c in one.json()["calls"]] == ["bought"]
    assert (engineer.status_code, anonymous.status_code) == (403, 401)
    assert (bad_id.status_code, unknown.status_code, bad_state.status_code) == (400, 404, 400)
    sold = {(o["program"], o["term_months"], o["payment"]): o for o in offerings.json()["offerings"]}
    assert sold[("aws_compute_savings_plan", 36, "partial_upfront")]["upfront_share"] == "0.5"
    assert ("gcp_resource_cud", 12, "all_upfront") not in sold
    assert skipped == "skipped"
    assert len(await purchase_rows(database_url)) == 1, "the other decision event type bought nothing"


async def test_a_reply_lost_after_the_provider_bought_is_reconciled_not_bought_again(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    request = purchase_requested(program="azure_savings_plan", provider="Microsoft")
    async with (
        sandbox(database_url, timeout_after_success_rate=1.0) as provider,
        purchase_service(service_env, sandbox_url=provider, purchase_timeout_s=0.5),
    ):
        await produce(bootstrap, ns + DECISION.name, [record(request)])
        await wait_until(lambda: settled(database_url, 1), timeout=60, what="the purchase settled")
        events = await final_events(bootstrap, ns + PURCHASE.name, at_least=1)
        ledger = await sandbox_ledger(provider)
        async with httpx.AsyncClient(timeout=10) as client:
            faults = (await client.get(f"{provider}/v1/faults")).json()
    row = (await purchase_rows(database_url))[0]
    calls = await provider_calls(database_url)

    assert faults["injected"] == {"timeout_after_success": 1}
    assert len(ledger) == 1
    assert [(c["call"], c["outcome"]) for c in calls] == [("purchase", "unknown"), ("find", "found")]
    assert row["state"] == "purchased" and row["reconciled"] and row["attempts"] == 1
    assert row["commitment_id"] == ledger[0]["commitment_id"]
    assert [e.commitment_id for _, e in events] == [ledger[0]["commitment_id"]]


async def test_retries_fail_the_purchase_only_once_the_provider_confirms_nothing_was_bought(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    request = purchase_requested()
    async with (
        sandbox(database_url, error_rate=1.0) as provider,
        purchase_service(service_env, sandbox_url=provider, purchase_max_attempts=3),
    ):
        await produce(bootstrap, ns + DECISION.name, [record(request)])
        await wait_until(lambda: settled(database_url, 1), timeout=60, what="the purchase settled")
        events = await final_events(bootstrap, ns + PURCHASE.name, at_least=1)
        ledger = await sandbox_ledger(provider)
    calls = await provider_calls(database_url)

    assert ledger == []
    assert [c["call"] for c in calls] == ["purchase", "find", "purchase", "find", "purchase", "find"]
    assert calls[-1]["outcome"] == "none", "the last word is the provider's: nothing bought"
    assert len(events) == 1 and isinstance(events[0][1], PurchaseFailed)
    failed = events[0][1]
    assert failed.attempts == 3 and "confirms nothing was bought" in failed.reason and "503" in failed.reason


async def test_a_token_already_used_for_other_terms_is_refused(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    request = purchase_requested(per_hour="2.00")
    async with sandbox(database_url) as provider, purchase_service(service_env, sandbox_url=provider):
        async with httpx.AsyncClient(timeout=10) as client:
            earlier = await client.post(
                f"{provider}/v1/commitments",
                json={
                    "client_token": str(request.decision_id),
                    "billing_account_id": request.billing_account_id,
                    "program": "aws_compute_savings_plan",
                    "term_months": 12,
                    "payment": "no_upfront",
                    "start": request.purchase.start.isoformat(),
                    "commitment_per_hour": {"amount": "9.00", "currency": "USD"},
                },
            )
        await produce(bootstrap, ns + DECISION.name, [record(request)])
        await wait_until(lambda: settled(database_url, 1), timeout=60, what="the purchase settled")
        events = await final_events(bootstrap, ns + PURCHASE.name, at_least=1)
        ledger = await sandbox_ledger(provider)

    assert earlier.status_code == 201
    assert [c["commitment_per_hour"]["amount"] for c in ledger] == ["9.00"], "nothing more was bought"
    assert len(events) == 1 and isinstance(events[0][1], PurchaseFailed)
    assert "already used" in events[0][1].reason and earlier.json()["commitment_id"] in events[0][1].reason


async def test_real_money_adapters_run_dry_by_default_and_call_no_provider(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    requests = [
        purchase_requested(program="aws_compute_savings_plan", payment="all_upfront", per_hour="0.5"),
        purchase_requested(program="aws_reserved_instance", payment="partial_upfront"),
        purchase_requested(program="azure_reservation", provider="Microsoft"),
        purchase_requested(program="gcp_resource_cud", provider="Google Cloud"),
        purchase_requested(program="gcp_flexible_cud", provider="Google Cloud"),
        purchase_requested(program="oci_universal_credits", provider="OCI"),
    ]
    with recording_server() as cloud:
        settings = dict(
            purchase_provider="cloud",
            aws_endpoint_url=cloud.url,
            aws_ri_instance_type="m5.large",
            azure_base_url=cloud.url,
            azure_billing_scope_id="/subscriptions/00000000-0000-0000-0000-000000000001",
            azure_sku="Standard_D2s_v5",
            azure_access_token="azure-token",
            gcp_base_url=cloud.url,
            gcp_project="acme-prod",
            gcp_vcpu_hourly="0.02",
            gcp_memory_gb_hourly="0.003",
            gcp_access_token="gcp-token",
        )
        async with purchase_service(service_env, **settings):
            await produce(bootstrap, ns + DECISION.name, [record(r) for r in requests])
            await wait_until(lambda: settled(database_url, len(requests)), timeout=60, what="every request settled")
            events = dict((e.decision_id, e) for _, e in await final_events(bootstrap, ns + PURCHASE.name, at_least=6))

    assert cloud.requests == [], "a dry run calls no provider"
    answers = [events[r.decision_id] for r in requests]
    assert all(e.dry_run for e in answers)
    assert [type(e).__name__ for e in answers] == ["CommitmentPurchased"] * 4 + ["PurchaseFailed"] * 2
    assert [e.commitment_id for e in answers[:4]] == [
        f"dry-run:{cloud_name}:{r.decision_id}"
        for cloud_name, r in zip(["aws", "aws", "azure", "gcp"], requests[:4], strict=True)
    ]
    assert str(answers[0].upfront.amount) == "4380.00", "all upfront: 0.5 x 8,760 hours"
    assert "console" in answers[4].reason and "oci_universal_credits" in answers[5].reason
