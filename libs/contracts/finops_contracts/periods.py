"""How a billing period is named for people and the API (`?period=2026-03`).

A period is keyed everywhere by the BillingPeriodStart its bill carries: an exact instant (timestamptz), never a
charge timestamp truncated to a UTC month. GCP periods start at Pacific midnight (2026-03-01T08:00Z,
2026-04-01T07:00Z), a FOCUS file may write 2026-03-01T00:00:00+09:00 (2026-02-28T15:00Z), AWS and Azure start at
UTC midnight.

The rule for the name: a period is named by the calendar month of its BillingPeriodStart in the bill's own zone.
The stored instant does not keep the zone, so the month is read on the calendar of UTC+14, the easternmost offset
in use: a period that starts at local midnight of a month's first day in any zone from UTC-12 to UTC+14 (every
provider's monthly period does) is, read at UTC+14, still on that first day or the next, so it gets its own
month's name; a UTC-midnight period keeps the name it always had. A period's successor is the period that starts
at its BillingPeriodEnd, never "the next UTC month".
"""

from __future__ import annotations

import datetime as dt
import re

_EASTERNMOST = dt.timezone(dt.timedelta(hours=14))
_LABEL = re.compile(r"(\d{4})-(\d{2})")


def period_label(billing_period_start: dt.datetime) -> str:
    """`YYYY-MM`: the month of the period that starts at `billing_period_start` (see the module's rule)."""
    if billing_period_start.tzinfo is None:
        raise ValueError("a billing period start must be an aware timestamp")
    return billing_period_start.astimezone(_EASTERNMOST).strftime("%Y-%m")


def parse_label(label: str) -> str:
    """A `YYYY-MM` period name, checked; ValueError saying what is expected."""
    match = _LABEL.fullmatch(label.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"period must be YYYY-MM, got {label!r}")
    return match.group(0)


def utc_month_start(label: str) -> dt.datetime:
    """The UTC-midnight start of the month a label names: the period of a label no bill has started yet."""
    year, month = parse_label(label).split("-")
    return dt.datetime(int(year), int(month), 1, tzinfo=dt.UTC)
