"""The simulated company through every service, on real Kafka and PostgreSQL, against its truth.

`finops_simulate` writes a multi-cloud company's bills (AWS CUR 2.0, Azure, GCP with Pacific-midnight periods;
24 sub accounts over 6 billing accounts, 13 months, then a restatement of one account-month) and, beside them,
what every published number must be, computed from its own parameters and never by platform code. This test
uploads the bills to ingest, the simulator's rules to allocation, and compares what the APIs publish with the
truth: chargeback, bill totals and the journal to the cent; then the restatement; then a file of 50 accounts.

The table of truth against published value, one row per number, is printed and written to
bench/results/truth.json."""

from __future__ import annotations

import contextlib
import csv
import math
import re
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from finops_simulate import Company, SimConfig
from tests.support.platform import ADMIN
from tests.support.services import wait_until
from tests.support.truth import RESULTS, Row, TruthTable, cost_center_truth, month_of

CONFIG = SimConfig(seed=7, accounts=24, providers=("aws", "azure", "gcp"), months=13, granularity="daily")
WIDE = SimConfig(seed=11, accounts=50, providers=("aws", "azure", "gcp"), months=2, restate=False,
                 layouts={"aws": "focus", "azure": "focus", "gcp": "focus"})  # fmt: skip


KNOWN_DIFFERENCES: list[tuple[str, str]] = []
"""Differences the truth test shows and the suite does not fail on, each with its reason; every one must still
differ (the test fails when one agrees, so the list cannot go stale). They are in the printed table and in
bench/results/truth.json, marked NO."""


def known_difference(row: Row) -> str | None:
    return next((why for pattern, why in KNOWN_DIFFERENCES if re.fullmatch(pattern, f"{row.area} {row.name}")), None)


def check_plans(table: TruthTable, area: str, plans: list[dict], pools: dict[str, dict]) -> None:
    """Each plan covers at most the d-quantile of its pool's last 30 days, d the plan's own discount (from its
    tranches: commitment = (1 - d) x covered; the truth's p(ceil(100 d)) bounds the d-quantile from above), and
    saves less than the pool's last month of spend."""
    for r in plans:
        now = [t for t in r["purchases"] if t["start"][:10] <= r["as_of"][:10]]
        covered = sum((Decimal(t["covered_usage_per_hour"]) for t in now), Decimal(0))
        pool = pools.get(r["billing_account_id"])
        if pool is None:
            table.unchecked(area, f"{r['target']} covered per hour", covered, "purchases[].covered_usage_per_hour",
                            "the simulator models no commitments for this pool")  # fmt: skip
            continue
        rates = [Decimal(t["commitment_per_hour"]["amount"]) / Decimal(t["covered_usage_per_hour"])
                 for t in now if Decimal(t["covered_usage_per_hour"]) > 0]  # fmt: skip
        d = 1 - min(rates, default=Decimal(1))
        pct = max(1, min(99, math.ceil(d * 100 - Decimal("0.0001"))))  # 4-decimal amounts: d to within 1e-4
        ceiling = Decimal(pool["lookback_hourly_on_demand_quantiles"][f"p{pct}"])
        table.at_most(area, f"{r['target']} covered per hour", ceiling + Decimal("0.0001"), covered,
                      "purchases[].covered_usage_per_hour", f"d={d:.4f}: p{pct}, last 30 days")  # fmt: skip
        table.at_most(area, f"{r['target']} monthly savings", Decimal(pool["months"][-1]["on_demand_equivalent"]),
                      Decimal(r["estimated_monthly_savings"]["amount"]), "estimated_monthly_savings",
                      "the pool's last month of spend")  # fmt: skip


def current_totals(truth: dict[str, Any], *, versions: set[str]) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """Per (billing account, month label): BilledCost and EffectiveCost of the version that counts."""
    rows = [r for r in truth["billing_totals"] if r["version"] in versions]
    if versions == {"original", "restated"}:
        rows = [r for r in rows if r["current"]]
    else:
        rows = [r for r in rows if r["version"] == "original"]
    out: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for r in rows:
        key = (r["billing_account_id"], month_of(r["billing_period_start"]))
        billed, effective = out.get(key, (Decimal(0), Decimal(0)))
        out[key] = (billed + Decimal(r["billed_cost"]), effective + Decimal(r["effective_cost"]))
    return out


