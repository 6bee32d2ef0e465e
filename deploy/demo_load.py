"""Load a simulated company into the running platform and hold what it publishes against the company's truth;
then run the decision loop: a month of compute becomes a commitment plan, finance and business approve it, the sandbox
provider sells it, the next bill uses it and the savings are verified; then a utilization feed turns the same
server into a rightsizing recommendation that names the smaller type.

The company (finops_simulate: 24 sub accounts over AWS, Azure and GCP, 13 months of FOCUS bills, a restatement of
one account-month) comes with its truth, computed by the simulator from its own parameters. Exits non-zero when
any chargeback or bill total differs from the truth to the cent, when less than 90% of the cost reaches real cost
centers, when a commitment plan covers more than its pool's usage justifies or the savings on offer exceed the
compute spend, or when the loop does not reach verified savings."""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from finops_simulate import Company, SimConfig  # noqa: E402
from tests.support.loop_bills import ACCOUNT, OCTOBER, october, september  # noqa: E402 - the end-to-end test's bills
from tests.support.truth import TruthTable, cost_center_truth, month_of  # noqa: E402 - the truth test's table

COMPANY = SimConfig(seed=7, accounts=24, providers=("aws", "azure", "gcp"), months=13, start="2025-08-01",
                    layouts={"aws": "focus", "azure": "focus", "gcp": "focus"})  # fmt: skip
"""The demo's company: FOCUS bills (its compute spend is summed here straight from the files), August 2025 to
August 2026, so that the decision loop's September and October bills that follow are the newest data."""


