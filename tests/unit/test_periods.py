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


def test_read_models_key_a_period_by_the_first_of_its_named_month():
    from finops_contracts.periods import period_month

    tokyo = dt.datetime.fromisoformat("2026-03-01T00:00:00+09:00")  # 2026-02-28T15:00Z

    assert period_month(tokyo) == dt.date(2026, 3, 1)
    assert period_month(dt.datetime(2026, 4, 1, 7, tzinfo=dt.UTC)) == dt.date(2026, 4, 1)
    assert period_month(dt.datetime(2026, 4, 1, tzinfo=dt.UTC)) == dt.date(2026, 4, 1)


def test_notifications_name_a_period_by_its_month_in_the_bills_zone():
    import json
    import uuid

    from finops_contracts.events import JournalExported
    from finops_notify.routing import period_name, route

    tokyo = dt.datetime.fromisoformat("2026-03-01T00:00:00+09:00")
    event = JournalExported(
        billing_period_start=tokyo, journal_id=uuid.uuid4(), entity="JP", closed_by="f", line_count=2, debits=(),
        csv_url="/v1/periods/journal?period=2026-02-28T15:00:00Z&format=csv", json_url="/j",
    )  # fmt: skip

    notification = route(JournalExported.TYPE, None, json.loads(event.model_dump_json()))

    assert notification is not None and notification.title == "Journal for 2026-03 exported (JP)"
    assert period_name("2026-04-01T07:00:00Z") == "2026-04" and period_name("garbage-x") == "garbage"


def test_kpi_months_follow_the_billing_period_not_the_utc_month_of_the_hour():
    from decimal import Decimal

    from finops_recommend.repository import _by_named_month

    def row(start: dt.datetime, ode: str) -> dict:
        sums = dict(on_demand_equivalent=Decimal(ode), covered=Decimal(1), commitment_cost=Decimal(2),
                    unused=Decimal(0), on_demand_cost=Decimal(3), commitment_fee=Decimal(0))  # fmt: skip
        return {"pool": "p", "currency": "USD", "billing_period_start": start, **sums}

    march, april = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC), dt.datetime(2026, 4, 1, 7, tzinfo=dt.UTC)
    rows = [row(april, "5"), row(march, "1.5"), row(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), "2.25")]

    folded = _by_named_month(rows, ("pool", "currency"))

    assert [(r["month"], r["on_demand_equivalent"], r["covered"]) for r in folded] == [
        (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), Decimal("3.75"), Decimal(2)),
        (dt.datetime(2026, 4, 1, tzinfo=dt.UTC), Decimal("5"), Decimal(1)),
    ]


def test_label_bounds_hold_exactly_the_starts_of_that_name():
    from finops_contracts.periods import label_bounds

    low, high = label_bounds("2026-03")

    assert period_label(low) == "2026-03" and period_label(high) == "2026-04"
    assert period_label(low - dt.timedelta(microseconds=1)) == "2026-02"
    assert low == dt.datetime(2026, 2, 28, 10, tzinfo=dt.UTC) and label_bounds("2026-12")[1].year == 2026
