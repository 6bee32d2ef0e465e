"""Oracle Cloud Infrastructure cost report (the pre-FOCUS `reports/cost-csv` layout) to FOCUS. OCI's own FOCUS
reports are FOCUS already and pass through (see focus.PassThrough; `oci_*` columns become `x_oci_*`).

Money rules: BilledCost = EffectiveCost = cost/myCost (the report has no amortized view). focus_converters maps
BilledCost from cost/myCostOverage, which is empty for usage within the subscription, so it is kept as x_ data
only. ListCost and ContractedCost are cost/myCost too: the report gives the customer's own unit price only.

Accounts follow OCI's FOCUS reports: BillingAccountId = the tenancy (lineItem/tenantId), SubAccountId = the
compartment. Tags come from the one-column-per-tag `tags/<namespace>.<key>` columns.
"""

from __future__ import annotations

from finops_ingest.bills import tags
from finops_ingest.bills.categories import service_category
from finops_ingest.bills.record import Record
from finops_ingest.bills.values import iso, month_start, next_month


def convert(r: Record) -> dict[str, str | None]:
    """One cost report line as FOCUS 1.2 columns."""
    cost = r.number("cost/myCost")
    if cost is None:
        raise r.error(r.column("cost/myCost") or "cost/myCost", None, "the cost is missing",
                      "Every cost report line needs cost/myCost.")  # fmt: skip
    start = r.when("lineItem/intervalUsageStart")
    correction = (r.text("lineItem/isCorrection") or "").lower() == "true"
    service = r.text("product/service")
    quantity = r.number("usage/billedQuantity")
    unit = r.text("cost/skuUnitDescription")
    return {
        "BillingAccountId": r.text("lineItem/tenantId"),
        "BillingAccountName": None,
        "SubAccountId": r.text("product/compartmentId"),
        "SubAccountName": r.text("product/compartmentName"),
        "BillingPeriodStart": None if start is None else iso(month_start(start)),
        "BillingPeriodEnd": None if start is None else iso(next_month(start)),
        "ChargePeriodStart": None if start is None else iso(start),
        "ChargePeriodEnd": r.timestamp("lineItem/intervalUsageEnd"),
        "ChargeCategory": "Usage",
        "ChargeClass": "Correction" if correction else None,
        "ChargeDescription": r.text("product/Description"),
        "ChargeFrequency": "Usage-Based",
        "BillingCurrency": r.text("cost/currencyCode"),
        "BilledCost": cost,
        "EffectiveCost": cost,
        "ListCost": cost,
        "ContractedCost": cost,
        "PricingCategory": "Standard",
        "PricingQuantity": quantity,
        "PricingUnit": unit,
        "ConsumedQuantity": quantity,
        "ConsumedUnit": unit,
        "ProviderName": "Oracle",
        "PublisherName": "Oracle",
        "InvoiceIssuerName": "Oracle",
        "ServiceName": service,
        "ServiceCategory": service_category("oci", service),
        "RegionId": r.text("product/region"),
        "RegionName": None,
        "AvailabilityZone": r.text("product/availabilityDomain"),
        "ResourceId": r.text("product/resourceId"),
        "ResourceName": None,
        "ResourceType": None,
        "SkuId": r.text("cost/productSku"),
        "SkuPriceId": None,
        "CommitmentDiscountId": None,
        "CommitmentDiscountType": None,
        "CommitmentDiscountCategory": None,
        "CommitmentDiscountStatus": None,
        "Tags": tags.merge(tags.column_tags(r.data, "tags/")),
        "InvoiceId": None,
        "ListUnitPrice": r.number("cost/unitPrice"),
        "ContractedUnitPrice": r.number("cost/unitPrice"),
        "CommitmentDiscountName": None,
        "PricingCurrency": r.text("cost/currencyCode"),
        "SkuMeter": r.text("cost/billingUnitReadable"),
        "BillingAccountType": "Tenancy",
        "SubAccountType": "Compartment",
    }
