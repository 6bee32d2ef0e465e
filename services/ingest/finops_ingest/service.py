"""Ingesting one billing file: read it whole, and in one transaction record it, queue its cost batches in the
outbox, give each billing period it carries a new version, and close each period with CostPeriodCompleted on
the period's partition. A file with an error is rejected whole: that transaction rolls back, nothing is
published, and the rejection and its reasons are recorded (and announced) in a transaction of their own."""

from __future__ import annotations

import contextlib
import itertools
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from finops_contracts.costframe import sums, unify
from finops_contracts.events import (
    BillingPeriodSuperseded,
    CostBatchIngested,
    CostPeriodCompleted,
    CurrencyTotal,
    IngestAccepted,
    IngestCompleted,
    IngestRejected,
)
from finops_ingest import repository
from finops_ingest.bills import FORMATS, BillFormatError, detect, read_bill
from finops_ingest.bills.container import PARQUET_MAGIC
from finops_ingest.bills.dates import Order
from finops_ingest.bills.reader import date_order as bills_date_order
from finops_ingest.focus_csv import csv_tables, header_of
from finops_ingest.frame import frames
from finops_ingest.lines import MANDATORY, columns_read, missing_mandatory
from finops_ingest.pipeline import in_thread
from finops_ingest.rejection import BillingFileRejected, FileRejected, Problems
from finops_ingest.spool import Limits, spool
from finops_runtime import outbox

SOURCE = "/finops/ingest"
_INGEST_NAMESPACE = uuid.UUID("0b5e3f4e-3c1a-4f55-9a44-6f1f3b1e7c21")
_OUTBOX_CHUNK = 8
MAX_BATCH_BYTES = 1 << 20
"""A batch whose Arrow stream is larger is cut in two, so every record stays far below Kafka's limit."""

PeriodKey = tuple[str, datetime]


@dataclass
class Total:
    billed_cost: Decimal = Decimal(0)
    effective_cost: Decimal = Decimal(0)
    line_count: int = 0

    def add(self, billed_cost: Decimal, effective_cost: Decimal, line_count: int) -> None:
        self.billed_cost += billed_cost
        self.effective_cost += effective_cost
        self.line_count += line_count


@dataclass
class PeriodStats:
    provider_name: str
    batch_count: int = 0
    line_count: int = 0
    by_currency: dict[str, Total] = field(default_factory=lambda: defaultdict(Total))


@dataclass
class IngestReport:
    ingest_id: uuid.UUID
    file_name: str
    sha256: str
    duplicate: bool
    format: str = "focus"
    row_count: int = 0
    batch_count: int = 0
    totals: dict[tuple[str, str], Total] = field(default_factory=dict)
    versions: dict[PeriodKey, int] = field(default_factory=dict)
    warnings: Counter[str] = field(default_factory=Counter)
    date_order: dict[str, str | None] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "ingest_id": str(self.ingest_id),
            "file_name": self.file_name,
            "sha256": self.sha256,
            "duplicate": self.duplicate,
            "format": self.format,
            "row_count": self.row_count,
            "batch_count": self.batch_count,
            "totals": [
                {
                    "billing_account_id": account,
                    "currency": currency,
                    "billed_cost": format(t.billed_cost, "f"),
                    "effective_cost": format(t.effective_cost, "f"),
                    "line_count": t.line_count,
                }
                for (account, currency), t in sorted(self.totals.items())
            ],
            "warnings": dict(sorted(self.warnings.items())),
            "date_order": self.date_order,
            "periods": [
                {"billing_account_id": account, "billing_period_start": start.isoformat(), "version": version}
                for (account, start), version in sorted(self.versions.items())
            ],
        }


def ingest_id_for(sha256: str) -> uuid.UUID:
    return uuid.uuid5(_INGEST_NAMESPACE, sha256)


def batch_id(ingest_id: uuid.UUID, seq: int) -> uuid.UUID:
    """Deterministic, so re-reading the same file can never mint new idempotency keys."""
    return uuid.uuid5(ingest_id, f"batch/{seq}")


