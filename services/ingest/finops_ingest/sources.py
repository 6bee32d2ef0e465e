"""The two other ways billing files arrive, besides HTTP upload: a watched folder, and an S3-compatible bucket
that cloud billing exports deliver to. Both stream each file through `spool`, as uploads are, and accept it
through `ingest_file`, so gzip, limits, deduplication by checksum and rejections work the same way.

The bucket is read with httpx and a small AWS Signature Version 4 signer (ListObjectsV2 and GetObject are all
it needs), rather than aiobotocore: that pulls in botocore, whose exact pins fight with anything else that
uses boto, for two GET requests."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import quote, urlsplit

import asyncpg
import httpx

from finops_ingest.rejection import BillingFileRejected, FileRejected
from finops_ingest.service import ingest_file, ingest_id_for, ingest_stream, record_rejection
from finops_ingest.spool import Limits, spool
from finops_runtime import telemetry
from finops_runtime.app import ServiceRuntime

log = logging.getLogger(__name__)

PROCESSED = "processed"
REJECTED = "rejected"
_CHUNK = 1 << 20
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNREAD_NAMESPACE = uuid.UUID("5d0f7a52-7a8e-4c1b-9f0e-2b8f3c6d9e41")

Kind = Literal["ingested", "duplicate", "rejected"]


class SourceNotConfigured(ValueError):
    """A source is switched on but a setting it needs is missing or wrong; the message names the setting."""


class S3Error(RuntimeError):
    """The bucket answered with an error (wrong credentials, bucket or endpoint); the message has its code."""


class _ObjectChanged(Exception):
    """The object was overwritten between listing and reading; the next poll lists the new version."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a source did with one file or object."""

    name: str
    kind: Kind
    sha256: str
    ingest_id: uuid.UUID
    rejection: dict[str, object] | None = None


class SourceSettings(Protocol):
    """The settings `start_sources` reads (fields of IngestSettings)."""

    instance_id: str
    batch_size: int
    spool_dir: str | None
    max_file_bytes: int
    max_gzip_ratio: int
    watch_dir: str | None
    watch_interval_s: float
    s3_endpoint_url: str | None
    s3_bucket: str | None
    s3_prefix: str
    s3_poll_interval_s: float


def ignored(name: str) -> bool:
    """Files that are not billing data: hidden and temporary files, and the manifests and markers that
    exports write beside the data (`*-Manifest.json`, `manifest.json`, `_SUCCESS`, `_metadata`)."""
    return not name or name.startswith((".", "_")) or name.endswith((".partial", ".tmp", ".json", ".crc"))


# --- The watched folder --------------------------------------------------------------------------------------


