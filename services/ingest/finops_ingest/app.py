"""The ingest service: billing files in over HTTP, cost batches out through the outbox."""

from __future__ import annotations

import uuid
from pathlib import Path

from faststream.asgi import AsgiFastStream
from opentelemetry import trace
from starlette.requests import Request
from starlette.responses import JSONResponse

from finops_contracts.events import (
    BillingPeriodSuperseded,
    CostBatchIngested,
    CostPeriodCompleted,
    IngestAccepted,
    IngestCompleted,
    IngestRejected,
)
from finops_contracts.topics import COST, INGEST
from finops_ingest import repository
from finops_ingest.bills.dates import check_override
from finops_ingest.rejection import FileRejected
from finops_ingest.service import ingest_stream
from finops_ingest.sources import start_sources
from finops_ingest.spool import Limits
from finops_runtime import telemetry
from finops_runtime.app import ServiceRuntime
from finops_runtime.settings import Settings

SCHEMA = "ingest"
DEFAULT_BATCH_SIZE = 20_000
MAX_BATCH_SIZE = 50_000


class IngestSettings(Settings):
    service_name: str = "ingest"
    http_port: int = 8001
    batch_size: int = DEFAULT_BATCH_SIZE
    spool_dir: str | None = None
    max_file_bytes: int = Limits().max_bytes
    max_gzip_ratio: int = Limits().max_ratio
    watch_dir: str | None = None
    """A folder polled for billing files (FINOPS_WATCH_DIR); unset, no folder is watched."""
    watch_interval_s: float = 10.0
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    """A bucket polled for billing exports (FINOPS_S3_BUCKET); credentials from AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION."""
    s3_prefix: str = ""
    s3_poll_interval_s: float = 60.0


def build_runtime(settings: IngestSettings | None = None, **fields: object) -> ServiceRuntime:
    """The ingest service's runtime with its routes; `fields` build the settings when none are given."""
    settings = settings or IngestSettings(**fields)
    runtime = ServiceRuntime(
        settings,
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        topics=[COST, INGEST],
        publishes=[
            CostBatchIngested,
            CostPeriodCompleted,
            IngestAccepted,
            IngestCompleted,
            IngestRejected,
            BillingPeriodSuperseded,
        ],
        description="Reads billing files and publishes their cost lines in batches, and each file's lifecycle.",
    )

    async def upload(request: Request) -> JSONResponse:
        """POST a billing file as the request body (CSV, gzip'd CSV, Parquet or JSON lines; FOCUS or a provider's
        own export, detected or named by ?format=); ?name= names it, ?batch_size= sets lines per batch, and
        ?currency= gives the billing currency of an export that has no currency column, and ?date_order=dmy|mdy
        the order of slash dates in a file whose dates are all ambiguous (bills.dates; the report says which
        order was used and why)."""
        if request.method != "POST":
            return JSONResponse({"error": "use POST with the billing file as the body"}, status_code=405)
        name = request.query_params.get("name") or request.headers.get("x-file-name") or "upload.csv"
        try:
            batch_size = int(request.query_params.get("batch_size", settings.batch_size))
        except ValueError:
            return JSONResponse({"error": "batch_size must be a whole number"}, status_code=400)
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            return JSONResponse({"error": f"batch_size must be between 1 and {MAX_BATCH_SIZE}"}, status_code=400)
        try:
            date_order = check_override(request.query_params.get("date_order"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        with telemetry.tracer().start_as_current_span(
            "POST /v1/ingest",
            context=telemetry.extract(dict(request.headers)),
            kind=trace.SpanKind.SERVER,
            attributes={"finops.file.name": name},
        ) as span:
            try:
                report = await ingest_stream(
                    runtime.pool,
                    request.stream(),
                    file_name=name,
                    unread_key=str(uuid.uuid4()),
                    spool_dir=settings.spool_dir,
                    limits=Limits(max_bytes=settings.max_file_bytes, max_ratio=settings.max_gzip_ratio),
                    batch_size=batch_size,
                    fmt=request.query_params.get("format"),
                    currency=request.query_params.get("currency"),
                    date_order=date_order,
                )
            except FileRejected as rejected:
                span.set_attribute("finops.ingest.rejected", str(rejected))
                return JSONResponse({"rejected": rejected.as_dict()}, status_code=422)
            body = report.as_dict()
            if span.get_span_context().is_valid:
                body["trace_id"] = format(span.get_span_context().trace_id, "032x")
            return JSONResponse(body, status_code=200 if report.duplicate else 201)

    async def files(request: Request) -> JSONResponse:
        async with runtime.pool.acquire() as conn:
            rows = await repository.recent_files(conn)
        return JSONResponse(
            [{**dict(r), "ingest_id": str(r["ingest_id"]), "received_at": r["received_at"].isoformat()} for r in rows]
        )

    runtime.route("/v1/ingest", upload)
    runtime.route("/v1/ingest/files", files)
    runtime.on_started(lambda: start_sources(runtime, settings))
    return runtime


def create_app(settings: IngestSettings) -> AsgiFastStream:
    return build_runtime(settings).app()
