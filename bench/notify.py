"""Benchmark of notify: events a minute fanned out to webhook subscribers, sustained.

A fresh database and Kafka namespace; the notify service as its own process(es) (`--instances`, sharing the
subscribers' cursors through SKIP LOCKED); `--subscribers` finance webhooks on a local HTTP sink in its own
process (its work is not counted as the service's); BudgetAlerted events produced into Kafka at `--rate` a minute
for `--warmup` seconds, then `--seconds` measured, then `--cooldown` more so the last measured events meet a loaded
service. Every event reaches every subscriber. The sink verifies every request's signature with the reference
verifier and counts duplicates. Measured, over the events published in the measured window:
  deliveries  (event, subscriber) pairs received, against events x subscribers
  latency     the event's ce_time (set when the bench publishes it) -> the sink received it (p50, p99, max)
  cpu         user + system CPU seconds of the notify process(es) during the window, and as % of one core;
              also the PostgreSQL backends serving notify's connections (the server's shared processes are not)
Prints a table and writes bench/results/notify.json. Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set,
else starts deploy/local/dev.sh.

    .venv/bin/python bench/notify.py [--rate 10000] [--seconds 60] [--warmup 15] [--subscribers 100]
                                     [--instances 1] [--linger-ms 250] [--max-events 200]
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

import asyncpg
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
RUN_BITS = 32
"""The low bits of an event's ce_id are its index in the run, so the sink can spot duplicates cheaply."""


def run_sink(port: int, capacity: int) -> None:
    """The subscribers' endpoint: verifies each request's signature, records each event's publish time and latency,
    counts duplicates per subscriber, and reports at /stats?from=&to= (publish times, Unix seconds)."""
    from array import array

    import uvicorn

    from finops_notify import signing

    published = array("d")
    latency = array("d")
    seen: dict[str, bytearray] = {}
    secrets: dict[str, bytes] = {}
    counters = {"requests": 0, "bad_signatures": 0, "duplicates": 0}
    requests_at = array("d")

    async def read(receive) -> bytes:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        return body

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read(receive)
        payload = b"{}"
        path = scope["path"]
        if scope["method"] == "POST" and path == "/secrets":
            secrets.update({k: v.encode() for k, v in json.loads(body).items()})
        elif scope["method"] == "POST":
            received = time.time()
            counters["requests"] += 1
            requests_at.append(received)
            try:
                signing.verify(secrets[path], {k.decode(): v.decode() for k, v in scope["headers"]}, body)
            except (signing.InvalidSignature, KeyError):
                counters["bad_signatures"] += 1
            bits = seen.setdefault(path, bytearray(capacity))
            for item in json.loads(body)["events"]:
                index = uuid.UUID(item["id"]).int & ((1 << RUN_BITS) - 1)
                if bits[index]:
                    counters["duplicates"] += 1
                    continue
                bits[index] = 1
                sent = datetime.fromisoformat(item["time"]).timestamp()
                published.append(sent)
                latency.append(received - sent)
        elif path == "/count":
            payload = json.dumps({"received": len(latency)}).encode()
        else:
            query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
            lo, hi = float(query.get("from", 0)), float(query.get("to", 1e18))
            window = sorted(lat for at, lat in zip(published, latency, strict=True) if lo <= at < hi)
            pick = lambda q: window[min(len(window) - 1, int(q * len(window)))] if window else None  # noqa: E731
            payload = json.dumps(
                {
                    "count": len(window),
                    "p50": pick(0.5),
                    "p99": pick(0.99),
                    "max": window[-1] if window else None,
                    "received": len(latency),
                    "requests_in_window": sum(1 for at in requests_at if lo <= at < hi),
                    **counters,
                }  # fmt: skip
            ).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def stages(database_url: str, window_from: float, window_to: float) -> dict[str, list[float]]:
    """Where the time went, from the service's own tables (p50, p99 seconds): publish -> logged by the consumer,
    logged -> formed into a request by a fan-out round, formed -> delivered (recorded)."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notify"})
    window = (datetime.fromtimestamp(window_from, UTC), datetime.fromtimestamp(window_to, UTC))
    q = "percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM {}))"
    try:
        consumed = await conn.fetchval(
            f"SELECT {q.format('created_at - occurred_at')} FROM notification WHERE occurred_at >= $1 "
            "AND occurred_at < $2",
            *window,
        )
        formed = await conn.fetchval(
            f"""SELECT {q.format("d.created_at - n.created_at")} FROM delivery d
                CROSS JOIN LATERAL unnest(d.notification_ids) AS nid JOIN notification n ON n.id = nid
                WHERE n.occurred_at >= $1 AND n.occurred_at < $2""",
            *window,
        )
        sent = await conn.fetchval(
            f"SELECT {q.format('delivered_at - created_at')} FROM delivery WHERE created_at >= $1 AND created_at < $2",
            *window,
        )
    finally:
        await conn.close()
    r = lambda v: [round(x, 3) for x in v] if v else None  # noqa: E731
    return {"publish_to_logged": r(consumed), "logged_to_request": r(formed), "request_to_delivered": r(sent)}


def consumer_stats(metrics: str, topic: str) -> dict[str, float | None]:
    """From the service's /metrics: polled batches of `topic`, their mean events and mean processing time."""
    values: dict[str, float] = {}
    for line in metrics.splitlines():
        if topic in line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            key = name.split("{")[0]
            if key == "finops_events_consumed_total" and 'outcome="processed"' not in name:
                continue
            values[key] = values.get(key, 0.0) + float(value)
    batches = values.get("finops_handler_seconds_count") or 0
    return {
        "batches": batches,
        "events_per_batch": round(values.get("finops_events_consumed_total", 0) / batches, 1) if batches else None,
        "ms_per_batch": round(1000 * values.get("finops_handler_seconds_sum", 0) / batches, 1) if batches else None,
    }


