"""The first flow, in process against real Kafka and PostgreSQL: a FOCUS file uploaded to ingest ends up
allocated, per billing account and currency, to the cent. The test of the sample in ../shared/data/focus
(MANIFEST.md) is marked `samples`; the others use generated FOCUS files."""

from __future__ import annotations

import httpx
import pytest

from tests.support.flow import allocated_lines, allocated_totals, scalar
from tests.support.focus_files import FOCUS_SAMPLE, file_totals, write_focus_csv
from tests.support.kafka import count_records
from tests.support.platform import running
from tests.support.services import wait_until


@pytest.mark.samples
async def test_sample_file_is_allocated_to_the_cent(service_env, database_url):
    expected = file_totals(FOCUS_SAMPLE)

    async with running(service_env) as urls, httpx.AsyncClient(timeout=60) as client:
        ingest = urls.ingest
        response = await client.post(
            f"{ingest}/v1/ingest",
            params={"name": FOCUS_SAMPLE.name, "batch_size": 40},
            content=FOCUS_SAMPLE.read_bytes(),
        )
        assert response.status_code == 201, response.text

        async def all_allocated():
            return await allocated_lines(database_url) == 1000

        await wait_until(all_allocated, timeout=60, what="1000 lines allocated")

    assert await allocated_totals(database_url) == expected
    report = response.json()
    assert report["row_count"] == 1000
    assert {(t["billing_account_id"], t["currency"]): t["billed_cost"] for t in report["totals"]} == {
        k: format(v[0], "f") for k, v in expected.items()
    }
    assert await scalar(database_url, "SELECT count(*) FROM ingest.outbox") == 0


async def test_the_same_file_twice_is_accepted_once(service_env, database_url, tmp_path):
    bill = write_focus_csv(tmp_path / "bill.csv", rows=1000, accounts=5, seed=13)
    async with running(service_env) as urls, httpx.AsyncClient(timeout=60) as client:
        ingest = urls.ingest
        first = await client.post(f"{ingest}/v1/ingest", content=bill.read_bytes())
        second = await client.post(f"{ingest}/v1/ingest", content=bill.read_bytes())

        async def all_allocated():
            return await allocated_lines(database_url) == 1000

        await wait_until(all_allocated, timeout=60, what="1000 lines allocated")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] is True
    assert second.json()["ingest_id"] == first.json()["ingest_id"]
    assert await allocated_totals(database_url) == file_totals(bill)


async def test_a_bad_file_is_rejected_whole_and_nothing_is_published(service_env, database_url, tmp_path):
    lines = write_focus_csv(tmp_path / "bill.csv", rows=1000).read_text().splitlines(keepends=True)
    broken = lines[:500] + [lines[500].replace(",USD,", ",US Dollars,", 1)] + lines[501:]
    assert broken[500] != lines[500]

    async with running(service_env, allocation=False) as urls, httpx.AsyncClient(timeout=60) as client:
        ingest = urls.ingest
        response = await client.post(f"{ingest}/v1/ingest", params={"name": "broken.csv"}, content="".join(broken))
        ok = await client.get(f"{ingest}/health")

    assert response.status_code == 422
    rejected = response.json()["rejected"]
    assert rejected["file"] == "broken.csv"
    assert (rejected["errors"][0]["row"], rejected["errors"][0]["column"]) == (501, "BillingCurrency")
    assert rejected["errors"][0]["value"] == "US Dollars"
    assert ok.status_code == 200
    assert await scalar(database_url, "SELECT count(*) FROM ingest.outbox") == 0
    assert await scalar(database_url, "SELECT count(*) FROM ingest.ingest_file") == 0
    assert await scalar(database_url, "SELECT file_name FROM ingest.ingest_rejection") == "broken.csv"
    assert (
        await count_records(
            service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"] + "finops.cost.v1"
        )
        == 0
    )
