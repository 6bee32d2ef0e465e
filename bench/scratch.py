"""A scratch database and Kafka namespace per benchmark run, removed afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

from tests.support.endpoints import Endpoints
from tests.support.kafka import delete_topics


@contextlib.asynccontextmanager
async def scratch_env(endpoints: Endpoints, **extra: str) -> AsyncIterator[dict[str, str]]:
    """The environment of a service process that works in a fresh database and topic namespace."""
    run_id = uuid.uuid4().hex[:8]
    name = f"bench_{run_id}"
    admin = await asyncpg.connect(endpoints.database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka,
        "DATABASE_URL": f"{endpoints.database_url.rpartition('/')[0]}/{name}",
        "FINOPS_KAFKA_NAMESPACE": f"bench{run_id}.",
        "FINOPS_LOG_LEVEL": "WARNING",
        **extra,
    }
    try:
        yield env
    finally:
        await delete_topics(endpoints.kafka, prefix=env["FINOPS_KAFKA_NAMESPACE"])
        admin = await asyncpg.connect(endpoints.database_url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()
