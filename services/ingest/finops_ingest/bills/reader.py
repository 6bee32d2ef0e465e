"""read_bill: a billing file of any supported format as a stream of FOCUS-named, all-text Arrow tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from finops_ingest.bills import aws, azure, gcp, oci
from finops_ingest.bills.container import blocks, open_source
from finops_ingest.bills.dates import DateOrder, Order, date_order_of
from finops_ingest.bills.detect import FORMATS, classify
from finops_ingest.bills.errors import BillFormatError
from finops_ingest.bills.focus import PROVIDER_EXTRA, STANDARD, PassThrough
from finops_ingest.bills.record import Record
from finops_ingest.bills.values import text

SOURCE_ROW = "x_SourceRow"
_NATIVE: dict[str, Callable[[Record], dict[str, str | None]]] = {
    "aws-cur-legacy": aws.convert,
    "aws-cur2": aws.convert,
    "azure-actual": azure.actual,
    "azure-amortized": azure.amortized,
    "gcp-billing": gcp.convert,
    "oci-cost-report": oci.convert,
}
_KNOWN_FIELDS = {"gcp-billing": gcp.FIELDS}


def date_order(path: Path, *, format: str | None = None, override: Order | None = None) -> DateOrder:
    """The order the file's slash dates are read in, and why: decided from the whole file (bills.dates)."""
    source = open_source(Path(path))
    return date_order_of(source, layout=_kind(source, format), override=override)


def read_bill(
    path: Path, *, format: str | None = None, block_rows: int = 50_000, dates: DateOrder | Order | None = None
) -> Iterator[pa.Table]:
    """Stream a billing file as tables of at most block_rows rows, every column pa.string(), FOCUS 1.2 names,
    provider-only columns as x_<name>, and x_SourceRow (the 1-based data row in the file). A file without data
    rows yields one empty table. BillFormatError names the file, row and column of the first problem.
    Slash dates are read in `dates` (a decision of `date_order`), else in the order decided from the whole
    file, with `dates` as the override when it is a bare `dmy` or `mdy`."""
    if block_rows < 1:
        raise ValueError("block_rows must be at least 1")
    source = open_source(Path(path))
    kind = _kind(source, format)
    if not isinstance(dates, DateOrder):
        dates = date_order_of(source, layout=kind, override=dates)
    if kind in _NATIVE:
        convert = _NATIVE[kind]
        columns = list(STANDARD) + list(PROVIDER_EXTRA)
        provider = list(dict.fromkeys(source.columns + _KNOWN_FIELDS.get(kind, ())))
    else:
        passthrough = PassThrough(source.columns, contract_commitment=kind == "focus-contract-commitment")
        convert, columns, provider = passthrough.convert, passthrough.columns, []
    extras = [(c, f"x_{c}") for c in provider]
    names = columns + [x for _, x in extras] + [SOURCE_ROW]
    schema = pa.schema([(n, pa.string()) for n in names])
    fixed_index = {c.lower(): c for c in reversed(source.columns)}
    per_row_index = source.container == "jsonl"  # JSON lines omit null fields, so each line has its own keys
    row = 0
    for block in blocks(source, block_rows):
        data: dict[str, list[str | None]] = {n: [] for n in names}
        for item in block:
            row += 1
            index = {k.lower(): k for k in item} if per_row_index else fixed_index
            converted = convert(Record(item, file=source.name, row=row, index=index, date_order=dates.order))
            for c in columns:
                data[c].append(converted.get(c))
            for c, x in extras:
                data[x].append(text(item.get(c)))
            data[SOURCE_ROW].append(str(row))
        yield pa.table([pa.array(data[n], pa.string()) for n in names], schema=schema)
    if row == 0:
        yield schema.empty_table()


def _kind(source, format: str | None) -> str:
    kind = format if format is not None else classify(source)
    if kind not in FORMATS:
        raise BillFormatError(
            file=source.name, rule=f"unknown format {kind!r}", hint=f"Use one of: {', '.join(FORMATS)}."
        )
    return kind
