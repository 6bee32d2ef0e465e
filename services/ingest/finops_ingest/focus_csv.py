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


def csv_tables(path: Path, name: str, *, block_size: int = 1 << 22) -> Iterator[pa.Table]:
    """The file's FOCUS columns, block by block, as text."""
    header = read_header(path, name)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header},
        include_columns=columns_read(header),
        null_values=NULL_TOKENS,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=block_size), convert_options=convert)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise BillingFileRejected(
            file=name,
            rule=f"the file is not a readable CSV: {exc}",
            hint="Check that the file is a comma-separated FOCUS export.",
        ) from exc
    rows_before = 1
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
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
) -> Iterator[Row]:
    """Yield the file's rows typed; see finops_ingest.lines for what is rejected and what is tolerated."""
    yield from typed_rows(
        csv_tables(path, name), file=name, warnings=warnings if warnings is not None else Counter(), on_error=on_error
    )
