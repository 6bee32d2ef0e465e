"""Opening a billing file whatever its container: gzip or not; CSV (UTF-8, BOM tolerated), Parquet or JSON lines.

A file is read in blocks and never whole: pyarrow's streaming CSV reader, Parquet row batches, JSON line by line.
Every block arrives as Python rows keyed by the provider's own column names: CSV cells as text, Parquet and
JSON cells as their native values (Decimal, int, float, datetime, dicts for structs and maps, lists).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from finops_ingest.bills.errors import BillFormatError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 1 << 20
_CSV_BLOCK_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class Source:
    """What sniffing found out about a file before any row is read."""

    path: Path
    name: str
    gzipped: bool
    container: Literal["csv", "parquet", "jsonl"]
    columns: tuple[str, ...]


def open_source(path: Path) -> Source:
    """Sniff compression, container and column names; BillFormatError when the file is none of them."""
    name = path.name
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise BillFormatError(file=name, rule=f"the file cannot be opened ({exc})", hint="Check the path.") from exc
    if not magic:
        raise BillFormatError(file=name, rule="the file is empty", hint="Export the billing data again.")
    if magic == PARQUET_MAGIC:
        return Source(path, name, False, "parquet", tuple(_parquet_file(path, name).schema_arrow.names))
    gzipped = magic[:2] == GZIP_MAGIC
    head = _head(path, name, gzipped)
    if head.startswith(PARQUET_MAGIC):
        raise BillFormatError(
            file=name, rule="a gzip-compressed Parquet file", hint="Upload the Parquet file without the gzip layer."
        )
    if not head.strip(b"\xef\xbb\xbf \r\n\t"):
        raise BillFormatError(file=name, rule="the file holds no data", hint="Export the billing data again.")
    first = head.split(b"\n", 1)[0]
    try:
        line = first.decode("utf-8-sig").strip("\r")
    except UnicodeDecodeError:
        raise BillFormatError(
            file=name,
            row=None,
            column=None,
            rule="the header is not UTF-8 text (binary or another encoding)",
            hint="Upload a UTF-8 CSV, JSON lines or Parquet export, gzip-compressed or not.",
        ) from None
    if line.lstrip().startswith("{"):
        try:
            record = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError:
            raise BillFormatError(
                file=name, row=1, rule="the first line is not a JSON object", hint="Upload newline-delimited JSON."
            ) from None
        return Source(path, name, gzipped, "jsonl", tuple(record))
    header = next(csv.reader([line]))
    return Source(path, name, gzipped, "csv", tuple(c.strip() for c in header))


def _head(path: Path, name: str, gzipped: bool) -> bytes:
    if not gzipped:
        with path.open("rb") as f:
            return f.read(_SNIFF_BYTES)
    try:
        with gzip.open(path, "rb") as f:
            return f.read(_SNIFF_BYTES)
    except (EOFError, OSError, zlib.error) as exc:
        raise BillFormatError(
            file=name,
            rule=f"the gzip stream is truncated or corrupt ({exc})",
            hint="Upload the complete file; check that the download or copy finished.",
        ) from None


def _parquet_file(path: Path, name: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, pre_buffer=False)  # pre-buffering keeps every row group read until the end
    except (pa.ArrowException, OSError) as exc:
        raise BillFormatError(
            file=name, rule=f"the Parquet file is unreadable ({exc})", hint="Upload the complete Parquet export."
        ) from None


def blocks(source: Source, block_rows: int) -> Iterator[list[dict[str, object]]]:
    """The file's data rows, in blocks of at most block_rows, as dicts keyed by the provider's column names."""
    if source.container == "parquet":
        yield from _parquet_blocks(source, block_rows)
    elif source.container == "jsonl":
        yield from _json_blocks(source, block_rows)
    else:
        yield from _csv_blocks(source, block_rows)


def _parquet_blocks(source: Source, block_rows: int) -> Iterator[list[dict[str, object]]]:
    try:
        for batch in _parquet_file(source.path, source.name).iter_batches(batch_size=block_rows):
            yield batch.to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise BillFormatError(
            file=source.name, rule=f"the Parquet data is unreadable ({exc})", hint="Upload the complete export."
        ) from None


def _text_stream(source: Source) -> IO[bytes]:
    return gzip.open(source.path, "rb") if source.gzipped else source.path.open("rb")


def _json_blocks(source: Source, block_rows: int) -> Iterator[list[dict[str, object]]]:
    block: list[dict[str, object]] = []
    row = 0
    with _text_stream(source) as raw:
        decoder = codecs.getreader("utf-8-sig")(raw)
        try:
            for line in decoder:
                if not line.strip():
                    continue
                row += 1
                try:
                    record = json.loads(line, parse_float=Decimal)
                except json.JSONDecodeError as exc:
                    raise BillFormatError(
                        file=source.name, row=row, rule=f"not a JSON object ({exc.msg})", hint="Fix or remove the line."
                    ) from None
                if not isinstance(record, dict):
                    raise BillFormatError(
                        file=source.name, row=row, rule="not a JSON object", hint="Each line must be one JSON object."
                    )
                block.append(record)
                if len(block) >= block_rows:
                    yield block
                    block = []
        except UnicodeDecodeError:
            raise BillFormatError(
                file=source.name, row=row + 1, rule="the line is not UTF-8 text", hint="Export the file as UTF-8."
            ) from None
        except (EOFError, OSError, zlib.error) as exc:
            raise _truncated(source, row, exc) from None
    if block:
        yield block


def _truncated(source: Source, rows_read: int, exc: BaseException) -> BillFormatError:
    # No row number: the CSV reader decompresses ahead of the rows it has handed out.
    return BillFormatError(
        file=source.name,
        rule=f"the compressed stream ends early or is corrupt after {rows_read} data rows were converted ({exc})",
        hint="Upload the complete file; check that the download or copy finished.",
    )


def _csv_blocks(source: Source, block_rows: int) -> Iterator[list[dict[str, object]]]:
    columns = list(source.columns)
    if len(set(columns)) != len(columns):
        duplicate = next(c for c in columns if columns.count(c) > 1)
        raise BillFormatError(
            file=source.name, row=None, column=duplicate, rule="the header repeats a column", hint="Export again."
        )
    stream: IO[bytes] | pa.NativeFile
    stream = (
        pa.CompressedInputStream(pa.OSFile(str(source.path)), "gzip") if source.gzipped else pa.OSFile(str(source.path))
    )
    rows = 0
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=columns, skip_rows=1, block_size=_CSV_BLOCK_BYTES),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns}, strings_can_be_null=False
            ),
        )
        for batch in reader:
            for offset in range(0, batch.num_rows, block_rows):
                piece = batch.slice(offset, block_rows).to_pylist()
                rows += len(piece)
                yield piece
    except pa.ArrowInvalid as exc:
        raise _csv_problem(source, rows, str(exc)) from None
    except (EOFError, OSError, zlib.error) as exc:
        raise _truncated(source, rows, exc) from None
    finally:
        stream.close()


def _csv_problem(source: Source, rows_read: int, message: str) -> BillFormatError:
    """Re-read the file with the csv module to name the row and column pyarrow's message does not."""
    columns = list(source.columns)
    try:
        with _text_stream(source) as raw:
            lines = io.BufferedReader(raw) if not isinstance(raw, io.BufferedReader) else raw
            next(lines, None)
            for number, line in enumerate(lines, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    cells = next(csv.reader([line.decode("utf-8", errors="replace")]), [])
                    bad = next((i for i, cell in enumerate(cells) if "\ufffd" in cell), None)
                    return BillFormatError(
                        file=source.name,
                        row=number,
                        column=columns[bad] if bad is not None and bad < len(columns) else None,
                        rule="the cell is not UTF-8 text",
                        hint="Export the file as UTF-8 (not Windows-1252 or UTF-16).",
                    )
    except (EOFError, OSError, zlib.error) as exc:
        return _truncated(source, rows_read, exc)
    if "Expected" in message and "columns" in message:
        with _text_stream(source) as raw:
            reader = csv.reader(codecs.getreader("utf-8-sig")(raw))
            next(reader, None)
            for number, cells in enumerate((c for c in reader if c), start=1):
                if len(cells) != len(columns):
                    return BillFormatError(
                        file=source.name,
                        row=number,
                        rule=f"the row has {len(cells)} fields but the header has {len(columns)}",
                        hint="Check the delimiter and quoting of that row; the export must be comma-separated.",
                    )
    return BillFormatError(
        file=source.name, row=None, rule=f"the CSV cannot be parsed ({message})", hint="Export the file again as CSV."
    )
