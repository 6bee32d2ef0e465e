"""Crash tests on the real broker: kill -9 a consumer or the outbox relay in the middle of the flow and check
that allocation's totals equal the input exactly: nothing lost, nothing counted twice."""

from __future__ import annotations

import asyncio
import random

import httpx

from tests.support.flow import allocated_lines, allocated_totals, scalar
from tests.support.focus_files import file_totals
from tests.support.kafka import count_records
from tests.support.services import wait_until

BATCH = 50


async def upload(ingest_url: str, bill) -> dict:
    async with httpx.AsyncClient(timeout=120) as client:
        response = await client.post(
            f"{ingest_url}/v1/ingest", params={"name": bill.name, "batch_size": BATCH}, content=bill.read_bytes()
        )
    assert response.status_code == 201, response.text
    return response.json()


async def processed(database_url: str) -> int:
    return int(await scalar(database_url, "SELECT count(*) FROM allocation.processed_event") or 0)


async def test_allocation_killed_at_random_moments_loses_and_doubles_nothing(
    spawn, service_env, database_url, big_bill
):
    rng = random.Random()
    allocation = spawn("finops_allocation", name="allocation", env={"FINOPS_CONSUMER_MAX_RECORDS": "2"})
    ingest = spawn("finops_ingest", name="ingest")
    await allocation.start()
    await ingest.start()

    report = await upload(ingest.url, big_bill)
    batches = report["batch_count"]
    assert batches >= 200
    events = batches + len(report["periods"])  # cost batches, then one completion per account and period
    kills = []
    for _ in range(3):
        seen = await processed(database_url)
        target = seen + rng.randint(10, max(11, (batches - seen) // 4))

        async def reached(target=target) -> bool:
            return await processed(database_url) >= target

        await wait_until(reached, timeout=60, what=f"{target} batches processed", every=0.02)
        await asyncio.sleep(rng.uniform(0, 0.05))
        allocation.kill9()
        kills.append(await processed(database_url))
        await allocation.start()

    async def all_allocated() -> bool:
        return await allocated_lines(database_url) >= 20_000 and await processed(database_url) >= events

    await wait_until(all_allocated, timeout=120, what="every line allocated")

    assert all(k < events for k in kills), f"each kill must land mid-flow: {kills} of {events}"
    assert await allocated_totals(database_url) == file_totals(big_bill)
    assert await processed(database_url) == events
    assert await allocated_lines(database_url) == 20_000


async def test_relay_killed_between_publish_and_delete_publishes_again_without_double_counting(
    spawn, service_env, database_url, big_bill
):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    ingest = spawn("finops_ingest", name="ingest", env={"FINOPS_RELAY_ENABLED": "false"})
    allocation = spawn("finops_allocation", name="allocation")
    await ingest.start()
    await allocation.start()
    report = await upload(ingest.url, big_bill)
    batches = report["batch_count"]
    events = batches + len(report["periods"])  # on the cost topic: batches, then a completion per period
    assert await scalar(database_url, "SELECT count(*) FROM ingest.outbox") == events + 2  # + accepted, completed

    # The third chunk of 60 rows is published and acknowledged by Kafka, then the relay dies before deleting it.
    relay_env = {"FINOPS_RELAY_BATCH_SIZE": "60", "FINOPS_FAULTS": "relay.after_publish@3"}
    relay = spawn("finops_runtime.relay", name="relay", env=relay_env, args=("--schema", "ingest"), http=False)
    await relay.start()
    assert await relay.wait_exit(timeout=60) == -9
    left = await scalar(database_url, "SELECT count(*) FROM ingest.outbox")
    published = await count_records(bootstrap, ns + "finops.cost.v1")
    assert left == events + 2 - 120 and published == 180, (left, published)

    relay = spawn("finops_runtime.relay", name="relay-again", args=("--schema", "ingest"), http=False)
    await relay.start()

    async def all_allocated() -> bool:
        return await allocated_lines(database_url) >= 20_000 and await processed(database_url) >= events

    await wait_until(all_allocated, timeout=120, what="every line allocated")
    await wait_until(lambda: _outbox_empty(database_url), timeout=30, what="the outbox drained")

    assert await count_records(bootstrap, ns + "finops.cost.v1") == events + 60, "the third chunk went twice"
    assert await allocated_totals(database_url) == file_totals(big_bill)
    assert await processed(database_url) == events


async def _outbox_empty(database_url: str) -> bool:
    return await scalar(database_url, "SELECT count(*) FROM ingest.outbox") == 0


async def test_two_allocation_instances_share_the_partitions(spawn, service_env, database_url, big_bill):
    first = spawn("finops_allocation", name="allocation-a", env={"FINOPS_CONSUMER_MAX_RECORDS": "5"})
    second = spawn("finops_allocation", name="allocation-b", env={"FINOPS_CONSUMER_MAX_RECORDS": "5"})
    ingest = spawn("finops_ingest", name="ingest")
    await first.start()
    await second.start()
    await ingest.start()

    async with httpx.AsyncClient(timeout=10) as client:

        async def both_assigned():
            cost = service_env["FINOPS_KAFKA_NAMESPACE"] + "finops.cost.v1/"
            held = [
                [tp for tp in (await client.get(f"{p.url}/ready")).json()["checks"].get("partitions", [])
                 if tp.startswith(cost)]
                for p in (first, second)
            ]  # fmt: skip
            return held if all(held) and len(set(held[0]) | set(held[1])) == 6 else None

        held = await wait_until(both_assigned, timeout=60, what="both instances holding partitions")
    report = await upload(ingest.url, big_bill)

    async def all_allocated() -> bool:
        return await processed(database_url) >= report["batch_count"] + len(report["periods"])

    await wait_until(all_allocated, timeout=120, what="every batch processed")

    assert not set(held[0]) & set(held[1]), "no partition is held twice"
    per_instance = await scalar(database_url, "SELECT count(DISTINCT instance) FROM allocation.processed_event")
    assert per_instance == 2
    assert await allocated_totals(database_url) == file_totals(big_bill)
