"""Bad billing files over HTTP: each is refused with a precise reason, nothing of it is published, its
rejection is recorded, and the service goes on serving. The bad files are cut from a generated FOCUS file
(tests/support/focus_files.py), so they need no third-party sample."""

from __future__ import annotations

import csv
import gzip
import io
import random
import zlib
from pathlib import Path

import httpx
import pytest

from tests.support.flow import scalar
from tests.support.focus_files import write_focus_csv
from tests.support.kafka import count_records
from tests.support.platform import running
from tests.support.services import wait_until

ROWS = 1000
KEEP_FIELDS = 10  # the truncated row keeps this many fields


def generated_sample(path: Path) -> bytes:
    """A generated FOCUS file, every value quoted as FOCUS exports quote them, with a ChargeDescription column."""
    with write_focus_csv(path, rows=ROWS).open(newline="") as f:
        rows = list(csv.reader(f))
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([*rows[0], "ChargeDescription"])
    writer.writerows([*row, f"{row[rows[0].index('ServiceName')]} usage"] for row in rows[1:])
    return out.getvalue().encode()


def zeros_bomb(size: int = 512 << 20) -> bytes:
    """`size` bytes of short CSV-looking lines gzip'd (about 1,000 to 1)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0,0,0,0\n" * (1 << 17)
    return b"".join([*(out.compress(block) for _ in range(size >> 20)), out.flush()])


def with_cell(header: bytes, line: bytes, column: str, value: bytes) -> bytes:
    names = next(csv.reader([header.decode("utf-8-sig")]))
    row = next(csv.reader([line.decode()]))
    row[names.index(column)] = value.decode("latin-1")
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL).writerow(row)
    return out.getvalue().encode("latin-1")


def cases(sample: bytes) -> list[tuple[str, bytes, str, tuple[int, str | None] | None]]:
    """name, body, expected rule fragment, expected (row, column) or None."""
    lines = sample.splitlines(keepends=True)
    header = lines[0]
    columns = len(next(csv.reader([header.decode()])))
    cut = lines[301].split(b'","')  # every value is quoted: cut the row at a field boundary
    truncated = b'","'.join(cut[:KEEP_FIELDS]) + b'"'
    assert len(next(csv.reader([truncated.decode()]))) == KEEP_FIELDS
    return [
        (
            "truncated",
            b"".join(lines[:301]) + truncated,
            f"{KEEP_FIELDS} fields where the header has {columns}",
            (302, None),
        ),
        (
            "wrong-delimiter",
            sample.replace(b'","', b'";"').replace(b",", b";"),
            "the file is not comma-separated",
            None,
        ),
        ("binary-garbage", random.Random(1).randbytes(200_000), "not UTF-8", None),
        (
            "not-utf8",
            b"".join(lines[:40])
            + with_cell(header, lines[40], "ServiceName", b"Caf\xe9 compute")
            + b"".join(lines[41:]),
            "line 41 is not UTF-8",
            (41, None),
        ),
        ("empty", b"", "the file is empty", None),
        ("header-only", header, "header but no rows", None),
        (
            "missing-column",
            sample.replace(b'"EffectiveCost",', b'"NotEffectiveCost",', 1),
            "mandatory FOCUS column(s) missing: EffectiveCost",
            (1, "EffectiveCost"),
        ),
        (
            "non-numeric-cost",
            b"".join(lines[:10]) + with_cell(header, lines[10], "BilledCost", b"12,50 EUR") + b"".join(lines[11:]),
            "BilledCost must be a decimal number",
            (11, "BilledCost"),
        ),
        (
            "unknown-currency",
            b"".join(lines[:7]) + with_cell(header, lines[7], "BillingCurrency", b"USX") + b"".join(lines[8:]),
            "BillingCurrency must be an ISO 4217 currency code",
            (8, "BillingCurrency"),
        ),
        (
            "ten-million-char-line",
            b"".join(lines[:3])
            + with_cell(header, lines[3], "ChargeDescription", b"x" * 10_000_000)
            + b"".join(lines[4:]),
            "line 4 is longer than",
            (4, None),
        ),
        ("gzip-bomb", zeros_bomb(), "expands more than 200 times", None),
        ("truncated-gzip", gzip.compress(sample)[: len(gzip.compress(sample)) // 2], "gzip stream is truncated", None),
    ]


@pytest.fixture
async def ingest(service_env):
    async with running(service_env, allocation=False) as urls:
        yield urls.ingest


async def test_each_bad_file_is_refused_precisely_and_nothing_is_published(ingest, service_env, database_url, tmp_path):
    sample = generated_sample(tmp_path / "focus.csv")
    bad = cases(sample)
    results = {}

    async with httpx.AsyncClient(timeout=120) as client:
        for name, body, _, _ in bad:
            results[name] = await client.post(f"{ingest}/v1/ingest", params={"name": f"{name}.csv"}, content=body)
        good = await client.post(f"{ingest}/v1/ingest", params={"name": "good.csv"}, content=sample)

    for name, _, rule, where in bad:
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
    assert await scalar(database_url, "SELECT count(*) FROM ingest.ingest_rejection") == len(bad)
    assert await scalar(database_url, "SELECT count(*) FROM ingest.ingest_file") == 1

    async def outbox_drained():
        return await scalar(database_url, "SELECT count(*) FROM ingest.outbox") == 0

    await wait_until(outbox_drained, timeout=60, what="the good file's events published")
    published = await count_records(
        service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"] + "finops.cost.v1"
    )
    assert published == good.json()["batch_count"] + len(good.json()["periods"]), "only the good file's events"
