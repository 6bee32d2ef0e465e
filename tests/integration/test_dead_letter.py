"""Records that can never succeed go to the dead-letter topic with their reason and origin; the valid
records after them are processed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa

from finops_allocation.app import AllocationSettings, create_app
from finops_contracts import costframe
from finops_contracts.cloudevents import Envelope
from finops_contracts.events import CostBatchIngested, CostLine
from tests.support.flow import allocated_totals, scalar
from tests.support.kafka import produce, read_topic
from tests.support.services import free_port, serve_in_process, wait_until

PERIOD = datetime(2026, 3, 1, tzinfo=UTC)


def batch(account: str, cost: str) -> tuple[bytes, bytes, dict[str, str]]:
    line = CostLine(
        billing_account_id=account,
        billing_period_start=PERIOD,
        billing_period_end=PERIOD,
        charge_period_start=PERIOD,
        charge_period_end=PERIOD,
        charge_category="Usage",
        billing_currency="USD",
        billed_cost=Decimal(cost),
        effective_cost=Decimal(cost),
        provider_name="AWS",
        tags={"team": "a"},
    )
    event = CostBatchIngested.of_lines(
        [line], ingest_id=uuid.uuid4(), batch_seq=0, billing_account_id=account, billing_period_start=PERIOD
    )
    headers = Envelope(
        id=uuid.uuid4(), type=event.TYPE, source="/test", time=datetime.now(UTC), content_type=event.CONTENT_TYPE
    ).to_headers()
    return event.key().encode(), event.encode(), headers


def with_currency(payload: bytes, currency: str) -> bytes:
    """The same batch with a currency the model would never let through."""
    header, frame = costframe.decode(payload)
    i = frame.schema.get_field_index("billing_currency")
    frame = frame.set_column(i, frame.schema.field(i), pa.array([currency] * frame.num_rows))
    sink = pa.BufferOutputStream()
    schema = frame.schema.with_metadata({costframe.BATCH_METADATA: json.dumps(header)})
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(frame.replace_schema_metadata(schema.metadata))
    return sink.getvalue().to_pybytes()


async def test_malformed_records_are_dead_lettered_and_later_ones_processed(service_env, database_url):
    bootstrap, ns = service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"]
    key, good_payload, good_headers = batch("acct-1", "1.10")
    _, later_payload, later_headers = batch("acct-1", "2.205")
    arrow = CostBatchIngested.CONTENT_TYPE
    envelope_only = Envelope(
        id=uuid.uuid4(), type=CostBatchIngested.TYPE, source="/test", time=datetime.now(UTC), content_type=arrow
    ).to_headers()
    bad_currency = with_currency(good_payload, "usd")
    other_headers = Envelope(
        id=uuid.uuid4(), type=CostBatchIngested.TYPE, source="/test", time=datetime.now(UTC), content_type=arrow
    ).to_headers()
    settings = AllocationSettings(database_url=database_url, kafka_bootstrap_servers=bootstrap, kafka_namespace=ns)

    async with serve_in_process(create_app(settings), free_port()):
        await produce(
            bootstrap,
            ns + "finops.cost.v1",
            [
                (key, good_payload, good_headers),
                (key, b"not an arrow stream", envelope_only),
                (key, good_payload, {"content-type": "application/json"}),
                (key, bad_currency, other_headers),
                (key, later_payload, later_headers),
            ],
        )

        async def both_valid_allocated():
            return (await allocated_totals(database_url, current=False)).get(("acct-1", "USD"), (0,))[0] == Decimal(
                "3.305"
            )

        await wait_until(both_valid_allocated, timeout=30, what="the valid batches allocated")
        dead = await read_topic(bootstrap, ns + "finops.cost.v1.dlq", at_least=3)

    reasons = sorted(dict(r.headers)["dlq_reason"].decode() for r in dead)
    assert len(dead) == 3
    assert any(
        r.startswith("payload does not match finops.cost.batch_ingested.v2") and "not an Arrow IPC stream" in r
        for r in reasons
    ), reasons
    assert any("required header ce_specversion" in r or "ce_specversion" in r for r in reasons), reasons
    assert any("billing_currency" in r and "'usd'" in r for r in reasons), reasons
    origins = sorted(int(dict(r.headers)["dlq_origin_offset"]) for r in dead)
    assert origins == [1, 2, 3]
    assert {dict(r.headers)["dlq_origin_topic"].decode() for r in dead} == {ns + "finops.cost.v1"}
    assert {r.value for r in dead} == {b"not an arrow stream", good_payload, bad_currency}
    assert (
        await scalar(database_url, "SELECT count(*) FROM allocation.processed_event WHERE outcome = 'dead_lettered'")
        == 3
    )
