"""From FOCUS-named columns to cost-line frames, a block at a time, without a Python object per row.

The rules are those of `finops_ingest.lines`, and so is the code that applies them to a value: the parsers
there run once per *distinct* value of the low-cardinality columns (timestamps, allowed values, currencies,
Tags: a bill repeats a few of them millions of times), and, for money and quantities, only on the cells that
Arrow's own exact decimal parsing does not take. Warnings are counted per row, as before. A rejection names
the same row, column, value and rule as the row-by-row path would, with how many rows share it.

Blocks come as text (CSV, the provider converters) or natively typed (FOCUS Parquet): timestamps, decimals and
integers are taken as they are; floats go through their shortest round-trip text, never a binary expansion.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

from finops_contracts.costframe import COST_LINE_SCHEMA, widest_decimal
from finops_ingest.bills import tags as tag_values
from finops_ingest.bills.values import NULL_TOKENS
from finops_ingest.lines import (
    COLUMN_FIELDS,
    MANDATORY,
    _decimal,
    _tags,
    _text,
    _timestamp,
    columns_read,
    require_mandatory,
)
from finops_ingest.rejection import BillingFileRejected

_TIMESTAMP = pa.timestamp("us", tz="UTC")
_PERIODS = (("BillingPeriodStart", "BillingPeriodEnd"), ("ChargePeriodStart", "ChargePeriodEnd"))
_FIX_VALUE = "Correct the value in the export and upload the file again."
_NULLS = pa.array(sorted(NULL_TOKENS), pa.string())


@dataclass(order=True)
class _Problem:
    row: int
    order: int
    error: BillingFileRejected = field(compare=False)
    count: int = field(compare=False, default=1)


class _Block:
    """One block under typing: its row numbers, and the problems found in it."""

    def __init__(
        self, table: pa.Table, *, first: int, source_rows: pa.ChunkedArray | None, file: str, warnings: Counter[str]
    ) -> None:
        self.table = table
        self.first = first
        self.source_rows = source_rows
        self.file = file
        self.warnings = warnings
        self.problems: list[_Problem] = []

    def number(self, index: int) -> int:
        """The file's row number of the block's row `index`."""
        if self.source_rows is None:
            return self.first + index
        return int(self.source_rows[index].as_py()) + self.first

    def reject(self, index: int, count: int, *, column: str, value: object, rule: str, hint: str) -> None:
        row = self.number(index)
        error = BillingFileRejected(
            file=self.file, row=row, column=column, value=None if value is None else str(value), rule=rule, hint=hint
        )
        self.problems.append(_Problem(row, len(self.problems), error, count))


def frames(
    tables: Iterable[pa.Table],
    *,
    file: str,
    warnings: Counter[str],
    on_error: Callable[[BillingFileRejected, int], None],
    first_row: int = 2,
    source_row_offset: int = 0,
    defaults: dict[str, str] | None = None,
) -> Iterator[pa.Table]:
    """Cost-line frames of FOCUS-named tables. Rows are numbered from `first_row` (2: after a CSV header), or,
    when the tables carry `x_SourceRow` (1 = first data row), as that plus `source_row_offset`. Errors go to
    `on_error(error, count)`; a block with an error yields nothing (the file is refused anyway)."""
    next_number = first_row
    checked = False
    for table in tables:
        if not checked:
            require_mandatory(table.column_names, file=file)
            checked = True
        if table.num_rows == 0:
            continue
        if "x_SourceRow" in table.column_names:
            block = _Block(
                table, first=source_row_offset, source_rows=table.column("x_SourceRow"), file=file, warnings=warnings
            )
        else:
            block = _Block(table, first=next_number, source_rows=None, file=file, warnings=warnings)
            next_number += table.num_rows
        frame = _type(block, defaults or {})
        if block.problems:
            for problem in sorted(block.problems):
                on_error(problem.error, problem.count)
            continue
        yield frame


def _type(block: _Block, defaults: dict[str, str]) -> pa.Table:
    n = block.table.num_rows
    columns: dict[str, pa.Array] = {}
    for column in columns_read(block.table.column_names):
        cells = _cells(block, column, defaults)
        if column == "Tags":
            columns["tags"] = _tag_column(block, cells)
            continue
        name, parse = COLUMN_FIELDS[column]
        if column in MANDATORY and cells.null_count:
            first, count = _where(cells.is_null())
            block.reject(
                first,
                count,
                column=column,
                value=None,
                rule="a mandatory value is empty",
                hint=f"Every row needs a {column}.",
            )
        if parse is _decimal:
            columns[name] = _decimals(block, column, cells)
        elif pa.types.is_timestamp(cells.type) or pa.types.is_date(cells.type):
            columns[name] = _native_timestamps(cells)
        elif parse is _text:
            columns[name] = cells
        else:
            columns[name] = _per_distinct(block, column, cells, parse)
    _check_periods(block, columns)
    if "provider_name" in columns:
        columns["provider_name"] = columns["provider_name"].fill_null("unknown")
    frame = {}
    for f in COST_LINE_SCHEMA:
        if f.name in columns:
            frame[f.name] = columns[f.name]
        elif f.name == "provider_name":
            frame[f.name] = pa.array(["unknown"] * n, pa.string())
        else:
            frame[f.name] = pa.nulls(n, f.type)
    return pa.table(frame)


def _cells(block: _Block, column: str, defaults: dict[str, str]) -> pa.Array:
    """A column as one array, empty and NULL-token text as nulls, the upload's default filled in."""
    cells = block.table.column(column).combine_chunks()
    if pa.types.is_dictionary(cells.type):
        cells = cells.cast(cells.type.value_type)
    if pa.types.is_large_string(cells.type) or pa.types.is_string_view(cells.type):
        cells = cells.cast(pa.string())
    if column in COLUMN_FIELDS and COLUMN_FIELDS[column][1] is _text and not pa.types.is_string(cells.type):
        cells = _as_text(cells)
    if pa.types.is_string(cells.type):
        empty = pc.is_in(cells, value_set=_NULLS)
        if pc.any(empty).as_py():
            cells = pc.if_else(empty, pa.scalar(None, pa.string()), cells)
    default = defaults.get(column)
    if default is not None and cells.null_count:
        block.warnings[f"{column} taken from the upload's default"] += cells.null_count
        cells = cells.cast(pa.string()).fill_null(default)
    return cells