def wait_ready(client: httpx.Client, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.get(f"{url}/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    sys.exit(f"{url} is not ready after {timeout}s: see .local/logs/")


def wait_for(what: str, check, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.5)
    sys.exit(f"the demo waited {timeout}s for {what}: see .local/logs/")


def decision_loop(client: httpx.Client, urls: argparse.Namespace, admin: dict[str, str]) -> None:
    """Cost -> recommendation -> approvals by two personas -> purchase -> the next bill -> verified savings."""
    work = ROOT / ".local" / "demo"
    work.mkdir(parents=True, exist_ok=True)
    client.post(f"{urls.ingest}/v1/ingest", params={"name": "compute-2026-09.csv"},
                content=september(work / "compute-2026-09.csv").read_bytes()).raise_for_status()  # fmt: skip

    def commitment_decisions() -> list[dict]:
        body = client.get(f"{urls.decision}/v1/decisions", params={"kind": "commitment_plan"}, headers=admin).json()
        return [d for d in body["decisions"] if d["billing_account_id"] == ACCOUNT]

    decision = wait_for("a commitment decision", lambda: next(iter(commitment_decisions()), None))
    print(f"\ndecision {decision['id']}: {decision['title']}")
    print(f"  owner team {decision['owner_team']}, estimated savings {decision['estimated_monthly_savings']['amount']}"
          f" {decision['estimated_monthly_savings']['currency']}/month, state {decision['state']}")  # fmt: skip
    people = {"finance": "fiona (finance)", "business": "bo (business)", "practitioner": "pat (practitioner)"}
    for requirement in decision["requirements"]:
        persona = requirement["persona"]
        if not requirement["missing"] or persona not in people:
            continue
        token = client.post(f"{urls.decision}/v1/tokens", headers=admin,
                            json={"name": people[persona], "role": persona, "teams": []})  # fmt: skip
        token.raise_for_status()
        approved = client.post(
            f"{urls.decision}/v1/decisions/{decision['id']}/approve",
            headers={"Authorization": f"Bearer {token.json()['token']}"},
            json={"comment": "demo: within budget and coverage target"},
        )
        approved.raise_for_status()
        print(f"  approved by {people[persona]}")

    def one() -> dict:
        return client.get(f"{urls.decision}/v1/decisions/{decision['id']}", headers=admin).json()

    bought = wait_for("the purchase", lambda: (d := one())["commitment_id"] and d)
    print(f"  purchased from the sandbox provider: {bought['commitment_id']}")
    tranche = bought["purchase"]
    bill, realized = october(
        work / "compute-2026-10.csv",
        commitment_id=bought["commitment_id"],
        per_hour=Decimal(tranche["commitment_per_hour"]["amount"]),
        covered=Decimal(tranche["covered_usage_per_hour"]),
        hours=8 * 24,  # a week and a day: decision verifies after a week of lines (FINOPS_VERIFY_MIN_HOURS)
    )
    client.post(f"{urls.ingest}/v1/ingest", params={"name": bill.name}, content=bill.read_bytes()).raise_for_status()
    final = wait_for("savings verification", lambda: (d := one())["state"].startswith("savings_") and d)
    verification = final["outcome"]["verification"]
    print(f"  next bill: {verification['lines']} lines use it over {verification['hours']} hours; estimated "
          f"{verification['estimated']}, realized {verification['realized']} -> {final['state']}")  # fmt: skip
    if final["state"] != "savings_verified" or Decimal(verification["realized"]) != realized:
        sys.exit(f"the loop ended in {final['state']} with {verification['realized']}, the bill shows {realized}")


def rightsizing(client: httpx.Client, urls: argparse.Namespace, admin: dict[str, str]) -> None:
    """The engineering side of optimization: the web server's utilization feed (two weeks of hourly CPU and memory,
    peaking near 30%) shows it twice too big; recommend names the smaller type and what it saves."""
    end = OCTOBER + timedelta(days=8)
    feed = "resource_id,timestamp,cpu_utilization,memory_utilization\n" + "".join(
        f"i-0web,{(end - timedelta(hours=h)).isoformat()},{0.12 + (h % 24) / 150:.4f},0.30\n" for h in range(14 * 24)
    )
    client.post(f"{urls.recommend}/v1/metrics", content=feed.encode(), headers=admin).raise_for_status()

    def found() -> dict | None:
        body = client.get(f"{urls.recommend}/v1/recommendations", params={"status": "open", "kind": "rightsizing"},
                          headers=admin).json()  # fmt: skip
        return next((r for r in body if r.get("resource_id") == "i-0web"), None)

    rec = wait_for("a rightsizing recommendation", found)
    e = rec["evidence"]
    saves = rec["estimated_monthly_savings"]
    print(f"\nrightsizing {rec['resource_id']} (team {rec['owner_team']}): p95 CPU {e['cpu_p95']}, memory "
          f"{e['memory_p95']} -> {e['instance_type']} to {e['recommended_type']}, saves "
          f"{saves['amount']} {saves['currency']}/month")  # fmt: skip


def all_decisions(client: httpx.Client, url: str, admin: dict[str, str]) -> list[dict]:
    found, cursor = [], None
    while True:
        page = client.get(f"{url}/v1/decisions", params={"limit": 200, **({"cursor": cursor} if cursor else {})},
                          headers=admin).json()  # fmt: skip
        found += page["decisions"]
        if not (cursor := page.get("next_cursor")):
            return found


def console_funnel(client: httpx.Client, urls: argparse.Namespace, admin: dict[str, str]) -> None:
    """The practitioner's funnel on the console, checked against the decision service's own records."""
    decisions = all_decisions(client, urls.decision, admin)
    expected = {
        "approved": sum(d["approved_at"] is not None for d in decisions),
        "purchased": sum(d["commitment_id"] is not None for d in decisions),
        "savings_verified": sum(d["state"] == "savings_verified" for d in decisions),
    }
    realized = sum(
        (Decimal(d["outcome"]["verification"]["realized"]) for d in decisions if d["state"] == "savings_verified"),
        Decimal(0),
    )

    def caught_up() -> dict | None:
        body = client.get(f"{urls.console}/v1/funnel", headers=admin).json()
        counts = {s["stage"]: s["count"] for s in body["stages"]}
        return body if all(counts.get(k) == v for k, v in expected.items()) else None

    body = wait_for("the console to show every decision", caught_up, timeout=60)
    print("\nconsole funnel (http://127.0.0.1:8007/, sign in with the admin token):")
    for stage in body["stages"]:
        amounts = ", ".join(f"{a['amount']} {a['currency']}" for a in stage["amounts"]) or "-"
        print(f"  {stage['stage']:<18} {stage['count']:>4}   {amounts}")
    shown = sum(
        (Decimal(a["amount"]) for s in body["stages"] if s["stage"] == "savings_verified" for a in s["amounts"]),
        Decimal(0),
    )
    if shown != realized:
        sys.exit(f"the console shows {shown} of verified savings, the decision service {realized}")
    print(f"  matches the decision service: {expected}, realized {realized}")


def compute_spend(bills: list[Path], month: str) -> Decimal:
    """The EffectiveCost of Compute in one month, summed straight from the FOCUS files (csv + Decimal)."""
    total = Decimal(0)
    for bill in bills:
        with bill.open(newline="", encoding="utf-8-sig") as f:
            for row in csv.DictReader(f):
                if row["ServiceCategory"] == "Compute" and month_of(row["BillingPeriodStart"]) == month:
                    total += Decimal(row["EffectiveCost"])
    return total


def settle(
    client: httpx.Client, url: str, admin: dict[str, str], months: list[str], bill: dict[str, Decimal]
) -> dict[str, dict[str, Decimal]]:
    """Chargeback of every month once each month's cost centers add up to the bill's month (every allocation run
    done); after 5 minutes, whatever it shows, for the comparison to name the differences."""
    published: dict[str, dict[str, Decimal]] = {}
    deadline = time.monotonic() + 300
    while True:
        for month in months:
            body = client.get(f"{url}/v1/chargeback", params={"period": month}, headers=admin).json()
            published[month] = {r["name"]: Decimal(r["effective_cost"]) for r in body["rows"]}
        if all(sum(published[m].values(), Decimal(0)) == bill[m] for m in months) or time.monotonic() > deadline:
            return published
        time.sleep(2)


def load_company(client: httpx.Client, urls: argparse.Namespace, admin: dict[str, str]) -> tuple[TruthTable, dict]:
    """Generate the company, load its rules and bills, and compare what allocation publishes with its truth."""
    out = ROOT / ".local" / "demo" / "company"
    company = Company(COMPANY)
    files = company.write(out)
    truth = company.truth()
    rules = client.put(f"{urls.allocation}/v1/allocation/rules", content=(out / "rules.yaml").read_bytes(),
                       headers={**admin, "Content-Type": "application/yaml"})  # fmt: skip
    if rules.status_code != 200:
        sys.exit(f"allocation refused the company's rules: {rules.status_code} {rules.text}")
    for f in files:  # manifest order: the restatement last
        response = client.post(f"{urls.ingest}/v1/ingest", params={"name": f.path.name}, content=f.path.read_bytes(),
                               headers=admin)  # fmt: skip
        if response.status_code not in (200, 201):
            sys.exit(f"ingest refused {f.path.name}: {response.status_code} {response.text}")
        report = response.json()
        print(f"ingested {f.path.name}: {report['row_count']} rows" + (" (restatement)" if f.restatement else ""))
    lines = sum(r["lines"] for r in truth["billing_totals"] if r["current"])

    def all_read() -> bool:
        got = client.get(f"{urls.allocation}/v1/allocation/totals", headers=admin).json()
        return sum(int(r["line_count"]) for r in got) >= lines

    wait_for("allocation to read every line", all_read, timeout=600)
    months = sorted({month_of(e["billing_period_start"]) for e in truth["chargeback"]})
    bill: dict[str, Decimal] = {m: Decimal(0) for m in months}
    for r in truth["billing_totals"]:
        if r["current"]:
            bill[month_of(r["billing_period_start"])] += Decimal(r["effective_cost"])
    published = settle(client, urls.allocation, admin, months, bill)
    table = TruthTable()
    expected = cost_center_truth(truth)
    for month in months:
        for cc in sorted(set(expected[month]) | set(published[month])):
            table.cent("chargeback", f"{month} {cc}", expected[month].get(cc, Decimal(0)), published[month].get(cc),
                       "GET /v1/chargeback")  # fmt: skip
    totals: dict[str, Decimal] = {}
    for r in truth["billing_totals"]:
        if r["current"]:
            totals[r["billing_account_id"]] = totals.get(r["billing_account_id"], Decimal(0)) + Decimal(
                r["effective_cost"]
            )
    got = {r["billing_account_id"]: Decimal(r["effective_cost"])
           for r in client.get(f"{urls.allocation}/v1/allocation/totals", headers=admin).json()}  # fmt: skip
    for account, total in sorted(totals.items()):
        table.cent("bill", f"{account} EffectiveCost", total, got.get(account), "GET /v1/allocation/totals")
    everything = sum((sum(m.values(), Decimal(0)) for m in published.values()), Decimal(0))
    unallocated = sum((m.get("unallocated", Decimal(0)) for m in published.values()), Decimal(0))
    share = ((everything - unallocated) / everything).quantize(Decimal("0.0001"))
    table.exact("allocation", "share allocated to cost centers", truth["allocation"]["allocated_share"], str(share),
                "GET /v1/chargeback")  # fmt: skip
    context = {"company": company, "truth": truth, "files": files, "months": months, "share": share,
               "published": published}  # fmt: skip
    return table, context


def plans_within_usage(client: httpx.Client, urls: argparse.Namespace, admin: dict[str, str], table: TruthTable,
                       context: dict) -> None:  # fmt: skip
    """Every commitment plan covers at most the quantile of its pool's last 30 days that its discount justifies,
    and saves less than the pool spends; the savings on offer stay below a month of compute spend."""
    truth = context["truth"]

    def plans() -> list[dict] | None:
        body = client.get(f"{urls.recommend}/v1/recommendations", params={"status": "open"}, headers=admin).json()
        return body if any(r["kind"] == "commitment_plan" for r in body) else None

    recs = wait_for("commitment plans for the company", plans, timeout=300)
    pools = {(p["program"], p["billing_account_id"]): p for p in truth["commitments"]["pools"]}
    print("\ncommitment plans (each against its pool's last 30 days of usage, from the truth):")
    for r in (r for r in recs if r["kind"] == "commitment_plan"):
        now = [t for t in r["purchases"] if t["start"][:10] <= r["as_of"][:10]]
        covered = sum((Decimal(t["covered_usage_per_hour"]) for t in now), Decimal(0))
        rates = [Decimal(t["commitment_per_hour"]["amount"]) / Decimal(t["covered_usage_per_hour"])
                 for t in now if Decimal(t["covered_usage_per_hour"]) > 0]  # fmt: skip
        d = 1 - min(rates, default=Decimal(1))
        pool = pools.get((r["evidence"].get("program"), r["billing_account_id"]))
        if pool is None:
            table.unchecked("plan", f"{r['target']} covered per hour", covered, "purchases[].covered_usage_per_hour",
                            "the simulator models no commitments for this pool")  # fmt: skip
            print(f"  {r['title']}: the simulated company models no commitments for this pool (not checked)")
            continue
        pct = max(1, min(99, math.ceil(d * 100 - Decimal("0.0001"))))  # 4-decimal amounts: d to within 1e-4
        ceiling = Decimal(pool["lookback_hourly_on_demand_quantiles"][f"p{pct}"])
        table.at_most("plan", f"{r['target']} covered per hour", ceiling + Decimal("0.0001"), covered,
                      "purchases[].covered_usage_per_hour", f"d={d:.4f}: p{pct}, last 30 days")  # fmt: skip
        spend = Decimal(pool["months"][-1]["on_demand_equivalent"])
        saves = Decimal(r["estimated_monthly_savings"]["amount"])
        table.at_most("plan", f"{r['target']} monthly savings", spend, saves, "estimated_monthly_savings",
                      "the pool's last month of spend")  # fmt: skip
        print(f"  {r['title']}: covers {covered}/h (p{pct} of its last 30 days: {ceiling}), saves {saves}"
              f"/month of {spend} spent")  # fmt: skip
    last = context["months"][-1]
    compute = compute_spend([f.path for f in context["files"]], last)
    body = client.get(f"{urls.console}/v1/funnel", headers=admin).json()
    offered = sum((Decimal(a["amount"]) for s in body["stages"] if s["stage"] == "recommended" for a in s["amounts"]),
                  Decimal(0))  # fmt: skip
    table.at_most("funnel", "recommended savings per month", compute, offered, "GET /v1/funnel",
                  f"the company's compute spend in {last}")  # fmt: skip
    changes = body["cost_changes"]
    print(f"\nsavings on offer: {offered} USD/month against {compute} USD of compute in {last}; cost changes "
          f"(anomalies, not savings): {changes['count']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ingest", default="http://127.0.0.1:8001")
    parser.add_argument("--allocation", default="http://127.0.0.1:8002")
    parser.add_argument("--recommend", default="http://127.0.0.1:8003")
    parser.add_argument("--decision", default="http://127.0.0.1:8005")
    parser.add_argument("--purchase", default="http://127.0.0.1:8006")
    parser.add_argument("--console", default="http://127.0.0.1:8007")
    args = parser.parse_args()
    admin = {"Authorization": f"Bearer {os.environ.get('FINOPS_ADMIN_TOKEN', 'demo-admin')}"}
    with httpx.Client(timeout=300) as client:
        wait_ready(client, args.ingest)
        for url in (args.allocation, args.recommend, args.decision, args.purchase, args.console):
            wait_ready(client, url)
        table, context = load_company(client, args, admin)
        plans_within_usage(client, args, admin, table, context)
        print("\nchargeback of the last month (EffectiveCost per cost center, network shared in proportion):")
        for cc, amount in sorted(context["published"][context["months"][-1]].items()):
            print(f"  {cc:<14} {amount:>16.2f}")
        print(f"  {context['share']:.2%} of the company's cost reaches real cost centers")
        print("\n" + table.render())
        table.write(ROOT / ".local" / "demo" / "truth.json")
        if table.failures:
            sys.exit("what the platform shows differs from the simulated company's truth (above)")
        if context["share"] < Decimal("0.90"):
            sys.exit(f"only {context['share']:.2%} of the cost reaches cost centers; the demo needs 90%")
        decision_loop(client, args, admin)
        rightsizing(client, args, admin)
        console_funnel(client, args, admin)
    print(f"""
The platform is running:
  ingest      {args.ingest}   POST /v1/ingest (a billing file as the body), GET /v1/ingest/files
              or from a shell: .venv/bin/finops ingest FILE; a company of your own: .venv/bin/finops simulate
  allocation  {args.allocation}   GET /v1/showback, /v1/chargeback?period=YYYY-MM, PUT /v1/allocation/rules,
              POST /v1/periods/close, /v1/budgets, /v1/unit-costs ... (Authorization: Bearer $FINOPS_ADMIN_TOKEN,
              demo-admin unless set; POST /v1/tokens issues role tokens)
  decision    {args.decision}   GET /v1/decisions, /v1/decisions/waiting, POST /v1/decisions/ID/approve|reject,
              GET /v1/policy, /v1/audit; verify the audit chain: .venv/bin/python -m finops_decision.audit verify
  purchase    {args.purchase}   GET /v1/purchases, /v1/offerings (sandbox provider on :8066)
  console     {args.console}   the practitioner dashboard (sign in with the admin token or a role token);
              query API /v1/costs, /v1/allocations, /v1/recommendations, /v1/decisions, /v1/funnel; /openapi.json
  every service: /health, /ready, /metrics;  logs: .local/logs/;  stop it all: make down""")
    print("\nThe truth comparison: all equal.")


if __name__ == "__main__":
    main()