class _Batcher:
    """Groups a file's cost lines by billing account and period, and cuts a batch every `size` lines of a group.
    Works on whole frames: a block is sorted by group once and sliced, never split into per-line objects."""

    def __init__(self, ingest_id: uuid.UUID, size: int, *, max_bytes: int = MAX_BATCH_BYTES) -> None:
        self._ingest_id = ingest_id
        self._size = size
        self._max_bytes = max_bytes
        self._open: dict[PeriodKey, list[pa.Table]] = {}
        self._open_rows: dict[PeriodKey, int] = defaultdict(int)
        self.periods: dict[PeriodKey, PeriodStats] = {}
        self.totals: dict[tuple[str, str], Total] = defaultdict(Total)
        self.count = 0

    def _count(self, frame: pa.Table) -> None:
        """Add a frame's lines to the file's and the periods' totals."""
        keys = ["billing_account_id", "billing_period_start", "billing_currency", "provider_name"]
        for row in sums(frame, keys).to_pylist():
            key = (row["billing_account_id"], row["billing_period_start"])
            stats = self.periods.get(key) or self.periods.setdefault(key, PeriodStats(row["provider_name"]))
            amounts = (row["billed_cost_sum"], row["effective_cost_sum"], row["_lines_sum"])
            stats.line_count += row["_lines_sum"]
            stats.by_currency[row["billing_currency"]].add(*amounts)
            self.totals[(key[0], row["billing_currency"])].add(*amounts)

    def add(self, frame: pa.Table) -> list[outbox.OutboxMessage]:
        """Count and queue a frame's lines; the batches that filled up."""
        self._count(frame)
        messages = []
        for key, piece in _groups(frame):
            pieces = self._open.setdefault(key, [])
            pieces.append(piece)
            self._open_rows[key] += piece.num_rows
            if self._open_rows[key] < self._size:
                continue
            lines = unify(pieces)
            whole = lines.num_rows - lines.num_rows % self._size
            for offset in range(0, whole, self._size):
                messages.extend(self._messages(key, lines.slice(offset, self._size)))
            rest = lines.num_rows - whole
            self._open_rows[key] = rest
            if rest:
                # A copy of what waits, so that a slice does not keep the whole block in memory.
                pieces[:] = [lines.slice(whole).take(pa.array(range(rest)))]
            else:
                del self._open[key]
        return messages

    def flush(self) -> list[outbox.OutboxMessage]:
        messages = []
        for key, pieces in self._open.items():
            messages.extend(self._messages(key, unify(pieces)))
        self._open.clear()
        self._open_rows.clear()
        return messages

    def _messages(self, key: PeriodKey, lines: pa.Table) -> list[outbox.OutboxMessage]:
        event = CostBatchIngested.of(
            lines.combine_chunks(),  # one record batch compresses better and faster than many small ones
            ingest_id=self._ingest_id,
            batch_seq=self.count,
            billing_account_id=key[0],
            billing_period_start=key[1],
        )
        message = outbox.message_for(event, source=SOURCE, event_id=batch_id(self._ingest_id, self.count))
        if len(message.payload) > self._max_bytes and lines.num_rows > 1:
            half = lines.num_rows // 2  # wide lines (long tags, say): keep every record well under Kafka's limit
            return self._messages(key, lines.slice(0, half)) + self._messages(key, lines.slice(half))
        self.periods[key].batch_count += 1
        self.count += 1
        return [message]