async def backend_pids(database_url: str) -> set[int]:
    """The PostgreSQL backends serving notify's connections to this run's database."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'finops-notify'"
        )
    finally:
        await conn.close()
    return {r["pid"] for r in rows}


def alert(i: int) -> BudgetAlerted:
    usd = lambda a: Money(amount=Decimal(a), currency="USD")  # noqa: E731
    period = datetime(2026, 10, 1, tzinfo=UTC)
    return BudgetAlerted(
        scope_kind="team", scope=f"team-{i}", billing_period_start=period, threshold=Decimal("0.8"), basis="actual",
        amount=usd("800.00"), budget=usd("1000.00"), actual=usd("900.00"), projected=usd("1100.00"), as_of=period,
    )  # fmt: skip


async def produce_at_rate(
    bootstrap: str,
    topic: str,
    *,
    rate_per_min: int,
    seconds: float,
    run: int,
    marks: dict[str, float],
    published: list[float],
) -> int:
    """Publish at a steady rate; `marks` gets the wall-clock start, `published` each event's ce_time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        started = time.perf_counter()
        marks["start"] = time.time()
        total = int(rate_per_min * seconds / 60)
        while sent < total:
            due = int((time.perf_counter() - started) * rate_per_min / 60)
            futures = []
            while sent < min(due, total):
                event = alert(sent)
                envelope = Envelope(id=uuid.UUID(int=(run << RUN_BITS) | sent), type=event.TYPE, source="/bench",
                                    time=datetime.now(UTC), subject=event.subject(),
                                    content_type=event.CONTENT_TYPE)  # fmt: skip
                headers = [(k, v.encode()) for k, v in envelope.to_headers().items()]
                published.append(envelope.time.timestamp())
                futures.append(await producer.send(topic, event.encode(), key=event.key().encode(), headers=headers))
                sent += 1
            if futures:
                await asyncio.gather(*futures)
            await asyncio.sleep(0.01)
    finally:
        await producer.stop()
    return sent


