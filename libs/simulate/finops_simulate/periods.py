"""Billing periods and their charge intervals. AWS, Azure and OCI bill UTC calendar months; Google invoices in
US Pacific time, so a GCP period (and each of its days) starts at Pacific midnight: 07:00Z while daylight saving
time is in force, 08:00Z otherwise (zoneinfo America/Los_Angeles, so a DST day has 23 or 25 hours)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
HOUR = timedelta(hours=1)


def add_months(first: date, n: int) -> date:
    index = first.year * 12 + first.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def local_midnight(day: date, zone) -> datetime:
    """Midnight of `day` in `zone`, as an aware UTC datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


@lru_cache(maxsize=1 << 16)
def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Period:
    index: int  # 0 = the first simulated month
    month: date  # the first of the month (the invoice month)
    start: datetime  # UTC instant the period starts
    end: datetime  # exclusive
    zone: object  # UTC or PACIFIC

    @property
    def key(self) -> str:
        return iso(self.start)

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    def days(self) -> tuple[tuple[date, datetime, datetime], ...]:
        """(local date, start, end) of each day of the period, in UTC instants."""
        return _days(self)

    def _days(self) -> Iterator[tuple[date, datetime, datetime]]:
        day = self.month
        nxt = add_months(self.month, 1)
        while day < nxt:
            following = day + timedelta(days=1)
            yield day, local_midnight(day, self.zone), local_midnight(following, self.zone)
            day = following

    def hours(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        moment = start
        while moment < end:
            yield moment, moment + HOUR
            moment += HOUR


def period(first: date, index: int, provider: str) -> Period:
    month = add_months(first, index)
    zone = PACIFIC if provider == "gcp" else UTC
    return Period(index, month, local_midnight(month, zone), local_midnight(add_months(month, 1), zone), zone)


@lru_cache(maxsize=256)
def _days(p: Period) -> tuple[tuple[date, datetime, datetime], ...]:
    return tuple(p._days())
