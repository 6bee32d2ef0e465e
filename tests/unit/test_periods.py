"""The period-name rule: the month of a period's BillingPeriodStart in its bill's own zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from finops_contracts.periods import parse_label, period_label, utc_month_start
from finops_ingest.bills.gcp import pacific_month_start

ZONES = ["UTC", "America/Los_Angeles", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Pacific/Kiritimati",
         "Pacific/Pago_Pago", "Australia/Sydney", "Asia/Kolkata"]  # fmt: skip


@pytest.mark.parametrize("zone", ZONES)
def test_a_period_starting_at_local_midnight_is_named_by_its_local_month(zone):
    for year, month in [(2026, m) for m in range(1, 13)] + [(2027, 1)]:
        start = dt.datetime(year, month, 1, tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)

        assert period_label(start) == f"{year}-{month:02d}", (zone, start)


def test_gcp_periods_start_at_pacific_midnight_across_dst():
    starts = {m: pacific_month_start(dt.datetime(2026, m, 1, tzinfo=dt.UTC)) for m in (2, 3, 4, 10, 11, 12)}

    assert {m: s.hour for m, s in starts.items()} == {2: 8, 3: 8, 4: 7, 10: 7, 11: 7, 12: 8}
    assert all(s.day == 1 and period_label(s) == f"2026-{m:02d}" for m, s in starts.items())


def test_offset_and_utc_forms_of_one_start_are_one_period():
    written = dt.datetime.fromisoformat("2026-03-01T00:00:00-08:00")

    assert written.astimezone(dt.UTC) == dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    assert period_label(written) == period_label(written.astimezone(dt.UTC)) == "2026-03"


def test_names_are_checked():
    assert utc_month_start("2026-03") == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for bad in ("2026-13", "2026-3", "march", ""):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_label(bad)
    with pytest.raises(ValueError, match="aware"):
        period_label(dt.datetime(2026, 3, 1))
