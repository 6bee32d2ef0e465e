"""Allocation for finance, through the real pipeline (ingest -> Kafka -> allocation -> PostgreSQL):
rules from the API allocate the FOCUS 1.0 sample by its business_unit tag, and the chargeback per business unit
equals an independent DuckDB group-by of the raw file; closing a period locks it, its journal balances and is
byte-identical on every export, and a restatement after close lands as an adjustment in the next open period."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import duckdb
import httpx
import pytest

from tests.support.flow import scalar
from tests.support.focus_files import FOCUS_SAMPLE
from tests.support.kafka import read_topic
from tests.support.platform import ADMIN, running
from tests.support.services import wait_until

pytestmark = pytest.mark.samples  # the FOCUS sample of ../shared, against DuckDB over the same file

RULES = {
    "rules": [
        {"name": "bu", "priority": 10, "match": [{"field": "tag:business_unit", "op": "exists"}],
         "assign": {"cost_center": "{tag:business_unit}"}},
        {"name": "app", "priority": 20, "match": [{"field": "tag:application", "op": "exists"}],
         "assign": {"product": "{tag:application}"}},
    ],
    # No aliases: the sample's CostCenter tag must not stand in for a business unit in this comparison.
    "tag_aliases": {},
}  # fmt: skip


def duckdb_chargeback(path) -> dict[tuple[str, str, str], tuple[Decimal, Decimal]]:
    """(period, business unit, currency) -> (BilledCost, EffectiveCost), straight from the raw file."""
    rows = duckdb.sql(
        f"""SELECT strftime(CAST(BillingPeriodStart AS TIMESTAMP), '%Y-%m') AS period,
                   coalesce(nullif(trim(json_extract_string(
                       CASE WHEN Tags IN ('', 'NULL') THEN '{{}}' ELSE Tags END, '$.business_unit')), ''),
                       'unallocated') AS bu,
                   BillingCurrency,
                   sum(CAST(BilledCost AS DECIMAL(38, 12))), sum(CAST(EffectiveCost AS DECIMAL(38, 12)))
            FROM read_csv('{path}', all_varchar = true) GROUP BY ALL"""
    ).fetchall()
    return {(p, bu, c): (Decimal(b).normalize(), Decimal(e).normalize()) for p, bu, c, b, e in rows}


def duckdb_application_costs(path) -> dict[str, Decimal]:
    """EffectiveCost of September per application tag, straight from the raw file."""
    rows = duckdb.sql(
        f"""SELECT json_extract_string(CASE WHEN Tags IN ('', 'NULL') THEN '{{}}' ELSE Tags END, '$.application')
                   AS app, sum(CAST(EffectiveCost AS DECIMAL(38, 12)))
            FROM read_csv('{path}', all_varchar = true)
            WHERE BillingPeriodStart LIKE '2024-09%'
            GROUP BY ALL HAVING app IS NOT NULL"""
    ).fetchall()
    return {app: Decimal(cost) for app, cost in rows}


async def chargeback(client: httpx.AsyncClient, url: str, period: str) -> dict:
    response = await client.get(f"{url}/v1/chargeback", params={"period": period})
    assert response.status_code == 200, response.text
    return response.json()


def restated(path, out, *, period: str, factor: Decimal) -> Decimal:
    """The sample's lines of one period with EffectiveCost scaled; returns the change in EffectiveCost."""
    with path.open(newline="") as src, out.open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        change = Decimal(0)
        for row in reader:
            if not row["BillingPeriodStart"].startswith(period):
                continue
            if row["EffectiveCost"] not in ("", "NULL"):
                old = Decimal(row["EffectiveCost"])
                row["EffectiveCost"] = str(old * factor)
                change += old * factor - old
            writer.writerow(row)
    return change