def _native_timestamps(cells: pa.Array) -> pa.Array:
    """Parquet timestamps as UTC microseconds; naive ones and dates are read as UTC, as the text path does."""
    if pa.types.is_date(cells.type):
        cells = cells.cast(pa.timestamp("us"))
    return cells.cast(_TIMESTAMP, safe=False)


def _as_text(cells: pa.Array) -> pa.Array:
    """Native cells of a text column (an account id stored as a number, say) as their text."""
    if pa.types.is_integer(cells.type) or pa.types.is_decimal(cells.type) or pa.types.is_boolean(cells.type):
        return cells.cast(pa.string())
    from finops_ingest.bills.values import text

    return pa.array([text(v) for v in cells.to_pylist()], pa.string())


def _where(mask: pa.Array) -> tuple[int, int]:
    """The first index where `mask` is true, and how many are."""
    hits = pc.indices_nonzero(mask)
    return hits[0].as_py(), len(hits)


def _per_distinct(
    block: _Block, column: str, cells: pa.Array, parse: Callable[[str, Counter[str]], object]
) -> pa.Array:
    """Apply a parser of `lines` once per distinct value; warnings count every row that has the value."""
    arrow_type = _TIMESTAMP if parse is _timestamp else pa.string()
    if not pa.types.is_string(cells.type):
        cells = _as_text(cells)
    distinct, indices, counts = _distinct(cells)
    parsed: list[object] = []
    for k, text in enumerate(distinct):
        local: Counter[str] = Counter()
        try:
            parsed.append(parse(text, local))
        except (ValueError, InvalidOperation):
            parsed.append(None)
            block.reject(
                pc.index(indices, k).as_py(),
                counts[k],
                column=column,
                value=text,
                rule=f"{column} must be {parse.rule}",  # type: ignore[attr-defined]
                hint=_FIX_VALUE,
            )
            continue
        for warning, times in local.items():
            block.warnings[warning] += times * counts[k]
    return pa.array(parsed, arrow_type).take(indices)


def _distinct(cells: pa.Array) -> tuple[list[str], pa.Array, dict[int, int]]:
    """The distinct non-null values, each cell's index into them (null for a null), and each one's count."""
    encoded = pc.dictionary_encode(cells)
    tally = pc.value_counts(encoded.indices)
    counts = dict(zip(tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True))
    return encoded.dictionary.to_pylist(), encoded.indices, counts


