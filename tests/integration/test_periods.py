"""Billing periods keyed by the bill's own BillingPeriodStart, through the real pipeline (ingest -> Kafka ->
allocation -> PostgreSQL): a GCP-shaped FOCUS file whose periods start at Pacific midnight, across the March and
November DST changes, lands in its own periods; each period's totals equal an independent csv + Decimal sum of
the file by its BillingPeriodStart; `?period=YYYY-MM` names them by their month in the bill's zone; and a
restatement after close lands in the period that starts at the closed one's BillingPeriodEnd."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx

from tests.support.flow import scalar
from tests.support.platform import ADMIN, running
from tests.support.services import wait_until

PACIFIC = ZoneInfo("America/Los_Angeles")
HEADER = [
    "BillingAccountId", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "BillingCurrency", "BilledCost", "EffectiveCost", "ProviderName", "ServiceName", "Tags",
]  # fmt: skip
GCP = "01A2B3-C4D5E6-F7A8B9"
AWS = "123456789012"


def pacific_midnight(year: int, month: int) -> dt.datetime:
    return dt.datetime(year, month, 1, tzinfo=PACIFIC)


def written(start: dt.datetime, form: int) -> str:
    """The same instant as GCP's exports and FOCUS files write it: UTC `Z`, or the local offset."""
    if form % 2:
        return start.isoformat()  # e.g. 2026-03-01T00:00:00-08:00
    return start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_gcp_file(path, rows: int = 600, seed: int = 11) -> None:
    """GCP periods Feb..Apr and Oct..Dec 2026 (Pacific midnight: 08:00Z in PST, 07:00Z in PDT), charges all over
    each period including its last hours (which are the next month in UTC), and one AWS UTC-midnight period."""
    rng = random.Random(seed)
    months = [(2026, 2), (2026, 3), (2026, 4), (2026, 10), (2026, 11), (2026, 12)]
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(rows):
            if i % 10 == 9:
                account, start, end = (
                    AWS,
                    dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
                    dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
                )
            else:
                year, month = months[i % len(months)]
                account = GCP
                start = pacific_midnight(year, month)
                end = pacific_midnight(year + month // 12, month % 12 + 1)
            hours = int((end - start).total_seconds() // 3600)
            hour = hours - 1 - rng.randrange(8) if i % 3 == 0 else rng.randrange(hours)  # a third in the last hours
            charge = start.astimezone(dt.UTC) + dt.timedelta(hours=hour)
            billed = Decimal(rng.randint(1, 10**8)) / Decimal(10**6)
            effective = billed - Decimal(rng.randint(0, 10**6)) / Decimal(10**6)
            out.writerow(
                [
                    account, written(start, i), written(end, i + 1),
                    f"{charge:%Y-%m-%dT%H:%M:%SZ}", f"{charge + dt.timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}",
                    "Usage", "USD", str(billed), str(effective), "Google Cloud" if account == GCP else "AWS",
                    "Compute Engine", json.dumps({"team": rng.choice(["web", "data"])}),
                ]
            )  # fmt: skip


def web_cost(path, start: dt.datetime) -> Decimal:
    """EffectiveCost of the period's lines tagged team=web, straight from the raw file."""
    with path.open(newline="") as f:
        return sum(
            (
                Decimal(row["EffectiveCost"])
                for row in csv.DictReader(f)
                if dt.datetime.fromisoformat(row["BillingPeriodStart"].replace("Z", "+00:00")) == start
                and json.loads(row["Tags"]).get("team") == "web"
            ),
            Decimal(0),
        )


RULES = {
    "rules": [{"name": "product", "priority": 10, "match": [{"field": "tag:team", "op": "exists"}],
               "assign": {"product": "{tag:team}"}}],
}  # fmt: skip


def sums_by_period(path) -> dict[dt.datetime, tuple[Decimal, Decimal, int]]:
    """(BilledCost, EffectiveCost, rows) per BillingPeriodStart instant, straight from the raw file."""
    totals: dict[dt.datetime, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            start = dt.datetime.fromisoformat(row["BillingPeriodStart"].replace("Z", "+00:00")).astimezone(dt.UTC)
            t = totals[start]
            t[0] += Decimal(row["BilledCost"])
            t[1] += Decimal(row["EffectiveCost"])
            t[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in totals.items()}


def pacific_month(start: dt.datetime, account_utc: bool) -> str:
    return start.astimezone(dt.UTC if account_utc else PACIFIC).strftime("%Y-%m")


async def test_pacific_periods_across_dst_keep_their_own_start(service_env, database_url, tmp_path):
    # Given a GCP-shaped file whose periods start at Pacific midnight, before and after both DST changes
    bill = tmp_path / "gcp-focus.csv"
    write_gcp_file(bill)
    expected = sums_by_period(bill)
    by_name: dict[str, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for start, (b, e, n) in expected.items():
        t = by_name[pacific_month(start, start.hour == 0)]
        t[0], t[1], t[2] = t[0] + b, t[1] + e, t[2] + n
    assert dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC) in expected  # PST first of March
    assert dt.datetime(2026, 4, 1, 7, tzinfo=dt.UTC) in expected  # PDT first of April
    assert dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC) in expected  # still PDT at midnight on 1 November
    assert dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC) in expected

    async with running(service_env) as urls, httpx.AsyncClient(timeout=60, headers=ADMIN) as client:
        # When it is ingested and allocated (product from the team tag)
        put = await client.put(f"{urls.allocation}/v1/allocation/rules", json=RULES)
        assert put.status_code == 200, put.text
        upload = await client.post(f"{urls.ingest}/v1/ingest", params={"name": bill.name}, content=bill.read_bytes())
        assert upload.status_code == 201, upload.text

        async def allocated() -> bool:
            total = await scalar(database_url, "SELECT sum(line_count) FROM allocation.allocation_line")
            return total == sum(n for _, _, n in expected.values())

        await wait_until(allocated, timeout=90, what="the GCP file allocated")

        # Then ingest keys each period by the file's own BillingPeriodStart instant
        starts = await scalar(
            database_url, "SELECT array_agg(DISTINCT billing_period_start) FROM ingest.billing_period_version"
        )
        assert set(starts) == set(expected)
        # and allocation's facts per period equal the file's sums by BillingPeriodStart, to the cent
        facts = await scalar(
            database_url,
            """SELECT json_object_agg(billing_period_start, json_build_array(b::text, e::text, n)) FROM (
                   SELECT billing_period_start, sum(billed_cost) b, sum(effective_cost) e, sum(line_count) n
                   FROM allocation.cost_fact GROUP BY 1) x""",
        )
        got = {
            dt.datetime.fromisoformat(k).astimezone(dt.UTC): (Decimal(v[0]), Decimal(v[1]), v[2])
            for k, v in json.loads(facts).items()
        }
        assert got == expected
        bounds = await scalar(
            database_url,
            "SELECT billing_period_end FROM allocation.billing_period WHERE billing_period_start = $1",
            dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC),
        )
        assert bounds == dt.datetime(2026, 4, 1, 7, tzinfo=dt.UTC)

        # and ?period=YYYY-MM names each period by its month in the bill's zone; February holds two periods
        # (GCP's and AWS's UTC-midnight one), reported together
        for name, (billed, effective, lines) in sorted(by_name.items()):
            response = await client.get(f"{urls.allocation}/v1/chargeback", params={"period": name})
            assert response.status_code == 200, response.text
            rows = response.json()["rows"]
            assert sum(Decimal(r["billed_cost"]) for r in rows) == billed, name
            assert sum(Decimal(r["effective_cost"]) for r in rows) == effective, name
            assert sum(r["line_count"] for r in rows) == lines, name
        february = (await client.get(f"{urls.allocation}/v1/chargeback", params={"period": "2026-02"})).json()
        assert sorted(february["billing_period_starts"]) == ["2026-02-01T00:00:00+00:00", "2026-02-01T08:00:00+00:00"]
        ambiguous = await client.post(f"{urls.allocation}/v1/periods/close", params={"period": "2026-02"}, json={})
        assert ambiguous.status_code == 409 and "2026-02-01T08:00:00+00:00" in ambiguous.json()["error"]

        # When March is closed and then restated
        closed = await client.post(f"{urls.allocation}/v1/periods/close", params={"period": "2026-03"}, json={})
        assert closed.status_code == 201, closed.text
        assert closed.json()["billing_period_start"] == "2026-03-01T08:00:00+00:00"
        journal = await client.get(f"{urls.allocation}/v1/periods/journal", params={"period": "2026-03"})
        assert journal.status_code == 200, journal.text
        assert (journal.json()["period_start"], journal.json()["period_end"]) == ("2026-03-01", "2026-04-01")
        march = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
        restated = tmp_path / "march-restated.csv"
        with bill.open(newline="") as src, restated.open("w", newline="") as dst:
            reader = csv.DictReader(src)
            writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
            writer.writeheader()
            change = Decimal(0)
            for row in reader:
                start = dt.datetime.fromisoformat(row["BillingPeriodStart"].replace("Z", "+00:00"))
                if start != march:
                    continue
                row["EffectiveCost"] = str(Decimal(row["EffectiveCost"]) + Decimal("0.01"))
                change += Decimal("0.01")
                writer.writerow(row)
        upload = await client.post(
            f"{urls.ingest}/v1/ingest", params={"name": restated.name}, content=restated.read_bytes()
        )
        assert upload.status_code == 201, upload.text

        async def adjusted() -> bool:
            return bool(
                await scalar(database_url, "SELECT count(*) FROM allocation.allocation_line WHERE kind = 'adjustment'")
            )

        await wait_until(adjusted, timeout=60, what="the March restatement booked as an adjustment")

        # Then the adjustment lands in the period that starts at March's BillingPeriodEnd (April, 07:00Z)
        target = await scalar(
            database_url,
            "SELECT array_agg(DISTINCT billing_period_start) FROM allocation.allocation_line WHERE kind = 'adjustment'",
        )
        assert target == [dt.datetime(2026, 4, 1, 7, tzinfo=dt.UTC)]
        april = (await client.get(f"{urls.allocation}/v1/chargeback", params={"period": "2026-04"})).json()
        assert sum(Decimal(r["adjustments"]) for r in april["rows"]) == change

        # and a business metric of 2026-11 is over the cost of the period that starts at 2026-11-01T07:00Z
        metrics = await client.post(
            f"{urls.allocation}/v1/business-metrics",
            json=[{"product": "web", "period": "2026-11", "metric": "orders", "units": 7}],
        )
        assert metrics.status_code == 200, metrics.text
        (unit,) = metrics.json()["unit_costs"]
        assert Decimal(unit["cost"]) == web_cost(bill, dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC)) != 0
