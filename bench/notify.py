"""Benchmark of notify: events a minute fanned out to subscribers as signed webhooks.

A fresh database and Kafka namespace; the notify service as its own process(es) (`--instances`, sharing the
delivery queue through SKIP LOCKED); `--subscribers` finance webhooks on a local HTTP sink in its own process
(so the sink's work is not counted as the service's); BudgetAlerted events produced into Kafka at `--rate` a
minute for `--seconds`. Each event reaches every subscriber. Measured:
  latency   the event's ce_time -> the sink received the signed delivery (p50, p99, max)
  cpu       user + system CPU seconds of the notify process(es), per 1,000 deliveries
Prints a table and writes bench/results/notify.json. Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set,
else starts deploy/local/dev.sh.

    .venv/bin/python bench/notify.py [--rate 10000] [--seconds 60] [--subscribers 100] [--instances 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
from aiokafka import AIOKafkaProducer

from bench.report import print_table, write_results
from bench.scratch import scratch_env
from finops_contracts.cloudevents import Envelope
from finops_contracts.events import BudgetAlerted
from finops_contracts.money import Money
from finops_contracts.topics import ALLOCATION
from tests.support.endpoints import provide
from tests.support.services import ServiceProcess, free_port

ADMIN_TOKEN = "bench-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def run_sink(port: int) -> None:
    """A minimal ASGI sink: records the latency of each delivery from the event's time, reports at /stats."""
    import uvicorn

    latencies: list[float] = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            sent = datetime.fromisoformat(json.loads(body)["time"])
            latencies.append((datetime.now(UTC) - sent).total_seconds())
            payload = b"{}"
        else:
            ordered = sorted(latencies)
            pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None  # noqa: E731
            payload = json.dumps(
                {"count": len(ordered), "p50": pick(0.5), "p99": pick(0.99), "max": ordered[-1] if ordered else None}
            ).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alert(i: int) -> BudgetAlerted:
    usd = lambda a: Money(amount=Decimal(a), currency="USD")  # noqa: E731
    period = datetime(2026, 10, 1, tzinfo=UTC)
    return BudgetAlerted(
        scope_kind="team", scope=f"team-{i}", billing_period_start=period, threshold=Decimal("0.8"), basis="actual",
        amount=usd("800.00"), budget=usd("1000.00"), actual=usd("900.00"), projected=usd("1100.00"), as_of=period,
    )  # fmt: skip


async def produce_at_rate(bootstrap: str, topic: str, *, rate_per_min: int, seconds: float) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        started = time.perf_counter()
        total = int(rate_per_min * seconds / 60)
        while sent < total:
            due = int((time.perf_counter() - started) * rate_per_min / 60)
            futures = []
            while sent < min(due, total):
                event = alert(sent)
                envelope = Envelope(id=uuid.uuid4(), type=event.TYPE, source="/bench", time=datetime.now(UTC),
                                    subject=event.subject(), content_type=event.CONTENT_TYPE)  # fmt: skip
                headers = [(k, v.encode()) for k, v in envelope.to_headers().items()]
                futures.append(await producer.send(topic, event.encode(), key=event.key().encode(), headers=headers))
                sent += 1
            if futures:
                await asyncio.gather(*futures)
            await asyncio.sleep(0.01)
    finally:
        await producer.stop()
    return sent


async def run(endpoints, args: argparse.Namespace, work: Path) -> dict:
    sink_port = free_port()
    sink = multiprocessing.get_context("spawn").Process(target=run_sink, args=(sink_port,), daemon=True)
    sink.start()
    extra = {
        "FINOPS_NOTIFY_SECRET_KEY": "bench-secret-key",
        "FINOPS_WEBHOOK_ALLOWLIST": "127.0.0.1",
        "FINOPS_ADMIN_TOKEN": ADMIN_TOKEN,
        "FINOPS_DB_POOL_MAX": "20",
        "FINOPS_DELIVERY_CONCURRENCY": str(args.concurrency),
        "FINOPS_CONSUMER_MAX_RECORDS": "500",
    }
    async with scratch_env(endpoints, **extra) as env:
        services = [
            ServiceProcess("finops_notify", env=env, log_dir=work, name=f"notify-{i}") for i in range(args.instances)
        ]
        try:
            for s in services:
                await s.start()
            async with httpx.AsyncClient(timeout=60) as client:
                while True:
                    try:
                        (await client.get(f"http://127.0.0.1:{sink_port}/stats")).raise_for_status()
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
                for i in range(args.subscribers):
                    response = await client.post(
                        f"{services[0].url}/v1/subscribers",
                        json={"name": f"sub-{i}", "persona": "finance", "channel": "webhook",
                              "target": f"http://127.0.0.1:{sink_port}/hook/{i}", "rate_per_minute": 1_000_000},
                        headers=ADMIN,
                    )  # fmt: skip
                    response.raise_for_status()
                cpu_before = sum(cpu_seconds(s.process.pid) for s in services)
                started = time.perf_counter()
                events = await produce_at_rate(
                    env["KAFKA_BOOTSTRAP_SERVERS"],
                    env["FINOPS_KAFKA_NAMESPACE"] + ALLOCATION.name,
                    rate_per_min=args.rate,
                    seconds=args.seconds,
                )
                produced = time.perf_counter()
                expected = events * args.subscribers
                stats: dict = {}
                deadline = time.monotonic() + args.drain_timeout
                while time.monotonic() < deadline:
                    stats = (await client.get(f"http://127.0.0.1:{sink_port}/stats")).json()
                    if stats["count"] >= expected:
                        break
                    await asyncio.sleep(0.5)
                finished = time.perf_counter()
                cpu = sum(cpu_seconds(s.process.pid) for s in services) - cpu_before
        finally:
            for s in services:
                s.stop()
            sink.terminate()
    delivered = stats.get("count", 0)
    return {
        "rate_per_min": args.rate,
        "seconds": args.seconds,
        "subscribers": args.subscribers,
        "instances": args.instances,
        "events": events,
        "expected_deliveries": expected,
        "delivered": delivered,
        "produce_s": round(produced - started, 2),
        "drain_s": round(finished - produced, 2),
        "deliveries_per_s": round(delivered / (finished - started)),
        "p50_latency_s": round(stats["p50"], 3) if stats.get("p50") is not None else None,
        "p99_latency_s": round(stats["p99"], 3) if stats.get("p99") is not None else None,
        "max_latency_s": round(stats["max"], 3) if stats.get("max") is not None else None,
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_1000_deliveries": round(cpu * 1e6 / delivered, 1) if delivered else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=10_000, help="events a minute")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64, help="deliveries in flight per instance")
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "notify.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="finops-bench-") as tmp, provide() as endpoints:
        result = await run(endpoints, args, Path(tmp))
    keys = ("events", "subscribers", "instances", "delivered", "expected_deliveries", "deliveries_per_s",
            "p50_latency_s", "p99_latency_s", "max_latency_s", "cpu_s", "cpu_ms_per_1000_deliveries")  # fmt: skip
    print_table(
        f"Notify: {args.rate:,} events a minute for {args.seconds:g}s to {args.subscribers} webhook subscribers",
        keys,
        [[result[k] for k in keys]],
    )
    write_results(args.out, "notify", **result)


if __name__ == "__main__":
    asyncio.run(main())
