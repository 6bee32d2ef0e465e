"""Reading a FOCUS Cost and Usage CSV into cost lines, with errors that name the file, row and column.

Read in blocks with pyarrow, every column as text: costs go straight from the file's digits into Decimal,
never through a float. Tolerated real-world quirks: `NULL` tokens, timestamps without `T` or zone (read as
UTC), Tags keys with stray spaces.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

REQUIRED = (
    "BillingAccountId",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "BillingCurrency",
    "BilledCost",
    "EffectiveCost",
)
NULL_TOKENS = ["", "NULL", "null"]


class BillingFileRejected(ValueError):
    """The billing file cannot be accepted; the message says where and what to do."""

    def __init__(
        self,
        *,
        file: str,
        rule: str,
        hint: str,
        row: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        self.file, self.row, self.column, self.value, self.rule, self.hint = file, row, column, value, rule, hint
        where = file + (f", row {row}" if row is not None else "") + (f", column {column}" if column else "")
        shown = f" (value {value[:80]!r})" if value is not None else ""
        super().__init__(f"{where}: {rule}{shown}. {hint}")

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "rule": self.rule,
            "hint": self.hint,
            "message": str(self),
        }


@dataclass(frozen=True, slots=True)
class Row:
    """The fields of one FOCUS row that the cost line carries, already typed."""

    number: int
    values: dict[str, object]


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
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise BillingFileRejected(
            file=name,
            row=1,
            column=missing[0],
            rule=f"mandatory FOCUS column(s) missing: {', '.join(missing)}",
            hint="Export a FOCUS Cost and Usage dataset with all mandatory columns.",
        )
    return header


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise InvalidOperation(text)
    return value


COLUMN_FIELDS = {
    "BillingAccountId": ("billing_account_id", str),
    "SubAccountId": ("sub_account_id", str),
    "BillingPeriodStart": ("billing_period_start", _timestamp),
    "BillingPeriodEnd": ("billing_period_end", _timestamp),
    "ChargePeriodStart": ("charge_period_start", _timestamp),
    "ChargePeriodEnd": ("charge_period_end", _timestamp),
    "ChargeCategory": ("charge_category", str),
    "BillingCurrency": ("billing_currency", str),
    "BilledCost": ("billed_cost", _decimal),
    "EffectiveCost": ("effective_cost", _decimal),
    "ListCost": ("list_cost", _decimal),
    "ContractedCost": ("contracted_cost", _decimal),
    "ProviderName": ("provider_name", str),
    "ServiceProviderName": ("provider_name", str),
    "ServiceName": ("service_name", str),
    "ServiceCategory": ("service_category", str),
    "RegionId": ("region_id", str),
    "ResourceId": ("resource_id", str),
    "SkuId": ("sku_id", str),
    "ConsumedQuantity": ("consumed_quantity", _decimal),
    "ConsumedUnit": ("consumed_unit", str),
}
_RULES = {
    str: "text",
    _timestamp: "an ISO 8601 timestamp",
    _decimal: "a decimal number",
}
_MANDATORY_VALUE = {
    "BillingAccountId",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "BillingCurrency",
    "BilledCost",
    "EffectiveCost",
}


def _tags(text: str | None, *, file: str, row: int) -> dict[str, str]:
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BillingFileRejected(
            file=file,
            row=row,
            column="Tags",
            value=text,
            rule="Tags is not a JSON object",
            hint="Tags must be a JSON object of string keys and values.",
        ) from exc
    if not isinstance(raw, dict):
        raise BillingFileRejected(
            file=file,
            row=row,
            column="Tags",
            value=text,
            rule="Tags is not a JSON object",
            hint="Tags must be a JSON object of string keys and values.",
        )
    return {str(k).strip(): "" if v is None else str(v) for k, v in raw.items()}


def read_rows(
    path: Path, name: str, *, block_size: int = 1 << 22, on_error: Callable[[BillingFileRejected], None] | None = None
) -> Iterator[Row]:
    """Yield the file's rows typed. A bad row raises BillingFileRejected, or, with `on_error`, is reported
    there and skipped so the whole file can be checked. A file that cannot be read at all always raises."""
    header = read_header(path, name)
    wanted = [c for c in header if c in COLUMN_FIELDS or c == "Tags"]
    if "ProviderName" in header and "ServiceProviderName" in header:
        wanted.remove("ServiceProviderName")
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header},
        include_columns=wanted,
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
    number = 1  # the header is row 1
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise BillingFileRejected(
                file=name,
                row=number + 1,
                rule=f"the CSV cannot be parsed here: {exc}",
                hint="Check quoting and the number of fields of this row.",
            ) from exc
        columns = {c: batch.column(c).to_pylist() for c in batch.schema.names}
        for i in range(batch.num_rows):
            number += 1
            try:
                values = _row_values(columns, i, name=name, number=number)
            except BillingFileRejected as error:
                if on_error is None:
                    raise
                on_error(error)
                continue
            yield Row(number=number, values=values)


def _row_values(columns: dict[str, list], i: int, *, name: str, number: int) -> dict[str, object]:
    values: dict[str, object] = {}
    for column, cells in columns.items():
        cell = cells[i]
        if column == "Tags":
            values["tags"] = _tags(cell, file=name, row=number)
            continue
        field, parse = COLUMN_FIELDS[column]
        if cell is None:
            if column in _MANDATORY_VALUE:
                raise BillingFileRejected(
                    file=name,
                    row=number,
                    column=column,
                    value=None,
                    rule="a mandatory value is empty",
                    hint=f"Every row needs a {column}.",
                )
            continue
        try:
            values[field] = parse(cell)
        except (ValueError, InvalidOperation) as exc:
            raise BillingFileRejected(
                file=name,
                row=number,
                column=column,
                value=cell,
                rule=f"{column} must be {_RULES[parse]}",
                hint="Correct the value in the export and upload the file again.",
            ) from exc
    values.setdefault("provider_name", "unknown")
    return values
