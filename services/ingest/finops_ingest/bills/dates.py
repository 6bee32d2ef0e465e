"""Which order a file's slash dates (`03/04/2026`) are written in, decided once per FILE, never per value.

The evidence is every slash date in the file's date-like columns (names with date, time, period, interval,
start or end in them):

- a value whose first field is above 12 (`13/04/2026`) can only be day-first: the file is `dmy`;
- a value whose second field is above 12 (`04/13/2026`) can only be month-first: the file is `mdy`;
- both in one file: it is refused (BillFormatError naming the file, row, column and value of the cell that
  contradicts the first evidence), since no order reads every date of it;
- neither (every field 12 or less, or no slash dates at all): the caller's override (`?date_order=` on the
  ingest API, `--date-order` on the CLI) if given, else the layout's default below.

An override that the file's own evidence contradicts is refused the same way, naming the cell.

Layout defaults (only for files whose slash dates are all ambiguous):
- azure-actual, azure-amortized: mdy. Azure Cost Management writes cost details in the US format MM/DD/YYYY
  (EA and MCA); exports re-saved in a day-first locale are detected from their days above 12, or need dmy.
- oci-cost-report: mdy. OCI writes ISO 8601; a partner's dd/mm/yyyy file is detected from a day above 12,
  or needs dmy.
- aws-cur-legacy, aws-cur2, gcp-billing: mdy. They write ISO 8601; slash dates only come from a spreadsheet
  re-save, read in the US order unless the file shows otherwise.
- focus (JSON lines, gzip): mdy. FOCUS requires ISO 8601; a FOCUS CSV's slash dates are refused outright.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from finops_ingest.bills.container import Source, blocks
from finops_ingest.bills.errors import BillFormatError

Order = Literal["mdy", "dmy"]
ORDERS: tuple[Order, ...] = ("dmy", "mdy")
DEFAULTS: dict[str, Order] = {
    "azure-actual": "mdy",
    "azure-amortized": "mdy",
    "oci-cost-report": "mdy",
    "aws-cur-legacy": "mdy",
    "aws-cur2": "mdy",
    "gcp-billing": "mdy",
    "focus": "mdy",
    "focus-contract-commitment": "mdy",
}
SLASH_DATE = r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?"
_SLASH = re.compile(SLASH_DATE)
_DATE_LIKE = ("date", "time", "period", "interval", "start", "end")
_BLOCK_ROWS = 65_536


@dataclass(frozen=True, slots=True)
class Evidence:
    """A cell that settles the order: its 1-based data row, column and value."""

    row: int
    column: str
    value: str

    def where(self) -> str:
        return f"row {self.row}, column {self.column!r} ({self.value!r})"


@dataclass(frozen=True, slots=True)
class DateOrder:
    """The order a file's slash dates are read in, and why (for the ingest report)."""

    order: Order
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"order": self.order, "reason": self.reason}


def check_override(value: str | None) -> Order | None:
    """An override as given to the API or CLI: None, `dmy` or `mdy`; ValueError naming what is allowed."""
    if value is None or value == "":
        return None
    if value.strip().lower() not in ORDERS:
        raise ValueError(f"date_order must be one of {', '.join(ORDERS)}, got {value!r}")
    return value.strip().lower()  # type: ignore[return-value]


def decide(
    cells: Iterable[tuple[int, str, str]], *, file: str, layout: str, override: Order | None = None
) -> DateOrder:
    """The file's order from its slash-date cells (row, column, value), as the module docstring says."""
    day_first: Evidence | None = None
    month_first: Evidence | None = None
    for row, column, value in cells:
        match = _SLASH.fullmatch(value.strip())
        if match is None:
            continue
        first, second = int(match.group(1)), int(match.group(2))
        if first > 12:
            if day_first is None:
                day_first = Evidence(row, column, value)
                if month_first is not None:
                    raise _mixed(file, day_first, month_first, later=day_first)
        elif second > 12 and month_first is None:
            month_first = Evidence(row, column, value)
            if day_first is not None:
                raise _mixed(file, day_first, month_first, later=month_first)
    found: tuple[Order, Evidence] | None = None
    if day_first is not None:
        found = ("dmy", day_first)
    elif month_first is not None:
        found = ("mdy", month_first)
    if found is not None:
        order, evidence = found
        if override is not None and override != order:
            raise BillFormatError(
                file=file,
                row=evidence.row,
                column=evidence.column,
                value=evidence.value,
                rule=f"date_order={override} was asked for, but this date can only be "
                f"{'day' if order == 'dmy' else 'month'}-first",
                hint=f"Leave date_order out (the file shows it is {order}), or fix the date.",
            )
        first_or_second = "first" if order == "dmy" else "second"
        return DateOrder(order, f"{evidence.where()} has a {first_or_second} field above 12")
    if override is not None:
        return DateOrder(override, "every slash date is ambiguous (fields of 12 or less); date_order was given")
    default = DEFAULTS.get(layout, "mdy")
    return DateOrder(default, f"every slash date is ambiguous (fields of 12 or less), or there is none; "
                              f"the {layout} layout's default")  # fmt: skip


