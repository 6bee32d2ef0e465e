"""Google Cloud BigQuery billing export (standard or detailed) to FOCUS, from CSV (nested fields as JSON text, or
flattened `invoice.month` / `invoice_month` columns), JSON lines or Parquet (real structs and arrays).

Money rules (facts: focus_converters' GCP rules, reference/mappings/focus_converters_rules_gcp.csv):

- BilledCost = cost.
- EffectiveCost = cost + sum(credits[].amount), in Decimal. Credits are negative in the export. focus_converters
  floors the result at 0; this does not, so that the file's own sums are conserved to the last digit.
- ListCost = cost_at_list (cost when the export has no list cost); ContractedCost = cost.

BillingPeriod is invoice.month (`YYYYMM`): the export carries no period start, so it is derived in Google's
invoicing zone, America/Los_Angeles (zoneinfo, so DST follows the tz database): the period starts at local
midnight of the month's first day (07:00Z under PDT, 08:00Z under PST: 2026-03-01T08:00Z, 2026-04-01T07:00Z,
2026-11-01T07:00Z, 2026-12-01T08:00Z) and ends at the next month's start, exclusive. Periods are keyed by that
exact instant downstream (finops_contracts.periods), never by a UTC month.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from finops_ingest.bills import tags
from finops_ingest.bills.categories import service_category
from finops_ingest.bills.record import Record
from finops_ingest.bills.values import compact_month, decimal, decimal_text, iso, next_month, text

ZERO = Decimal(0)
INVOICE_ZONE = ZoneInfo("America/Los_Angeles")
# Top-level fields of the standard and detailed exports; JSON lines omit null fields, so these fix the x_ columns.
FIELDS = (
    "billing_account_id", "service", "sku", "usage_start_time", "usage_end_time", "project", "labels",
    "system_labels", "location", "resource", "tags", "price", "subscription", "transaction_type", "seller_name",
    "export_time", "cost", "currency", "currency_conversion_rate", "usage", "credits", "invoice", "cost_type",
    "adjustment_info", "cost_at_list",
)  # fmt: skip
_CATEGORY = {
    "regular": "Usage", "tax": "Tax", "adjustment": "Adjustment", "credit": "Credit", "rounding_error": "Adjustment",
}  # fmt: skip


def field(r: Record, parent: str, child: str) -> object:
    """A nested field: from the struct (Parquet/JSON, or JSON text in CSV), else a flattened column."""
    if r.column(parent) is not None:
        value = r.mapping(parent).get(child)
        if value is not None:
            return value
    return r.raw(f"{parent}.{child}", f"{parent}_{child}")


def pacific_month_start(month: dt.datetime) -> dt.datetime:
    """Midnight in Google's invoicing zone on the first of `month`, as a UTC instant."""
    return dt.datetime(month.year, month.month, 1, tzinfo=INVOICE_ZONE).astimezone(dt.UTC)


def credits_total(r: Record) -> Decimal:
    total = ZERO
    column = r.column("credits") or "credits"
    for credit in r.items("credits"):
        amount = credit.get("amount") if isinstance(credit, dict) else None
        total += r.guard(column, decimal, amount) or ZERO
    return total


def convert(r: Record) -> dict[str, str | None]:
    """One billing export row as FOCUS 1.2 columns."""
    cost = r.number("cost")
    if cost is None:
        raise r.error(r.column("cost") or "cost", None, "the cost is missing", "Every row needs a cost.")
    effective = r.money("cost") + credits_total(r)
    month_column = r.column("invoice") or r.column("invoice.month", "invoice_month") or "invoice"
    month = field(r, "invoice", "month")
    start = end = None
    if month is not None:
        first = r.guard(month_column, compact_month, month)
        start, end = iso(pacific_month_start(first)), iso(pacific_month_start(next_month(first)))
    credit_types = {str(c.get("type", "")).upper() for c in r.items("credits") if isinstance(c, dict)}
    cost_type = (r.text("cost_type") or "regular").lower()
    service = text(field(r, "service", "description"))
    list_cost = r.number("cost_at_list")
    usage_amount = field(r, "usage", "amount")
    pricing_amount = field(r, "usage", "amount_in_pricing_units")
    return {
        "BillingAccountId": r.text("billing_account_id"),
        "BillingAccountName": None,
        "SubAccountId": text(field(r, "project", "id")),
        "SubAccountName": text(field(r, "project", "name")),
        "BillingPeriodStart": start,
        "BillingPeriodEnd": end,
        "ChargePeriodStart": r.timestamp("usage_start_time"),
        "ChargePeriodEnd": r.timestamp("usage_end_time"),
        "ChargeCategory": _CATEGORY.get(cost_type, "Usage"),
        "ChargeClass": None,
        "ChargeDescription": text(field(r, "sku", "description")),
        "ChargeFrequency": "Usage-Based" if cost_type == "regular" else "One-Time",
        "BillingCurrency": r.text("currency"),
        "BilledCost": cost,
        "EffectiveCost": format(effective, "f"),
        "ListCost": list_cost if list_cost is not None else cost,
        "ContractedCost": cost,
        "PricingCategory": _pricing_category(credit_types, cost_type),
        "PricingQuantity": _number(r, "usage", pricing_amount),
        "PricingUnit": text(field(r, "usage", "pricing_unit")),
        "ConsumedQuantity": _number(r, "usage", usage_amount),
        "ConsumedUnit": text(field(r, "usage", "unit")),
        "ProviderName": "Google Cloud",
        "PublisherName": r.text("seller_name") or "Google Cloud",
        "InvoiceIssuerName": "Google Cloud",
        "ServiceName": service,
        "ServiceCategory": service_category("gcp", service),
        "RegionId": text(field(r, "location", "region")) or text(field(r, "location", "location")),
        "RegionName": None,
        "AvailabilityZone": text(field(r, "location", "zone")),
        "ResourceId": text(field(r, "resource", "global_name")),
        "ResourceName": text(field(r, "resource", "name")),
        "ResourceType": None,
        "SkuId": text(field(r, "sku", "id")),
        "SkuPriceId": None,
        "CommitmentDiscountId": None,
        "CommitmentDiscountType": None,
        "CommitmentDiscountCategory": None,
        "CommitmentDiscountStatus": None,
        "Tags": _tags(r),
        "InvoiceId": None,
        "ListUnitPrice": None,
        "ContractedUnitPrice": None,
        "CommitmentDiscountName": None,
        "PricingCurrency": None,
        "SkuMeter": None,
        "BillingAccountType": "Billing Account",
        "SubAccountType": "Project",
    }


def _number(r: Record, column: str, value: object) -> str | None:
    return None if value is None else r.guard(r.column(column) or column, decimal_text, value)


def _pricing_category(credit_types: set[str], cost_type: str) -> str | None:
    if cost_type != "regular":
        return None
    if any(t.startswith("COMMITTED_USAGE_DISCOUNT") for t in credit_types):
        return "Committed"
    return "Standard"


def _tags(r: Record) -> str | None:
    project = r.mapping("project").get("labels") if r.column("project") else r.raw("project.labels")
    return r.guard(r.column("labels") or "labels", lambda pair: tags.merge(*pair), (project, r.raw("labels")))
