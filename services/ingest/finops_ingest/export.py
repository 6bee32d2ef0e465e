"""Any supported billing file as FOCUS 1.2 Cost and Usage data: CSV (optionally gzip'd) or Parquet.

The file is validated with the rules ingest applies (finops_ingest.lines, the same rejections and warnings), and
refused whole on the first kind of error, leaving nothing behind. It is read twice in blocks and never whole: the
first pass converts, validates and spools the FOCUS text columns to a local Arrow IPC file while it learns which
columns have data and how many decimal places they need; the second writes the spool with FOCUS 1.2 types to
OUTPUT.tmp, which is renamed to OUTPUT once complete.

Decimal columns are decimal128(38, s) in Parquet, s = max(18, the most fractional digits any value in the file
has). Eighteen places hold every sample bill exactly (OCI's cost report has 18) and keep one stable schema from
export to export; a file that needs more widens s rather than rounding, and the type becomes decimal256(76, s)
should 38 - s integer digits not be enough, so no digit is ever lost. CSV carries the source's decimal digits as
plain text, timestamps as `YYYY-MM-DDTHH:MM:SSZ`, and JSON columns as JSON object text.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from finops_ingest.bills import FORMATS, SOURCE_ROW, BillFormatError, read_bill
from finops_ingest.bills.dates import Order
from finops_ingest.bills.focus import ALLOWED, COST_AND_USAGE, DECIMALS, TIMESTAMPS, canonical
from finops_ingest.focus_csv import read_rows
from finops_ingest.focus_spec import ALLOWED_VALUES, ISO_4217
from finops_ingest.lines import MANDATORY as INGEST_MANDATORY
from finops_ingest.lines import Row, cost_line, typed_rows
from finops_ingest.rejection import BillingFileRejected, FileRejected, Problems
from finops_ingest.service import as_rejection, detect_format

FOCUS_VERSION = "1.2"
# FOCUS 1.2 facts from reference/focus-columns.csv: the Cost and Usage columns of 1.0-1.4 less those added later,
# the Mandatory ones, and those that allow no nulls.
LATER_COLUMNS = frozenset({
    "AllocatedMethodDetails", "AllocatedMethodId", "AllocatedResourceId", "AllocatedResourceName", "AllocatedTags",
    "CommitmentProgramEligibilityDetails", "ContractApplied", "HostProviderName", "InvoiceDetailId",
    "ServiceProviderName",
})  # fmt: skip
COLUMNS = COST_AND_USAGE - LATER_COLUMNS
MANDATORY = (
    "BillingAccountId", "BillingAccountName", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart",
    "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription", "BillingCurrency", "BilledCost",
    "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity", "PricingUnit", "ProviderName",
    "PublisherName", "InvoiceIssuerName", "ServiceName", "ServiceCategory",
)  # fmt: skip
NOT_NULL = frozenset({
    "BilledCost", "BillingAccountId", "BillingAccountType", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceName", "ServiceSubcategory",
})  # fmt: skip
DECIMAL_COLUMNS = DECIMALS & COLUMNS
DATETIME_COLUMNS = TIMESTAMPS & COLUMNS
JSON_COLUMNS = frozenset({"Tags", "SkuPriceDetails"})
CURRENCY_COLUMNS = ("BillingCurrency", "PricingCurrency")
DEFAULT_SCALE = 18
SUFFIXES = (".csv", ".csv.gz", ".parquet")

# Empty where FOCUS 1.2 allows no empty value: the spec's own fallback when the unit price is unknown ("MUST match
# the BilledCost" for a charge unrelated to others), and the 1.3 successors of the deprecated provider names.
_FALLBACKS = {
    "ContractedCost": ("BilledCost",),
    "ListCost": ("BilledCost",),
    "ProviderName": ("ServiceProviderName",),
    "PublisherName": ("ServiceProviderName",),
}
# Allowed values ingest does not check itself (it checks those of focus_spec.ALLOWED_VALUES).
_CHECKED_HERE = {c: v for c, v in ALLOWED.items() if c in COLUMNS and c not in ALLOWED_VALUES}
_MAX_ROW_ERRORS = 1000


@dataclass
class ExportReport:
    """What an export wrote: rows, the columns in order, warnings, totals per billing account and currency."""

    input: Path
    output: Path
    format: str
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    decimal_type: str | None = None
    warnings: Counter[str] = field(default_factory=Counter)
    totals: dict[tuple[str, str], tuple[Decimal, Decimal, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "input": str(self.input),
            "output": str(self.output),
            "format": self.format,
            "focus_version": FOCUS_VERSION,
            "row_count": self.rows,
            "columns": self.columns,
            "decimal_type": self.decimal_type,
            "warnings": dict(sorted(self.warnings.items())),
            "totals": [
                {
                    "billing_account_id": account,
                    "currency": currency,
                    "billed_cost": format(billed, "f"),
                    "effective_cost": format(effective, "f"),
                    "line_count": count,
                }
                for (account, currency), (billed, effective, count) in sorted(self.totals.items())
            ],
        }


@dataclass
class _Shape:
    """What the first pass learns about the columns: which have values, where they are empty, decimal digits."""

    values: Counter[str] = field(default_factory=Counter)
    nulls: Counter[str] = field(default_factory=Counter)
    scale: int = 0
    integer_digits: int = 0


def export_focus(
    input: Path,
    output: Path,
    *,
    format: str | None = None,
    currency: str | None = None,
    date_order: Order | None = None,
) -> ExportReport:
    """Write `input` (any supported billing file) to `output` (.csv, .csv.gz or .parquet) as FOCUS 1.2 Cost and
    Usage data. Raises FileRejected, writing nothing, when the file breaks a rule; ValueError for a bad output."""
    input, output = Path(input), Path(output)
    suffix = next((s for s in SUFFIXES if output.name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"the output must end in {', '.join(SUFFIXES)}: {output}")
    if not input.is_file():
        raise ValueError(f"no such file: {input}")
    name = input.name
    try:
        fmt = _format_of(input, name, format)
    except BillingFileRejected as error:
        raise FileRejected.single(error) from None
    report = ExportReport(input=input, output=output, format=fmt)
    spool = output.with_name(f"{output.name}.spool.tmp")
    tmp = output.with_name(f"{output.name}.tmp")
    try:
        shape, schema = _convert(input, name, fmt, currency, report, spool, date_order)
        columns = _columns(schema, shape, report)
        report.columns = [out for _, out in columns]
        if suffix == ".parquet":
            report.decimal_type = str(_decimal_type(shape))
            _write_parquet(spool, tmp, columns, _decimal_type(shape))
        else:
            _write_csv(spool, tmp, columns, gzipped=suffix == ".csv.gz")
        os.replace(tmp, output)
    finally:
        spool.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return report


def _format_of(path: Path, name: str, fmt: str | None) -> str:
    if fmt is not None and fmt not in FORMATS:
        raise BillingFileRejected(
            file=name, rule=f"unknown format {fmt!r}", hint=f"Use one of: {', '.join(sorted(FORMATS))}."
        )
    fmt = fmt or detect_format(path, name)
    if fmt == "focus-contract-commitment":
        raise BillingFileRejected(
            file=name,
            rule="this is a FOCUS Contract Commitment dataset, not a Cost and Usage dataset",
            hint="Export a Cost and Usage dataset; FOCUS 1.2 has no Contract Commitment dataset to convert it to.",
        )
    return fmt


def _peek(path: Path) -> tuple[bytes, bool]:
    """The first bytes of the content (decompressed when gzip'd), and whether it is gzip'd."""
    with path.open("rb") as f:
        head = f.read(4)
    if head[:2] != b"\x1f\x8b":
        return head, False
    with gzip.open(path, "rb") as f:
        return f.read(4), True


def _convert(
    path: Path,
    name: str,
    fmt: str,
    currency: str | None,
    report: ExportReport,
    spool: Path,
    date_order: Order | None = None,
) -> tuple[_Shape, pa.Schema]:
    """First pass: validate as ingest does, apply FOCUS 1.2 fills, spool the text columns; FileRejected on errors."""
    head, gzipped = _peek(path)
    csv_like = head[:4] != b"PAR1" and not head.lstrip().startswith(b"{")
    offset = 1 if csv_like else 0
    problems = Problems(name)
    defaults = {"BillingCurrency": currency} if currency else {}
    totals: dict[tuple[str, str], list] = {}

    def count(rows: Iterator[Row]) -> None:
        for row in rows:
            try:
                line = cost_line(row.values, file=name, row=row.number)
            except BillingFileRejected as error:
                problems.add(error)
                continue
            t = totals.setdefault((line.billing_account_id, line.billing_currency), [Decimal(0), Decimal(0), 0])
            t[0] += line.billed_cost
            t[1] += line.effective_cost
            t[2] += 1
            report.rows += 1

    shape = _Shape()
    schema: pa.Schema | None = None
    writer: pa.ipc.RecordBatchFileWriter | None = None
    # A FOCUS CSV is checked as ingest checks it, from its own text, before any conversion.
    plain_focus_csv = fmt == "focus" and csv_like and not gzipped
    try:
        if plain_focus_csv:
            count(read_rows(path, name, warnings=report.warnings, on_error=problems.add, defaults=defaults))
            if problems:
                raise problems.rejection()
        for table in read_bill(path, format=fmt, dates=date_order):
            if not plain_focus_csv:
                count(
                    typed_rows(
                        [table],
                        file=name,
                        warnings=report.warnings,
                        on_error=problems.add,
                        source_row_offset=offset,
                        defaults=defaults,
                    )
                )
            table = _fill(table, name, offset, currency, shape, problems, report.warnings)
            if problems:
                continue  # the file is refused anyway: keep checking, stop spooling
            if writer is None:
                schema = table.schema
                options = pa.ipc.IpcWriteOptions(compression="zstd" if pa.Codec.is_available("zstd") else None)
                writer = pa.ipc.new_file(str(spool), schema, options=options)
            writer.write_table(table)
    except BillingFileRejected as error:  # ingest's own check: rows already counted as the file's lines
        problems.add(error)
    except BillFormatError as error:  # the converter's: data rows, made the file's lines as ingest does
        problems.add(as_rejection(error, name, row_offset=offset))
    finally:
        if writer is not None:
            writer.close()
    if not problems and report.rows == 0:
        problems.add(
            BillingFileRejected(
                file=name, row=2, rule="the file has a header but no rows", hint="Export a billing period with charges."
            )
        )
    if problems:
        raise problems.rejection()
    report.totals = {k: (v[0], v[1], v[2]) for k, v in totals.items()}
    assert schema is not None
    return shape, schema


def _fill(
    table: pa.Table,
    name: str,
    offset: int,
    currency: str | None,
    shape: _Shape,
    problems: Problems,
    warnings: Counter[str],
) -> pa.Table:
    """One block made FOCUS 1.2: defaults and fallbacks filled, allowed values and currencies in their spelling,
    JSON checked; records in `shape` what the columns hold and adds to `problems` what cannot be written."""
    rows = table.column(SOURCE_ROW) if SOURCE_ROW in table.column_names else None

    def reject(column: str, mask: pa.Array, rule: str, hint: str) -> None:
        values = table.column(column)
        for n, i in enumerate(pc.indices_nonzero(mask).to_pylist()):
            if n == _MAX_ROW_ERRORS:
                break
            number = int(rows[i].as_py()) + offset if rows is not None else None
            value = values[i].as_py()
            problems.add(BillingFileRejected(file=name, row=number, column=column, value=value, rule=rule, hint=hint))

    def replace(column: str, values: pa.Array | pa.ChunkedArray) -> None:
        nonlocal table
        table = table.set_column(table.column_names.index(column), column, values)

    if currency and "BillingCurrency" in table.column_names:
        replace("BillingCurrency", pc.fill_null(table.column("BillingCurrency"), currency))
    for column in CURRENCY_COLUMNS:
        if column in table.column_names:
            codes = pc.utf8_upper(pc.utf8_trim_whitespace(table.column(column)))
            replace(column, codes)
            if column != "BillingCurrency":  # ingest's own rules check BillingCurrency
                bad = pc.and_(pc.is_valid(codes), pc.invert(pc.is_in(codes, pa.array(sorted(ISO_4217)))))
                reject(column, bad, f"{column} must be an ISO 4217 currency code", "Correct the currency code.")
    for column, sources in _FALLBACKS.items():
        if column not in table.column_names or not table.column(column).null_count:
            continue
        for source in sources:
            if source in table.column_names:
                empty = table.column(column).null_count
                replace(column, pc.coalesce(table.column(column), table.column(source)))
                filled = empty - table.column(column).null_count
                if filled:
                    warnings[f"{column} empty, set to {source} (FOCUS {FOCUS_VERSION} allows no empty value)"] += filled
    for column, allowed in _CHECKED_HERE.items():
        if column not in table.column_names:
            continue
        spelled = _respelled(table.column(column), column)
        respelled = pc.sum(pc.cast(pc.not_equal(spelled, table.column(column)), pa.int64())).as_py()
        if respelled:
            warnings[f"{column} in the wrong case"] += respelled
            replace(column, spelled)
        bad = pc.and_(pc.is_valid(spelled), pc.invert(pc.is_in(spelled, pa.array(allowed))))
        reject(column, bad, f"{column} must be one of {', '.join(allowed)}", "Use a value FOCUS 1.2 allows.")
    for column in JSON_COLUMNS - {"Tags"}:  # ingest's own rules check Tags
        if column in table.column_names:
            bad = [not _is_json_object(v) for v in table.column(column).to_pylist()]
            reject(column, pa.array(bad), f"{column} must be a JSON object", "Write the value as a JSON object.")
    for column in MANDATORY:  # ingest's own rules check its mandatory columns
        if column in NOT_NULL and column not in INGEST_MANDATORY and column in table.column_names:
            reject(
                column,
                pc.is_null(table.column(column)),
                f"FOCUS {FOCUS_VERSION} requires a {column} on every row",
                f"Fill {column} in the billing export; the FOCUS export cannot leave it empty.",
            )
    for column in table.column_names:
        values = table.column(column)
        shape.values[column] += len(values) - values.null_count
        shape.nulls[column] += values.null_count
        if column in DECIMAL_COLUMNS and len(values) > values.null_count:
            _measure(values, shape)
    return table


def _respelled(values: pa.ChunkedArray, column: str) -> pa.Array:
    encoded = values.combine_chunks().dictionary_encode()
    dictionary = pa.array([canonical(column, v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(dictionary, encoded.indices)


def _is_json_object(text: str | None) -> bool:
    if text is None:
        return True
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


def _measure(values: pa.ChunkedArray, shape: _Shape) -> None:
    """Fractional and integer digits of decimal text, to choose a decimal type that holds every value exactly."""
    text = pc.utf8_trim(values, characters="+-")
    length = pc.utf8_length(text)
    point = pc.find_substring(text, ".")
    has_point = pc.greater_equal(point, 0)
    fraction = pc.if_else(has_point, pc.subtract(pc.subtract(length, point), 1), 0)
    integer = pc.if_else(has_point, point, length)
    shape.scale = max(shape.scale, pc.max(fraction).as_py() or 0)
    shape.integer_digits = max(shape.integer_digits, pc.max(integer).as_py() or 0)


def _decimal_type(shape: _Shape) -> pa.DataType:
    scale = max(DEFAULT_SCALE, shape.scale)
    if shape.integer_digits + scale <= 38:
        return pa.decimal128(38, scale)
    return pa.decimal256(76, scale)


def _columns(schema: pa.Schema, shape: _Shape, report: ExportReport) -> list[tuple[str | None, str]]:
    """(spooled column or None for an all-empty one, output name): FOCUS 1.2 columns with data and every
    Mandatory one, then provider columns with the x_ prefix (FOCUS columns of later versions included)."""
    focus: list[tuple[str | None, str]] = []
    extra: list[tuple[str | None, str]] = []
    names = set(schema.names)
    for column in schema.names:
        if column == SOURCE_ROW:
            continue
        if column in COLUMNS:
            if column in MANDATORY:
                focus.append((column, column))
            elif shape.values[column] and column in NOT_NULL and shape.nulls[column]:
                report.warnings[
                    f"{column} left out: empty on {shape.nulls[column]} row(s), and FOCUS {FOCUS_VERSION} "
                    "allows no empty value"
                ] += 1
            elif shape.values[column]:
                focus.append((column, column))
        elif shape.values[column]:
            out = column if column.startswith("x_") else f"x_{column}"
            if out != column and out in names:
                report.warnings[f"{column} left out: the file also has a column {out}"] += 1
                continue
            extra.append((column, out))
    present = {out for _, out in focus}
    focus.extend((None, c) for c in MANDATORY if c not in present)
    return focus + extra


def _spooled(spool: Path) -> Iterator[pa.RecordBatch]:
    with pa.memory_map(str(spool)) as source:
        reader = pa.ipc.open_file(source)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def _parquet_type(column: str, decimal: pa.DataType) -> pa.DataType:
    if column in DECIMAL_COLUMNS:
        return decimal
    if column in DATETIME_COLUMNS:
        return pa.timestamp("us", tz="UTC")
    return pa.string()


def _write_parquet(spool: Path, tmp: Path, columns: list[tuple[str | None, str]], decimal: pa.DataType) -> None:
    schema = pa.schema([(out, _parquet_type(out, decimal)) for _, out in columns])
    with pq.ParquetWriter(str(tmp), schema, compression="zstd") as writer:
        for batch in _spooled(spool):
            arrays = []
            for (source, _), target in zip(columns, schema, strict=True):
                if source is None:
                    arrays.append(pa.nulls(batch.num_rows, target.type))
                else:
                    arrays.append(pc.cast(batch.column(source), target.type))
            writer.write_batch(pa.record_batch(arrays, schema=schema))


def _write_csv(spool: Path, tmp: Path, columns: list[tuple[str | None, str]], *, gzipped: bool) -> None:
    """Text as spooled: decimals keep the source's digits, timestamps are already `YYYY-MM-DDTHH:MM:SSZ`."""
    opener = gzip.open if gzipped else open
    with opener(tmp, "wt", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow([name for _, name in columns])
        for batch in _spooled(spool):
            cells = [
                [None] * batch.num_rows if source is None else batch.column(source).to_pylist() for source, _ in columns
            ]
            out.writerows(zip(*cells, strict=True))