class FolderWatcher:
    """Polls a folder for billing files. A file is read once its size and modification time have not changed
    for one interval, then moved to `processed/`, or to `rejected/` with `<name>.rejection.json` beside it.
    A crash mid-ingest leaves the file in place, and the checksum makes the retry a duplicate, not a copy."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        directory: Path,
        *,
        interval_s: float,
        batch_size: int,
        limits: Limits | None = None,
        spool_dir: str | None = None,
    ) -> None:
        if not directory.is_dir():
            raise SourceNotConfigured(f"FINOPS_WATCH_DIR {str(directory)!r} is not a folder: create it or fix it")
        if interval_s <= 0:
            raise SourceNotConfigured("FINOPS_WATCH_INTERVAL_S must be more than 0 seconds")
        self._pool = pool
        self._dir = directory
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._limits = limits or Limits()
        self._spool_dir = spool_dir
        self._seen: dict[str, tuple[int, int]] = {}
        for sub in (PROCESSED, REJECTED):
            (directory / sub).mkdir(exist_ok=True)

    async def run(self) -> None:
        log.info("watching a folder for billing files", extra={"folder": str(self._dir)})
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.exception("polling the watched folder failed; trying again", extra={"folder": str(self._dir)})
            await asyncio.sleep(self._interval_s)

    async def poll_once(self) -> list[Outcome]:
        """Ingest the files that have not changed since the previous poll."""
        current = await asyncio.to_thread(self._scan)
        ready = [name for name, stat in sorted(current.items()) if self._seen.get(name) == stat]
        self._seen = current
        outcomes = []
        for name in ready:
            try:
                outcome = await self._ingest(name, current[name])
            except Exception:
                # The file stays where it is and is tried again at the next poll.
                log.exception("ingesting a watched file failed", extra={"file_name": name})
                continue
            if outcome is not None:
                self._seen.pop(name, None)
                outcomes.append(outcome)
        return outcomes

    def _scan(self) -> dict[str, tuple[int, int]]:
        found = {}
        with os.scandir(self._dir) as entries:
            for entry in entries:
                if ignored(entry.name) or not entry.is_file():
                    continue
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                found[entry.name] = (stat.st_size, stat.st_mtime_ns)
        return found

    async def _ingest(self, name: str, stat: tuple[int, int]) -> Outcome | None:
        path = self._dir / name
        with telemetry.tracer().start_as_current_span("ingest watched file", attributes={"finops.file.name": name}):
            try:
                async with contextlib.aclosing(_read_file(path)) as chunks:
                    spooled = await spool(chunks, name=name, directory=self._spool_dir, limits=self._limits)
            except FileNotFoundError:
                return None  # another instance took it
            except BillingFileRejected as error:
                if await _stat(path) != stat:
                    return None  # still being written after all: wait for it to settle
                sha256 = await asyncio.to_thread(_sha256_of, path)
                rejected = FileRejected.single(error)
                await record_rejection(self._pool, rejected, sha256=sha256)
                return await self._reject(path, rejected, sha256)
            try:
                if await _stat(path) != stat:
                    return None
                report = await ingest_file(
                    self._pool,
                    path=spooled.path,
                    file_name=name,
                    sha256=spooled.sha256,
                    size_bytes=spooled.size_bytes,
                    batch_size=self._batch_size,
                )
            except FileRejected as rejected:
                return await self._reject(path, rejected, spooled.sha256)
            finally:
                spooled.path.unlink(missing_ok=True)
        await asyncio.to_thread(_move, path, self._dir / PROCESSED)
        kind: Kind = "duplicate" if report.duplicate else "ingested"
        log.info(
            "watched file %s", kind, extra={"file_name": name, "ingest_id": str(report.ingest_id), "outcome": kind}
        )
        return Outcome(name=name, kind=kind, sha256=report.sha256, ingest_id=report.ingest_id)

    async def _reject(self, path: Path, rejected: FileRejected, sha256: str) -> Outcome:
        details = rejected.as_dict()
        await asyncio.to_thread(_move, path, self._dir / REJECTED, details)
        log.warning("watched file rejected", extra={"file_name": path.name, "reason": str(rejected)})
        return Outcome(
            name=path.name, kind="rejected", sha256=sha256, ingest_id=ingest_id_for(sha256), rejection=details
        )


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, _CHUNK):
            yield chunk
    finally:
        f.close()


async def _stat(path: Path) -> tuple[int, int] | None:
    try:
        stat = await asyncio.to_thread(path.stat)
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _move(path: Path, folder: Path, rejection: dict[str, object] | None = None) -> None:
    """Move `path` into `folder` without overwriting an earlier file of that name. The rejection is written
    first, so a crash in between leaves the file to be rejected again under the same name."""
    target = folder / path.name
    suffix = path.suffix
    if suffix == ".gz":
        suffix = Path(path.stem).suffix + suffix
    stem = path.name.removesuffix(suffix)
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{stem}~{n}{suffix}"
    if rejection is not None:
        report = folder / f"{target.name}.rejection.json"
        temp = report.with_name(f".{report.name}.tmp")
        temp.write_text(json.dumps(rejection, indent=2, default=str) + "\n")
        os.replace(temp, report)
    with contextlib.suppress(FileNotFoundError):  # another instance moved it first
        os.replace(path, target)


# --- The bucket ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str = "us-east-1"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> S3Credentials:
        """The standard AWS variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION."""
        missing = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not environ.get(name)]
        if missing:
            raise SourceNotConfigured(f"FINOPS_S3_BUCKET is set, so set {' and '.join(missing)} too")
        return cls(
            access_key_id=environ["AWS_ACCESS_KEY_ID"],
            secret_access_key=environ["AWS_SECRET_ACCESS_KEY"],
            session_token=environ.get("AWS_SESSION_TOKEN") or None,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        )


@dataclass(frozen=True, slots=True)
class S3Object:
    key: str
    etag: str
    size_bytes: int
    last_modified: datetime | None


def sign_v4(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    credentials: S3Credentials,
    now: datetime,
    service: str = "s3",
    payload_sha256: str = _EMPTY_SHA256,
) -> dict[str, str]:
    """`headers` plus the AWS Signature Version 4 headers for a request whose `url` is already percent-encoded
    the way S3 wants it (RFC 3986; `/` kept in the path)."""
    parts = urlsplit(url)
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed["host"] = _host(parts.scheme, parts.netloc)
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_sha256
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token
    names = sorted(signed)
    query = sorted(tuple(p.split("=", 1)) if "=" in p else (p, "") for p in parts.query.split("&") if p)
    canonical = "\n".join(
        [
            method,
            parts.path or "/",
            "&".join(f"{k}={v}" for k, v in query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{credentials.region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{credentials.secret_access_key}".encode()
    for part in (day, credentials.region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return {**dict(headers), **{k: v for k, v in signed.items() if k not in {h.lower() for h in headers}}}


def _host(scheme: str, netloc: str) -> str:
    host = netloc.rpartition("@")[2]
    default = {"http": ":80", "https": ":443"}.get(scheme)
    return host[: -len(default)] if default and host.endswith(default) else host


def _encode(value: str, *, keep: str = "") -> str:
    return quote(value, safe="-_.~" + keep)


@dataclass(frozen=True, slots=True)
class S3Bucket:
    """One bucket of an S3-compatible endpoint, addressed path-style (`<endpoint>/<bucket>/<key>`)."""

    endpoint_url: str
    name: str
    credentials: S3Credentials

    def _url(self, key: str = "", query: Iterable[tuple[str, str]] = ()) -> str:
        base = self.endpoint_url.rstrip("/")
        path = f"/{_encode(self.name)}" + (f"/{_encode(key, keep='/')}" if key else "")
        encoded = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query))
        return base + path + (f"?{encoded}" if encoded else "")

    def _headers(self, method: str, url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return sign_v4(method=method, url=url, headers=extra or {}, credentials=self.credentials, now=datetime.now(UTC))

    async def list(self, client: httpx.AsyncClient, prefix: str) -> list[S3Object]:
        """Every object under `prefix` (ListObjectsV2, page by page)."""
        objects: list[S3Object] = []
        token: str | None = None
        while True:
            query = [("list-type", "2"), ("prefix", prefix)] + ([("continuation-token", token)] if token else [])
            url = self._url(query=query)
            response = await client.get(url, headers=self._headers("GET", url))
            if response.status_code != 200:
                raise _s3_error(f"listing s3://{self.name}/{prefix}", response)
            root = ET.fromstring(response.content)
            for item in _children(root, "Contents"):
                modified = _text(item, "LastModified")
                objects.append(
                    S3Object(
                        key=_text(item, "Key") or "",
                        etag=(_text(item, "ETag") or "").strip('"'),
                        size_bytes=int(_text(item, "Size") or 0),
                        last_modified=datetime.fromisoformat(modified.replace("Z", "+00:00")) if modified else None,
                    )
                )
            token = _text(root, "NextContinuationToken")
            if _text(root, "IsTruncated") != "true" or not token:
                return objects

    @contextlib.asynccontextmanager
    async def read(self, client: httpx.AsyncClient, obj: S3Object) -> AsyncIterator[AsyncIterator[bytes]]:
        """The body of this very version of the object, streamed; _ObjectChanged if it was overwritten since."""
        url = self._url(obj.key)
        headers = self._headers("GET", url, {"If-Match": f'"{obj.etag}"'})
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 412:
                raise _ObjectChanged(obj.key)
            if response.status_code != 200:
                await response.aread()
                raise _s3_error(f"reading s3://{self.name}/{obj.key}", response)
            yield response.aiter_bytes(_CHUNK)


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    # S3 answers in its XML namespace; some compatible servers answer without one.
    return [child for child in element if child.tag.rpartition("}")[2] == name]


def _text(element: ET.Element, name: str) -> str | None:
    found = _children(element, name)
    return found[0].text if found else None


def _s3_error(doing: str, response: httpx.Response) -> S3Error:
    code = message = ""
    with contextlib.suppress(ET.ParseError):
        root = ET.fromstring(response.content)
        code, message = _text(root, "Code") or "", _text(root, "Message") or ""
    return S3Error(f"{doing}: HTTP {response.status_code} {code} {message}".rstrip())


class BucketPoller:
    """Polls a bucket and prefix the way cloud billing exports deliver (new objects under date-partitioned
    prefixes, beside manifests), and ingests each new object version once, whatever the number of instances.

    An instance claims a version with a transaction-scoped advisory lock (another instance skips it instead of
    waiting), ingests it, and records it in `source_object` in that same transaction. If the instance dies, the
    claim goes with it and the next poll tries again; the checksum makes that retry safe. The pool needs two
    connections per poller: the claim's, and the ingest's own."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bucket: S3Bucket,
        *,
        prefix: str = "",
        interval_s: float,
        batch_size: int,
        instance: str,
        limits: Limits | None = None,
        spool_dir: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        if interval_s <= 0:
            raise SourceNotConfigured("FINOPS_S3_POLL_INTERVAL_S must be more than 0 seconds")
        self._pool = pool
        self._bucket = bucket
        self._prefix = prefix
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._instance = instance
        self._limits = limits or Limits()
        self._spool_dir = spool_dir
        self._timeout_s = timeout_s

    async def run(self) -> None:
        where = f"s3://{self._bucket.name}/{self._prefix}"
        log.info("polling a bucket for billing files", extra={"bucket": where})
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.exception("polling the bucket failed; trying again", extra={"bucket": where})
            await asyncio.sleep(self._interval_s)

    async def poll_once(self) -> list[Outcome]:
        """Ingest the object versions no instance has ingested yet; the outcomes of those this one did."""
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            listed = [o for o in await self._bucket.list(client, self._prefix) if not ignored(o.key.rpartition("/")[2])]
            async with self._pool.acquire() as conn:
                done = {
                    (r["key"], r["etag"])
                    for r in await conn.fetch(
                        "SELECT key, etag FROM source_object WHERE bucket = $1 AND key = ANY($2::text[])",
                        self._bucket.name,
                        [o.key for o in listed],
                    )
                }
            new = sorted(
                (o for o in listed if (o.key, o.etag) not in done),
                key=lambda o: (o.last_modified or datetime.min.replace(tzinfo=UTC), o.key),
            )
            outcomes = []
            for obj in new:
                try:
                    outcome = await self._claim_and_ingest(client, obj)
                except (S3Error, httpx.TransportError, OSError, asyncpg.PostgresError):
                    # One unreadable object must not hold up the others; it is tried again at the next poll.
                    log.exception("ingesting a bucket object failed", extra={"key": obj.key, "etag": obj.etag})
                    continue
                if outcome is not None:
                    outcomes.append(outcome)
            return outcomes

    async def _claim_and_ingest(self, client: httpx.AsyncClient, obj: S3Object) -> Outcome | None:
        bucket = self._bucket.name
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
                f"source_object:{bucket}/{obj.key}#{obj.etag}",
            )
            if not claimed or await conn.fetchval(
                "SELECT 1 FROM source_object WHERE bucket = $1 AND key = $2 AND etag = $3", bucket, obj.key, obj.etag
            ):
                return None
            try:
                outcome = await self._ingest(client, obj)
            except _ObjectChanged:
                return None
            await conn.execute(
                """INSERT INTO source_object (bucket, key, etag, size_bytes, last_modified, sha256, ingest_id, outcome,
                                             rejection, instance)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10) ON CONFLICT DO NOTHING""",
                bucket,
                obj.key,
                obj.etag,
                obj.size_bytes,
                obj.last_modified,
                outcome.sha256,
                outcome.ingest_id,
                outcome.kind,
                None if outcome.rejection is None else json.dumps(outcome.rejection, default=str),
                self._instance,
            )
        log.info(
            "bucket object %s",
            outcome.kind,
            extra={"file_name": outcome.name, "etag": obj.etag, "ingest_id": str(outcome.ingest_id)},
        )
        return outcome

    async def _ingest(self, client: httpx.AsyncClient, obj: S3Object) -> Outcome:
        name = f"s3://{self._bucket.name}/{obj.key}"
        with telemetry.tracer().start_as_current_span(
            "ingest bucket object", attributes={"finops.file.name": name, "finops.s3.etag": obj.etag}
        ):
            try:
                async with self._bucket.read(client, obj) as body:
                    report = await ingest_stream(
                        self._pool,
                        body,
                        file_name=name,
                        unread_key=str(uuid.uuid5(_UNREAD_NAMESPACE, f"{name}#{obj.etag}")),
                        spool_dir=self._spool_dir,
                        limits=self._limits,
                        batch_size=self._batch_size,
                    )
            except FileRejected as rejected:
                assert rejected.sha256 is not None
                return _rejected(name, rejected, rejected.sha256)
        kind: Kind = "duplicate" if report.duplicate else "ingested"
        return Outcome(name=name, kind=kind, sha256=report.sha256, ingest_id=report.ingest_id)


