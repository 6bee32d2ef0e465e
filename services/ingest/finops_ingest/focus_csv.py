"""Reading a FOCUS Cost and Usage CSV in blocks with pyarrow, every column as text, so costs go straight from
the file's digits into Decimal and never through a float. `NULL` and empty cells are nulls."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from finops_ingest.lines import Row, columns_read, missing_mandatory, typed_rows
from finops_ingest.rejection import BillingFileRejected

NULL_TOKENS = ["", "NULL", "null"]


def header_of(path: Path) -> list[str]:
    """The first line as CSV fields, or nothing when it is not UTF-8 text."""
    with path.open("rb") as f:
        first = f.readline(1 << 20)
    try:
        return next(csv.reader([first.decode("utf-8-sig")]), [])
    except UnicodeDecodeError:
        return []


def read_header(path: Path, name: str) -> list[str]:
    with path.open("rb") as f:
        first = f.readline(1 << 20)
    if not first.strip():
        raise BillingFileRejected(file=name, rule="the file is empty", hint="Export the billing data again.")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BillingFileRejected(
            file=name, row=1, rule="the header is not UTF-8 text", hint="Export the file as UTF-8 CSV."
        ) from exc
    header = next(csv.reader([text]))
    missing = missing_mandatory(header)
    if missing:
        raise BillingFileRejected(
            file=name,
            row=1,
            column=missing[0],
            rule=f"mandatory FOCUS column(s) missing: {', '.join(missing)}",
            hint="Export a FOCUS Cost and Usage dataset with all mandatory columns (is the delimiter a comma?).",
        )
    return header


def _line_of(path: Path, text: str, after: int) -> int | None:
    """The 1-based line of `text` at or after line `after`: only on the error path, so a scan is fine."""
    wanted = text.rstrip("\r\n").encode()
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if number >= after and line.rstrip(b"\r\n") == wanted:
                return number
    return None


def csv_tables(
    path: Path,
    name: str,
    *,
    block_size: int = 1 << 22,
    on_error: Callable[[BillingFileRejected], None] | None = None,
) -> Iterator[pa.Table]:
    """The file's FOCUS columns, block by block, as text. Rows with the wrong number of fields are reported
    (with their line) to `on_error` and skipped, or raised without it."""
    header = read_header(path, name)
    invalid: list[tuple[int, int, str]] = []

    def bad_row(row: pacsv.InvalidRow) -> str:
        invalid.append((row.expected_columns, row.actual_columns, row.text))
        return "skip"

    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header},
        include_columns=columns_read(header),
        null_values=NULL_TOKENS,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=block_size),
            parse_options=pacsv.ParseOptions(invalid_row_handler=bad_row),
            convert_options=convert,
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise BillingFileRejected(
            file=name,
            rule=f"the file is not a readable CSV: {exc}",
            hint="Check that the file is a comma-separated FOCUS export.",
        ) from exc
    rows_before = 1
    while True:
        if invalid:
            for expected, actual, text in invalid:
                error = BillingFileRejected(
                    file=name,
                    row=_line_of(path, text, rows_before),
                    value=text,
                    rule=f"the row has {actual} fields where the header has {expected}",
                    hint="The file may be truncated, or a value holds an unquoted comma or quote.",
                )
                if on_error is None:
                    raise error
                on_error(error)
            invalid.clear()
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            if invalid:
                continue
            return
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise BillingFileRejected(
                file=name,
                row=rows_before + 1,
                rule=f"the CSV cannot be parsed after row {rows_before}: {exc}",
                hint="Check quoting, line lengths and the number of fields from there on.",
            ) from exc
        rows_before += batch.num_rows
        yield pa.Table.from_batches([batch])


def read_rows(
    path: Path,
    name: str,
    *,
    warnings: Counter[str] | None = None,
    on_error: Callable[[BillingFileRejected], None] | None = None,
    defaults: dict[str, str] | None = None,
) -> Iterator[Row]:
    """Yield the file's rows typed; see finops_ingest.lines for what is rejected and what is tolerated."""
    yield from typed_rows(
        csv_tables(path, name, on_error=on_error),
        file=name,
        warnings=warnings if warnings is not None else Counter(),
        on_error=on_error,
        defaults=defaults,
    )
