"""Bad billing files over HTTP: each is refused with a precise reason, nothing of it is published, its
rejection is recorded, and the service goes on serving. Uses ../shared/data/focus (MANIFEST.md)."""

from __future__ import annotations

import gzip
import random
import zlib

import httpx
import pytest

from tests.support.flow import scalar
from tests.support.focus_files import FOCUS_SAMPLE
from tests.support.kafka import count_records
from tests.support.platform import running
from tests.support.services import wait_until

SAMPLE = FOCUS_SAMPLE.read_bytes() if FOCUS_SAMPLE.exists() else b""
LINES = SAMPLE.splitlines(keepends=True)
HEADER = LINES[0] if LINES else b""


def zeros_bomb(size: int = 512 << 20) -> bytes:
    """`size` bytes of short CSV-looking lines gzip'd (about 1,000 to 1)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0,0,0,0\n" * (1 << 17)
    return b"".join([*(out.compress(block) for _ in range(size >> 20)), out.flush()])


def with_cell(line: bytes, column: str, value: bytes) -> bytes:
    import csv
    import io

    header = next(csv.reader([HEADER.decode("utf-8-sig")]))
    row = next(csv.reader([line.decode()]))
    row[header.index(column)] = value.decode("latin-1")
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL).writerow(row)
    return out.getvalue().encode("latin-1")


CASES = [
    # name, body, expected rule fragment, expected (row, column) or None
    (
        "truncated",
        b"".join(LINES[:301]) + LINES[301][: len(LINES[301]) // 2],
        "24 fields where the header has 44",
        (302, None),
    ),
    ("wrong-delimiter", SAMPLE.replace(b'","', b'";"').replace(b",", b";"), "the file is not comma-separated", None),
    ("binary-garbage", random.Random(1).randbytes(200_000), "not UTF-8", None),
    (
        "not-utf8",
        b"".join(LINES[:40]) + with_cell(LINES[40], "ServiceName", b"Caf\xe9 compute") + b"".join(LINES[41:]),
        "line 41 is not UTF-8",
        (41, None),
    ),
    ("empty", b"", "the file is empty", None),
    ("header-only", HEADER, "header but no rows", None),
    (
        "missing-column",
        SAMPLE.replace(b'"EffectiveCost",', b'"NotEffectiveCost",', 1),
        "mandatory FOCUS column(s) missing: EffectiveCost",
        (1, "EffectiveCost"),
    ),
    (
        "non-numeric-cost",
        b"".join(LINES[:10]) + with_cell(LINES[10], "BilledCost", b"12,50 EUR") + b"".join(LINES[11:]),
        "BilledCost must be a decimal number",
        (11, "BilledCost"),
    ),
    (
        "unknown-currency",
        b"".join(LINES[:7]) + with_cell(LINES[7], "BillingCurrency", b"USX") + b"".join(LINES[8:]),
        "BillingCurrency must be an ISO 4217 currency code",
        (8, "BillingCurrency"),
    ),
    (
        "ten-million-char-line",
        b"".join(LINES[:3]) + with_cell(LINES[3], "ChargeDescription", b"x" * 10_000_000) + b"".join(LINES[4:]),
        "line 4 is longer than",
        (4, None),
    ),
    ("gzip-bomb", zeros_bomb(), "expands more than 200 times", None),
    ("truncated-gzip", gzip.compress(SAMPLE)[:20_000], "gzip stream is truncated", None),
]


@pytest.fixture
async def ingest(service_env):
    async with running(service_env, allocation=False) as urls:
        yield urls.ingest


async def test_each_bad_file_is_refused_precisely_and_nothing_is_published(ingest, service_env, database_url):
    assert SAMPLE, f"{FOCUS_SAMPLE} is missing: the tests need ../shared/data"
    results = {}

    async with httpx.AsyncClient(timeout=120) as client:
        for name, body, _, _ in CASES:
            results[name] = await client.post(f"{ingest}/v1/ingest", params={"name": f"{name}.csv"}, content=body)
        good = await client.post(f"{ingest}/v1/ingest", params={"name": "good.csv"}, content=SAMPLE)

    for name, _, rule, where in CASES:
        response = results[name]
        assert response.status_code == 422, (name, response.text)
        rejected = response.json()["rejected"]
        first = rejected["errors"][0]
        assert rejected["file"] == f"{name}.csv"
        assert rule in first["rule"], (name, first)
        assert first["hint"], name
        if where is not None:
            row, column = where
            assert first["row"] == row, (name, first)
            if column:
                assert first["column"] == column, (name, first)
    assert good.status_code == 201, "the service keeps serving"
    assert await scalar(database_url, "SELECT count(*) FROM ingest.ingest_rejection") == len(CASES)
    assert await scalar(database_url, "SELECT count(*) FROM ingest.ingest_file") == 1

    async def outbox_drained():
        return await scalar(database_url, "SELECT count(*) FROM ingest.outbox") == 0

    await wait_until(outbox_drained, timeout=60, what="the good file's events published")
    published = await count_records(
        service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"] + "finops.cost.v1"
    )
    assert published == good.json()["batch_count"] + len(good.json()["periods"]), "only the good file's events"
