"""Benchmark of purchase: decisions bought a second through the sandbox provider, and request-to-settled latency.

A fresh database and Kafka namespace; the sandbox provider and the purchase service each as its own process;
`--decisions` PurchaseRequested events produced into Kafka at once, then the run waits until every decision is
settled and its final event published. Measured:
  throughput  decisions settled a second, from the first request recorded to the last settled
  latency     each decision's intent recorded -> settled (p50, p99, max), from the ledger
  calls       provider calls a decision (1.0 without injected faults)
Optional `--timeout-rate` / `--timeout-after-success-rate` inject sandbox faults to see their cost.
Prints a table and writes bench/results/purchase.json. Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set,
else starts deploy/local/dev.sh.

    .venv/bin/python bench/purchase.py [--decisions 1000] [--concurrency 4] [--latency-ms 20]
                                       [--timeout-rate 0] [--timeout-after-success-rate 0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg

from bench.report import print_table, write_results
from bench.scratch import scratch_env
from finops_contracts.topics import DECISION
from tests.support.endpoints import provide
from tests.support.kafka import produce
from tests.support.purchase import purchase_requested, record
from tests.support.services import ServiceProcess


async def run(args: argparse.Namespace) -> dict[str, object]:
    with provide() as endpoints, tempfile.TemporaryDirectory() as logs:
        async with scratch_env(endpoints) as env:
            sandbox = ServiceProcess(
                "finops_purchase.sandbox",
                env={
                    **env,
                    "FINOPS_SANDBOX_LATENCY_MS": str(args.latency_ms),
                    "FINOPS_SANDBOX_TIMEOUT_RATE": str(args.timeout_rate),
                    "FINOPS_SANDBOX_TIMEOUT_AFTER_SUCCESS_RATE": str(args.timeout_after_success_rate),
                    "FINOPS_SANDBOX_HANG_S": "2",
                    "FINOPS_SANDBOX_SEED": "1",
                },
                log_dir=Path(logs),
                name="sandbox",
            )
            purchase = ServiceProcess(
                "finops_purchase",
                env={
                    **env,
                    "FINOPS_SANDBOX_URL": "",
                    "FINOPS_PURCHASE_CONCURRENCY": str(args.concurrency),
                    "FINOPS_PURCHASE_TIMEOUT_S": "1",
                    "FINOPS_PURCHASE_RETRY_BASE_S": "0.2",
                    "FINOPS_PURCHASE_RETRY_CAP_S": "2",
                    "FINOPS_PURCHASE_MAX_ATTEMPTS": "20",
                    "FINOPS_PURCHASE_POLL_S": "0.5",
                },
                log_dir=Path(logs),
                name="purchase",
            )
            await sandbox.start()
            purchase.env["FINOPS_SANDBOX_URL"] = sandbox.url
            await purchase.start()
            try:
                records = [record(purchase_requested()) for _ in range(args.decisions)]
                started = time.perf_counter()
                await produce(env["KAFKA_BOOTSTRAP_SERVERS"], env["FINOPS_KAFKA_NAMESPACE"] + DECISION.name, records)
                conn = await asyncpg.connect(env["DATABASE_URL"])
                try:
                    while True:
                        done = await conn.fetchval("SELECT count(*) FROM purchase.purchase WHERE state <> 'in_flight'")
                        backlog = await conn.fetchval("SELECT count(*) FROM purchase.outbox")
                        if done >= args.decisions and backlog == 0:
                            break
                        if time.perf_counter() - started > args.max_seconds:
                            raise SystemExit(f"only {done} of {args.decisions} settled after {args.max_seconds}s")
                        await asyncio.sleep(0.2)
                    rows = await conn.fetch(
                        """SELECT extract(epoch FROM settled_at - requested_at) AS latency, requested_at, settled_at,
                                  state FROM purchase.purchase"""
                    )
                    calls = await conn.fetchval("SELECT count(*) FROM purchase.provider_call")
                finally:
                    await conn.close()
            finally:
                purchase.stop()
                sandbox.stop()
    latencies = sorted(float(r["latency"]) for r in rows)
    span = (max(r["settled_at"] for r in rows) - min(r["requested_at"] for r in rows)).total_seconds()
    return {
        "decisions": args.decisions,
        "concurrency": args.concurrency,
        "sandbox_latency_ms": args.latency_ms,
        "timeout_rate": args.timeout_rate,
        "timeout_after_success_rate": args.timeout_after_success_rate,
        "purchased": sum(1 for r in rows if r["state"] == "purchased"),
        "decisions_per_s": round(args.decisions / span, 1),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "latency_max_s": round(latencies[-1], 3),
        "provider_calls_per_decision": round(calls / args.decisions, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--timeout-after-success-rate", type=float, default=0.0)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print_table("purchase", list(result), [list(result.values())])
    write_results(ROOT / "bench" / "results" / "purchase.json", "purchase", **result)


if __name__ == "__main__":
    main()
