"""Cost lines in bulk: the Apache Arrow form of `CostLine`, and the IPC encoding cost batches travel in.

Cost lines are the high-volume stream, so a batch of them is not JSON but one Arrow IPC stream (zstd-compressed
buffers): measured on this project's benchmark, about 14x smaller than compact JSON and decoded without a Python
object per line. The schema is derived from the `CostLine` model, which stays the one definition of a line:

- text fields are `string`, timestamps `timestamp[us, UTC]`;
- money and quantities are `decimal128(38, s)` (or `decimal256(76, s)` when 38 digits do not hold them), with
  the scale `s` chosen per batch so that no digit of the source is lost; consumers accept any decimal scale;
- tags are the FOCUS `Tags` JSON object text.

The batch's own attributes (ingest id, sequence, billing account and period) travel in the IPC schema's metadata
under `finops.batch`, so a consumer can read them without touching the lines.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from finops_contracts.events import CostLine

ARROW_STREAM = "application/vnd.apache.arrow.stream"
BATCH_METADATA = b"finops.batch"
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_CURRENCY = re.compile(r"[A-Z]{3}")
_WRITE_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


def _arrow_type(annotation: object) -> tuple[pa.DataType, bool]:
    """The Arrow type of a CostLine field annotation, and whether it is nullable."""
    nullable = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable, annotation = True, args[0]
    base = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation
    if base is Decimal:
        return pa.decimal128(38, 0), nullable  # the scale is chosen per batch
    if base is datetime:
        return _TIMESTAMP, nullable
    if base is str or typing.get_origin(base) is dict:
        return pa.string(), nullable
    raise TypeError(f"CostLine has a field of a type the Arrow form does not map: {annotation!r}")


def _schema() -> pa.Schema:
    fields = []
    for name, info in CostLine.model_fields.items():
        arrow_type, nullable = _arrow_type(info.annotation)
        if name == "tags":
            nullable = True
        fields.append(pa.field(name, arrow_type, nullable=nullable))
    return pa.schema(fields)


COST_LINE_SCHEMA = _schema()
"""Field names and order of the cost-line frame; decimal fields carry their scale per batch."""
DECIMAL_FIELDS = frozenset(f.name for f in COST_LINE_SCHEMA if pa.types.is_decimal(f.type))
TIMESTAMP_FIELDS = frozenset(f.name for f in COST_LINE_SCHEMA if pa.types.is_timestamp(f.type))
MANDATORY_FIELDS = frozenset(f.name for f in COST_LINE_SCHEMA if not f.nullable)


class FrameError(ValueError):
    """A payload that is not a cost-line frame; the message says what is wrong."""


def widest_decimal(types_: Iterable[pa.DataType]) -> pa.DataType:
    """The decimal type that holds every value of all `types_` exactly."""
    scale = 0
    integer_digits = 1
    for t in types_:
        if pa.types.is_decimal(t):
            scale = max(scale, t.scale)
            integer_digits = max(integer_digits, t.precision - t.scale)
        elif pa.types.is_integer(t):
            integer_digits = max(integer_digits, 20)
    if integer_digits + scale <= 38:
        return pa.decimal128(38, scale)
    if integer_digits + scale <= 76:
        return pa.decimal256(76, scale)
    raise FrameError(f"decimal values need {integer_digits + scale} digits; at most 76 are supported")


def unify(tables: list[pa.Table]) -> pa.Table:
    """Concatenate frames whose decimal columns may have different scales, without losing a digit."""
    if len(tables) == 1:
        return tables[0]
    target = {}
    for name in DECIMAL_FIELDS:
        found = {t.schema.field(name).type for t in tables}
        if len(found) > 1:
            target[name] = widest_decimal(found)
    if target:
        tables = [_cast_columns(t, target) for t in tables]
    return pa.concat_tables(tables)


def _cast_columns(table: pa.Table, target: Mapping[str, pa.DataType]) -> pa.Table:
    for name, arrow_type in target.items():
        i = table.schema.get_field_index(name)
        if table.schema.field(i).type != arrow_type:
            field = pa.field(name, arrow_type, nullable=table.schema.field(i).nullable)
            table = table.set_column(i, field, table.column(i).cast(arrow_type))
    return table


def conform(table: pa.Table) -> pa.Table:
    """Check that a table has the cost-line fields with the right types; raise FrameError saying what is not."""
    for expected in COST_LINE_SCHEMA:
        index = table.schema.get_field_index(expected.name)
        if index < 0:
            raise FrameError(f"field {expected.name} is missing")
        actual = table.schema.field(index).type
        if pa.types.is_decimal(expected.type):
            if not pa.types.is_decimal(actual):
                raise FrameError(f"field {expected.name} is {actual}, expected a decimal")
        elif actual != expected.type:
            raise FrameError(f"field {expected.name} is {actual}, expected {expected.type}")
        if not expected.nullable and table.column(index).null_count:
            raise FrameError(f"field {expected.name} has {table.column(index).null_count} null value(s)")
    currencies = pc.unique(table.column("billing_currency")).to_pylist()
    wrong = [c for c in currencies if not _CURRENCY.fullmatch(c)]
    if wrong:
        raise FrameError(f"field billing_currency has {wrong[0]!r}, not an ISO 4217 code")
    return table.select(COST_LINE_SCHEMA.names)


def encode(header: Mapping[str, object], table: pa.Table) -> bytes:
    """One Arrow IPC stream: the batch's attributes in the schema metadata, the lines (a frame that passed
    `conform`) as record batches."""
    schema = table.schema.with_metadata({BATCH_METADATA: json.dumps(header, separators=(",", ":"))})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema, options=_WRITE_OPTIONS) as writer:
        writer.write_table(table.replace_schema_metadata(schema.metadata))
    return sink.getvalue().to_pybytes()


def decode(payload: bytes) -> tuple[dict[str, object], pa.Table]:
    """The batch's attributes and its lines; FrameError when the payload is not such a stream."""
    try:
        with pa.ipc.open_stream(pa.py_buffer(payload)) as reader:
            table = reader.read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise FrameError(f"not an Arrow IPC stream: {exc}") from exc
    raw = (table.schema.metadata or {}).get(BATCH_METADATA)
    if raw is None:
        raise FrameError("the Arrow stream carries no finops.batch metadata")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FrameError(f"finops.batch metadata is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise FrameError("finops.batch metadata is not a JSON object")
    return header, conform(table.replace_schema_metadata(None))


def frame_of(lines: Iterable[CostLine]) -> pa.Table:
    """Cost lines as a frame (for tests and low-volume producers; ingest builds frames column-wise)."""
    rows = []
    for line in lines:
        row = line.model_dump()
        row["tags"] = json.dumps(line.tags, ensure_ascii=False, separators=(",", ":")) if line.tags else None
        rows.append(row)
    columns = {}
    for f in COST_LINE_SCHEMA:
        values = [r[f.name] for r in rows]
        if f.name in DECIMAL_FIELDS:
            columns[f.name] = decimal_array(values)
        else:
            columns[f.name] = pa.array(values, f.type)
    return pa.table(columns)


def decimal_array(values: list[Decimal | None]) -> pa.Array:
    """Exact decimals as a decimal array whose scale holds every digit of them."""
    scale, integer_digits = 0, 1
    for v in values:
        if v is not None:
            _, digits, exponent = v.as_tuple()
            scale = max(scale, -int(exponent))
            integer_digits = max(integer_digits, len(digits) + int(exponent))
    arrow_type = pa.decimal128(38, scale) if integer_digits + scale <= 38 else pa.decimal256(76, scale)
    return pa.array(values, arrow_type)


def lines_of(table: pa.Table) -> list[CostLine]:
    """The frame's lines as models (slow: one object per line; consumers of volume work on the frame)."""
    lines = []
    for row in table.to_pylist():
        tags = row.pop("tags")
        lines.append(CostLine.model_validate({**row, "tags": json.loads(tags) if tags else {}}))
    return lines


def _fits(values: pa.ChunkedArray, arrow_type: pa.DataType) -> bool:
    """Whether the sum of `values` surely fits a decimal128(38, scale): rows x largest magnitude < 10^(38-scale)."""
    if not pa.types.is_decimal128(arrow_type) or len(values) == 0:
        return pa.types.is_decimal128(arrow_type)
    extremes = pc.min_max(values)
    largest = max(abs(extremes["min"].as_py() or 0), abs(extremes["max"].as_py() or 0))
    return largest * len(values) < Decimal(10) ** (38 - arrow_type.scale - 1)


def sums(table: pa.Table, keys: list[str], fields: Iterable[str] = ("billed_cost", "effective_cost")) -> pa.Table:
    """Exact sums of decimal `fields` and the line count (`_lines_sum`) per distinct `keys`, in order of first
    appearance. A column is summed in 38 digits when even the sum of all its absolute values fits, else in 76,
    so no total overflows."""
    fields = list(fields)
    target = {}
    for name in fields:
        t = table.schema.field(name).type
        target[name] = t if not pa.types.is_decimal(t) or _fits(table.column(name), t) else pa.decimal256(76, t.scale)
    cast = _cast_columns(table.select([*keys, *fields]), target)
    counted = cast.append_column("_lines", pa.repeat(pa.scalar(1, pa.int64()), cast.num_rows))
    return counted.group_by(keys, use_threads=False).aggregate([(name, "sum") for name in fields] + [("_lines", "sum")])
