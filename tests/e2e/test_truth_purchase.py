"""The commitment the platform buys, verified on bills it did not write: a simulated company's two months of AWS
compute are ingested; recommend plans a Compute Savings Plan; finance and business approve it; purchase buys it
from the sandbox; then the simulator writes the company's next month *having bought that commitment*
(Company.with_purchase, under the sandbox's commitment id, at the simulator's own discount and first-fit
coverage, so utilization is below 100%). The decision's realized savings, and recommend's unused commitment cost
and utilization for that month, must be the simulator's truth, to the cent."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from finops_simulate import Company, SimConfig
from finops_simulate.commitments import Commitment
from tests.support.platform import ADMIN
from tests.support.services import wait_until
from tests.support.truth import RESULTS, TruthTable, month_of

HISTORY = SimConfig(seed=5, accounts=4, providers=("aws",), months=2, restate=False, commitments=False,
                    layouts={"aws": "focus"})  # fmt: skip
"""Two months of history: four linked accounts under one payer, no commitment held."""
VERIFY_HOURS = 48


def one_period(source: Path, target: Path, period: str) -> Path:
    """The rows of `source` (a FOCUS CSV) billed in the period starting at `period`: the month after the
    purchase, as the provider's next export would carry it."""
    with source.open(newline="") as f, target.open("w", newline="") as out:
        reader = csv.DictReader(f)
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        kept = 0
        for row in reader:
            if row["BillingPeriodStart"] == period:
                writer.writerow(row)
                kept += 1
    assert kept > 0, f"no rows of {period} in {source}"
    return target


async def upload(client: httpx.AsyncClient, url: str, path: Path) -> None:
    response = await client.post(f"{url}/v1/ingest", params={"name": path.name}, content=path.read_bytes())
    assert response.status_code == 201, response.text


