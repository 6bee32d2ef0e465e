"""The server-sent event stream: a client that reads part of the stream, disconnects while more events arrive,
and reconnects with Last-Event-ID receives every remaining event once, in order; filters by type and team hold,
and an engineer sees their own teams' notifications only."""

from __future__ import annotations

import json
import uuid

import httpx

from finops_contracts.topics import ALLOCATION, RECOMMENDATION
from finops_notify.app import create_app
from tests.integration.test_notify import budget_alert, record, settings_for
from tests.support.kafka import produce
from tests.support.platform import ADMIN
from tests.support.services import free_port, serve_in_process
from tests.unit.notify.test_routing import anomaly


async def read_events(
    client: httpx.AsyncClient, url: str, *, count: int, headers: dict[str, str], params: dict[str, str] | None = None
) -> list[tuple[int, str, str]]:
    """(id, event type, ce_id) of the next `count` events of the stream; then the client disconnects."""
    events: list[tuple[int, str, str]] = []
    fields: dict[str, str] = {}
    async with client.stream("GET", f"{url}/v1/stream", headers=headers, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                fields[key] = value
                continue
            if "id" in fields:
                events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])["id"]))
            fields = {}
            if len(events) == count:
                break
    return events


async def test_a_client_resuming_with_last_event_id_misses_nothing_and_gets_nothing_twice(service_env):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    async with (
        serve_in_process(create_app(settings_for(service_env, 25)), free_port()) as url,
        httpx.AsyncClient(timeout=60) as client,
    ):
        first_ids = [uuid.uuid4() for _ in range(5)]
        await produce(
            bootstrap,
            ns + ALLOCATION.name,
            [record(budget_alert(team, actual=f"{900 + i}.00"), eid)
             for i, (team, eid) in enumerate(zip(["payments", "search"] * 3, first_ids, strict=False))],
        )  # fmt: skip
        # A recommendation that the type filter below excludes.
        await produce(bootstrap, ns + RECOMMENDATION.name, [record(anomaly())])
        allocation_only = {"types": "finops.allocation.*"}

        before = await read_events(client, url, count=3, headers=ADMIN, params=allocation_only)
        later_ids = [uuid.uuid4() for _ in range(4)]
        await produce(
            bootstrap,
            ns + ALLOCATION.name,
            [record(budget_alert("payments", actual=f"{1000 + i}.00"), eid) for i, eid in enumerate(later_ids)],
        )
        after = await read_events(
            client, url, count=6, headers={**ADMIN, "Last-Event-ID": str(before[-1][0])}, params=allocation_only
        )

        received = [ce_id for _, _, ce_id in before + after]
        assert sorted(received) == sorted(str(i) for i in first_ids + later_ids)  # nothing missed, nothing twice
        positions = [seq for seq, _, _ in before + after]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        assert {kind for _, kind, _ in before + after} == {"finops.allocation.budget_alerted.v1"}

        # An engineer of team payments sees that team's alerts only, whatever filter they ask for.
        issued = await client.post(
            f"{url}/v1/tokens", json={"name": "dev", "role": "engineering", "teams": ["payments"]}, headers=ADMIN
        )
        engineer = {"Authorization": f"Bearer {issued.json()['token']}"}
        theirs = await read_events(client, url, count=7, headers=engineer, params={"team": "payments,search"})
        payments = [str(first_ids[i]) for i in (0, 2, 4)] + [str(i) for i in later_ids]
        assert sorted(ce_id for _, _, ce_id in theirs) == sorted(payments)
