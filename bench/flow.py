"""Benchmark of the first flow: cost lines per second from ingest's publish to allocation's commit.

For each batch size: a fresh database and Kafka namespace, ingest and allocation as their own processes
(relay in ingest's process), one generated FOCUS file uploaded. Measured:
  accept   upload start -> 201 (read, validate, batch, COPY into the outbox, commit)
  flow     201 -> the last line committed in allocation's tables (relay publish, Kafka, consume, commit)
Prints a table and writes bench/results/flow.json. Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set,
else starts deploy/local/dev.sh.

    .venv/bin/python bench/flow.py [--lines 100000] [--batch-sizes 100,500,1000,2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg
import httpx

from bench.report import print_table, write_results
from bench.scratch import scratch_env
from tests.support.endpoints import provide
from tests.support.focus_files import write_focus_csv
from tests.support.services import ServiceProcess


async def allocated(conn: asyncpg.Connection) -> int:
    if not await conn.fetchval("SELECT to_regclass('allocation.cost_allocation') IS NOT NULL"):
        return 0
    return int(await conn.fetchval("SELECT coalesce(sum(line_count), 0) FROM allocation.cost_allocation"))


async def run_one(endpoints, bill: Path, lines: int, batch_size: int, work: Path) -> dict:
    async with scratch_env(endpoints) as env:
        allocation = ServiceProcess("finops_allocation", env=env, log_dir=work, name=f"allocation-{batch_size}")
        ingest = ServiceProcess("finops_ingest", env=env, log_dir=work, name=f"ingest-{batch_size}")
        try:
            await allocation.start()
            await ingest.start()
            conn = await asyncpg.connect(env["DATABASE_URL"])
            async with httpx.AsyncClient(timeout=600) as client:
                started = time.perf_counter()
                response = await client.post(
                    f"{ingest.url}/v1/ingest", params={"batch_size": batch_size}, content=bill.read_bytes()
                )
                accepted = time.perf_counter()
            response.raise_for_status()
            batches = response.json()["batch_count"]
            while await allocated(conn) < lines:
                await asyncio.sleep(0.02)
            done = time.perf_counter()
            await conn.close()
        finally:
            ingest.stop()
            allocation.stop()
    return {
        "batch_size": batch_size,
        "lines": lines,
        "batches": batches,
        "accept_s": round(accepted - started, 3),
        "accept_lines_per_s": round(lines / (accepted - started)),
        "flow_s": round(done - accepted, 3),
        "flow_lines_per_s": round(lines / (done - accepted)),
        "end_to_end_lines_per_s": round(lines / (done - started)),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--batch-sizes", default="100,500,1000,2000")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "flow.json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="finops-bench-") as tmp, provide() as endpoints:
        work = Path(tmp)
        bill = write_focus_csv(work / "bill.csv", rows=args.lines, accounts=20, periods=2, seed=3)
        results = [await run_one(endpoints, bill, args.lines, size, work) for size in sizes]
    keys = (
        "batch_size",
        "batches",
        "accept_s",
        "accept_lines_per_s",
        "flow_s",
        "flow_lines_per_s",
        "end_to_end_lines_per_s",
    )
    print_table(
        f"First flow, {args.lines:,} FOCUS lines, Kafka + PostgreSQL on this machine",
        (
            "batch size",
            "batches",
            "accept s",
            "accept lines/s",
            "publish->commit s",
            "flow lines/s",
            "end-to-end lines/s",
        ),
        [[r[k] for k in keys] for r in results],
    )
    write_results(args.out, "flow", lines=args.lines, results=results)


if __name__ == "__main__":
    asyncio.run(main())
