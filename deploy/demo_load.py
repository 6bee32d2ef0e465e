"""Load the demo bill into the running platform and reconcile allocation's totals with the file's own; then run
the decision loop: a month of compute becomes a commitment plan, finance and business approve it, the sandbox
provider sells it, the next bill uses it and the savings are verified; then a utilization feed turns the same
server into a rightsizing recommendation that names the smaller type.

Exits non-zero when any BilledCost or EffectiveCost total per billing account and currency differs, or when the
loop does not reach verified savings."""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.focus_files import file_totals, write_focus_csv  # noqa: E402 - the tests' independent reader
from tests.support.loop_bills import ACCOUNT, OCTOBER, october, september  # noqa: E402 - the end-to-end test's bills

SAMPLE = ROOT.parent / "shared" / "data" / "focus" / "focus-1.0_multi-provider_aws-azure-oci_focus_sample_1000.csv"


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


DEMO_RULES = {
    "rules": [
        {"name": "network", "priority": 1, "match": [{"field": "service_category", "value": "Networking"}],
         "pool": "network"},
        {"name": "business-unit", "priority": 10, "match": [{"field": "tag:business_unit", "op": "exists"}],
         "assign": {"cost_center": "{tag:business_unit}"}},
        {"name": "application", "priority": 20, "match": [{"field": "tag:application", "op": "exists"}],
         "assign": {"product": "{tag:application}"}},
    ],
    "pools": [{"name": "network", "method": "proportional", "by": "cost_center"}],
}  # fmt: skip


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=None, help="a FOCUS CSV (default: the shared sample)")
    parser.add_argument("--ingest", default="http://127.0.0.1:8001")
    parser.add_argument("--allocation", default="http://127.0.0.1:8002")
    parser.add_argument("--recommend", default="http://127.0.0.1:8003")
    parser.add_argument("--decision", default="http://127.0.0.1:8005")
    parser.add_argument("--purchase", default="http://127.0.0.1:8006")
    parser.add_argument("--console", default="http://127.0.0.1:8007")
    args = parser.parse_args()
    bill = args.file
    if bill is None:
        bill = SAMPLE if SAMPLE.exists() else write_focus_csv(ROOT / ".local" / "demo_bill.csv", rows=5000)
    expected = file_totals(bill)
    admin = {"Authorization": f"Bearer {os.environ.get('FINOPS_ADMIN_TOKEN', 'demo-admin')}"}
    with httpx.Client(timeout=120) as client:
        wait_ready(client, args.ingest)
        for url in (args.allocation, args.recommend, args.decision, args.purchase, args.console):
            wait_ready(client, url)
        rules = client.put(f"{args.allocation}/v1/allocation/rules", json=DEMO_RULES, headers=admin)
        if rules.status_code != 200:
            sys.exit(f"allocation refused the demo rules: {rules.status_code} {rules.text}")
        response = client.post(f"{args.ingest}/v1/ingest", params={"name": bill.name}, content=bill.read_bytes())
        if response.status_code not in (200, 201):
            sys.exit(f"ingest refused {bill}: {response.status_code} {response.text}")
        report = response.json()
        print(
            f"ingested {bill.name}: {report['row_count']} rows, {report['batch_count']} batches"
            + (" (already ingested before: accepted once)" if report["duplicate"] else "")
        )
        rows = expected_lines = sum(t[2] for t in expected.values())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = client.get(f"{args.allocation}/v1/allocation/totals").json()
            rows = sum(int(r["line_count"]) for r in got)
            if rows >= expected_lines:
                break
            time.sleep(0.3)
        with bill.open(newline="", encoding="utf-8-sig") as f:
            periods = sorted({row["BillingPeriodStart"][:7] for row in csv.DictReader(f)})
        chargeback = {
            period: client.get(f"{args.allocation}/v1/chargeback", params={"period": period}, headers=admin).json()
            for period in periods
        }
        decision_loop(client, args, admin)
        rightsizing(client, args, admin)
        console_funnel(client, args, admin)
    allocated = {(r["billing_account_id"], r["billing_currency"].strip()): r for r in got}
    print(
        f"\n{'billing account':<55} {'cur':<4} {'BilledCost file':>20} {'allocated':>20} "
        f"{'EffectiveCost file':>20} {'allocated':>20}  ok"
    )
    all_ok = True
    for (account, currency), (billed, effective, _) in sorted(expected.items()):
        a = allocated.get((account, currency), {})
        a_billed, a_effective = Decimal(a.get("billed_cost", "NaN")), Decimal(a.get("effective_cost", "NaN"))
        ok = a_billed == billed and a_effective == effective
        all_ok &= ok
        cells = (format(v, "f") for v in (billed, a_billed, effective, a_effective))
        print(
            f"{account[-55:]:<55} {currency:<4} " + " ".join(f"{c:>20}" for c in cells) + f"  {'yes' if ok else 'NO'}"
        )
    for period, body in chargeback.items():
        top = sorted(body["rows"], key=lambda r: -Decimal(r["effective_cost"]))[:8]
        total = sum(Decimal(r["effective_cost"]) for r in body["rows"])
        print(f"\nchargeback {period} (EffectiveCost by cost center = business_unit tag; network cost shared):")
        for r in top:
            print(f"  {r['name'][:40]:<40} {r['currency']:<4} {Decimal(r['effective_cost']):>20.10f}")
        print(f"  {'... all ' + str(len(body['rows'])) + ' cost centers':<40} {'':<4} {total:>20.10f}")
    print(f"""
The platform is running:
  ingest      {args.ingest}   POST /v1/ingest (a billing file as the body), GET /v1/ingest/files
              or from a shell: .venv/bin/finops ingest FILE
  allocation  {args.allocation}   GET /v1/showback, /v1/chargeback?period=YYYY-MM, PUT /v1/allocation/rules,
              POST /v1/periods/close, /v1/budgets, /v1/unit-costs ... (Authorization: Bearer $FINOPS_ADMIN_TOKEN,
              demo-admin unless set; POST /v1/tokens issues role tokens)
  decision    {args.decision}   GET /v1/decisions, /v1/decisions/waiting, POST /v1/decisions/ID/approve|reject,
              GET /v1/policy, /v1/audit; verify the audit chain: .venv/bin/python -m finops_decision.audit verify
  purchase    {args.purchase}   GET /v1/purchases, /v1/offerings (sandbox provider on :8066)
  console     {args.console}   the practitioner dashboard (sign in with the admin token or a role token);
              query API /v1/costs, /v1/allocations, /v1/recommendations, /v1/decisions, /v1/funnel; /openapi.json
  every service: /health, /ready, /metrics;  logs: .local/logs/;  stop it all: make down""")
    if not all_ok:
        sys.exit("allocation's totals do not equal the file's totals")
    print("\nAllocation equals the file's own totals to the cent, per billing account and currency.")


if __name__ == "__main__":
    main()