def _rejected(name: str, rejected: FileRejected, sha256: str) -> Outcome:
    return Outcome(
        name=name, kind="rejected", sha256=sha256, ingest_id=ingest_id_for(sha256), rejection=rejected.as_dict()
    )


# --- Wiring --------------------------------------------------------------------------------------------------


def start_sources(runtime: ServiceRuntime, settings: SourceSettings) -> list[asyncio.Task[None]]:
    """Start the sources the settings switch on (FINOPS_WATCH_DIR, FINOPS_S3_BUCKET); call once the pool exists,
    and cancel the tasks at shutdown."""
    limits = Limits(max_bytes=settings.max_file_bytes, max_ratio=settings.max_gzip_ratio)
    tasks: list[asyncio.Task[None]] = []
    if settings.watch_dir:
        watcher = FolderWatcher(
            runtime.pool,
            Path(settings.watch_dir),
            interval_s=settings.watch_interval_s,
            batch_size=settings.batch_size,
            limits=limits,
            spool_dir=settings.spool_dir,
        )
        tasks.append(asyncio.create_task(watcher.run(), name="ingest-folder-watcher"))
    if settings.s3_bucket:
        if not settings.s3_endpoint_url:
            raise SourceNotConfigured(
                "FINOPS_S3_BUCKET is set, so set FINOPS_S3_ENDPOINT_URL to the bucket's S3 endpoint too "
                "(for AWS, the S3 endpoint of the bucket's region)"
            )
        bucket = S3Bucket(
            endpoint_url=settings.s3_endpoint_url, name=settings.s3_bucket, credentials=S3Credentials.from_env()
        )
        poller = BucketPoller(
            runtime.pool,
            bucket,
            prefix=settings.s3_prefix,
            interval_s=settings.s3_poll_interval_s,
            batch_size=settings.batch_size,
            instance=settings.instance_id,
            limits=limits,
            spool_dir=settings.spool_dir,
        )
        tasks.append(asyncio.create_task(poller.run(), name="ingest-bucket-poller"))
    return tasks
