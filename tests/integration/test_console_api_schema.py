"""Schemathesis fuzzes the console's query API from its own OpenAPI document, against a console process that has
read the platform's events: no request may get a server error, and every response must match the document
(status, content type, schema), with an admin token."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from finops_console import openapi
from tests.support import console
from tests.support.kafka import delete_topics
from tests.support.platform import ADMIN, ADMIN_TOKEN
from tests.support.services import ServiceProcess, wait_until


async def _start(process: ServiceProcess, bootstrap: str, namespace: str) -> None:
    await process.start()
    scenario = console.build()
    await scenario.publish(bootstrap, namespace)
    async with httpx.AsyncClient() as client:

        async def decisions_read() -> bool:
            page = (await client.get(f"{process.url}/v1/decisions", headers=ADMIN)).json()
            return len(page["items"]) == len(scenario.decisions)

        await wait_until(decisions_read, timeout=90, what="the console to read the scenario's decisions")
        served = (await client.get(f"{process.url}/openapi.json")).json()
        assert served == json.loads(json.dumps(openapi.document())), "the served OpenAPI document is another one"


async def _database(admin_url: str, name: str, *, drop: bool = False) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" if drop else f"CREATE DATABASE {name}")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def console_url(endpoints, tmp_path_factory):
    """One console process for every generated case (hypothesis runs each operation's cases in one test), with a
    database and Kafka namespace of its own, fed the platform's events."""
    test_id = uuid.uuid4().hex[:10]
    name, namespace = f"t_{test_id}", f"t{test_id}."
    asyncio.run(_database(endpoints.database_url, name))
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka,
        "DATABASE_URL": f"{endpoints.database_url.rpartition('/')[0]}/{name}",
        "FINOPS_KAFKA_NAMESPACE": namespace,
        "FINOPS_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    process = ServiceProcess("finops_console", env=env, log_dir=tmp_path_factory.mktemp("console"), name="console")
    try:
        asyncio.run(_start(process, endpoints.kafka, namespace))
        yield process.url
    finally:
        process.stop()
        asyncio.run(delete_topics(endpoints.kafka, prefix=namespace))
        asyncio.run(_database(endpoints.database_url, name, drop=True))


schema = schemathesis.openapi.from_dict(openapi.document())


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_query_api_matches_its_openapi_document(case, console_url):
    # Given a console that has read the platform's events, and a request generated from its OpenAPI document

    # When it is sent with an admin token
    # (Every check but positive-data acceptance: an opaque cursor is any base64url text to a schema, and one the
    # console did not issue is rightly refused with a 400.)
    response = case.call_and_validate(
        base_url=console_url, headers=ADMIN, excluded_checks=[schemathesis.checks.positive_data_acceptance]
    )

    # Then (checked by call_and_validate) no server error and a response that matches the document
    assert response.status_code < 500