def _mixed(file: str, day_first: Evidence, month_first: Evidence, *, later: Evidence) -> BillFormatError:
    return BillFormatError(
        file=file,
        row=later.row,
        column=later.column,
        value=later.value,
        rule=f"the file mixes day-first dates ({day_first.where()}) and month-first dates ({month_first.where()})",
        hint="Export the file again with one date format (ISO 8601 YYYY-MM-DD is best).",
    )


def date_columns(columns: Iterable[str]) -> list[str]:
    return [c for c in columns if _date_like(c)]


@functools.lru_cache(maxsize=4096)
def _date_like(column: str) -> bool:
    return any(word in column.lower() for word in _DATE_LIKE)


def slash_cells(source: Source) -> Iterable[tuple[int, str, str]]:
    """Each distinct slash-date value of the file's date-like columns once, at its first (1-based data) row."""
    wanted = date_columns(source.columns)
    seen: dict[str, set[str]] = {c: set() for c in wanted}
    if source.container == "csv":
        if wanted:
            yield from _csv_cells(source, wanted, seen)
        return
    if source.container == "parquet":
        if wanted:
            yield from _parquet_cells(source, wanted, seen)
        return
    row = 0
    for block in blocks(source, _BLOCK_ROWS):  # JSON lines omit null fields: each line has its own keys
        for item in block:
            row += 1
            for column in date_columns(item):
                value = item[column]
                if isinstance(value, str) and "/" in value and value not in seen.setdefault(column, set()):
                    seen[column].add(value)
                    yield row, column, value


def _csv_cells(source: Source, wanted: list[str], seen: dict[str, set[str]]) -> Iterable[tuple[int, str, str]]:
    """The CSV's date-like columns only, with Arrow: a slash date is looked at once per distinct value."""
    stream = (
        pa.CompressedInputStream(pa.OSFile(str(source.path)), "gzip") if source.gzipped else pa.OSFile(str(source.path))
    )
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=list(source.columns), skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted, column_types={c: pa.string() for c in wanted}, strings_can_be_null=False
            ),
        )
        yield from _batch_cells(reader, wanted, seen)
    except (pa.ArrowInvalid, OSError, EOFError):
        return  # the conversion pass reads the file again and names what is wrong with it
    finally:
        stream.close()


def _parquet_cells(source: Source, wanted: list[str], seen: dict[str, set[str]]) -> Iterable[tuple[int, str, str]]:
    """A Parquet file's text date-like columns only (native timestamps and dates have no order to decide)."""
    try:
        parquet = pq.ParquetFile(source.path)
        text = [c for c in wanted if pa.types.is_string(parquet.schema_arrow.field(c).type)]
        if text:
            yield from _batch_cells(parquet.iter_batches(columns=text), text, seen)
    except (pa.ArrowInvalid, OSError, KeyError):
        return  # the conversion pass reads the file again and names what is wrong with it


def _batch_cells(
    batches: Iterable[pa.RecordBatch], wanted: list[str], seen: dict[str, set[str]]
) -> Iterable[tuple[int, str, str]]:
    rows = 0
    for batch in batches:
        for column in wanted:
            cells = batch.column(column)
            slashed = pc.filter(cells, pc.match_substring_regex(cells, "^\\s*" + SLASH_DATE + "\\s*$"))
            for value in pc.unique(slashed).to_pylist():
                if value not in seen[column]:
                    seen[column].add(value)
                    yield rows + pc.index(cells, value).as_py() + 1, column, value
        rows += batch.num_rows


def date_order_of(source: Source, *, layout: str, override: Order | None = None) -> DateOrder:
    """Decide a file's date order from all of its slash dates (one pass over its date-like columns)."""
    return decide(slash_cells(source), file=source.name, layout=layout, override=override)
