"""The utilization metrics feed: rows of (resource id, timestamp, CPU and/or memory utilization) posted as CSV or
JSON, checked here before they are stored.

Column names: `resource_id`; `timestamp` (ISO 8601; a time without a zone is UTC); `cpu_utilization` and
`memory_utilization` (or `cpu`, `memory`), fractions in [0, 1], at least one of the two per row. Percentages
are refused rather than guessed: 0.5 and 50 both look plausible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_ROWS = 100_000
Row = tuple[str, datetime, Decimal | None, Decimal | None]


class InvalidMetrics(ValueError):
    """A metrics upload that cannot be stored; the message names the row and column to fix."""


def _fraction(value: Any, row: int, column: str) -> Decimal | None:
    if value is None or str(value).strip() in ("", "NULL", "null"):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidMetrics(f"row {row}: {column} {value!r} is not a number") from exc
    if not number.is_finite() or not 0 <= number <= 1:
        raise InvalidMetrics(
            f"row {row}: {column} {value!r} is not a fraction in [0, 1] (send percentages divided by 100)"
        )
    return number


def _column(row: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in row:
            return row[name]
    return None


def parse(rows: Iterable[Mapping[str, Any]]) -> list[Row]:
    """The rows as (resource id, timestamp, cpu, memory); InvalidMetrics names the first bad row."""
    out: list[Row] = []
    for n, raw in enumerate(rows, start=1):
        if n > MAX_ROWS:
            raise InvalidMetrics(f"more than {MAX_ROWS:,} rows: send the feed in several requests")
        row = {str(k).strip().lower(): v for k, v in raw.items()}
        resource = str(row.get("resource_id") or "").strip()
        if not resource:
            raise InvalidMetrics(f"row {n}: resource_id missing")
        stamp = str(_column(row, "timestamp", "ts", "time") or "").strip()
        if not stamp:
            raise InvalidMetrics(f"row {n}: timestamp missing")
        try:
            ts = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError as exc:
            raise InvalidMetrics(f"row {n}: timestamp {stamp!r} is not an ISO 8601 date-time") from exc
        ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        cpu = _fraction(_column(row, "cpu_utilization", "cpu"), n, "cpu_utilization")
        memory = _fraction(_column(row, "memory_utilization", "memory", "mem_utilization"), n, "memory_utilization")
        if cpu is None and memory is None:
            raise InvalidMetrics(f"row {n}: send cpu_utilization, memory_utilization or both")
        out.append((resource, ts, cpu, memory))
    return out