async def run(endpoints, args: argparse.Namespace, work: Path) -> dict:
    total_s = args.warmup + args.seconds + args.cooldown
    capacity = int(args.rate * total_s / 60) + 1
    sink_port = free_port()
    sink = multiprocessing.get_context("spawn").Process(target=run_sink, args=(sink_port, capacity), daemon=True)
    sink.start()
    extra = {
        "FINOPS_NOTIFY_SECRET_KEY": "bench-secret-key",
        "FINOPS_WEBHOOK_ALLOWLIST": "127.0.0.1",
        "FINOPS_ADMIN_TOKEN": ADMIN_TOKEN,
        "FINOPS_DB_POOL_MAX": "10",
        "FINOPS_DELIVERY_CONCURRENCY": str(args.concurrency),
        "FINOPS_CONSUMER_MAX_RECORDS": "500",
        "FINOPS_BATCH_LINGER_MS": str(args.linger_ms),
        "FINOPS_BATCH_MAX_EVENTS": str(args.max_events),
    }
    run_id = uuid.uuid4().int & ((1 << 64) - 1)
    async with scratch_env(endpoints, **extra) as env:
        services = [
            ServiceProcess("finops_notify", env=env, log_dir=work, name=f"notify-{i}") for i in range(args.instances)
        ]
        try:
            for s in services:
                await s.start()
            async with httpx.AsyncClient(timeout=120) as client:
                sink_url = f"http://127.0.0.1:{sink_port}"
                while True:
                    try:
                        (await client.get(f"{sink_url}/stats")).raise_for_status()
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
                secrets = {}
                for i in range(args.subscribers):
                    response = await client.post(
                        f"{services[0].url}/v1/subscribers",
                        json={"name": f"sub-{i}", "persona": "finance", "channel": "webhook",
                              "target": f"{sink_url}/hook/{i}", "rate_per_minute": 1_000_000},
                        headers=ADMIN,
                    )  # fmt: skip
                    response.raise_for_status()
                    secrets[f"/hook/{i}"] = response.json()["secret"]
                (await client.post(f"{sink_url}/secrets", json=secrets)).raise_for_status()

                marks: dict[str, float] = {}
                published: list[float] = []
                producing = asyncio.create_task(
                    produce_at_rate(
                        env["KAFKA_BOOTSTRAP_SERVERS"],
                        env["FINOPS_KAFKA_NAMESPACE"] + ALLOCATION.name,
                        rate_per_min=args.rate,
                        seconds=total_s,
                        run=run_id,
                        marks=marks,
                        published=published,
                    )
                )
                await asyncio.sleep(args.warmup)
                window_from = marks["start"] + args.warmup
                pids = await backend_pids(env["DATABASE_URL"])
                load_before = os.getloadavg()[0]
                sink_before = cpu_seconds(sink.pid)
                cpu_before = sum(cpu_seconds(s.process.pid) for s in services)
                pg_before = {pid: cpu_seconds(pid) for pid in pids}
                await asyncio.sleep(max(0.0, window_from + args.seconds - time.time()))
                cpu = sum(cpu_seconds(s.process.pid) for s in services) - cpu_before
                sink_cpu = cpu_seconds(sink.pid) - sink_before
                load_after = os.getloadavg()[0]
                pids |= await backend_pids(env["DATABASE_URL"])
                pg_cpu = sum(cpu_seconds(pid) - pg_before.get(pid, 0.0) for pid in pids)
                window_to = window_from + args.seconds
                events = await producing
                measured = sum(1 for at in published if window_from <= at < window_from + args.seconds)
                expected = measured * args.subscribers
                deadline = time.monotonic() + args.drain_timeout
                while time.monotonic() < deadline:
                    if (await client.get(f"{sink_url}/count")).json()["received"] >= events * args.subscribers:
                        break
                    await asyncio.sleep(1)
                window = {"from": window_from, "to": window_to}
                stats = (await client.get(f"{sink_url}/stats", params=window)).json()
                breakdown = await stages(env["DATABASE_URL"], window_from, window_to)
                consumer = consumer_stats((await client.get(f"{services[0].url}/metrics")).text, ALLOCATION.name)
        finally:
            for s in services:
                s.stop()
            sink.terminate()
    delivered = stats.get("count", 0)
    requests = stats.get("requests_in_window", 0)
    r3 = lambda v: round(v, 3) if v is not None else None  # noqa: E731
    return {
        "rate_per_min": args.rate,
        "warmup_s": args.warmup,
        "seconds": args.seconds,
        "cooldown_s": args.cooldown,
        "subscribers": args.subscribers,
        "instances": args.instances,
        "linger_ms": args.linger_ms,
        "max_events_per_request": args.max_events,
        "concurrency": args.concurrency,
        "events_published": events,
        "events_in_window": measured,
        "expected_deliveries": expected,
        "delivered": delivered,
        "deliveries_per_s": round(delivered / args.seconds),
        "requests_in_window": requests,
        "events_per_request": round(delivered / requests, 1) if requests else None,
        "p50_latency_s": r3(stats.get("p50")),
        "p99_latency_s": r3(stats.get("p99")),
        "max_latency_s": r3(stats.get("max")),
        "bad_signatures": stats.get("bad_signatures"),
        "duplicates": stats.get("duplicates"),
        "notify_cpu_s": round(cpu, 2),
        "notify_cpu_pct_of_core": round(100 * cpu / args.seconds, 1),
        "pg_backend_cpu_s": round(pg_cpu, 2),
        "cpu_ms_per_1000_deliveries": round(cpu * 1e6 / delivered, 1) if delivered else None,
        "sink_cpu_s": round(sink_cpu, 2),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
        "stages_p50_p99_s": breakdown,
        "consumer_whole_run": consumer,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=10_000, help="events a minute")
    parser.add_argument("--seconds", type=float, default=60, help="measured window")
    parser.add_argument("--warmup", type=float, default=15)
    parser.add_argument("--cooldown", type=float, default=5)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight per instance")
    parser.add_argument("--linger-ms", type=int, default=250)
    parser.add_argument("--max-events", type=int, default=200)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "notify.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="finops-bench-") as tmp, provide() as endpoints:
        result = await run(endpoints, args, Path(tmp))
    keys = ("events_in_window", "delivered", "expected_deliveries", "requests_in_window", "events_per_request",
            "p50_latency_s", "p99_latency_s", "max_latency_s", "notify_cpu_s", "notify_cpu_pct_of_core",
            "pg_backend_cpu_s", "bad_signatures", "duplicates")  # fmt: skip
    print_table(
        f"Notify: {args.rate:,} events a minute to {args.subscribers} webhook subscribers, {args.seconds:g}s measured "
        f"after {args.warmup:g}s warm-up ({args.instances} instance(s), linger {args.linger_ms} ms, "
        f"up to {args.max_events} events a request)",
        keys,
        [[result[k] for k in keys]],
    )
    print(f"\nstages (p50, p99 seconds): {json.dumps(result['stages_p50_p99_s'])}")
    print(f"consumer (whole run, first instance): {json.dumps(result['consumer_whole_run'])}")
    load = result["load_average_1min"]
    print(f"sink CPU {result['sink_cpu_s']} s; 1-minute load average {load} (start, end) on {os.cpu_count()} CPUs")
    write_results(args.out, "notify", **result)


if __name__ == "__main__":
    asyncio.run(main())