def _tag_column(block: _Block, cells: pa.Array) -> pa.Array:
    """Tags as normalized JSON object text, checked and cleaned once per distinct value."""
    if not pa.types.is_string(cells.type):
        cells = pa.array([tag_values.merge(v) for v in cells.to_pylist()], pa.string())
    distinct, indices, counts = _distinct(cells)
    normalized: list[str | None] = []
    for k, text in enumerate(distinct):
        local: Counter[str] = Counter()
        try:
            tags = _tags(text, file=block.file, row=0, warnings=local)
        except BillingFileRejected as error:
            first = pc.index(indices, k).as_py()
            block.reject(first, counts[k], column="Tags", value=text, rule=error.rule, hint=error.hint)
            normalized.append(None)
            continue
        normalized.append(json.dumps(tags, ensure_ascii=False, separators=(",", ":")) if tags else None)
        for warning, times in local.items():
            block.warnings[warning] += times * counts[k]
    return pa.array(normalized, pa.string()).take(indices)


def _decimals(block: _Block, column: str, cells: pa.Array) -> pa.Array:
    """Exact decimals: native decimals and integers as they are, text through Arrow's exact parser, and the
    cells it refuses (exponents, spaces, garbage) through `lines`' Decimal rule, which names the bad ones."""
    if pa.types.is_decimal(cells.type):
        return cells.cast(widest_decimal([cells.type]))
    if pa.types.is_integer(cells.type):
        return cells.cast(pa.decimal128(38, 0))
    if pa.types.is_floating(cells.type):
        cells = cells.cast(pa.string())  # the shortest text that reads back as the same double
    if not pa.types.is_string(cells.type):
        cells = _as_text(cells)
    try:
        return cells.cast(_decimal_type(cells))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    plain = pc.match_substring_regex(cells, r"^-?[0-9]+(\.[0-9]+)?$").fill_null(True)
    odd = pc.indices_nonzero(pc.invert(plain)).to_pylist()
    fixed: list[str] = []
    for i in odd:
        text = cells[i].as_py()
        try:
            fixed.append(format(_decimal(text, block.warnings), "f"))
        except (ValueError, InvalidOperation):
            fixed.append("0")
            block.reject(
                i,
                1,
                column=column,
                value=text,
                rule=f"{column} must be a decimal number",
                hint=_FIX_VALUE,
            )
    if len(odd):
        cells = pc.replace_with_mask(cells, pc.invert(plain), pa.array(fixed, pa.string()))
    try:
        return cells.cast(_decimal_type(cells))
    except (pa.ArrowInvalid, ValueError) as exc:
        block.reject(0, 1, column=column, value=None, rule=f"{column} cannot be held exactly: {exc}", hint=_FIX_VALUE)
        return pa.nulls(len(cells), pa.decimal128(38, 0))


def _decimal_type(cells: pa.Array) -> pa.DataType:
    """The decimal type whose scale keeps every digit after the point of plain decimal text."""
    if cells.null_count == len(cells):
        return pa.decimal128(38, 0)
    length = pc.utf8_length(cells)
    dot = pc.find_substring(cells, ".")
    has_dot = pc.greater_equal(dot, 0)
    scale = pc.max(pc.if_else(has_dot, pc.subtract(pc.subtract(length, dot), 1), 0)).as_py() or 0
    integer_digits = pc.max(pc.if_else(has_dot, dot, length)).as_py() or 1  # a sign counts: at most one too many
    if integer_digits + scale <= 38:
        return pa.decimal128(38, scale)
    if integer_digits + scale <= 76:
        return pa.decimal256(76, scale)
    raise ValueError(f"values need {integer_digits + scale} digits; at most 76 are supported")


def _check_periods(block: _Block, columns: dict[str, pa.Array]) -> None:
    for start, end in _PERIODS:
        s, e = COLUMN_FIELDS[start][0], COLUMN_FIELDS[end][0]
        if s not in columns or e not in columns:
            continue
        wrong = pc.invert(pc.less(columns[s], columns[e])).fill_null(False)
        if pc.any(wrong).as_py():
            first, count = _where(wrong)
            begins, ends = columns[s][first].as_py(), columns[e][first].as_py()
            block.reject(
                first,
                count,
                column=start,
                value=str(begins),
                rule=f"{start} must be before {end}",
                hint=f"Check the row's {start} ({begins}) and {end} ({ends}).",
            )