async def test_chargeback_close_journal_and_restatement_after_close(service_env, database_url, tmp_path):
    expected = duckdb_chargeback(FOCUS_SAMPLE)
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]

    async with running(service_env) as urls, httpx.AsyncClient(timeout=60, headers=ADMIN) as client:
        put = await client.put(f"{urls.allocation}/v1/allocation/rules", json=RULES)
        assert put.status_code == 200, put.text
        bad = await client.put(f"{urls.allocation}/v1/allocation/rules", json={"rules": [{"name": "x"}]})
        assert bad.status_code == 422 and "assigns nothing" in bad.json()["error"]

        upload = await client.post(
            f"{urls.ingest}/v1/ingest", params={"name": FOCUS_SAMPLE.name}, content=FOCUS_SAMPLE.read_bytes()
        )
        assert upload.status_code == 201, upload.text

        async def allocated(lines=1000) -> bool:
            return await scalar(database_url, "SELECT sum(line_count) FROM allocation.allocation_line") == lines

        await wait_until(allocated, timeout=60, what="the sample allocated under the rules")

        got = {}
        for period in ("2024-09", "2024-10"):
            for row in (await chargeback(client, urls.allocation, period))["rows"]:
                got[(period, row["name"], row["currency"])] = (
                    Decimal(row["billed_cost"]).normalize(),
                    Decimal(row["effective_cost"]).normalize(),
                )
        assert got == expected
        assert len(expected) > 100  # many business units, and the untagged lines as their own "unallocated" line

        # Persona scopes: business sees its own products only; nobody gets in without a token; engineering
        # cannot close a period.
        application = duckdb_application_costs(FOCUS_SAMPLE)
        chosen = sorted(application)[0]
        issued = await client.post(
            f"{urls.allocation}/v1/tokens", json={"name": "shop-owner", "role": "business", "products": [chosen]}
        )
        assert issued.status_code == 201, issued.text
        business = {"Authorization": f"Bearer {issued.json()['token']}"}
        scoped = await client.get(f"{urls.allocation}/v1/chargeback", params={"period": "2024-09"}, headers=business)
        assert scoped.status_code == 200, scoped.text
        assert sum(Decimal(r["effective_cost"]) for r in scoped.json()["rows"]) == application[chosen]
        assert scoped.json()["scope"] == f"product: {chosen}"
        anonymous = await client.get(
            f"{urls.allocation}/v1/chargeback", params={"period": "2024-09"}, headers={"Authorization": ""}
        )
        assert anonymous.status_code == 401
        engineer = await client.post(
            f"{urls.allocation}/v1/tokens", json={"name": "dev", "role": "engineering", "teams": ["web"]}
        )
        denied = await client.post(
            f"{urls.allocation}/v1/periods/close",
            params={"period": "2024-09"},
            headers={"Authorization": f"Bearer {engineer.json()['token']}"},
            json={},
        )
        assert denied.status_code == 403

        # Close September: locked numbers and a balanced journal, byte-identical on every export.
        closed = await client.post(
            f"{urls.allocation}/v1/periods/close",
            params={"period": "2024-09"},
            json={"entity": "ACME-US", "mapping": {"clearing_account": "2990", "default_expense_account": "6100"}},
        )
        assert closed.status_code == 201, closed.text
        again = await client.post(f"{urls.allocation}/v1/periods/close", params={"period": "2024-09"}, json={})
        assert again.status_code == 409
        journal_url = f"{urls.allocation}/v1/periods/journal"
        first_csv = (await client.get(journal_url, params={"period": "2024-09", "format": "csv"})).content
        journal = json.loads((await client.get(journal_url, params={"period": "2024-09"})).content)
        debits = sum(Decimal(line["debit"] or 0) for line in journal["lines"])
        credits = sum(Decimal(line["credit"] or 0) for line in journal["lines"])
        assert debits == credits and debits > 0
        assert journal["journal_id"] == closed.json()["journal_id"]
        assert len(list(csv.reader(io.StringIO(first_csv.decode())))) == len(journal["lines"]) + 1
        september_before = await chargeback(client, urls.allocation, "2024-09")
        assert september_before["closed"] is True

        # Restate September after the close: EffectiveCost up 10 %.
        restatement = tmp_path / "restated.csv"
        change = restated(FOCUS_SAMPLE, restatement, period="2024-09", factor=Decimal("1.1"))
        upload = await client.post(
            f"{urls.ingest}/v1/ingest", params={"name": "restated.csv"}, content=restatement.read_bytes()
        )
        assert upload.status_code == 201, upload.text

        async def adjusted() -> bool:
            return bool(
                await scalar(database_url, "SELECT count(*) FROM allocation.allocation_line WHERE kind = 'adjustment'")
            )

        await wait_until(adjusted, timeout=60, what="the restatement booked as an adjustment")
        october = await chargeback(client, urls.allocation, "2024-10")
        adjustments = sum(Decimal(r["adjustments"]) for r in october["rows"])
        assert adjustments == change
        assert await chargeback(client, urls.allocation, "2024-09") == september_before
        assert (await client.get(journal_url, params={"period": "2024-09", "format": "csv"})).content == first_csv
        exported = await read_topic(service_env["KAFKA_BOOTSTRAP_SERVERS"], ns + "finops.allocation.v1", at_least=1)
        types = [dict(r.headers)["ce_type"].decode() for r in exported]
        assert "finops.allocation.journal_exported.v1" in types
