"""`finops ingest` as a process against the ingest service (in this process, real Kafka and PostgreSQL): the
FOCUS sample (../shared/data/focus, MANIFEST.md; marked `samples`) prints its own totals, a generated bad file
exits 2 naming its row and column, and an unreachable service exits 3."""

from __future__ import annotations

import asyncio
import sys

import pytest

from finops_ingest.app import IngestSettings
from finops_ingest.app import create_app as ingest_app
from tests.support.focus_files import FOCUS_SAMPLE, file_totals, write_focus_csv
from tests.support.services import free_port, serve_in_process


def settings(service_env) -> IngestSettings:
    return IngestSettings(
        database_url=service_env["DATABASE_URL"],
        kafka_bootstrap_servers=service_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_namespace=service_env["FINOPS_KAFKA_NAMESPACE"],
        relay_poll_interval_s=0.2,
    )


async def finops(*args: str) -> tuple[int, str, str]:
    """Run the CLI as its own process without blocking the event loop the service runs in."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "finops_ingest.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode(), err.decode()


def printed_totals(out: str) -> dict[tuple[str, str], tuple[str, str, int]]:
    lines = out.splitlines()
    start = lines.index("Totals:") + 2  # after the table's header
    found = {}
    for line in lines[start:]:
        if not line.strip():
            break
        account, currency, billed, effective, count = line.split()
        found[(account, currency)] = (billed, effective, int(count))
    return found


@pytest.mark.samples
async def test_the_sample_is_ingested_and_its_totals_printed(service_env):
    expected = {k: (format(b, "f"), format(e, "f"), n) for k, (b, e, n) in file_totals(FOCUS_SAMPLE).items()}

    async with serve_in_process(ingest_app(settings(service_env)), free_port()) as url:
        code, out, err = await finops("ingest", str(FOCUS_SAMPLE), "--url", url, "--batch-size", "100")

    assert code == 0, out + err
    assert "1000 rows" in out
    assert printed_totals(out) == expected
    assert "timestamp without T" in out
    assert "uploading" in err and "100.0%" in err


async def test_a_bad_file_exits_2_and_names_row_and_column(service_env, tmp_path):
    lines = write_focus_csv(tmp_path / "bill.csv", rows=1000).read_text().splitlines(keepends=True)
    broken = tmp_path / "broken.csv"
    broken.write_text("".join(lines[:500] + [lines[500].replace(",USD,", ",US Dollars,", 1)] + lines[501:]))
    assert ",US Dollars," in broken.read_text().splitlines()[500]

    async with serve_in_process(ingest_app(settings(service_env)), free_port()) as url:
        code, out, err = await finops("ingest", str(broken), "--url", url)

    assert code == 2, out + err
    assert "Rejected: broken.csv" in out
    assert "row 501, column BillingCurrency, value 'US Dollars'" in out


async def test_an_unreachable_service_exits_3_and_says_how_to_start_it(tmp_path):
    bill = write_focus_csv(tmp_path / "bill.csv", rows=10)
    code, out, err = await finops("ingest", str(bill), "--url", f"http://127.0.0.1:{free_port()}")

    assert code == 3
    assert "not reachable" in err and "make demo" in err
