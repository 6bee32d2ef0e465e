"""The watched folder and the bucket source against real PostgreSQL and a real S3-compatible server."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

import finops_ingest
from finops_ingest.sources import BucketPoller, FolderWatcher, S3Bucket, S3Credentials, S3Error, sign_v4
from finops_runtime import db
from tests.support.flow import allocated_totals
from tests.support.focus_files import file_totals, write_focus_csv
from tests.support.platform import running
from tests.support.s3 import S3Server, s3_server
from tests.support.services import wait_until

SAMPLE_ROWS = 1000


@pytest.fixture(scope="module")
def focus_sample(tmp_path_factory) -> Path:
    """A generated FOCUS file of SAMPLE_ROWS usage lines, outside every test's own tmp_path."""
    return write_focus_csv(tmp_path_factory.mktemp("focus") / "sample.csv", rows=SAMPLE_ROWS, accounts=5, seed=21)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(database_url, schema="ingest", max_size=6)
    async with pool.acquire() as conn:
        await db.migrate(
            conn,
            schema="ingest",
            migrations=[
                *db.runtime_migrations(),
                *db.service_migrations(Path(finops_ingest.__file__).parent / "migrations"),
            ],
        )
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def credentials(s3: S3Server) -> S3Credentials:
    return S3Credentials(access_key_id=s3.access_key_id, secret_access_key=s3.secret_access_key, region=s3.region)


def poller(pool: asyncpg.Pool, s3: S3Server, bucket: str, instance: str) -> BucketPoller:
    return BucketPoller(
        pool,
        S3Bucket(endpoint_url=s3.endpoint_url, name=bucket, credentials=credentials(s3)),
        prefix="exports/",
        interval_s=0.2,
        batch_size=500,
        instance=instance,
    )