async def person(client: httpx.AsyncClient, url: str, name: str, role: str) -> dict[str, str]:
    response = await client.post(f"{url}/v1/tokens", headers=ADMIN, json={"name": name, "role": role, "teams": []})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def decision_of(client: httpx.AsyncClient, url: str, decision_id: str) -> dict[str, Any]:
    response = await client.get(f"{url}/v1/decisions/{decision_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_bought_commitment_is_verified_against_the_simulated_bills_that_follow(spawn, tmp_path):
    sandbox = spawn("finops_purchase.sandbox", name="sandbox")
    await sandbox.start()
    ingest = spawn("finops_ingest", name="ingest")
    allocation = spawn("finops_allocation", name="allocation")
    recommend = spawn("finops_recommend", name="recommend", env={"FINOPS_ANALYSIS_QUIET_S": "0.5"})
    decision = spawn("finops_decision", name="decision",
                     env={"FINOPS_VERIFY_MIN_HOURS": str(VERIFY_HOURS), "FINOPS_DECISION_TICK_S": "0.5"})  # fmt: skip
    purchase = spawn("finops_purchase", name="purchase", env={"FINOPS_SANDBOX_URL": sandbox.url})
    console = spawn("finops_console", name="console")
    for service in (ingest, allocation, recommend, decision, purchase, console):
        await service.start()
    table = TruthTable()

    history = Company(HISTORY)
    (payer,) = history.org.billing_accounts
    async with httpx.AsyncClient(timeout=60) as client:
        # Given two months of the company's compute, ingested
        for bill in history.write(tmp_path / "history"):
            await upload(client, ingest.url, bill.path)

        # When recommend plans a commitment for the payer's pool and decision asks the personas its policy names
        pending: list[dict] = []

        async def waiting() -> bool:
            response = await client.get(f"{decision.url}/v1/decisions", headers=ADMIN)
            assert response.status_code == 200, response.text
            pending[:] = [d for d in response.json()["decisions"]
                          if d["state"] == "pending_approval" and d["kind"] == "commitment_plan"]  # fmt: skip
            return bool(pending)

        await wait_until(waiting, timeout=180, what="a commitment decision pending approval")
        assert len(pending) == 1, pending
        decision_id = pending[0]["id"]
        detail = await decision_of(client, decision.url, decision_id)
        tranche = detail["purchase"]
        assert tranche["program"] == "aws_compute_savings_plan", tranche

        # and everyone the policy names approves
        names = {"finance": "fiona", "business": "bo", "practitioner": "pat"}
        for persona in sorted({r["persona"] for r in detail["requirements"]}):
            headers = await person(client, decision.url, names[persona], persona)
            response = await client.post(f"{decision.url}/v1/decisions/{decision_id}/approve", headers=headers,
                                         json={"comment": f"{persona} agrees"})  # fmt: skip
            assert response.status_code == 200, response.text

        # Then the sandbox sells it once
        async def purchased() -> bool:
            return (await decision_of(client, decision.url, decision_id))["state"] == "purchased"

        await wait_until(purchased, timeout=120, what="the decision to reach purchased")
        (sold,) = (await client.get(f"{sandbox.url}/v1/commitments")).json()["commitments"]
        assert sold["client_token"] == decision_id

        # When the company's next month is simulated having bought exactly that commitment, and ingested
        hourly = Decimal(tranche["commitment_per_hour"]["amount"])
        next_month = date(2026, 1, 1)  # HISTORY covers 2025-11 and 2025-12
        bought = Commitment("aws", payer.id, hourly, next_month.isoformat(), tranche["term_months"],
                            id=sold["commitment_id"])  # fmt: skip
        company = Company(replace(HISTORY, months=3)).with_purchase(bought)
        truth = company.truth()
        (plan,) = [p for p in truth["commitments"]["plans"] if p["purchased_in_run"]]
        (month,) = [m for m in plan["months"] if month_of(m["billing_period_start"]) == "2026-01"]
        assert Decimal(month["utilization"]) < 1, "the test needs a month with unused commitment"
        period = month["billing_period_start"]
        (full,) = [b for b in company.write(tmp_path / "after") if b.provider == "aws"]
        await upload(client, ingest.url, one_period(full.path, tmp_path / "2026-01.csv", period))

        # Then the decision judges the savings the bill shows, and they are the truth's
        final: dict[str, Any] = {}

        async def judged() -> bool:
            final.update(await decision_of(client, decision.url, decision_id))
            return final["state"] in {"savings_verified", "savings_shortfall"}

        await wait_until(judged, timeout=180, what="savings judged against the simulated bill")
        verification = final["outcome"]["verification"]
        table.cent("purchase", "2026-01 realized savings", Decimal(month["realized_savings"]),
                   Decimal(verification["realized"]), "decision outcome.verification.realized")  # fmt: skip
        table.exact("purchase", "commitment id on the bill", sold["commitment_id"], final["commitment_id"],
                    "GET /v1/decisions/{id}")  # fmt: skip

        # and the month's commitment KPIs (recommend's, as the console shows them): the truth's unused commitment
        # cost, utilization and ESR
        (pool,) = [p for p in truth["commitments"]["pools"] if p["billing_account_id"] == payer.id]
        (pool_month,) = [m for m in pool["months"] if month_of(m["billing_period_start"]) == "2026-01"]
        kpi: dict[str, Any] = {}

        async def measured() -> bool:
            got = await client.get(f"{console.url}/v1/kpis", params={"period": "2026-01"}, headers=ADMIN)
            assert got.status_code == 200, got.text
            rows = [k for k in got.json()["commitments"]["pools"]
                    if k["billing_account"] == payer.id and not k["scope"]]  # fmt: skip
            if rows and Decimal(rows[0]["unused_commitment_cost"]) > 0:
                kpi.update(rows[0])
                return True
            return False

        await wait_until(measured, timeout=120, what="the KPIs of the month after the purchase")
        table.cent("purchase", "2026-01 unused commitment cost", Decimal(month["unused"]),
                   Decimal(kpi["unused_commitment_cost"]), "console GET /v1/kpis")  # fmt: skip
        table.within("purchase", "2026-01 utilization", Decimal(pool_month["utilization"]),
                     Decimal(kpi["utilization"]), "console GET /v1/kpis", absolute=Decimal("0.0001"),
                     why="ratios to 4 places")  # fmt: skip
        table.within("purchase", "2026-01 effective savings rate", Decimal(pool_month["effective_savings_rate"]),
                     Decimal(kpi["effective_savings_rate"]), "console GET /v1/kpis", absolute=Decimal("0.0001"),
                     why="ratios to 4 places")  # fmt: skip

    print(table.render())
    table.write(RESULTS / "truth-purchase.json", title="a bought commitment against the simulated bills after it")
    assert not table.failures, "\n".join(f"{r.name}: truth {r.truth}, published {r.published}"
                                         for r in table.failures)  # fmt: skip
