"""Finance reporting through the real pipeline: chargeback in a reporting currency from the dated exchange-rate
table, unit economics from business metrics (with UnitCostReported events), and tag and allocation coverage
KPIs (CoverageMeasured), each checked against the raw FOCUS sample."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import httpx
import pytest

from finops_contracts.cloudevents import Envelope
from finops_contracts.events import BusinessMetricReported
from tests.support.flow import scalar
from tests.support.focus_files import FOCUS_SAMPLE
from tests.support.kafka import produce, read_topic
from tests.support.platform import ADMIN, running
from tests.support.services import wait_until

pytestmark = pytest.mark.samples  # the FOCUS sample of ../shared, against DuckDB over the same file

RULES = {
    "rules": [
        {"name": "bu", "match": [{"field": "tag:business_unit", "op": "exists"}],
         "assign": {"cost_center": "{tag:business_unit}"}},
        {"name": "app", "match": [{"field": "tag:application", "op": "exists"}],
         "assign": {"product": "{tag:application}"}},
    ],
    "tag_aliases": {},
}  # fmt: skip


def raw(sql: str) -> list[tuple]:
    source = f"read_csv('{FOCUS_SAMPLE}', all_varchar = true)"
    return duckdb.sql(sql.replace("SAMPLE", source)).fetchall()


async def test_reporting_currency_unit_costs_and_coverage(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    async with running(service_env) as urls, httpx.AsyncClient(timeout=60, headers=ADMIN) as client:
        alloc = urls.allocation
        assert (await client.put(f"{alloc}/v1/allocation/rules", json=RULES)).status_code == 200
        upload = await client.post(f"{urls.ingest}/v1/ingest", content=FOCUS_SAMPLE.read_bytes())
        assert upload.status_code == 201, upload.text

        async def allocated() -> bool:
            return await scalar(database_url, "SELECT sum(line_count) FROM allocation.allocation_line") == 1000

        await wait_until(allocated, timeout=60, what="the sample allocated")

        # Reporting currency: the rate dated on or before the period start applies, rounded per row.
        rates = [{"date": "2024-08-31", "from": "USD", "to": "EUR", "rate": "0.9"},
                 {"date": "2024-09-02", "from": "USD", "to": "EUR", "rate": "5"}]  # fmt: skip
        assert (await client.put(f"{alloc}/v1/fx-rates", json=rates)).status_code == 200
        eur = await client.get(f"{alloc}/v1/chargeback", params={"period": "2024-09", "currency": "EUR"})
        assert eur.status_code == 200, eur.text
        for row in eur.json()["rows"]:
            assert row["rate"] == "0.9" and row["rate_date"] == "2024-08-31"
            expected = (Decimal(row["effective_cost"]) * Decimal("0.9")).quantize(Decimal("0.01"))
            assert Decimal(row["reporting_effective_cost"]) == expected
        gbp = await client.get(f"{alloc}/v1/chargeback", params={"period": "2024-09", "currency": "GBP"})
        assert gbp.status_code == 400 and "no USD->GBP exchange rate" in gbp.json()["error"]

        # Unit economics: a product's allocated cost over the units its business owner reports.
        [(app, cost)] = raw(
            """SELECT json_extract_string(CASE WHEN Tags IN ('', 'NULL') THEN '{}' ELSE Tags END, '$.application') a,
                      sum(CAST(EffectiveCost AS DECIMAL(38, 12)))
               FROM SAMPLE WHERE BillingPeriodStart LIKE '2024-09%'
               GROUP BY 1 HAVING a IS NOT NULL ORDER BY 2 DESC LIMIT 1"""
        )
        token = (
            await client.post(f"{alloc}/v1/tokens", json={"name": "owner", "role": "business", "products": [app]})
        ).json()["token"]
        owner = {"Authorization": f"Bearer {token}"}
        posted = await client.post(
            f"{alloc}/v1/business-metrics",
            json=[{"product": app, "period": "2024-09", "metric": "orders", "units": "1000"}],
            headers=owner,
        )
        assert posted.status_code == 200, posted.text
        [unit] = posted.json()["unit_costs"]
        assert Decimal(unit["cost"]) == cost
        assert Decimal(unit["unit_cost"]) == (cost / 1000).quantize(Decimal("0.000001"))
        other = await client.post(
            f"{alloc}/v1/business-metrics",
            json=[{"product": "not-mine", "period": "2024-09", "metric": "orders", "units": "1"}],
            headers=owner,
        )
        assert other.status_code == 403

        # ... or as events from a business system.
        event = BusinessMetricReported(product=app, period="2024-09", metric="customers", units=Decimal(40))
        headers = Envelope(id=uuid.uuid4(), type=event.TYPE, source="/crm", time=datetime.now(UTC)).to_headers()
        await produce(bootstrap, ns + "finops.business.v1", [(event.key().encode(), event.encode(), headers)])

        async def reported() -> bool:
            rows = (await client.get(f"{alloc}/v1/unit-costs", params={"period": "2024-09"})).json()["rows"]
            return any(r["metric"] == "customers" for r in rows)

        await wait_until(reported, timeout=30, what="the unit cost of the reported customers")
        rows = (await client.get(f"{alloc}/v1/unit-costs", params={"period": "2024-09"})).json()["rows"]
        [customers] = [r for r in rows if r["metric"] == "customers"]
        assert Decimal(customers["unit_cost"]) == (cost / 40).quantize(Decimal("0.000001"))

    # Coverage KPIs: the share of cost with tags, per billing account, as in the raw file.
    kpis = {
        (r[0], r[1]): (r[2], r[3])
        for r in raw(
            """SELECT BillingAccountId, BillingCurrency, sum(CAST(EffectiveCost AS DECIMAL(38, 12))),
                      sum(CASE WHEN Tags NOT IN ('', 'NULL', '{}') THEN CAST(EffectiveCost AS DECIMAL(38, 12))
                               ELSE 0 END)
               FROM SAMPLE WHERE BillingPeriodStart LIKE '2024-09%' GROUP BY ALL"""
        )
    }
    stored = await scalar(
        database_url,
        """SELECT json_agg(json_build_array(scope, currency, total_cost::text, tagged_cost::text))
           FROM allocation.coverage_kpi WHERE scope_kind = 'account' AND billing_period_start = '2024-09-01'""",
    )
    got = {(s, c.strip()): (Decimal(t), Decimal(g)) for s, c, t, g in json.loads(stored)}
    assert got == kpis
    records = await read_topic(bootstrap, ns + "finops.allocation.v1", at_least=3)
    types = {dict(r.headers)["ce_type"].decode() for r in records}
    assert {"finops.allocation.coverage_measured.v1", "finops.allocation.unit_cost_reported.v1"} <= types
    units = [
        json.loads(r.value) for r in records if dict(r.headers)["ce_type"] == b"finops.allocation.unit_cost_reported.v1"
    ]
    assert sorted(u["metric"] for u in units) == ["customers", "orders"]
