"""Chaos through the decision service, every part a process on the real broker: 100 recommendations, each
delivered twice, become 100 decisions that the default policy's autopilot approves; their purchase requests go
to the purchase service, which is killed -9 at random moments (once between the provider's answer and its commit)
while the sandbox provider times out, fails and loses replies after buying. Afterwards the provider sold exactly
one commitment per decision, under the decision id, and every decision reached `purchased` with that commitment."""

from __future__ import annotations

import random

import httpx

from finops_contracts.topics import RECOMMENDATION
from tests.support.decision import feed_usage, plan, record, tranche
from tests.support.kafka import produce
from tests.support.platform import ADMIN
from tests.support.purchase import CHAOS_SANDBOX, chaos_purchase_env, purchase_rows, sandbox_ledger
from tests.support.services import ServiceProcess, wait_until

DECISIONS = 100


async def decisions_by_state(client: httpx.AsyncClient, url: str) -> dict[str, dict]:
    found, cursor = {}, None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{url}/v1/decisions", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        found.update({d["id"]: d for d in body["decisions"]})
        if not (cursor := body["next_cursor"]):
            return found


async def settled(database_url: str) -> int:
    return sum(1 for r in await purchase_rows(database_url) if r["state"] != "in_flight")


async def kill_when(purchase: ServiceProcess, database_url: str, target: int) -> int:
    async def reached() -> bool:
        return await settled(database_url) >= target

    await wait_until(reached, timeout=120, what=f"{target} purchases settled", every=0.02)
    purchase.kill9()
    return await settled(database_url)


async def test_approved_decisions_are_bought_once_each_through_kills_and_timeouts(spawn, service_env, database_url):
    # Given the sandbox provider with injected faults, the decision service and the purchase service
    bootstrap, ns = service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"]
    rng = random.Random()
    sandbox = spawn("finops_purchase.sandbox", name="sandbox", env=CHAOS_SANDBOX)
    await sandbox.start()
    decision = spawn("finops_decision", name="decision", env={"FINOPS_DECISION_TICK_S": "0.5"})
    purchase = spawn(
        "finops_purchase",
        name="purchase",
        env=chaos_purchase_env(sandbox.url),
    )
    await decision.start()
    await purchase.start(extra_env={"FINOPS_FAULTS": "purchase.after_provider_call@7"})
    # And the pool's usage (10.00 an hour) on the cost topic, which the decision service's guard checks
    await feed_usage(service_env, "10.00")

    # When 100 small commitment plans arrive, each twice (0.10 to 0.25 an hour: under the autopilot's 200 a month)
    plans = [
        plan(tranche(f"0.{10 + i % 16:02d}00", "0.3000"), savings="20.00", pool_usage_per_hour="10")
        for i in range(DECISIONS)
    ]
    records = [record(p, source="recommend") for p in plans]
    await produce(bootstrap, ns + RECOMMENDATION.name, records + rng.sample(records, len(records)))

    # And the purchase service dies between a provider's answer and its commit, then at two random moments
    kills = [await purchase.wait_exit(timeout=120)]
    for _ in range(2):
        await purchase.start(wait=False)
        kills.append(await kill_when(purchase, database_url, (await settled(database_url)) + rng.randint(5, 25)))
    await purchase.start()

    # Then every decision is bought exactly once and ends purchased with the provider's commitment
    async with httpx.AsyncClient(timeout=30) as client:
        found: dict[str, dict] = {}

        async def all_purchased() -> bool:
            found.update(await decisions_by_state(client, decision.url))
            return len(found) == DECISIONS and all(d["state"] == "purchased" for d in found.values())

        await wait_until(all_purchased, timeout=240, what="every decision purchased")
    sold = {c["client_token"]: c["commitment_id"] for c in await sandbox_ledger(sandbox.url)}
    assert kills[0] == -9, "the armed fault point was reached"
    assert all(n < DECISIONS for n in kills[1:]), f"each random kill lands mid-flow: {kills}"
    assert len(sold) == DECISIONS and set(sold) == set(found), "exactly one commitment per decision, by its id"
    for decision_id, d in found.items():
        assert d["automatic"] and d["policy"]["rule"] == "commitment-autopilot"
        assert d["commitment_id"] == sold[decision_id]
