"""Restatement: a newer version of a billing period replaces the older one downstream, never adds to it."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import httpx

from finops_allocation.app import AllocationSettings
from finops_allocation.app import create_app as allocation_app
from tests.support.flow import allocated_totals, scalar
from tests.support.focus_files import file_totals, write_focus_csv
from tests.support.kafka import read_topic
from tests.support.platform import running
from tests.support.services import free_port, serve_in_process, wait_until


def restate(original: str) -> str:
    """Version 2 of the same periods: every cost changed, a few lines dropped."""
    rows = list(csv.DictReader(io.StringIO(original)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for i, row in enumerate(rows):
        if i % 10 == 0:
            continue
        row["BilledCost"] = str(Decimal(row["BilledCost"]) * Decimal("1.1") + Decimal("0.01"))
        row["EffectiveCost"] = str(Decimal(row["EffectiveCost"]) + Decimal("0.000001"))
        writer.writerow(row)
    return out.getvalue()


async def test_version_two_of_a_period_replaces_version_one(service_env, database_url, tmp_path):
    v1 = write_focus_csv(tmp_path / "2026-01-v1.csv", rows=2000, accounts=3, periods=1, seed=5)
    v2 = tmp_path / "2026-01-v2.csv"
    v2.write_text(restate(v1.read_text()))
    async with running(service_env) as urls, httpx.AsyncClient(timeout=60) as client:
        ingest = urls.ingest
        first = await client.post(f"{ingest}/v1/ingest", params={"batch_size": 100}, content=v1.read_bytes())

        async def shows(bill):
            return await allocated_totals(database_url) == file_totals(bill)

        await wait_until(lambda: shows(v1), timeout=60, what="version 1 allocated")
        second = await client.post(f"{ingest}/v1/ingest", params={"batch_size": 100}, content=v2.read_bytes())
        await wait_until(lambda: shows(v2), timeout=60, what="version 2 allocated in place of version 1")
        # accepted + completed for each file, and one superseded per billing account for version 2
        superseded = await read_topic(
            service_env["KAFKA_BOOTSTRAP_SERVERS"],
            service_env["FINOPS_KAFKA_NAMESPACE"] + "finops.ingest.v1",
            at_least=7,
        )

    assert {p["version"] for p in first.json()["periods"]} == {1}
    assert {p["version"] for p in second.json()["periods"]} == {2}
    assert await allocated_totals(database_url) == file_totals(v2)
    assert await allocated_totals(database_url, current=False) == file_totals(v2), "version 1's lines are gone"
    assert await scalar(database_url, "SELECT count(DISTINCT version) FROM allocation.current_period") == 1
    types = [dict(r.headers)["ce_type"].decode() for r in superseded]
    assert types.count("finops.ingest.period_superseded.v1") == 3  # one per billing account
    assert types.count("finops.ingest.completed.v1") == 2


async def test_a_period_whose_lines_did_not_all_arrive_never_becomes_current(service_env, database_url):
    import uuid
    from datetime import UTC, datetime

    from finops_contracts.cloudevents import Envelope
    from finops_contracts.events import CostPeriodCompleted, CurrencyTotal
    from tests.support.kafka import produce

    bootstrap, ns = service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"]
    start = datetime(2026, 5, 1, tzinfo=UTC)
    claimed = CostPeriodCompleted(
        ingest_id=uuid.uuid4(),
        provider_name="AWS",
        billing_account_id="acct-9",
        billing_period_start=start,
        version=1,
        batch_count=2,
        line_count=10,
        totals=(CurrencyTotal(currency="USD", billed_cost=Decimal("5"), effective_cost=Decimal("5"), line_count=10),),
    )
    headers = Envelope(id=uuid.uuid4(), type=claimed.TYPE, source="/test", time=datetime.now(UTC)).to_headers()
    settings = AllocationSettings(database_url=database_url, kafka_bootstrap_servers=bootstrap, kafka_namespace=ns)

    async with serve_in_process(allocation_app(settings), free_port()):
        await produce(
            bootstrap, ns + "finops.cost.v1", [(claimed.key().encode(), claimed.model_dump_json().encode(), headers)]
        )
        [dead] = await read_topic(bootstrap, ns + "finops.cost.v1.dlq", at_least=1)

    reason = dict(dead.headers)["dlq_reason"].decode()
    assert "conservation check failed for acct-9/2026-05 version 1" in reason
    assert "the ledger holds nothing" in reason and "10 lines" in reason
    assert await scalar(database_url, "SELECT count(*) FROM allocation.current_period") == 0
