"""One trace from the ingest request, through the outbox relay's publish, to the allocation consumer."""

from __future__ import annotations

import httpx
from opentelemetry.trace import SpanKind

from tests.support.flow import allocated_lines
from tests.support.focus_files import write_focus_csv
from tests.support.platform import running
from tests.support.services import wait_until


async def test_ingest_request_relay_publish_and_consumer_share_one_trace(spans, service_env, database_url, tmp_path):
    bill = write_focus_csv(tmp_path / "bill.csv", rows=1000, accounts=5)
    async with running(service_env) as urls, httpx.AsyncClient(timeout=60) as client:
        ingest = urls.ingest
        response = await client.post(f"{ingest}/v1/ingest", params={"batch_size": 250}, content=bill.read_bytes())
        assert response.status_code == 201, response.text

        async def all_allocated():
            return await allocated_lines(database_url) == 1000

        await wait_until(all_allocated, timeout=60, what="the bill allocated")

    finished = spans.get_finished_spans()
    request = [s for s in finished if s.name == "POST /v1/ingest"]
    assert len(request) == 1
    trace_id = request[0].context.trace_id
    assert response.json()["trace_id"] == format(trace_id, "032x")
    publishes = [s for s in finished if s.name == "finops.cost.v1 publish" and s.context.trace_id == trace_id]
    consumes = [s for s in finished if s.name == "finops.cost.v1 process" and s.context.trace_id == trace_id]
    assert publishes and all(s.kind == SpanKind.PRODUCER for s in publishes)
    assert publishes[0].parent.span_id == request[0].context.span_id
    assert consumes and all(s.kind == SpanKind.CONSUMER for s in consumes)
    publish_ids = {s.context.span_id for s in publishes}
    assert all(s.parent.span_id in publish_ids for s in consumes), "each consumer span follows its publish span"
    assert len(consumes) == response.json()["batch_count"] + len(response.json()["periods"]), "batches + completions"
