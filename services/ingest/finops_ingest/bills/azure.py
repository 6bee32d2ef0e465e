"""Azure cost details exports to FOCUS: EA and MCA, actual and amortized, PascalCase and camelCase headers,
and the legacy pay-as-you-go usage export. Column names are matched ignoring case, so `CostInBillingCurrency`,
`costInBillingCurrency` and `costinbillingcurrency` are one column. Localized (translated) headers are not
supported: Cost Management exports always write English column names, only portal downloads translate them.

Money rules (Cost = the first of CostInBillingCurrency, Cost, PreTaxCost, CostInUsd):

- actual cost export: BilledCost = Cost. EffectiveCost = Cost, except 0 for the purchase or refund of a
  commitment (ChargeType Purchase/Refund with PricingModel Reservation or SavingsPlan), whose cost the
  amortized view spreads over the usage it covers.
- amortized cost export: EffectiveCost = Cost. BilledCost = Cost, except 0 for commitment-covered usage
  (ChargeType Usage with PricingModel Reservation or SavingsPlan) and for unused commitment
  (ChargeType UnusedReservation/UnusedSavingsPlan): that money is billed on the purchase rows.

Dates: `M/D/YYYY`, `MM/DD/YYYY`, day-first `D/M/YYYY` or ISO; one order per file, decided from all of its dates
(bills.dates: month-first unless a day above 12 shows the file is day-first, or `date_order` says so).
BillingPeriodEndDate is the period's last day, so BillingPeriodEnd is the day after; a row's charge period is its
Date's whole day. Without billing period columns (MCA camelCase rows with empty dates, pay-as-you-go) the billing
period is the calendar month of the charge (Azure's periods start at UTC midnight).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from finops_ingest.bills import tags
from finops_ingest.bills.categories import service_category
from finops_ingest.bills.record import Record
from finops_ingest.bills.values import iso, month_start, next_month

ZERO = Decimal(0)
COST = ("CostInBillingCurrency", "Cost", "PreTaxCost", "CostInUsd")
_COMMITMENT_MODELS = {"reservation", "savingsplan"}
_CATEGORY = {
    "usage": "Usage", "purchase": "Purchase", "tax": "Tax", "unusedreservation": "Usage",
    "unusedsavingsplan": "Usage", "refund": "Credit", "credit": "Credit",
}  # fmt: skip
_FREQUENCY = {"onetime": "One-Time", "recurring": "Recurring", "usagebased": "Usage-Based"}
_PRICING = {"ondemand": "Standard", "reservation": "Committed", "savingsplan": "Committed", "spot": "Dynamic"}
_DAY = dt.timedelta(days=1)


def actual(r: Record) -> dict[str, str | None]:
    return _convert(r, amortized=False)


def amortized(r: Record) -> dict[str, str | None]:
    return _convert(r, amortized=True)


def _convert(r: Record, *, amortized: bool) -> dict[str, str | None]:
    cost_column = r.column(*COST)
    cost_text = r.number(*COST) if cost_column else None
    if cost_text is None:
        raise r.error(r.index.get("costinbillingcurrency") or r.index.get("cost") or "Cost", None,
                      "the cost is missing", "Every Azure cost row needs CostInBillingCurrency or Cost.")  # fmt: skip
    charge_type = (r.text("ChargeType") or "Usage").lower()
    model = (r.text("PricingModel") or "").lower().replace(" ", "")
    commitment_model = model in _COMMITMENT_MODELS
    billed, effective = cost_text, cost_text
    if amortized and (charge_type.startswith("unused") or (charge_type == "usage" and commitment_model)):
        billed = "0"
    if not amortized and charge_type in ("purchase", "refund") and commitment_model:
        effective = "0"

    charge_day = r.when("Date", "UsageDateTime", "UsageDate")
    period_start = r.when("BillingPeriodStartDate")
    period_last = r.when("BillingPeriodEndDate")
    if period_start is None and charge_day is not None:
        period_start = month_start(charge_day)
    if period_last is not None:
        period_end = period_last.replace(hour=0, minute=0, second=0) + _DAY
    elif period_start is not None:
        period_end = next_month(period_start)
    else:
        period_end = None

    benefit = r.text("benefitId", "ReservationId")
    benefit_lower = (benefit or "").lower()
    savings_plan = "microsoft.billingbenefits" in benefit_lower or model == "savingsplan"
    status = None
    if benefit and charge_type.startswith("unused"):
        status = "Unused"
    elif benefit and charge_type == "usage":
        status = "Used"
    resource_id = r.text("ResourceId", "InstanceId")
    quantity = r.number("Quantity", "UsageQuantity")
    unit = r.text("UnitOfMeasure")
    location = r.text("ResourceLocation", "location")
    return {
        "BillingAccountId": r.text("BillingAccountId", "BillingProfileId", "SubscriptionId", "SubscriptionGuid"),
        "BillingAccountName": r.text("BillingAccountName", "BillingProfileName"),
        "SubAccountId": r.text("SubscriptionId", "SubscriptionGuid"),
        "SubAccountName": r.text("SubscriptionName"),
        "BillingPeriodStart": None if period_start is None else iso(period_start),
        "BillingPeriodEnd": None if period_end is None else iso(period_end),
        "ChargePeriodStart": None if charge_day is None else iso(charge_day),
        "ChargePeriodEnd": None if charge_day is None else iso(charge_day + _DAY),
        "ChargeCategory": _CATEGORY.get(charge_type, "Adjustment"),
        "ChargeClass": None,
        "ChargeDescription": r.text("ProductName", "Product", "MeterName"),
        "ChargeFrequency": _FREQUENCY.get((r.text("Frequency") or "UsageBased").lower(), "Usage-Based"),
        "BillingCurrency": r.text("BillingCurrencyCode", "BillingCurrency", "Currency"),
        "BilledCost": billed,
        "EffectiveCost": effective,
        "ListCost": _list_cost(r),
        "ContractedCost": _product(r, "UnitPrice", "Quantity") or billed,
        "PricingCategory": _PRICING.get(model),
        "PricingQuantity": quantity,
        "PricingUnit": unit,
        "ConsumedQuantity": quantity if charge_type == "usage" else None,
        "ConsumedUnit": unit if charge_type == "usage" else None,
        "ProviderName": "Microsoft",
        "PublisherName": r.text("PublisherName") or "Microsoft",
        "InvoiceIssuerName": r.text("PartnerName") or "Microsoft",
        "ServiceName": r.text("MeterCategory", "ServiceName"),
        "ServiceCategory": _category(r.text("ConsumedService"), savings_plan),
        "RegionId": None if location is None else location.lower().replace(" ", ""),
        "RegionName": r.text("MeterRegion"),
        "AvailabilityZone": r.text("AvailabilityZone"),
        "ResourceId": resource_id,
        "ResourceName": r.text("ResourceName"),
        "ResourceType": r.text("ResourceType") or _arm_type(resource_id),
        "SkuId": r.text("ProductId", "PartNumber"),
        "SkuPriceId": None,
        "CommitmentDiscountId": benefit,
        "CommitmentDiscountType": None if not benefit else "Savings Plan" if savings_plan else "Reservation",
        "CommitmentDiscountCategory": None if not benefit else "Spend" if savings_plan else "Usage",
        "CommitmentDiscountStatus": status,
        "Tags": r.guard(r.column("Tags") or "Tags", tags.merge, r.raw("Tags")),
        "InvoiceId": r.text("InvoiceId"),
        "ListUnitPrice": r.number("PayGPrice"),
        "ContractedUnitPrice": r.number("UnitPrice"),
        "CommitmentDiscountName": r.text("benefitName", "ReservationName"),
        "PricingCurrency": r.text("PricingCurrency"),
        "SkuMeter": r.text("MeterName"),
        "BillingAccountType": None,
        "SubAccountType": "Subscription",
    }


def _product(r: Record, price: str, quantity: str) -> str | None:
    a, b = r.money(price), r.money(quantity)
    return None if a is None or b is None else format(a * b, "f")


def _category(consumed_service: str | None, savings_plan: bool) -> str:
    """ServiceCategory from ConsumedService. A savings plan's own rows (ConsumedService Microsoft.BillingBenefits:
    its purchase, recurring fee and refund) are Compute, as the FinOps toolkit's services table maps "Azure savings
    plan for compute": the plan covers compute only, and its fee belongs with the compute it pays for."""
    if savings_plan and (consumed_service or "").lower() == "microsoft.billingbenefits":
        return "Compute"
    return service_category("azure", consumed_service)


def _list_cost(r: Record) -> str | None:
    direct = r.number("PayGCostInBillingCurrency")
    return direct if direct is not None else _product(r, "PayGPrice", "Quantity")


def _arm_type(resource_id: str | None) -> str | None:
    """`/subscriptions/../providers/Microsoft.Compute/virtualMachines/vm1` -> `Microsoft.Compute/virtualMachines`."""
    match = re.search(r"/providers/([^/]+)/([^/]+)", resource_id or "", flags=re.IGNORECASE)
    return f"{match.group(1)}/{match.group(2)}" if match else None
