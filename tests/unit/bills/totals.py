"""Independent expectations for the conversion tests: a billing file's own totals, read straight from the raw file
with the csv module, json or pyarrow and Decimal, by the provider's column names. Shares no code with
finops_ingest.bills on purpose."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

Totals = dict[tuple[str | None, str | None], tuple[Decimal, Decimal]]
ZERO = Decimal(0)


def raw_rows(path: Path) -> list[dict[str, object]]:
    """Every data row of a raw file: CSV (gzip or not, BOM tolerated), JSON lines or Parquet."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:4] == b"PAR1":
        return pq.read_table(path).to_pylist()
    text = data.decode("utf-8-sig")
    if text.lstrip().startswith("{"):
        return [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text, newline="")))


def money(value: object) -> Decimal:
    if value is None:
        return ZERO
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Decimal | int):
        return Decimal(value)
    value = str(value).strip()
    return ZERO if value in ("", "NULL") else Decimal(value)


def _nested(value: object) -> object:
    return json.loads(value, parse_float=Decimal) if isinstance(value, str) and value.strip() else value


def _add(totals, key, billed: Decimal, effective: Decimal) -> None:
    b, e = totals[key]
    totals[key] = (b + billed, e + effective)


def focus(rows) -> Totals:
    totals: Totals = defaultdict(lambda: (ZERO, ZERO))
    for r in rows:
        key = tuple(None if r[c] in ("", "NULL") else r[c] for c in ("BillingAccountId", "BillingCurrency"))
        _add(totals, key, money(r["BilledCost"]), money(r["EffectiveCost"]))
    return dict(totals)


def aws(rows) -> Totals:
    """Billed = unblended cost; effective = the amortized view per line item type (AWS CUR documentation)."""
    totals: Totals = defaultdict(lambda: (ZERO, ZERO))
    for r in rows:
        snake = "line_item_unblended_cost" in r

        def get(slash: str, under: str, r=r, snake=snake):
            return r.get(under if snake else slash)

        kind = get("lineItem/LineItemType", "line_item_line_item_type")
        billed = money(get("lineItem/UnblendedCost", "line_item_unblended_cost"))
        if kind == "SavingsPlanCoveredUsage":
            effective = money(get("savingsPlan/SavingsPlanEffectiveCost", "savings_plan_savings_plan_effective_cost"))
        elif kind == "SavingsPlanRecurringFee":
            effective = money(get("savingsPlan/TotalCommitmentToDate", "savings_plan_total_commitment_to_date"))
            effective -= money(get("savingsPlan/UsedCommitment", "savings_plan_used_commitment"))
        elif kind in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
            effective = ZERO
        elif kind == "DiscountedUsage":
            effective = money(get("reservation/EffectiveCost", "reservation_effective_cost"))
        elif kind == "RIFee":
            effective = money(
                get("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
                    "reservation_unused_amortized_upfront_fee_for_billing_period")
            ) + money(get("reservation/UnusedRecurringFee", "reservation_unused_recurring_fee"))  # fmt: skip
        elif kind == "Fee" and get("reservation/ReservationARN", "reservation_reservation_a_r_n"):
            effective = ZERO
        else:
            effective = billed
        key = (
            get("bill/PayerAccountId", "bill_payer_account_id"),
            get("lineItem/CurrencyCode", "line_item_currency_code"),
        )
        _add(totals, key, billed, effective)
    return dict(totals)


def azure(rows, *, amortized: bool = False) -> Totals:
    totals: Totals = defaultdict(lambda: (ZERO, ZERO))
    for original in rows:
        r = {k.lower(): (v.strip() if isinstance(v, str) else v) for k, v in original.items()}

        def first(*names, r=r):
            return next((r[n] for n in names if r.get(n)), None)

        cost = money(first("costinbillingcurrency", "cost", "pretaxcost"))
        charge = (r.get("chargetype") or "Usage").lower()
        commitment = (r.get("pricingmodel") or "").lower() in ("reservation", "savingsplan")
        billed = effective = cost
        if amortized and (charge.startswith("unused") or (charge == "usage" and commitment)):
            billed = ZERO
        if not amortized and charge in ("purchase", "refund") and commitment:
            effective = ZERO
        account = first("billingaccountid", "billingprofileid", "subscriptionid", "subscriptionguid")
        currency = first("billingcurrencycode", "billingcurrency", "currency")
        _add(totals, (account, currency), billed, effective)
    return dict(totals)


def oci(rows) -> Totals:
    totals: Totals = defaultdict(lambda: (ZERO, ZERO))
    for r in rows:
        cost = money(r["cost/myCost"])
        _add(totals, (r["lineItem/tenantId"], r["cost/currencyCode"]), cost, cost)
    return dict(totals)


def gcp(rows) -> Totals:
    """Billed = cost; effective = cost + the sum of credits[].amount."""
    totals: Totals = defaultdict(lambda: (ZERO, ZERO))
    for r in rows:
        cost = money(r["cost"])
        credits = _nested(r.get("credits")) or []
        _add(
            totals,
            (r["billing_account_id"], r["currency"]),
            cost,
            cost + sum((money(c["amount"]) for c in credits), ZERO),
        )
    return dict(totals)


def converted(tables) -> Totals:
    """The same totals from read_bill's output, by FOCUS names."""
    totals: Totals = defaultdict(lambda: (ZERO, ZERO))
    for table in tables:
        for r in table.select(["BillingAccountId", "BillingCurrency", "BilledCost", "EffectiveCost"]).to_pylist():
            _add(
                totals, (r["BillingAccountId"], r["BillingCurrency"]), money(r["BilledCost"]), money(r["EffectiveCost"])
            )
    return dict(totals)
