"""AWS Cost and Usage Report to FOCUS: legacy CUR (`lineItem/UnblendedCost` slash headers, or the same columns
in Athena's snake_case) and CUR 2.0 from Data Exports (snake_case, with `product`, `resource_tags`, `discount`
and `cost_category` as maps; in CSV a map is JSON object text).

Money rules (facts: focus_converters' rules for CUR, reference/mappings/focus_converters_rules_aws-cur.csv):

- BilledCost = lineItem/UnblendedCost. focus_converters prefers lineItem/NetUnblendedCost when present; this
  platform bills the unblended cost and keeps the net one as x_ data, so a file's BilledCost is what its
  unblended column sums to.
- EffectiveCost, the amortized view, by lineItem/LineItemType:
    SavingsPlanCoveredUsage  -> savingsPlan/SavingsPlanEffectiveCost
    SavingsPlanRecurringFee  -> savingsPlan/TotalCommitmentToDate - savingsPlan/UsedCommitment (the unused part)
    SavingsPlanNegation, SavingsPlanUpfrontFee -> 0 (already inside the covered usage)
    DiscountedUsage          -> reservation/EffectiveCost
    RIFee                    -> reservation/UnusedAmortizedUpfrontFeeForBillingPeriod + reservation/UnusedRecurringFee
    Fee with a reservation/ReservationARN -> 0 (an RI upfront fee, amortized into DiscountedUsage)
    anything else            -> lineItem/UnblendedCost
  An empty component counts as 0. All arithmetic is Decimal.
- CommitmentDiscountStatus: "Used" on covered usage, "Unused" on a commitment's recurring fee (SavingsPlanRecurringFee,
  RIFee), whose EffectiveCost is the unused part: a CUR has no separate unused row, as FOCUS's own exports do.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache

from finops_ingest.bills import tags
from finops_ingest.bills.categories import service_category
from finops_ingest.bills.record import Record
from finops_ingest.bills.values import interval, iso, next_month, text

ZERO = Decimal(0)
_CATEGORY = {
    "Usage": "Usage", "DiscountedUsage": "Usage", "SavingsPlanCoveredUsage": "Usage", "SavingsPlanNegation": "Usage",
    "BundledDiscount": "Usage", "Discount": "Usage", "PrivateRateDiscount": "Usage", "EdpDiscount": "Usage",
    "Tax": "Tax", "Fee": "Purchase", "RIFee": "Purchase", "SavingsPlanUpfrontFee": "Purchase",
    "SavingsPlanRecurringFee": "Purchase", "Credit": "Credit", "Refund": "Credit",
}  # fmt: skip
_FREQUENCY = {
    "RIFee": "Recurring", "SavingsPlanRecurringFee": "Recurring", "Fee": "One-Time",
    "SavingsPlanUpfrontFee": "One-Time", "Refund": "One-Time", "Credit": "One-Time",
}  # fmt: skip
_COVERED = {"DiscountedUsage", "SavingsPlanCoveredUsage"}
_UNUSED = {"SavingsPlanRecurringFee", "RIFee"}
"""A commitment's recurring fee: its EffectiveCost is the commitment's unused part (the rule above)."""


def _status(commitment: str | None, kind: str) -> str | None:
    """CommitmentDiscountStatus: "Used" on usage a commitment covered; "Unused" on a recurring fee, the one row
    of a CUR that carries the unused commitment (as its EffectiveCost; FOCUS allows a status on any row with a
    CommitmentDiscountId and defines "Unused" as the charge of the unused portion), so that a reader of the
    FOCUS rows sees the waste; null on rows no commitment names."""
    if not commitment:
        return None
    return "Used" if kind in _COVERED else "Unused" if kind in _UNUSED else None


@cache
def names(legacy: str) -> tuple[str, str]:
    """A legacy `family/ColumnName` and its snake_case twin (`line_item_unblended_cost`, `..._a_r_n`)."""
    family, _, column = legacy.partition("/")
    snake = re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), f"{family}_{column[0].lower()}{column[1:]}")
    return legacy, snake


def _get(r: Record, legacy: str) -> str | None:
    return r.text(*names(legacy))


def _money(r: Record, legacy: str) -> Decimal:
    return r.money(*names(legacy), default=ZERO)


def _product(r: Record, legacy: str, key: str) -> str | None:
    """A product attribute: its own column (legacy, or CUR 2.0's few flat ones), else the CUR 2.0 product map."""
    value = r.text(*names(legacy))
    if value is None and r.has("product"):
        value = text(r.mapping("product").get(key))
    return value


def effective_cost(r: Record, kind: str, billed: Decimal) -> Decimal:
    """The amortized cost of one line item (the rule in the module docstring)."""
    if kind == "SavingsPlanCoveredUsage":
        return _money(r, "savingsPlan/SavingsPlanEffectiveCost")
    if kind == "SavingsPlanRecurringFee":
        return _money(r, "savingsPlan/TotalCommitmentToDate") - _money(r, "savingsPlan/UsedCommitment")
    if kind in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return ZERO
    if kind == "DiscountedUsage":
        return _money(r, "reservation/EffectiveCost")
    if kind == "RIFee":
        return _money(r, "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod") + _money(
            r, "reservation/UnusedRecurringFee"
        )
    if kind == "Fee" and _get(r, "reservation/ReservationARN"):
        return ZERO
    return billed


def _tags(r: Record) -> str | None:
    legacy = tags.column_tags(r.data, "resourceTags/", strip=("user:",))
    athena = tags.column_tags(r.data, "resource_tags_")
    mapped = {k.removeprefix("user:"): v for k, v in tags.parse(r.data.get(r.column("resource_tags") or "")).items()}
    return tags.merge(legacy, athena, mapped)


def _pricing_category(r: Record, kind: str) -> str | None:
    if kind in _COVERED:
        return "Committed"
    usage_type = _get(r, "lineItem/UsageType") or ""
    if "SpotUsage" in usage_type:
        return "Dynamic"
    term = (_get(r, "pricing/term") or "").lower()
    return {"ondemand": "Standard", "on-demand": "Standard", "reserved": "Committed", "spot": "Dynamic"}.get(term)


def convert(r: Record) -> dict[str, str | None]:
    """One CUR line item as FOCUS 1.2 columns."""
    kind = _get(r, "lineItem/LineItemType") or ""
    unblended = names("lineItem/UnblendedCost")
    billed = r.money(*unblended)
    if billed is None:
        raise r.error(r.index.get(unblended[0].lower()) or unblended[1], None, "the unblended cost is missing",
                      "Every CUR line item needs lineItem/UnblendedCost.")  # fmt: skip
    effective = effective_cost(r, kind, billed)
    period_start = r.when(*names("bill/BillingPeriodStartDate"))
    charge_start, charge_end = (
        r.timestamp(*names("lineItem/UsageStartDate")),
        r.timestamp(*names("lineItem/UsageEndDate")),
    )
    if charge_start is None or charge_end is None:
        column = r.column(*names("identity/TimeInterval"))
        if column is not None:
            charge_start, charge_end = r.guard(column, interval, r.data[column])
    savings_plan = _get(r, "savingsPlan/SavingsPlanARN")
    reservation = _get(r, "reservation/ReservationARN")
    commitment = savings_plan or reservation
    resource_id = _get(r, "lineItem/ResourceId")
    product_code = _get(r, "lineItem/ProductCode")
    usage_amount = r.number(*names("lineItem/UsageAmount"))
    unit = _get(r, "pricing/unit")
    return {
        "BillingAccountId": _get(r, "bill/PayerAccountId"),
        "BillingAccountName": _get(r, "bill/PayerAccountName"),
        "SubAccountId": _get(r, "lineItem/UsageAccountId"),
        "SubAccountName": _get(r, "lineItem/UsageAccountName"),
        "BillingPeriodStart": r.timestamp(*names("bill/BillingPeriodStartDate")),
        "BillingPeriodEnd": r.timestamp(*names("bill/BillingPeriodEndDate")) or _next(period_start),
        "ChargePeriodStart": charge_start,
        "ChargePeriodEnd": charge_end,
        "ChargeCategory": _CATEGORY.get(kind, "Adjustment"),
        "ChargeClass": None,
        "ChargeDescription": _get(r, "lineItem/LineItemDescription"),
        "ChargeFrequency": _frequency(r, kind),
        "BillingCurrency": _get(r, "lineItem/CurrencyCode"),
        "BilledCost": r.number(*unblended),
        "EffectiveCost": format(effective, "f"),
        "ListCost": r.number(*names("pricing/publicOnDemandCost")),
        "ContractedCost": r.number(*unblended),
        "PricingCategory": _pricing_category(r, kind),
        "PricingQuantity": usage_amount,
        "PricingUnit": unit,
        "ConsumedQuantity": usage_amount if kind not in _CATEGORY or _CATEGORY[kind] == "Usage" else None,
        "ConsumedUnit": unit if kind not in _CATEGORY or _CATEGORY[kind] == "Usage" else None,
        "ProviderName": "AWS",
        "PublisherName": _get(r, "lineItem/LegalEntity") or "AWS",
        "InvoiceIssuerName": _get(r, "bill/InvoicingEntity") or "AWS",
        "ServiceName": _product(r, "product/ProductName", "product_name") or product_code,
        "ServiceCategory": service_category("aws", product_code),
        "RegionId": _product(r, "product/regionCode", "region_code") or _product(r, "product/region", "region"),
        "RegionName": _product(r, "product/location", "location"),
        "AvailabilityZone": _get(r, "lineItem/AvailabilityZone"),
        "ResourceId": resource_id,
        "ResourceName": None,
        "ResourceType": _arn_resource_type(resource_id),
        "SkuId": _product(r, "product/sku", "sku"),
        "SkuPriceId": _get(r, "pricing/RateCode") or _get(r, "pricing/RateId"),
        "CommitmentDiscountId": commitment,
        "CommitmentDiscountType": "Savings Plan" if savings_plan else "Reserved Instance" if reservation else None,
        "CommitmentDiscountCategory": "Spend" if savings_plan else "Usage" if reservation else None,
        "CommitmentDiscountStatus": _status(commitment, kind),
        "Tags": _tags(r),
        "InvoiceId": _get(r, "bill/InvoiceId"),
        "ListUnitPrice": r.number(*names("pricing/publicOnDemandRate")),
        "ContractedUnitPrice": r.number(*names("lineItem/UnblendedRate")),
        "CommitmentDiscountName": None,
        "PricingCurrency": _get(r, "pricing/currency"),
        "SkuMeter": _get(r, "lineItem/UsageType"),
        "BillingAccountType": "Payer Account",
        "SubAccountType": "Linked Account",
    }


def _frequency(r: Record, kind: str) -> str:
    if kind == "Tax":  # a tax line follows its bill: the monthly anniversary bill or a one-off purchase bill
        return "Recurring" if (_get(r, "bill/BillType") or "Anniversary") == "Anniversary" else "One-Time"
    return _FREQUENCY.get(kind, "Usage-Based")


def _next(start) -> str | None:
    return None if start is None else iso(next_month(start))


def _arn_resource_type(resource_id: str | None) -> str | None:
    """`arn:aws:ec2:region:account:instance/i-1` -> `instance`; None for ids that are not ARNs."""
    if not resource_id or not resource_id.startswith("arn:"):
        return None
    parts = resource_id.split(":", 5)
    if len(parts) < 6:
        return None
    kind = re.split(r"[/:]", parts[5], maxsplit=1)[0]
    return f"{parts[2]}:{kind}" if kind else parts[2]
