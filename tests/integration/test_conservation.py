"""The conservation check guards the ledger (which feeds chargeback and journals), on real Kafka and PostgreSQL:
a 3-account, 2-period FOCUS file uploaded to ingest is allocated so that, per (billing account, period, version),
the ledger's allocated + unallocated + shared lines equal the file's own total to the cent (summed here with csv
and Decimal, independently of the services); and allocation publishes each resource's owner once per run. A
ledger that lost or duplicated a line fails its next run visibly: a conservation_violation row and a dead letter,
with the period's previous, conserved lines left in place."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx

from finops_contracts.events import EVENT_TYPES, ResourceOwned
from finops_contracts.topics import ALLOCATION, OWNERSHIP
from tests.support.flow import scalar
from tests.support.focus_files import write_focus_csv
from tests.support.kafka import read_topic
from tests.support.platform import ADMIN, running
from tests.support.services import wait_until

CENT = Decimal("0.01")
RULES = {
    "rules": [
        {"name": "db-to-dba", "match": [{"field": "service_category", "value": "Databases"}],
         "assign": {"team": "dba", "cost_center": "CC-DB"}},
    ]
}  # fmt: skip


def file_sums(path: Path) -> dict[tuple[str, str, str], tuple[Decimal, Decimal, int]]:
    """Per (BillingAccountId, BillingPeriodStart month, BillingCurrency), straight from the CSV."""
    sums: dict[tuple[str, str, str], list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            s = sums[(row["BillingAccountId"], row["BillingPeriodStart"][:7], row["BillingCurrency"])]
            s[0] += Decimal(row["BilledCost"])
            s[1] += Decimal(row["EffectiveCost"])
            s[2] += 1
    return {k: (v[0].quantize(CENT), v[1].quantize(CENT), v[2]) for k, v in sums.items()}


async def ledger_sums(database_url: str) -> dict[tuple[str, str, str], tuple[Decimal, Decimal, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT billing_account_id, to_char(billing_period_start AT TIME ZONE 'UTC', 'YYYY-MM') AS period,
                      billing_currency, sum(billed_cost) AS b, sum(effective_cost) AS e, sum(line_count) AS n
               FROM allocation.allocation_line WHERE kind <> 'adjustment' GROUP BY 1, 2, 3"""
        )
    finally:
        await conn.close()
    return {
        (r["billing_account_id"], r["period"], r["billing_currency"].strip()): (
            r["b"].quantize(CENT), r["e"].quantize(CENT), int(r["n"])
        )
        for r in rows
    }  # fmt: skip


async def test_the_ledger_conserves_the_bill_and_a_broken_ledger_fails_its_run(service_env, database_url, tmp_path):
    bill = write_focus_csv(tmp_path / "bill.csv", rows=600, accounts=3, periods=2, seed=21)
    expected = file_sums(bill)
    assert len({(a, p) for a, p, _ in expected}) == 6  # 3 accounts x 2 periods
    with bill.open(newline="") as f:
        rows = list(csv.DictReader(f))
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]

    async with running(service_env) as urls, httpx.AsyncClient(timeout=60, headers=ADMIN) as client:
        put = await client.put(f"{urls.allocation}/v1/allocation/rules", json=RULES)
        assert put.status_code == 200, put.text
        response = await client.post(f"{urls.ingest}/v1/ingest", params={"batch_size": 100}, content=bill.read_bytes())
        assert response.status_code == 201, response.text

        async def ledger_complete():
            return await ledger_sums(database_url) == expected

        await wait_until(ledger_complete, timeout=90, what="the ledger to hold the whole file")
        assert await scalar(database_url, "SELECT count(*) FROM allocation.conservation_violation") == 0
        assert await scalar(database_url, "SELECT count(*) FROM allocation.period_bill") == len(expected)

        # Each resource's owner, once per run: the rule's team (and cost center) beats the tag; else the team tag,
        # else unallocated (an application tag is no owner).
        records = await read_topic(bootstrap, ns + OWNERSHIP.name, at_least=len(rows), timeout=60)
        owned = [EVENT_TYPES[dict(r.headers)["ce_type"].decode()].decode(r.value) for r in records]
        assert all(isinstance(e, ResourceOwned) for e in owned)
        assert len({(e.resource_id, e.run) for e in owned}) == len(owned)  # one per resource per run
        assert {r.key.decode() for r in records} == {f"{e.billing_account_id}/{e.resource_id}" for e in owned}
        newest = {e.resource_id: e for e in sorted(owned, key=lambda e: e.run)}
        assert len(newest) == len(rows)
        for row in rows:
            tags = json.loads(row["Tags"])
            event = newest[row["ResourceId"]]
            if row["ServiceCategory"] == "Databases":
                assert (event.owner_team, event.cost_center, event.decided_by) == ("dba", "CC-DB", "rule:db-to-dba")
            else:
                assert event.owner_team == tags.get("team", "unallocated"), row
                assert event.decided_by == ("tag:team" if "team" in tags else "unallocated")
                assert event.cost_center is None
        assert {e.owner_team for e in newest.values()} >= {"dba", "unallocated", "payments"}

        # Break the ledger: one fact of the first account's January counted twice, and one of its February lost.
        account = sorted(expected)[0][0]
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                """UPDATE allocation.cost_fact SET billed_cost = billed_cost * 2, effective_cost = effective_cost * 2,
                                                   line_count = line_count * 2
                   WHERE ctid = (SELECT ctid FROM allocation.cost_fact
                                 WHERE billing_account_id = $1 AND billed_cost > 1
                                   AND billing_period_start = '2026-01-01T00:00:00Z' LIMIT 1)""",
                account,
            )
            await conn.execute(
                """DELETE FROM allocation.cost_fact WHERE ctid = (SELECT ctid FROM allocation.cost_fact
                       WHERE billing_account_id = $1 AND billed_cost > 1
                         AND billing_period_start = '2026-02-01T00:00:00Z' LIMIT 1)""",
                account,
            )
            await conn.execute(
                "INSERT INTO allocation.period_dirty (billing_period_start) VALUES ('2026-01-01T00:00:00Z'), "
                "('2026-02-01T00:00:00Z') ON CONFLICT DO NOTHING"
            )
        finally:
            await conn.close()

        async def both_failed():
            return await scalar(database_url, "SELECT count(*) FROM allocation.conservation_violation") == 2

        await wait_until(both_failed, timeout=60, what="both broken runs to fail their conservation check")
        dead = await read_topic(bootstrap, ns + ALLOCATION.dlq, at_least=2, timeout=30)

    violations = await scalar(
        database_url,
        "SELECT string_agg(billing_account_id || ' ' || to_char(billing_period_start AT TIME ZONE 'UTC', 'YYYY-MM'),"
        " ',' ORDER BY billing_period_start) FROM allocation.conservation_violation",
    )
    assert violations == f"{account} 2026-01,{account} 2026-02"
    reasons = [dict(r.headers)["dlq_reason"].decode() for r in dead]
    assert len(reasons) == 2 and all(account in reason and "conservation" in reason for reason in reasons)
    # The failed runs wrote nothing: the ledger's lines are still the file's, to the cent.
    assert await ledger_sums(database_url) == expected