async def upload(client: httpx.AsyncClient, ingest: str, path: Path) -> None:
    response = await client.post(
        f"{ingest}/v1/ingest", params={"name": path.name}, content=path.read_bytes(), headers=ADMIN
    )
    assert response.status_code in (200, 201), f"{path.name}: {response.status_code} {response.text}"


async def chargeback(client: httpx.AsyncClient, allocation: str, month: str) -> dict[str, Decimal]:
    response = await client.get(f"{allocation}/v1/chargeback", params={"period": month}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return {r["name"]: Decimal(r["effective_cost"]) for r in response.json()["rows"]}


async def costs_by_account_month(client: httpx.AsyncClient, console: str) -> dict[tuple[str, str], tuple]:
    found: dict[tuple[str, str], tuple] = {}
    cursor = None
    while True:
        params = {"group_by": "billing_account,period", "limit": "500", **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{console}/v1/costs", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        for r in body["items"]:
            found[(r["billing_account"], r["period"][:7])] = (Decimal(r["billed_cost"]), Decimal(r["effective_cost"]))
        cursor = body["next_cursor"]
        if cursor is None:
            return found


async def allocated_lines(client: httpx.AsyncClient, allocation: str, expected: int) -> bool:
    """Whether allocation has read at least `expected` lines (every version it holds)."""
    response = await client.get(f"{allocation}/v1/allocation/totals", headers=ADMIN)
    assert response.status_code == 200, response.text
    return sum(int(r["line_count"]) for r in response.json()) >= expected


async def settled_chargeback(
    client: httpx.AsyncClient,
    allocation: str,
    months: list[str],
    published: dict[str, dict[str, Decimal]],
    bill: dict[str, Decimal],
) -> None:
    """Chargeback of these months once each month's cost centers add up to the bill's month (every allocation
    run done); after 5 minutes, whatever it shows, for the table to hold against the truth."""

    async def read() -> dict[str, dict[str, Decimal]]:
        return {m: await chargeback(client, allocation, m) for m in months}

    async def complete() -> bool:
        published.update(await read())
        return all(sum(published[m].values(), Decimal(0)) == bill[m] for m in months)

    with contextlib.suppress(AssertionError):
        await wait_until(complete, timeout=300, what="allocation to run every month", every=2)


def month_bill(truth: dict[str, Any], *, restated: bool) -> dict[str, Decimal]:
    """Per month label: the bill's EffectiveCost, in the original versions or in those current at the end."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    for r in truth["billing_totals"]:
        if r["current"] if restated else r["version"] == "original":
            out[month_of(r["billing_period_start"])] += Decimal(r["effective_cost"])
    return out


def compare_chargeback(table: TruthTable, area: str, truth: dict[str, dict[str, Decimal]], published: dict) -> None:
    for month in sorted(truth):
        got = published[month]
        for cc in sorted(set(truth[month]) | set(got)):
            table.cent(area, f"{month} {cc}", truth[month].get(cc, Decimal(0)), got.get(cc), "GET /v1/chargeback")


async def test_every_published_number_equals_the_simulated_companys_truth(spawn, tmp_path):
    table = TruthTable()
    company = Company(CONFIG)
    files = company.write(tmp_path / "company")
    truth = company.truth()
    rules = (tmp_path / "company" / "rules.yaml").read_bytes()
    months = sorted({month_of(e["billing_period_start"]) for e in truth["chargeback"]})
    accounts = {r["billing_account_id"] for r in truth["billing_totals"]}
    providers = {r["provider"] for r in truth["billing_totals"]}
    sub_accounts = [s for b in truth["organisation"]["billing_accounts"] for s in b["sub_accounts"]]
    assert len(sub_accounts) >= 20 and len(providers) == 3 and len(months) == 13  # the shape the issue asks for

    ingest = spawn("finops_ingest", name="ingest")
    allocation = spawn("finops_allocation", name="allocation")
    console = spawn("finops_console", name="console")
    recommend = spawn("finops_recommend", name="recommend", env={"FINOPS_ANALYSIS_QUIET_S": "0.5"})
    for service in (ingest, allocation, console, recommend):
        await service.start()

    async with httpx.AsyncClient(timeout=300) as client:
        # Given the simulator's rule set in force
        response = await client.put(
            f"{allocation.url}/v1/allocation/rules",
            content=rules,
            headers={**ADMIN, "Content-Type": "application/yaml"},
        )
        assert response.status_code == 200, response.text

        # When every bill of 13 months is ingested
        for f in files:
            if not f.restatement:
                await upload(client, ingest.url, f.path)

        # Then chargeback per month and cost center is the truth's, to the cent
        original = Company(replace(CONFIG, restate=False)).truth()  # the same company before its restatement
        before = cost_center_truth(original)
        published: dict[str, dict[str, Decimal]] = {}

        lines = sum(r["lines"] for r in original["billing_totals"])
        await wait_until(
            lambda: allocated_lines(client, allocation.url, lines), timeout=900, what="allocation to read every line"
        )
        await settled_chargeback(client, allocation.url, months, published, month_bill(truth, restated=False))
        compare_chargeback(table, "chargeback", before, published)

        # and so are the bill's totals per billing account and month, as the console shows them
        totals = current_totals(truth, versions={"original"})
        shown: dict = {}

        async def console_caught_up() -> bool:
            shown.update(await costs_by_account_month(client, console.url))
            return all(shown.get(k, (None, None))[1] == v[1] for k, v in totals.items())

        with contextlib.suppress(AssertionError):  # what it shows by then goes in the table, right or wrong
            await wait_until(console_caught_up, timeout=300, what="the console to read every cost batch", every=2)
        for (account, month), (billed, effective) in sorted(totals.items()):
            got = shown.get((account, month), (None, None))
            table.cent("bill", f"{account} {month} BilledCost", billed, got[0], "GET /v1/costs")
            table.cent("bill", f"{account} {month} EffectiveCost", effective, got[1], "GET /v1/costs")

        # When the restated account-month arrives
        restated = truth["restatement"]
        for f in files:
            if f.restatement:
                await upload(client, ingest.url, f.path)
        month = month_of(restated["billing_period_start"])
        after = cost_center_truth(truth)

        month_before = dict(published[month])

        async def restatement_read() -> bool:
            return await chargeback(client, allocation.url, month) != month_before

        await wait_until(restatement_read, timeout=300, what="allocation to re-run the restated month", every=1)
        await settled_chargeback(client, allocation.url, [month], published, month_bill(truth, restated=True))

        # Then that month's chargeback is the restated truth's, and the restated figures replace the original
        compare_chargeback(table, "restated chargeback", {month: after[month]}, published)
        table.cent(
            "restatement",
            f"{restated['billing_account_id']} {month} EffectiveCost",
            Decimal(restated["restated"]["effective_cost"]),
            sum(published[month].values(), Decimal(0)) - sum(before[month].values(), Decimal(0))
            + Decimal(restated["original"]["effective_cost"]),
            "GET /v1/chargeback (month total, less the other accounts)",
        )  # fmt: skip

        # When the utilization feed and the business metrics arrive
        company_dir = tmp_path / "company"
        fed = await client.post(f"{recommend.url}/v1/metrics", content=(company_dir / "utilization.csv").read_bytes(),
                                headers={**ADMIN, "Content-Type": "text/csv"})  # fmt: skip
        assert fed.status_code == 200, fed.text
        with (company_dir / "metrics.csv").open() as f:
            metrics = [{**r, "units": int(r["units"])} for r in csv.DictReader(f)]
        reported = await client.post(f"{allocation.url}/v1/business-metrics", json=metrics, headers=ADMIN)
        assert reported.status_code == 200, reported.text

        # Then unit costs per product and month are the truth's
        for row in truth["unit_economics"]:
            got = await client.get(f"{allocation.url}/v1/unit-costs", params={"period": row["period"]}, headers=ADMIN)
            assert got.status_code == 200, got.text
            match = [r for r in got.json()["rows"] if r["product"] == row["product"] and r["metric"] == row["metric"]]
            published_cost = Decimal(match[0]["cost"]) if match else None
            table.cent("unit cost", f"{row['period']} {row['product']} cost", Decimal(row["effective_cost"]),
                       published_cost, "GET /v1/unit-costs")  # fmt: skip
            unit = Decimal(str(match[0]["unit_cost"])) if match else None
            table.within("unit cost", f"{row['period']} {row['product']} per {row['metric']}",
                         Decimal(row["unit_cost"]), unit, "GET /v1/unit-costs", absolute=Decimal("0.000001"),
                         why="6 places")  # fmt: skip

        # and recommend finds exactly the planted findings
        findings = truth["findings"]
        recs: list[dict] = []
        states: list[list] = []

        async def analysed() -> bool:
            # every kind is there, and the open recommendations have not changed for 4 reads (9 s): recommend has
            # read every batch (the restatement too) and its last analysis is out; the first analysis with every
            # kind may see part of the data
            got = await client.get(f"{recommend.url}/v1/recommendations", params={"status": "open"}, headers=ADMIN)
            assert got.status_code == 200, got.text
            recs[:] = got.json()
            kinds = {r["kind"] for r in recs}
            states.append(sorted((r.get("recommendation_id"), r["target"], r["version"]) for r in recs))
            steady = len(states) >= 4 and all(s == states[-1] for s in states[-4:])
            return {"idle", "rightsizing", "anomaly", "commitment_plan"} <= kinds and steady

        with contextlib.suppress(AssertionError):
            await wait_until(analysed, timeout=300, what="recommend to analyse the company", every=3)
        idle = {r["resource_id"]: r for r in recs if r["kind"] == "idle"}
        table.exact("finding", "idle resources", sorted(f["resource_id"] for f in findings["idle"]), sorted(idle),
                    "GET /v1/recommendations?kind=idle")  # fmt: skip
        for f in findings["idle"]:
            got = idle.get(f["resource_id"])
            table.within("finding", f"idle {f['resource_id'][-40:]} monthly savings", Decimal(f["monthly_run_rate"]),
                         Decimal(got["estimated_monthly_savings"]["amount"]) if got else None,
                         "estimated_monthly_savings", rel=Decimal("0.05"),
                         why="run rate of its last days; months of 30.4 or 30 days")  # fmt: skip
        resized = {r["resource_id"] for r in recs if r["kind"] == "rightsizing"}
        oversized = sorted(f["resource_id"] for f in findings["overprovisioned"])
        table.exact("finding", "over-provisioned resources", oversized, sorted(resized),
                    "GET /v1/recommendations?kind=rightsizing")  # fmt: skip
        planted = findings["anomaly"]
        anomalies = [r for r in recs if r["kind"] == "anomaly"]
        on_day = [r for r in anomalies if r["evidence"].get("start") == planted["day"]]
        # (the planted day as a list: the published start days are a list, and a string never equals one)
        table.exact("finding", "anomaly start day", [planted["day"]],
                    sorted({r["evidence"].get("start") for r in anomalies}), "anomaly evidence.start")  # fmt: skip
        causes = {(c["dimension"], c["key"]) for r in on_day for c in r["evidence"].get("contributors", [])}
        causes |= {(r["evidence"]["series"]["dimension"], r["evidence"]["series"]["key"]) for r in on_day}
        table.exact("finding", "anomaly root cause (service)", True,
                    ("service", planted["service_name"]) in causes, "anomaly series and contributors")  # fmt: skip
        # the service series' change, whether that series is the alert or, when the owner team's series explains
        # it, the alert's evidence (also_seen_in: recommend alerts one incident once, the team's first)
        sizes = [Decimal(r["evidence"]["change"]) for r in on_day if r["evidence"]["series"]["dimension"] == "service"]
        sizes += [Decimal(x["change"]) for r in on_day for x in r["evidence"].get("also_seen_in", [])
                  if x["dimension"] == "service" and x["key"] == planted["service_name"]]  # fmt: skip
        table.within("finding", "anomaly size (cost delta)", Decimal(planted["cost_delta"]),
                     sizes[0] if sizes else None, "anomaly evidence.change", rel=Decimal("0.10"),
                     why="the platform's expected cost is its own baseline")  # fmt: skip

        # and every commitment plan rests within its pool's usage, with savings below the pool's spend
        pools = {p["billing_account_id"]: p for p in truth["commitments"]["pools"]}
        check_plans(table, "plan", [r for r in recs if r["kind"] == "commitment_plan"], pools)

        # and the commitment KPIs per pool and month are the truth's
        for pool in truth["commitments"]["pools"]:
            for m in pool["months"]:
                label = month_of(m["billing_period_start"])
                got = await client.get(f"{console.url}/v1/kpis", params={"period": label}, headers=ADMIN)
                assert got.status_code == 200, got.text
                rows = [k for k in got.json()["commitments"]["pools"]
                        if k["billing_account"] == pool["billing_account_id"] and not k["scope"]]  # fmt: skip
                k = rows[0] if rows else {}
                name = f"{pool['billing_account_id']} {label}"
                table.cent("kpi", f"{name} on-demand equivalent", Decimal(m["on_demand_equivalent"]),
                           Decimal(k["on_demand_equivalent"]) if k else None, "GET /v1/kpis")  # fmt: skip
                fields = ["effective_savings_rate", "coverage", "utilization"]
                if CONFIG.layout_of(pool["provider"]) == "azure-actual" and Decimal(m["commitment_cost"]) > 0:
                    # the actual-cost export has the plan's fee and no unused lines: the bill cannot tell
                    # utilization, and the platform must say so rather than print 100%
                    fields.remove("utilization")
                    table.exact("kpi", f"{name} utilization", "unknown (not in an actual-cost bill)",
                                "unknown (not in an actual-cost bill)" if k and k["utilization"] is None
                                else k.get("utilization"), "GET /v1/kpis")  # fmt: skip
                for field in fields:
                    truth_field = field
                    table.within("kpi", f"{name} {field}", Decimal(m[truth_field]),
                                 Decimal(k[field]) if k else None, "GET /v1/kpis", absolute=Decimal("0.0001"),
                                 why="ratios to 4 places")  # fmt: skip

        # When a month is closed, its journal books each cost center's chargeback, rounded to the cent
        entry = next(e for e in truth["chargeback"] if e["billing_period_start"].endswith("T00:00:00Z"))
        start = entry["billing_period_start"]
        closed = await client.post(
            f"{allocation.url}/v1/periods/close",
            params={"period": start},
            json={"entity": "simulated-co", "mapping": {"clearing_account": "2990", "default_expense_account": "6100"}},
            headers=ADMIN,
        )
        assert closed.status_code == 201, closed.text
        journal = (
            await client.get(f"{allocation.url}/v1/periods/journal", params={"period": start}, headers=ADMIN)
        ).json()
        booked: dict[str, Decimal] = defaultdict(Decimal)
        for line in journal["lines"]:
            if line["side"] == "expense":
                booked[line["cost_center"]] += Decimal(line["debit"]) - Decimal(line["credit"])
        for cc, amounts in sorted(entry["cost_centers"].items()):
            table.cent("journal", f"{start} {cc}", Decimal(amounts["effective_cost"]), booked.get(cc),
                       "GET /v1/periods/journal")  # fmt: skip
        [total] = journal["totals"]
        table.cent("journal", f"{start} debits", Decimal(entry["effective_cost"]), Decimal(total["debit"]),
                   "GET /v1/periods/journal")  # fmt: skip

    # And the table is printed and kept
    print("\n" + table.render())
    table.write(
        RESULTS / "truth.json",
        known_differences=[{"pattern": p, "reason": why} for p, why in KNOWN_DIFFERENCES],
        company={"seed": CONFIG.seed, "accounts": len(accounts), "sub_accounts": len(sub_accounts),
                 "providers": sorted(providers), "months": len(months)},
    )  # fmt: skip
    unexpected = [r for r in table.failures if known_difference(r) is None]
    assert not unexpected, "\n".join(f"{r.area} {r.name}: truth {r.truth}, published {r.published}"
                                      for r in unexpected)  # fmt: skip
    # and every known difference still differs: one that agrees now comes off the list
    for pattern, reason in KNOWN_DIFFERENCES:
        assert any(re.fullmatch(pattern, f"{r.area} {r.name}") for r in table.failures), (
            f"known difference {pattern!r} ({reason}) no longer differs: remove it from KNOWN_DIFFERENCES"
        )


async def test_one_file_of_50_accounts_counts_each_line_once(spawn, tmp_path):
    """The shape that made plans 40 times too large: every account of an organisation in one file. 50 sub
    accounts over 13 billing accounts and 3 providers, 2 months, as one FOCUS file."""
    table = TruthTable()
    company = Company(WIDE)
    files = company.write(tmp_path / "wide")
    truth = company.truth()
    one = tmp_path / "organisation.csv"
    with one.open("w", newline="") as out:
        for i, f in enumerate(files):
            with f.path.open(newline="") as src:
                header = src.readline()
                if i == 0:
                    out.write(header)
                out.writelines(src)
    accounts = {r["billing_account_id"] for r in truth["billing_totals"]}
    assert len(accounts) >= 10 and sum(len(b["sub_accounts"]) for b in truth["organisation"]["billing_accounts"]) == 50

    ingest = spawn("finops_ingest", name="ingest")
    allocation = spawn("finops_allocation", name="allocation")
    recommend = spawn("finops_recommend", name="recommend", env={"FINOPS_ANALYSIS_QUIET_S": "0.5"})
    for service in (ingest, allocation, recommend):
        await service.start()
    async with httpx.AsyncClient(timeout=300) as client:
        rules = (tmp_path / "wide" / "rules.yaml").read_bytes()
        response = await client.put(f"{allocation.url}/v1/allocation/rules", content=rules,
                                    headers={**ADMIN, "Content-Type": "application/yaml"})  # fmt: skip
        assert response.status_code == 200, response.text
        await upload(client, ingest.url, one)
        months = sorted({month_of(e["billing_period_start"]) for e in truth["chargeback"]})
        published: dict[str, dict[str, Decimal]] = {}
        await settled_chargeback(client, allocation.url, months, published, month_bill(truth, restated=True))
        compare_chargeback(table, "50 accounts chargeback", cost_center_truth(truth), published)
        got = {r["billing_account_id"]: Decimal(r["effective_cost"])
               for r in (await client.get(f"{allocation.url}/v1/allocation/totals", headers=ADMIN)).json()}  # fmt: skip
        for account in sorted(accounts):
            expected = sum((Decimal(r["effective_cost"]) for r in truth["billing_totals"]
                            if r["billing_account_id"] == account and r["current"]), Decimal(0))  # fmt: skip
            table.cent("50 accounts bill", f"{account} EffectiveCost", expected, got.get(account),
                       "GET /v1/allocation/totals")  # fmt: skip

        # and each commitment plan rests on its own account's usage, counted once
        pools = {p["billing_account_id"]: p for p in truth["commitments"]["pools"]}
        recs: list[dict] = []

        async def planned() -> bool:
            got = await client.get(f"{recommend.url}/v1/recommendations", params={"status": "open"}, headers=ADMIN)
            recs[:] = [r for r in got.json() if r["kind"] == "commitment_plan"]
            return {r["billing_account_id"] for r in recs} >= set(pools)

        with contextlib.suppress(AssertionError):
            await wait_until(planned, timeout=300, what="a plan for every simulated pool", every=3)
        check_plans(table, "50 accounts plan", recs, pools)
        planned_pools = sorted({r["billing_account_id"] for r in recs} & set(pools))
        table.exact("50 accounts plan", "a plan for every simulated pool", sorted(pools), planned_pools,
                    "GET /v1/recommendations")  # fmt: skip

    print("\n" + table.render())
    table.write(RESULTS / "truth-50-accounts.json", company={"seed": WIDE.seed, "sub_accounts": 50,
                                                             "billing_accounts": len(accounts)})  # fmt: skip
    assert not table.failures, "\n".join(f"{r.area} {r.name}: truth {r.truth}, published {r.published}"
                                         for r in table.failures)  # fmt: skip
