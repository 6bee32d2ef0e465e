"""Day-first slash dates, through the real pipeline (ingest API -> Kafka -> allocation -> PostgreSQL): an Azure
cost details file written dd/mm/yyyy is read day-first because some of its days are above 12, every charge
lands on its own day with per-day totals equal to an independent csv + Decimal sum, and the ingest report says
which order was used and why; an ambiguous file follows ?date_order=, a bad value is a 400, and a file mixing
both orders is a 422 naming the file, row and column."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections import defaultdict
from decimal import Decimal

import httpx

from tests.support.flow import scalar
from tests.support.platform import ADMIN, running
from tests.support.services import wait_until

HEADER = [
    "BillingAccountId", "BillingAccountName", "SubscriptionId", "BillingPeriodStartDate", "BillingPeriodEndDate",
    "Date", "ChargeType", "PricingModel", "CostInBillingCurrency", "BillingCurrencyCode", "ResourceId", "MeterCategory",
]  # fmt: skip


def write_day_first(path, *, account: str, month: int, rows: int, seed: int, days: range, periods: bool = True) -> None:
    """An Azure EA-shaped actual-cost export with every date as dd/mm/yyyy; without `periods`, no billing period
    columns (as pay-as-you-go exports), so the charge days are the file's only dates."""
    rng = random.Random(seed)
    last = (dt.date(2026, month + 1, 1) - dt.timedelta(days=1)).day
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER if periods else [c for c in HEADER if not c.startswith("BillingPeriod")])
        for i in range(rows):
            day = rng.choice(days)
            cost = Decimal(rng.randint(1, 10**9)) / Decimal(10**6)
            bounds = [f"01/{month:02d}/2026", f"{last:02d}/{month:02d}/2026"] if periods else []
            out.writerow(
                [
                    account, "Contoso", "sub-1", *bounds, f"{day:02d}/{month:02d}/2026", "Usage", "OnDemand",
                    str(cost), "EUR", f"/subscriptions/sub-1/vm-{i % 7}", "Virtual Machines",
                ]
            )  # fmt: skip


def sums_by_day(path) -> dict[dt.date, Decimal]:
    """Cost per charge day, read from the file as day/month/year by hand."""
    totals: dict[dt.date, Decimal] = defaultdict(Decimal)
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            day, month, year = (int(x) for x in row["Date"].split("/"))
            totals[dt.date(year, month, day)] += Decimal(row["CostInBillingCurrency"])
    return dict(totals)


async def facts_by_day(database_url: str, account: str) -> dict[dt.date, Decimal]:
    body = await scalar(
        database_url,
        """SELECT json_object_agg(charge_date, cost::text) FROM (
               SELECT charge_date, sum(billed_cost) AS cost FROM allocation.cost_fact
               WHERE billing_account_id = $1 GROUP BY 1) x""",
        account,
    )
    return {dt.date.fromisoformat(k): Decimal(v) for k, v in json.loads(body or "{}").items()}


async def test_day_first_file_lands_on_its_days(service_env, database_url, tmp_path):
    # Given a day-first Azure export (March 2026) whose days run 1..31, and an ambiguous one (April, days <= 12,
    # no period columns)
    dmy = tmp_path / "azure-ea-dmy.csv"
    write_day_first(dmy, account="ea-dmy", month=3, rows=400, seed=3, days=range(1, 32))
    expected = sums_by_day(dmy)
    assert any(d.day > 12 for d in expected) and any(d.day <= 12 for d in expected)
    ambiguous = tmp_path / "azure-ea-ambiguous.csv"
    write_day_first(ambiguous, account="ea-ambiguous", month=4, rows=120, seed=4, days=range(1, 13), periods=False)
    mixed = tmp_path / "azure-ea-mixed.csv"
    text = dmy.read_text()
    assert ",25/03/2026," in text
    mixed.write_text(text.replace(",25/03/2026,", ",03/25/2026,", 1))  # one month-first date among day-first ones

    async with running(service_env) as urls, httpx.AsyncClient(timeout=60, headers=ADMIN) as client:
        # When the day-first file is uploaded
        upload = await client.post(
            f"{urls.ingest}/v1/ingest", params={"name": dmy.name, "format": "azure-actual"}, content=dmy.read_bytes()
        )

        # Then it was read day-first, for a reason that names a day above 12
        assert upload.status_code == 201, upload.text
        report = upload.json()
        assert report["date_order"]["order"] == "dmy"
        assert "first field above 12" in report["date_order"]["reason"]
        assert [p["billing_period_start"] for p in report["periods"]] == ["2026-03-01T00:00:00+00:00"]

        async def allocated(account: str, lines: int) -> bool:
            got = await scalar(
                database_url,
                "SELECT sum(line_count) FROM allocation.cost_fact WHERE billing_account_id = $1",
                account,
            )
            return got == lines

        await wait_until(lambda: allocated("ea-dmy", 400), timeout=60, what="the day-first file allocated")
        # and every charge is on its own day, the per-day totals equal to the file's own
        assert await facts_by_day(database_url, "ea-dmy") == expected

        # When an ambiguous file is uploaded with ?date_order=dmy (and a bad value is tried first)
        bad = await client.post(
            f"{urls.ingest}/v1/ingest", params={"name": ambiguous.name, "date_order": "ymd"}, content=b"x"
        )
        assert bad.status_code == 400 and "date_order must be one of dmy, mdy" in bad.json()["error"]
        upload = await client.post(
            f"{urls.ingest}/v1/ingest",
            params={"name": ambiguous.name, "format": "azure-actual", "date_order": "dmy"},
            content=ambiguous.read_bytes(),
        )

        # Then the override decides, and says so
        assert upload.status_code == 201, upload.text
        assert upload.json()["date_order"]["order"] == "dmy"
        assert "date_order was given" in upload.json()["date_order"]["reason"]
        await wait_until(lambda: allocated("ea-ambiguous", 120), timeout=60, what="the ambiguous file allocated")
        assert await facts_by_day(database_url, "ea-ambiguous") == sums_by_day(ambiguous)

        # When a file mixes both orders, it is refused naming the file, row and column
        refused = await client.post(
            f"{urls.ingest}/v1/ingest",
            params={"name": mixed.name, "format": "azure-actual"},
            content=mixed.read_bytes(),
        )
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["rejected"]["errors"]
        line = next(n for n, text in enumerate(mixed.read_text().splitlines(), 1) if ",03/25/2026," in text)
        assert (error["row"], error["column"], error["value"]) == (line, "Date", "03/25/2026")
        assert "mixes day-first dates" in error["rule"] and refused.json()["rejected"]["file"] == mixed.name
