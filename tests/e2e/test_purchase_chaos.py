"""Chaos on the real broker: 100 PurchaseRequested events, each delivered at least twice (the same ce_id again,
and for some a new ce_id), a sandbox provider that fails, times out, and times out after buying, and the purchase
service killed -9 five times: between the provider's answer and the commit, before a provider call, after an
inbox commit, and at random moments. Afterwards the provider sold exactly one commitment per decision, the
ledger holds one final state per decision, and every answer on the purchase topic names that commitment."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict

import asyncpg
import httpx

from finops_contracts.decisions import CommitmentPurchased
from finops_contracts.topics import DECISION, PURCHASE
from tests.support.flow import scalar
from tests.support.kafka import count_records, produce
from tests.support.purchase import (
    CHAOS_SANDBOX,
    chaos_purchase_env,
    final_events,
    purchase_requested,
    purchase_rows,
    record,
    sandbox_ledger,
)
from tests.support.services import ServiceProcess, wait_until

DECISIONS = 100
PROGRAMS = ("aws_compute_savings_plan", "aws_ec2_instance_savings_plan", "azure_savings_plan", "gcp_resource_cud")


async def settled_count(database_url: str) -> int:
    return sum(1 for r in await purchase_rows(database_url) if r["state"] != "in_flight")


async def kill_at_random(purchase: ServiceProcess, database_url: str, rng: random.Random) -> int:
    """Kill -9 once a few more decisions have settled, at a random one of them; the settled count then."""
    target = min(DECISIONS - 5, await settled_count(database_url) + rng.randint(10, 30))

    async def reached() -> bool:
        return await settled_count(database_url) >= target

    await wait_until(reached, timeout=120, what=f"{target} purchases settled", every=0.02)
    purchase.kill9()
    return await settled_count(database_url)


async def test_purchases_under_kill_9_redelivery_and_provider_timeouts_buy_exactly_once(
    spawn, service_env, database_url
):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    rng = random.Random()
    requests = [
        purchase_requested(program=PROGRAMS[i % len(PROGRAMS)], per_hour=f"{1 + i / 100:.2f}") for i in range(DECISIONS)
    ]
    ce_ids = [uuid.uuid4() for _ in requests]
    first = [record(r, ce) for r, ce in zip(requests, ce_ids, strict=True)]
    again = [record(r, ce) for r, ce in zip(requests, ce_ids, strict=True)]
    renewed = [record(r) for r in rng.sample(requests, 30)]  # the same request under a new ce_id
    sandbox = spawn("finops_purchase.sandbox", name="sandbox", env=CHAOS_SANDBOX)
    await sandbox.start()
    purchase = spawn(
        "finops_purchase",
        name="purchase",
        env=chaos_purchase_env(sandbox.url),
    )
    topic = ns + DECISION.name
    kills: list[tuple[str, int]] = []

    # Killed between the provider's answer and the commit that records it.
    await purchase.start(extra_env={"FINOPS_FAULTS": "purchase.after_provider_call@4"})  # nothing to resume yet
    await produce(bootstrap, topic, first[:60])
    assert await purchase.wait_exit(timeout=120) == -9
    kills.append(("after_provider_call", await settled_count(database_url)))

    # Killed after counting an attempt, before calling the provider; meanwhile the rest arrive with repeats.
    await purchase.start(extra_env={"FINOPS_FAULTS": "purchase.before_provider_call@6"}, wait=False)
    await produce(bootstrap, topic, rng.sample(first[60:] + again[:60], 100))
    assert await purchase.wait_exit(timeout=120) == -9
    kills.append(("before_provider_call", await settled_count(database_url)))

    await purchase.start()
    kills.append(("random", await kill_at_random(purchase, database_url, rng)))

    # Killed after an inbox transaction committed but before Kafka's offsets did: those records come again.
    await purchase.start(extra_env={"FINOPS_FAULTS": "inbox.after_commit@3"}, wait=False)
    await produce(bootstrap, topic, rng.sample(again[60:] + renewed, 70))
    assert await purchase.wait_exit(timeout=120) == -9
    kills.append(("inbox.after_commit", await settled_count(database_url)))

    await purchase.start()
    kills.append(("random", await kill_at_random(purchase, database_url, rng)))

    await purchase.start()

    async def all_settled_and_published() -> bool:
        return (
            await settled_count(database_url) == DECISIONS
            and await scalar(database_url, "SELECT count(*) FROM purchase.outbox") == 0
        )

    await wait_until(all_settled_and_published, timeout=180, what="every decision settled and announced")
    sold = {c["client_token"]: c for c in await sandbox_ledger(sandbox.url)}
    rows = {str(r["decision_id"]): r for r in await purchase_rows(database_url)}
    published = await count_records(bootstrap, ns + PURCHASE.name)
    answers: dict[str, list[CommitmentPurchased]] = defaultdict(list)
    for _, event in await final_events(bootstrap, ns + PURCHASE.name, at_least=published):
        answers[str(event.decision_id)].append(event)
    calls = await _calls(database_url)
    provider_counts = await _sandbox_calls(sandbox)

    tokens = {str(r.decision_id) for r in requests}
    assert all(n < DECISIONS for _, n in kills), f"every kill lands mid-flow: {kills}"
    assert len(sold) == DECISIONS and set(sold) == tokens, "the provider sold exactly one commitment per decision"
    assert set(rows) == tokens and {r["state"] for r in rows.values()} == {"purchased"}
    assert set(answers) == tokens
    for token in tokens:
        assert all(isinstance(e, CommitmentPurchased) for e in answers[token])
        assert {e.commitment_id for e in answers[token]} == {sold[token]["commitment_id"]}, token
        assert rows[token]["commitment_id"] == sold[token]["commitment_id"]
    assert calls["after_settlement"] == 0, "no provider call for a decision already settled"
    assert calls["cut_off_then_found"] >= 1, "the purchase killed before its commit was reconciled, not bought again"
    assert provider_counts.get("timeout_after_success", 0) >= 1 and provider_counts.get("timeout", 0) >= 1
    assert sum(1 for r in rows.values() if r["reconciled"]) >= provider_counts["timeout_after_success"]
    assert max(r["deliveries"] for r in rows.values()) >= 2


async def _calls(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        after = await conn.fetchval(
            """SELECT count(*) FROM purchase.provider_call c JOIN purchase.purchase p USING (decision_id)
               WHERE c.started_at > p.settled_at"""
        )
        cut_off = await conn.fetchval(
            """SELECT count(DISTINCT c.decision_id) FROM purchase.provider_call c
               JOIN purchase.provider_call f ON f.decision_id = c.decision_id AND f.id > c.id
               WHERE c.call = 'purchase' AND c.outcome IS NULL AND f.call = 'find' AND f.outcome = 'found'"""
        )
    finally:
        await conn.close()
    return {"after_settlement": after, "cut_off_then_found": cut_off}


async def _sandbox_calls(sandbox: ServiceProcess) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"{sandbox.url}/v1/calls")).json()
