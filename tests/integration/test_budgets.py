"""Budgets through the real pipeline: twenty days of a month's cost are ingested; the forecast of the month's
total crosses the web team's budget while its actual cost does not, so BudgetAlerted events announce the
forecast crossing once per threshold, and a team well under budget gets none."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import httpx

from tests.support.flow import scalar
from tests.support.kafka import read_topic
from tests.support.platform import ADMIN, running
from tests.support.services import wait_until

HEADER = (
    "BillingAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,"
    "BillingCurrency,BilledCost,EffectiveCost,ProviderName,ServiceName,Tags"
).split(",")


def month_of_cost(path, *, days: int) -> None:
    """Web spends 100.00 on weekdays and 40.00 at weekends; api 10.00 a day; March 2026 up to `days`."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(days):
            day = date(2026, 3, 1) + timedelta(days=i)
            web = "100.00" if day.weekday() < 5 else "40.00"
            for team, cost in (("web", web), ("api", "10.00")):
                out.writerow(["111", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", f"{day}T00:00:00Z",
                              f"{day + timedelta(days=1)}T00:00:00Z", "Usage", "USD", cost, cost, "AWS", "EC2",
                              json.dumps({"team": team})])  # fmt: skip


async def test_forecast_crossing_the_budget_fires_one_alert_per_threshold(service_env, database_url, tmp_path):
    bill = tmp_path / "march.csv"
    month_of_cost(bill, days=20)  # web: 15 weekdays x 100 + 5 weekend days x 40 = 1,700.00 so far (1 March is a Sunday)
    async with running(service_env) as urls, httpx.AsyncClient(timeout=60, headers=ADMIN) as client:
        budgets = [
            {"scope_kind": "team", "scope": "web", "period": "2026-03", "currency": "USD", "amount": "2400"},
            {"scope_kind": "team", "scope": "api", "period": "2026-03", "currency": "USD", "amount": "10000"},
        ]
        put = await client.put(f"{urls.allocation}/v1/budgets", json=budgets)
        assert put.status_code == 200, put.text
        assert put.json()["alerts"] == 0  # no cost yet
        upload = await client.post(f"{urls.ingest}/v1/ingest", params={"name": bill.name}, content=bill.read_bytes())
        assert upload.status_code == 201, upload.text

        async def alerted() -> bool:
            return await scalar(database_url, "SELECT count(*) FROM allocation.budget_alert_sent") >= 2

        await wait_until(alerted, timeout=60, what="budget alerts")
        again = await client.put(f"{urls.allocation}/v1/budgets", json=budgets)
        assert again.json()["alerts"] == 0, "each threshold is announced once"

    records = await read_topic(
        service_env["KAFKA_BOOTSTRAP_SERVERS"], service_env["FINOPS_KAFKA_NAMESPACE"] + "finops.allocation.v1",
        at_least=2,
    )  # fmt: skip
    alerts = [
        json.loads(r.value) for r in records if dict(r.headers)["ce_type"] == b"finops.allocation.budget_alerted.v1"
    ]
    assert sorted((a["scope"], a["threshold"], a["basis"]) for a in alerts) == [
        ("web", "0.8", "forecast"),
        ("web", "1", "forecast"),
    ]
    web = alerts[0]
    assert web["actual"] == {"amount": "1700.00", "currency": "USD"}
    # 11 days left (7 weekdays, 4 weekend days) at the weekly pattern: about 1,700 + 860 = 2,560 > 2,400
    assert 2400 < float(web["projected"]["amount"]) < 2700
