"""Cell values as FOCUS text: exact decimals, UTC timestamps, JSON for nested provider values.

Money never goes through a float here. Text keeps the source's digits; a Parquet or JSON float64 is written
with `repr`, the shortest text that reads back to the same double, which is what the provider's exporter wrote
from its own double (so no digit is invented or lost beyond what the file already holds).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

UTC = dt.UTC
NULL_TOKENS = frozenset({"", "NULL", "null", "None"})
_PLAIN_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_SLASH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_ORDER_NAMES = {"mdy": "month/day/year", "dmy": "day/month/year"}
_COMPACT_MONTH = re.compile(r"(\d{4})(\d{2})")


class ValueRejected(ValueError):
    """A cell does not hold what its column needs; the caller adds file, row and column."""

    def __init__(self, rule: str, value: str) -> None:
        super().__init__(rule)
        self.rule, self.value = rule, value


def text(value: object) -> str | None:
    """Any cell (CSV text, Arrow scalar as Python, parsed JSON) as trimmed text, or None for a null."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return None if value in NULL_TOKENS else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)  # shortest round-trip text of the double the exporter wrote; see module docstring
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return json.dumps(plain(value), ensure_ascii=False, separators=(",", ":"))


def plain(value: object) -> object:
    """Nested provider values (Arrow maps as key/value tuples, structs, lists, Decimals) as JSON-ready objects."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(i, tuple) and len(i) == 2 for i in value):
            return {str(k): plain(v) for k, v in value}
        return [plain(i) for i in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return timestamp(value)
    return value


def decimal(value: object) -> Decimal | None:
    """The exact Decimal of a cell, None for a null; ValueRejected when it is not a finite number."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueRejected("not a decimal number", str(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # shortest round-trip text, never Decimal(float)'s binary expansion
    raw = text(value)
    if raw is None:
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ValueRejected("not a decimal number", raw) from None
    if not number.is_finite():
        raise ValueRejected("not a finite decimal number", raw)
    return number


def decimal_text(value: object) -> str | None:
    """A numeric cell as exact decimal text: the source digits when already plain, else the fixed-point form."""
    raw = text(value) if isinstance(value, str) else None
    if raw is not None and _PLAIN_DECIMAL.fullmatch(raw):
        return raw
    number = decimal(value)
    return None if number is None else format(number, "f")


def parse_timestamp(value: object, order: str = "mdy") -> dt.datetime | None:
    """A provider timestamp as an aware UTC datetime; naive forms and bare dates are read as UTC. A slash date is
    read month-first (`mdy`) or day-first (`dmy`): the file's order, decided once for the file (bills.dates)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    raw = text(value)
    if raw is None:
        return None
    slash = _SLASH_DATE.fullmatch(raw)
    if slash:
        month, day, year, hour, minute, second = slash.groups()
        if order == "dmy":
            month, day = day, month
        year_number = int(year) + (2000 if len(year) == 2 else 0)
        try:
            return dt.datetime(
                year_number, int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=UTC
            )
        except ValueError:
            raise ValueRejected(f"not a valid date in the file's {_ORDER_NAMES.get(order, order)} order", raw) from None
    candidate = raw[:-4] if raw.endswith(" UTC") else raw  # BigQuery's CSV/JSON export form
    try:
        parsed = dt.datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueRejected("not an ISO 8601 or slash-date (M/D/YYYY, D/M/YYYY) timestamp", raw) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def timestamp(value: object, order: str = "mdy") -> str | None:
    """A provider timestamp as FOCUS text `YYYY-MM-DDTHH:MM:SSZ`."""
    parsed = parse_timestamp(value, order)
    return None if parsed is None else parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def interval(value: object) -> tuple[str | None, str | None]:
    """An ISO 8601 interval `start/end` (AWS identity/TimeInterval) as two FOCUS timestamps."""
    raw = text(value)
    if raw is None:
        return None, None
    start, sep, end = raw.partition("/")
    if not sep:
        raise ValueRejected("not an ISO 8601 interval start/end", raw)
    return timestamp(start), timestamp(end)


def month_start(value: dt.datetime) -> dt.datetime:
    """The UTC month's start: the billing period of a charge only where the provider's periods start at UTC
    midnight and the export has no period column (Azure pay-as-you-go, OCI). GCP's are Pacific (gcp.py)."""
    return dt.datetime(value.year, value.month, 1, tzinfo=UTC)


def next_month(value: dt.datetime) -> dt.datetime:
    """The next UTC month's start (see month_start): never for a period whose bill gives its own end."""
    return dt.datetime(value.year + value.month // 12, value.month % 12 + 1, 1, tzinfo=UTC)


def compact_month(value: object) -> dt.datetime:
    """A `YYYYMM` month (GCP invoice.month) as the first day of that month, UTC midnight."""
    raw = text(value) or ""
    match = _COMPACT_MONTH.fullmatch(raw)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueRejected("not a YYYYMM month", raw)
    return dt.datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
