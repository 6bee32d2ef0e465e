"""Run a service's outbox relay as its own process:

    python -m finops_runtime.relay --schema ingest

Services run their relay in-process by default (FINOPS_RELAY_ENABLED=true); a separate relay lets an
operator scale or restart publishing apart from request handling. The advisory lock keeps one leader."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from finops_runtime import db, kafka, telemetry
from finops_runtime.outbox import Relay
from finops_runtime.settings import Settings


async def run(schema: str, settings: Settings) -> None:
    telemetry.configure_tracing(service_name=settings.service_name, exporter=settings.otel_exporter)
    pool = await db.create_pool(settings.database_url, schema=schema, min_size=1, max_size=2)
    broker = kafka.create_broker(settings.kafka_bootstrap_servers, client_id=f"{schema}-relay", config=settings.kafka)
    await broker.connect()
    relay = Relay(
        pool=pool,
        broker=broker,
        schema=schema,
        service=settings.service_name,
        namespace=settings.kafka_namespace,
        batch_size=settings.relay_batch_size,
        max_bytes=settings.relay_max_bytes,
        poll_interval_s=settings.relay_poll_interval_s,
    )
    task = asyncio.create_task(relay.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await broker.stop()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Publish a service's transactional outbox to Kafka.")
    parser.add_argument("--schema", required=True, help="the service schema whose outbox to publish, e.g. ingest")
    args = parser.parse_args()
    settings = Settings(service_name=f"{args.schema}-relay")
    telemetry.configure_logging(level=settings.log_level, fmt=settings.log_format)
    asyncio.run(run(args.schema, settings))


if __name__ == "__main__":
    main()
