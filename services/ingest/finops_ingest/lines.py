"""From FOCUS-named text columns to typed cost-line values, validating what matters for money.

Rejected (the whole file is refused): a mandatory value missing, a cost or quantity that is not a decimal
number, a timestamp that is not ISO 8601, a currency that is not ISO 4217, a value outside FOCUS's allowed
values, a period whose start is not before its end, Tags that are not a JSON object.
Tolerated and counted as warnings: allowed values in the wrong case, timestamps without `T` or zone (read as
UTC), `NULL` tokens (handled by the readers), Tags keys with stray spaces."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import pydantic

from finops_contracts.events import CostLine
from finops_ingest.focus_spec import ALLOWED_VALUES, ISO_4217
from finops_ingest.rejection import BillingFileRejected


@dataclass(frozen=True, slots=True)
class Row:
    """The fields of one row that the cost line carries, already typed; `number` is the source row."""

    number: int
    values: dict[str, object]


def _timestamp(text: str, warnings: Counter[str]) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if "T" not in text:
        warnings["timestamp without T"] += 1
    if value.tzinfo is None:
        warnings["timestamp without zone, read as UTC"] += 1
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _decimal(text: str, warnings: Counter[str]) -> Decimal:
    value = Decimal(text.strip())
    if not value.is_finite():
        raise InvalidOperation(text)
    return value


def _text(text: str, warnings: Counter[str]) -> str:
    return text


def _currency(text: str, warnings: Counter[str]) -> str:
    code = text.strip()
    if code.upper() in ISO_4217 and code != code.upper():
        warnings["currency code in lower case"] += 1
        code = code.upper()
    if code not in ISO_4217:
        raise ValueError(code)
    return code


def _allowed(column: str) -> Callable[[str, Counter[str]], str]:
    allowed = ALLOWED_VALUES[column]
    by_lower = {v.lower(): v for v in allowed}

    def parse(text: str, warnings: Counter[str]) -> str:
        if text in allowed:
            return text
        if text.strip().lower() in by_lower:
            warnings[f"{column} in the wrong case"] += 1
            return by_lower[text.strip().lower()]
        raise ValueError(text)

    parse.rule = f"one of {', '.join(allowed)}"  # type: ignore[attr-defined]
    return parse


_timestamp.rule = "an ISO 8601 timestamp"  # type: ignore[attr-defined]
_decimal.rule = "a decimal number"  # type: ignore[attr-defined]
_text.rule = "text"  # type: ignore[attr-defined]
_currency.rule = "an ISO 4217 currency code"  # type: ignore[attr-defined]

COLUMN_FIELDS: dict[str, tuple[str, Callable[[str, Counter[str]], object]]] = {
    "BillingAccountId": ("billing_account_id", _text),
    "SubAccountId": ("sub_account_id", _text),
    "BillingPeriodStart": ("billing_period_start", _timestamp),
    "BillingPeriodEnd": ("billing_period_end", _timestamp),
    "ChargePeriodStart": ("charge_period_start", _timestamp),
    "ChargePeriodEnd": ("charge_period_end", _timestamp),
    "ChargeCategory": ("charge_category", _allowed("ChargeCategory")),
    "ChargeClass": ("charge_class", _allowed("ChargeClass")),
    "ChargeFrequency": ("charge_frequency", _allowed("ChargeFrequency")),
    "BillingCurrency": ("billing_currency", _currency),
    "BilledCost": ("billed_cost", _decimal),
    "EffectiveCost": ("effective_cost", _decimal),
    "ListCost": ("list_cost", _decimal),
    "ContractedCost": ("contracted_cost", _decimal),
    "ProviderName": ("provider_name", _text),
    "ServiceProviderName": ("provider_name", _text),
    "ServiceName": ("service_name", _text),
    "ServiceCategory": ("service_category", _text),
    "RegionId": ("region_id", _text),
    "ResourceId": ("resource_id", _text),
    "SkuId": ("sku_id", _text),
    "ConsumedQuantity": ("consumed_quantity", _decimal),
    "ConsumedUnit": ("consumed_unit", _text),
    "PricingCategory": ("pricing_category", _allowed("PricingCategory")),
    "PricingQuantity": ("pricing_quantity", _decimal),
    "PricingUnit": ("pricing_unit", _text),
    "CommitmentDiscountId": ("commitment_discount_id", _text),
    "CommitmentDiscountCategory": ("commitment_discount_category", _allowed("CommitmentDiscountCategory")),
    "CommitmentDiscountStatus": ("commitment_discount_status", _allowed("CommitmentDiscountStatus")),
}
MANDATORY = (
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
_PERIODS = (("BillingPeriodStart", "BillingPeriodEnd"), ("ChargePeriodStart", "ChargePeriodEnd"))


def columns_read(header: Iterable[str]) -> list[str]:
    """The columns of a FOCUS header that become part of the cost line."""
    names = list(header)
    wanted = [c for c in names if c in COLUMN_FIELDS or c == "Tags"]
    if "ProviderName" in names and "ServiceProviderName" in names:
        wanted.remove("ServiceProviderName")
    return wanted


def require_mandatory(header: Iterable[str], *, file: str) -> None:
    """Refuse a table whose columns lack a mandatory FOCUS column, naming them."""
    missing = missing_mandatory(header)
    if missing:
        raise BillingFileRejected(
            file=file,
            column=missing[0],
            rule=f"mandatory FOCUS column(s) missing: {', '.join(missing)}",
            hint="Export a Cost and Usage dataset with all mandatory columns.",
        )


def missing_mandatory(header: Iterable[str]) -> list[str]:
    names = set(header)
    return [c for c in MANDATORY if c not in names]


def _tags(text: str | None, *, file: str, row: int, warnings: Counter[str]) -> dict[str, str]:
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raw = None
    if not isinstance(raw, dict):
        raise BillingFileRejected(
            file=file,
            row=row,
            column="Tags",
            value=text,
            rule="Tags must be a JSON object",
            hint="Write Tags as a JSON object of string keys and values.",
        )
    tags = {}
    for k, v in raw.items():
        key = str(k).strip()
        if key != k:
            warnings["Tags key with stray spaces"] += 1
        tags[key] = "" if v is None else v if isinstance(v, str) else json.dumps(v)
    return tags


def row_values(
    columns: dict[str, list],
    i: int,
    *,
    file: str,
    number: int,
    warnings: Counter[str],
    defaults: dict[str, str] | None = None,
) -> dict[str, object]:
    """The typed values of row `i` of a block of columns; raises BillingFileRejected naming row and column.
    `defaults` fill empty cells of the named columns (an export without a currency column, say)."""
    values: dict[str, object] = {}
    for column, cells in columns.items():
        cell = cells[i]
        if (cell is None or cell == "") and defaults and column in defaults:
            cell = defaults[column]
            warnings[f"{column} taken from the upload's default"] += 1
        if column == "Tags":
            values["tags"] = _tags(cell, file=file, row=number, warnings=warnings)
            continue
        field, parse = COLUMN_FIELDS[column]
        if cell is None or cell == "":
            if column in MANDATORY:
                raise BillingFileRejected(
                    file=file,
                    row=number,
                    column=column,
                    value=None,
                    rule="a mandatory value is empty",
                    hint=f"Every row needs a {column}.",
                )
            continue
        try:
            values[field] = parse(cell, warnings)
        except (ValueError, InvalidOperation) as exc:
            raise BillingFileRejected(
                file=file,
                row=number,
                column=column,
                value=cell,
                rule=f"{column} must be {parse.rule}",  # type: ignore[attr-defined]
                hint="Correct the value in the export and upload the file again.",
            ) from exc
    for start, end in _PERIODS:
        s, e = COLUMN_FIELDS[start][0], COLUMN_FIELDS[end][0]
        if s in values and e in values and not values[s] < values[e]:  # type: ignore[operator]
            raise BillingFileRejected(
                file=file,
                row=number,
                column=start,
                value=str(values[s]),
                rule=f"{start} must be before {end}",
                hint=f"Check the row's {start} ({values[s]}) and {end} ({values[e]}).",
            )
    values.setdefault("provider_name", "unknown")
    return values


def typed_rows(
    tables: Iterable[pa.Table],
    *,
    file: str,
    warnings: Counter[str],
    on_error: Callable[[BillingFileRejected], None] | None = None,
    first_row: int = 2,
    source_row_offset: int = 0,
    defaults: dict[str, str] | None = None,
) -> Iterator[Row]:
    """Type every row of FOCUS-named text tables. Rows are numbered from `first_row` (2: after a CSV header),
    or, when the tables carry `x_SourceRow` (1 = first data row), as that plus `source_row_offset` (1 for a CSV
    file, so that numbers are the file's lines). With `on_error`, bad rows are reported there and skipped."""
    number = first_row - 1
    checked = False
    for table in tables:
        if not checked:
            require_mandatory(table.column_names, file=file)
            checked = True
        source_rows = table.column("x_SourceRow").to_pylist() if "x_SourceRow" in table.column_names else None
        names = [c for c in columns_read(table.column_names)]
        columns = {c: table.column(c).to_pylist() for c in names}
        for i in range(table.num_rows):
            number = int(source_rows[i]) + source_row_offset if source_rows else number + 1
            try:
                values = row_values(columns, i, file=file, number=number, warnings=warnings, defaults=defaults)
            except BillingFileRejected as error:
                if on_error is None:
                    raise
                on_error(error)
                continue
            yield Row(number=number, values=values)


_COLUMN_OF = {fieldname: column for column, (fieldname, _) in COLUMN_FIELDS.items()}


def cost_line(values: dict[str, object], *, file: str, row: int) -> CostLine:
    try:
        return CostLine.model_validate(values)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        field_name = str(error["loc"][0]) if error["loc"] else ""
        raise BillingFileRejected(
            file=file,
            row=row,
            column=_COLUMN_OF.get(field_name, field_name),
            value=None if error.get("input") is None else str(error["input"]),
            rule=error["msg"],
            hint="Correct the value in the export and upload the file again.",
        ) from exc