async def test_a_watched_folder_ingests_each_settled_file_once_and_sets_rejects_aside(pool, tmp_path, focus_sample):
    sample = focus_sample.read_bytes()
    watcher = FolderWatcher(pool, tmp_path, interval_s=0.1, batch_size=500)
    arriving = tmp_path / "focus.csv"
    arriving.write_bytes(sample[: len(sample) // 2])  # cut mid-row, as a copy in progress leaves it
    (tmp_path / "bad.csv").write_text("Just,Some\nother,columns\n")
    (tmp_path / "broken.csv.gz").write_bytes(b"\x1f\x8b" + b"this is not gzip data")
    (tmp_path / ".hidden.csv").write_bytes(sample)
    (tmp_path / "copying.csv.partial").write_bytes(sample)

    first = await watcher.poll_once()
    with arriving.open("ab") as f:
        f.write(sample[len(sample) // 2 :])
    second = await watcher.poll_once()
    third = await watcher.poll_once()

    assert first == []
    assert sorted((o.name, o.kind) for o in second) == [("bad.csv", "rejected"), ("broken.csv.gz", "rejected")]
    assert [(o.name, o.kind) for o in third] == [("focus.csv", "ingested")]
    files = await pool.fetch("SELECT ingest_id, file_name, row_count FROM ingest_file")
    assert [(r["ingest_id"], r["file_name"], r["row_count"]) for r in files] == [
        (third[0].ingest_id, "focus.csv", SAMPLE_ROWS)
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".hidden.csv",
        "copying.csv.partial",
        "processed",
        "rejected",
    ]
    assert [p.name for p in (tmp_path / "processed").iterdir()] == ["focus.csv"]
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir()) == [
        "bad.csv",
        "bad.csv.rejection.json",
        "broken.csv.gz",
        "broken.csv.gz.rejection.json",
    ]
    for name in ("bad.csv", "broken.csv.gz"):
        written = json.loads((tmp_path / "rejected" / f"{name}.rejection.json").read_text())
        outcome = next(o for o in second if o.name == name)
        assert written == outcome.rejection
        assert written["file"] == name and written["errors"]
    assert "gzip" in json.loads((tmp_path / "rejected" / "broken.csv.gz.rejection.json").read_text())["message"]
    rejections = await pool.fetch("SELECT file_name, sha256 FROM ingest_rejection ORDER BY file_name")
    assert [(r["file_name"], r["sha256"]) for r in rejections] == sorted(
        (o.name, o.sha256) for o in second
    )  # the real checksums, even of the file that could not be unzipped

    # The same file dropped again, this time while the watcher runs on its own.
    arriving.write_bytes(sample)
    running = asyncio.create_task(watcher.run())
    try:

        async def moved() -> bool:
            return (tmp_path / "processed" / "focus~1.csv").exists()

        await wait_until(moved, timeout=20, what="the second copy to be moved to processed/")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    assert await pool.fetchval("SELECT count(*) FROM ingest_file") == 1
    assert not arriving.exists()


async def test_each_bucket_object_version_is_ingested_once_by_any_number_of_pollers(pool, s3, test_id, focus_sample):
    client = s3.client()
    bucket = f"billing-{test_id}"
    client.create_bucket(Bucket=bucket)
    sample = focus_sample.read_bytes()
    key = "exports/focus-export/data/BILLING_PERIOD=2026-11/focus-00001.csv.gz"
    client.put_object(Bucket=bucket, Key=key, Body=gzip.compress(sample))
    manifest = {"dataFiles": [f"s3://{bucket}/{key}"], "exportName": "focus-export"}
    client.put_object(
        Bucket=bucket,
        Key="exports/focus-export/metadata/BILLING_PERIOD=2026-11/focus-export-Manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    client.put_object(Bucket=bucket, Key="exports/2026/11/manifest.json", Body=b"{}")
    client.put_object(Bucket=bucket, Key="exports/2026/11/_SUCCESS", Body=b"")
    client.put_object(Bucket=bucket, Key="elsewhere/focus.csv", Body=sample)
    first, second = poller(pool, s3, bucket, "i1"), poller(pool, s3, bucket, "i2")

    together = await asyncio.gather(first.poll_once(), second.poll_once())
    again = await asyncio.gather(first.poll_once(), second.poll_once())

    assert [(o.name, o.kind) for o in together[0] + together[1]] == [(f"s3://{bucket}/{key}", "ingested")]
    assert again == [[], []]
    etag = client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    recorded = await pool.fetch("SELECT * FROM source_object")
    assert [(r["bucket"], r["key"], r["etag"], r["outcome"]) for r in recorded] == [(bucket, key, etag, "ingested")]
    assert recorded[0]["size_bytes"] == client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    assert recorded[0]["instance"] in {"i1", "i2"}
    files = await pool.fetch("SELECT ingest_id, file_name, row_count FROM ingest_file")
    assert [(r["ingest_id"], r["file_name"], r["row_count"]) for r in files] == [
        (recorded[0]["ingest_id"], f"s3://{bucket}/{key}", SAMPLE_ROWS)
    ]

    # The export restates the period: the same key, new content, a new ETag.
    restated = b"".join(sample.splitlines(keepends=True)[:-1])
    client.put_object(Bucket=bucket, Key=key, Body=gzip.compress(restated))

    after = await asyncio.gather(first.poll_once(), second.poll_once())

    assert [o.kind for o in after[0] + after[1]] == ["ingested"]
    rows = await pool.fetch("SELECT file_name, row_count FROM ingest_file ORDER BY row_count")
    assert [(r["file_name"], r["row_count"]) for r in rows] == [
        (f"s3://{bucket}/{key}", SAMPLE_ROWS - 1),
        (f"s3://{bucket}/{key}", SAMPLE_ROWS),
    ]
    assert await pool.fetchval("SELECT count(DISTINCT etag) FROM source_object WHERE key = $1", key) == 2
    assert await pool.fetchval("SELECT max(version) FROM billing_period_version") == 2


async def test_a_bad_bucket_object_is_rejected_once_with_its_reasons(pool, s3, test_id):
    client = s3.client()
    bucket = f"billing-{test_id}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="exports/2026/11/bad.csv", Body=b"Just,Some\nother,columns\n")
    client.put_object(Bucket=bucket, Key="exports/2026/11/broken.csv.gz", Body=b"\x1f\x8bnot gzip")
    source = poller(pool, s3, bucket, "i1")

    outcomes = await source.poll_once()
    again = await source.poll_once()

    assert sorted((o.name.rpartition("/")[2], o.kind) for o in outcomes) == [
        ("bad.csv", "rejected"),
        ("broken.csv.gz", "rejected"),
    ]
    assert again == []
    recorded = await pool.fetch("SELECT key, outcome, rejection, sha256 FROM source_object ORDER BY key")
    assert [(r["key"], r["outcome"]) for r in recorded] == [
        ("exports/2026/11/bad.csv", "rejected"),
        ("exports/2026/11/broken.csv.gz", "rejected"),
    ]
    assert all(json.loads(r["rejection"])["errors"] for r in recorded)
    rejected = await pool.fetch("SELECT sha256, file_name FROM ingest_rejection ORDER BY file_name")
    assert [(r["sha256"], r["file_name"]) for r in rejected] == [
        (r["sha256"], f"s3://{bucket}/{r['key']}") for r in recorded
    ]
    assert await pool.fetchval("SELECT count(*) FROM ingest_file") == 0


def test_requests_are_signed_as_botocore_signs_them():
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = S3Credentials(
        access_key_id="AKIDEXAMPLE", secret_access_key="s3cr3t", session_token="tok", region="eu-west-3"
    )
    bucket = S3Bucket(endpoint_url="http://127.0.0.1:9000", name="billing", credentials=creds)
    for url in (
        bucket._url("exports/2026/11/a file+with=odd&chars~ü.csv.gz"),
        bucket._url(query=[("list-type", "2"), ("prefix", "exports/2026/"), ("continuation-token", "a+b/c=")]),
    ):
        theirs = AWSRequest(method="GET", url=url, headers={"If-Match": '"0123"'})
        S3SigV4Auth(Credentials("AKIDEXAMPLE", "s3cr3t", "tok"), "s3", "eu-west-3").add_auth(theirs)
        when = datetime.strptime(theirs.headers["X-Amz-Date"] + "+0000", "%Y%m%dT%H%M%SZ%z")

        ours = sign_v4(method="GET", url=url, headers={"If-Match": '"0123"'}, credentials=creds, now=when)

        assert ours["authorization"] == theirs.headers["Authorization"]


async def test_a_wrongly_signed_request_is_refused_by_the_server(pool, s3, test_id):
    bucket = f"billing-{test_id}"
    s3.client().create_bucket(Bucket=bucket)
    wrong = S3Credentials(access_key_id=s3.access_key_id, secret_access_key="not-the-secret", region=s3.region)
    source = BucketPoller(
        pool,
        S3Bucket(endpoint_url=s3.endpoint_url, name=bucket, credentials=wrong),
        interval_s=1,
        batch_size=500,
        instance="i1",
    )

    with pytest.raises(S3Error, match="403 SignatureDoesNotMatch"):
        await source.poll_once()


async def test_an_object_another_instance_is_ingesting_is_skipped_not_waited_for(pool, s3, test_id, focus_sample):
    client = s3.client()
    bucket = f"billing-{test_id}"
    client.create_bucket(Bucket=bucket)
    key = "exports/2026/11/focus.csv.gz"
    client.put_object(Bucket=bucket, Key=key, Body=gzip.compress(focus_sample.read_bytes()))
    etag = client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    source = poller(pool, s3, bucket, "i2")

    async with pool.acquire() as other, other.transaction():
        # The claim another instance holds while it ingests.
        await other.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"source_object:{bucket}/{key}#{etag}"
        )
        while_held = await asyncio.wait_for(source.poll_once(), timeout=10)
    after_release = await source.poll_once()

    assert while_held == []
    assert [o.kind for o in after_release] == ["ingested"]


async def test_a_file_dropped_in_the_watched_folder_flows_to_allocation(
    service_env, database_url, tmp_path, focus_sample
):
    inbox = tmp_path / "drop"
    inbox.mkdir()

    async with running(service_env, watch_dir=str(inbox), watch_interval_s=0.2):
        (inbox / "sample.csv").write_bytes(focus_sample.read_bytes())

        async def allocated():
            return await allocated_totals(database_url) == file_totals(focus_sample)

        await wait_until(allocated, timeout=60, what="the dropped file allocated to its own totals")

    assert (inbox / "processed" / "sample.csv").exists()