def _groups(frame: pa.Table) -> Iterator[tuple[PeriodKey, pa.Table]]:
    """The frame's lines per billing account and period, as slices of the frame sorted by that key."""
    accounts = pc.dictionary_encode(frame.column("billing_account_id").combine_chunks())
    starts = pc.dictionary_encode(frame.column("billing_period_start").combine_chunks())
    if len(accounts.dictionary) == 1 and len(starts.dictionary) == 1:
        yield (accounts.dictionary[0].as_py(), starts.dictionary[0].as_py()), frame
        return
    group = pc.add(pc.multiply(accounts.indices.cast(pa.int64()), len(starts.dictionary)), starts.indices)
    order = pc.sort_indices(group)
    frame, group = frame.take(order), group.take(order)
    n = frame.num_rows
    bounds = [0, *(i + 1 for i in pc.indices_nonzero(pc.not_equal(group[1:], group[:-1])).to_pylist()), n]
    for lo, hi in itertools.pairwise(bounds):
        g = group[lo].as_py()
        key = (
            accounts.dictionary[g // len(starts.dictionary)].as_py(),
            starts.dictionary[g % len(starts.dictionary)].as_py(),
        )
        yield key, frame.slice(lo, hi - lo)


def _currency_totals(by_currency: dict[str, Total]) -> tuple[CurrencyTotal, ...]:
    return tuple(
        CurrencyTotal(currency=cur, billed_cost=t.billed_cost, effective_cost=t.effective_cost, line_count=t.line_count)
        for cur, t in sorted(by_currency.items())
    )


def _frames(
    path: Path,
    file_name: str,
    fmt: str,
    warnings: Counter[str],
    problems: Problems,
    defaults: dict[str, str],
    report: IngestReport | None = None,
    date_order: Order | None = None,
) -> Iterator[pa.Table]:
    """The file's cost lines as typed, validated frames, whatever the provider format. The order of its slash
    dates is decided from the whole file first (bills.dates), `date_order` overriding only an ambiguous file,
    and said in `report`."""
    with path.open("rb") as f:
        head = f.read(4)
    # Row numbers of a CSV are its lines (the header is row 1); Parquet and JSON lines count data rows.
    csv_like = head != PARQUET_MAGIC and not head.lstrip().startswith(b"{")
    row_offset = 1 if csv_like else 0
    if fmt == "focus-contract-commitment":
        raise BillingFileRejected(
            file=file_name,
            rule="this is a FOCUS Contract Commitment dataset, not a Cost and Usage dataset",
            hint="Upload the Cost and Usage export here; commitment datasets are read by the commitments import.",
        )
    try:
        if fmt == "focus" and (csv_like or head == PARQUET_MAGIC):
            if report is not None:
                report.date_order = {"order": None, "reason": _FOCUS_DATES}
            tables = csv_tables(path, file_name, on_error=problems.add) if csv_like else parquet_tables(path, file_name)
        else:
            decided = bills_date_order(path, format=fmt, override=date_order)
            if report is not None:
                report.date_order = decided.as_dict()
            tables = read_bill(path, format=fmt, dates=decided)
        yield from frames(
            tables,
            file=file_name,
            warnings=warnings,
            on_error=problems.add,
            first_row=1 if head == PARQUET_MAGIC else 2,
            source_row_offset=row_offset,
            defaults=defaults,
        )
    except BillingFileRejected:
        raise
    except BillFormatError as error:
        raise as_rejection(error, file_name, row_offset=row_offset) from error


_FOCUS_DATES = "a FOCUS CSV or Parquet file's dates are ISO 8601 (FOCUS requires it); slash dates are refused"


def parquet_tables(path: Path, file_name: str, *, block_rows: int = 65_536) -> Iterator[pa.Table]:
    """A FOCUS Parquet file's cost-line columns, natively typed, block by block."""
    try:
        parquet = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering keeps every row group read until the end
        wanted = columns_read(parquet.schema_arrow.names)
        empty = True
        for batch in parquet.iter_batches(batch_size=block_rows, columns=wanted):
            empty = False
            yield pa.Table.from_batches([batch])
        if empty:
            yield parquet.schema_arrow.empty_table().select(wanted)
    except (pa.ArrowException, OSError) as exc:
        raise BillingFileRejected(
            file=file_name, rule=f"the Parquet data is unreadable ({exc})", hint="Upload the complete Parquet export."
        ) from None


def as_rejection(error: BillFormatError, file_name: str, *, row_offset: int = 0) -> BillingFileRejected:
    return BillingFileRejected(
        file=file_name,
        row=None if error.row is None else error.row + row_offset,
        column=error.column,
        value=error.value,
        rule=error.rule,
        hint=error.hint,
    )


def detect_format(path: Path, file_name: str) -> str:
    try:
        return detect(path)
    except BillFormatError as error:
        rejected = as_rejection(error, file_name)
    # A FOCUS file short of a mandatory column matches no format: say which column it lacks.
    missing = missing_mandatory(header_of(path))
    if missing and len(missing) <= len(MANDATORY) // 2:
        raise BillingFileRejected(
            file=file_name,
            row=1,
            column=missing[0],
            rule=f"mandatory FOCUS column(s) missing: {', '.join(missing)}",
            hint="Export a FOCUS Cost and Usage dataset with all mandatory columns.",
        ) from None
    raise rejected


async def ingest_file(
    pool: asyncpg.Pool,
    *,
    path: Path,
    file_name: str,
    sha256: str,
    size_bytes: int,
    batch_size: int,
    fmt: str | None = None,
    currency: str | None = None,
    date_order: Order | None = None,
) -> IngestReport:
    """Accept a billing file once, or raise FileRejected after recording why. `fmt` overrides detection;
    `currency` fills BillingCurrency where the export has none; `date_order` (dmy or mdy) reads a file whose
    slash dates are all ambiguous (bills.dates)."""
    try:
        return await _accept(
            pool,
            path=path,
            file_name=file_name,
            sha256=sha256,
            size_bytes=size_bytes,
            batch_size=batch_size,
            fmt=fmt,
            currency=currency,
            date_order=date_order,
        )
    except BillingFileRejected as error:
        rejection = FileRejected.single(error)
    except FileRejected as rejected:
        rejection = rejected
    await record_rejection(pool, rejection, sha256=sha256)
    raise rejection


async def ingest_stream(
    pool: asyncpg.Pool,
    chunks: AsyncIterator[bytes],
    *,
    file_name: str,
    unread_key: str,
    spool_dir: str | None,
    limits: Limits,
    batch_size: int,
    fmt: str | None = None,
    currency: str | None = None,
    date_order: Order | None = None,
) -> IngestReport:
    """Spool a stream to disk, then ingest it once. Raises FileRejected after recording why, also when the
    stream itself is refused (a gzip bomb, say): that rejection is keyed by `unread_key`, since a file not read
    whole has no checksum."""
    try:
        spooled = await spool(chunks, name=file_name, directory=spool_dir, limits=limits)
    except BillingFileRejected as error:
        rejected = FileRejected.single(error)
        await record_rejection(pool, rejected, sha256=f"unread-{unread_key}")
        raise rejected from error
    try:
        return await ingest_file(
            pool,
            path=spooled.path,
            file_name=file_name,
            sha256=spooled.sha256,
            size_bytes=spooled.size_bytes,
            batch_size=batch_size,
            fmt=fmt,
            currency=currency,
            date_order=date_order,
        )
    finally:
        spooled.path.unlink(missing_ok=True)


async def record_rejection(pool: asyncpg.Pool, rejection: FileRejected, *, sha256: str) -> None:
    rejection.sha256 = sha256
    ingest_id = ingest_id_for(sha256)
    errors = json.dumps([d.model_dump() for d in rejection.details])
    async with pool.acquire() as conn, conn.transaction():
        if await repository.record_rejection(
            conn, sha256=sha256, ingest_id=ingest_id, file_name=rejection.file, errors=errors
        ):
            event = IngestRejected(
                ingest_id=ingest_id, file_name=rejection.file, sha256=sha256, errors=tuple(rejection.details)
            )
            await outbox.add(
                conn, [outbox.message_for(event, source=SOURCE, event_id=uuid.uuid5(ingest_id, "rejected"))]
            )


async def _accept(
    pool: asyncpg.Pool,
    *,
    path: Path,
    file_name: str,
    sha256: str,
    size_bytes: int,
    batch_size: int,
    fmt: str | None,
    currency: str | None,
    date_order: Order | None = None,
) -> IngestReport:
    ingest_id = ingest_id_for(sha256)
    if fmt is not None and fmt not in FORMATS:
        raise BillingFileRejected(
            file=file_name, rule=f"unknown format {fmt!r}", hint=f"Use one of: {', '.join(sorted(FORMATS))}."
        )
    fmt = fmt or detect_format(path, file_name)
    report = IngestReport(ingest_id=ingest_id, file_name=file_name, sha256=sha256, duplicate=False, format=fmt)
    problems = Problems(file_name)
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.claim_file(
            conn, ingest_id=ingest_id, file_name=file_name, sha256=sha256, size_bytes=size_bytes
        ):
            existing = await repository.find_file(conn, sha256=sha256)
            report.duplicate = True
            report.ingest_id = existing["ingest_id"] if existing else ingest_id
            return report
        batcher = _Batcher(ingest_id, batch_size)
        pending: list[outbox.OutboxMessage] = []
        defaults = {"BillingCurrency": currency} if currency else {}

        def batches() -> Iterator[list[outbox.OutboxMessage]]:
            """Runs in a worker thread: read, type and batch the file while the loop COPYs earlier batches."""
            for frame in _frames(path, file_name, fmt, report.warnings, problems, defaults, report, date_order):
                report.row_count += frame.num_rows
                if not problems:  # a refused file is still read to the end, to report every error in it
                    yield batcher.add(frame)

        async with contextlib.aclosing(in_thread(batches, depth=16)) as produced:  # a failed COPY stops the thread too
            async for messages in produced:
                pending.extend(messages)
                if len(pending) >= _OUTBOX_CHUNK:
                    await outbox.add(conn, pending)
                    pending.clear()
        if problems:
            raise problems.rejection()
        if report.row_count == 0:
            raise BillingFileRejected(
                file=file_name,
                row=2,
                rule="the file has a header but no rows",
                hint="Export a billing period that has charges.",
            )
        report.totals = dict(batcher.totals)
        accepted = IngestAccepted(
            ingest_id=ingest_id,
            file_name=file_name,
            sha256=sha256,
            format=fmt,
            size_bytes=size_bytes,
            warnings=dict(report.warnings),
        )
        await outbox.add(
            conn, [outbox.message_for(accepted, source=SOURCE, event_id=uuid.uuid5(ingest_id, "accepted"))]
        )
        pending.extend(batcher.flush())
        report.batch_count = batcher.count
        pending.extend(await _close_periods(conn, ingest_id, batcher.periods, report))
        await outbox.add(conn, pending)
        await repository.complete_file(
            conn,
            ingest_id=ingest_id,
            row_count=report.row_count,
            batch_count=report.batch_count,
            totals=[(a, c, t.billed_cost, t.effective_cost, t.line_count) for (a, c), t in report.totals.items()],
        )
        by_currency: dict[str, Total] = defaultdict(Total)
        for (_, currency), t in report.totals.items():
            c = by_currency[currency]
            c.billed_cost += t.billed_cost
            c.effective_cost += t.effective_cost
            c.line_count += t.line_count
        completed = IngestCompleted(
            ingest_id=ingest_id,
            file_name=file_name,
            sha256=sha256,
            row_count=report.row_count,
            batch_count=report.batch_count,
            totals=_currency_totals(by_currency),
        )
        await outbox.add(
            conn, [outbox.message_for(completed, source=SOURCE, event_id=uuid.uuid5(ingest_id, "completed"))]
        )
    return report


async def _close_periods(
    conn: asyncpg.Connection, ingest_id: uuid.UUID, periods: dict[PeriodKey, PeriodStats], report: IngestReport
) -> list[outbox.OutboxMessage]:
    """Version each period this file carries; the completion follows the period's batches in the outbox."""
    messages = []
    for (account, start), stats in sorted(periods.items()):
        version, previous = await repository.next_period_version(
            conn, billing_account_id=account, billing_period_start=start
        )
        await repository.add_period_version(
            conn,
            billing_account_id=account,
            billing_period_start=start,
            version=version,
            ingest_id=ingest_id,
            provider_name=stats.provider_name,
            line_count=stats.line_count,
        )
        report.versions[(account, start)] = version
        period_id = uuid.uuid5(ingest_id, f"period/{account}/{start.isoformat()}")
        completed = CostPeriodCompleted(
            ingest_id=ingest_id,
            provider_name=stats.provider_name,
            billing_account_id=account,
            billing_period_start=start,
            version=version,
            batch_count=stats.batch_count,
            line_count=stats.line_count,
            totals=_currency_totals(stats.by_currency),
        )
        messages.append(outbox.message_for(completed, source=SOURCE, event_id=period_id))
        if previous is not None:
            superseded = BillingPeriodSuperseded(
                provider_name=stats.provider_name,
                billing_account_id=account,
                billing_period_start=start,
                superseded_ingest_id=previous["ingest_id"],
                superseded_version=previous["version"],
                ingest_id=ingest_id,
                version=version,
            )
            messages.append(outbox.message_for(superseded, source=SOURCE, event_id=uuid.uuid5(period_id, "superseded")))
    return messages
