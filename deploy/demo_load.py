"""Load the demo bill into the running platform and reconcile allocation's totals with the file's own.

Exits non-zero when any BilledCost or EffectiveCost total per billing account and currency differs."""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.focus_files import file_totals, write_focus_csv  # noqa: E402 - the tests' independent reader

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=None, help="a FOCUS CSV (default: the shared sample)")
    parser.add_argument("--ingest", default="http://127.0.0.1:8001")
    parser.add_argument("--allocation", default="http://127.0.0.1:8002")
    args = parser.parse_args()
    bill = args.file
    if bill is None:
        bill = SAMPLE if SAMPLE.exists() else write_focus_csv(ROOT / ".local" / "demo_bill.csv", rows=5000)
    expected = file_totals(bill)
    admin = {"Authorization": f"Bearer {os.environ.get('FINOPS_ADMIN_TOKEN', 'demo-admin')}"}
    with httpx.Client(timeout=120) as client:
        wait_ready(client, args.ingest)
        wait_ready(client, args.allocation)
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
  every service: /health, /ready, /metrics;  logs: .local/logs/;  stop it all: make down""")
    if not all_ok:
        sys.exit("allocation's totals do not equal the file's totals")
    print("\nAllocation equals the file's own totals to the cent, per billing account and currency.")


if __name__ == "__main__":
    main()
