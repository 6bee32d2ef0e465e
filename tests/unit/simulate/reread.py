"""An independent re-read of simulated bill files: csv + Decimal, per layout, from the providers' documented column
meanings. Shares no code with the simulator or the ingest service."""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")


def _rows(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def _snake(legacy: str) -> str:
    """`savingsPlan/SavingsPlanARN` -> `savings_plan_savings_plan_a_r_n` (Athena's names for legacy columns)."""
    family, _, column = legacy.partition("/")

    def snake(text: str) -> str:
        return "".join("_" + ch.lower() if ch.isupper() else ch for ch in text[0].lower() + text[1:])

    return f"{snake(family)}_{snake(column)}"


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _azure_day(text: str, day_first: bool) -> datetime:
    a, b, y = (int(x) for x in text.split("/"))
    month, day = (b, a) if day_first else (a, b)
    return datetime(y, month, day, tzinfo=UTC)


def totals(path: Path, layout: str, *, day_first: bool = False) -> dict[tuple[str, str], list]:
    """(billing account, BillingPeriodStart) -> [BilledCost, EffectiveCost, lines] as the layout defines them."""
    out: dict[tuple[str, str], list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for r in _rows(path):
        if layout == "focus":
            key = (r["BillingAccountId"], r["BillingPeriodStart"])
            billed, effective = Decimal(r["BilledCost"]), Decimal(r["EffectiveCost"])
        elif layout in ("aws-cur2", "aws-cur-legacy"):
            if layout == "aws-cur-legacy":  # the same columns as family/ColumnName
                r = {_snake(k): v for k, v in r.items()}
            key = (r["bill_payer_account_id"], r["bill_billing_period_start_date"])
            billed = Decimal(r["line_item_unblended_cost"])
            kind = r["line_item_line_item_type"]
            if kind == "SavingsPlanCoveredUsage":
                effective = Decimal(r["savings_plan_savings_plan_effective_cost"])
            elif kind == "DiscountedUsage":
                effective = Decimal(r["reservation_effective_cost"])
            elif kind == "RIFee":
                effective = Decimal(r["reservation_unused_recurring_fee"]) + Decimal(
                    r["reservation_unused_amortized_upfront_fee_for_billing_period"]
                )
            elif kind == "SavingsPlanRecurringFee":
                effective = Decimal(r["savings_plan_total_commitment_to_date"]) - Decimal(
                    r["savings_plan_used_commitment"]
                )
            else:
                effective = billed
        elif layout in ("azure-actual", "azure-amortized"):
            key = (r["BillingAccountId"], _z(_azure_day(r["BillingPeriodStartDate"], day_first)))
            cost = Decimal(r["CostInBillingCurrency"])
            committed = r["PricingModel"] in ("Reservation", "SavingsPlan")
            billed = effective = cost
            if layout == "azure-amortized" and (
                r["ChargeType"].startswith("Unused") or (r["ChargeType"] == "Usage" and committed)
            ):
                billed = Decimal(0)
            if layout == "azure-actual" and r["ChargeType"] == "Purchase" and committed:
                effective = Decimal(0)
        elif layout == "gcp-billing":
            month = json.loads(r["invoice"])["month"]
            start = datetime(int(month[:4]), int(month[4:]), 1, tzinfo=PACIFIC)
            key = (r["billing_account_id"], _z(start))
            billed = Decimal(r["cost"])
            effective = billed + sum((Decimal(c["amount"]) for c in json.loads(r["credits"])), Decimal(0))
        elif layout == "oci-cost-report":
            start = datetime.fromisoformat(r["lineItem/intervalUsageStart"].replace("Z", "+00:00"))
            key = (r["lineItem/tenantId"], _z(datetime(start.year, start.month, 1, tzinfo=UTC)))
            billed = effective = Decimal(r["cost/myCost"])
        else:
            raise AssertionError(f"no re-read for layout {layout}")
        t = out[key]
        t[0] += billed
        t[1] += effective
        t[2] += 1
    return out
