"""Bill layouts: how a Charge is written as one row of a FOCUS 1.2 file or a provider's native export.

Each layout is a header and a function from a Charge to that row's cells (text). The native layouts are written
so that the platform's documented conversion to FOCUS gives back the Charge's BilledCost and EffectiveCost:

    aws-cur-legacy    legacy CUR: the same line items under lineItem/UnblendedCost-style headers, one
                      resourceTags/user:<key> column per tag key.
    aws-cur2          CUR 2.0 (Data Exports): snake_case columns, product and resource_tags as JSON maps,
                      tag keys `user:<key>`; Usage lines, SavingsPlanCoveredUsage with
                      savings_plan_savings_plan_effective_cost, SavingsPlanRecurringFee with the total and used
                      commitment of that hour.
    azure-actual      EA cost details, actual cost: Cost is billed; Date, BillingPeriodStartDate and
                      BillingPeriodEndDate (last day) as MM/DD/YYYY, or DD/MM/YYYY with day_first.
    azure-amortized   the same columns, amortized cost; a file name containing `amortized`.
    gcp-billing       BigQuery standard export as CSV: nested fields as JSON text, invoice.month YYYYMM,
                      usage times as `YYYY-MM-DD HH:MM:SS UTC`, labels as a JSON key/value array.
    oci-cost-report   the reports/cost-csv layout: lineItem/*, product/*, cost/myCost, tags/<ns>.<key>.
    focus             FOCUS 1.2 Cost and Usage, any provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from finops_simulate.charges import Charge
from finops_simulate.org import REGION
from finops_simulate.periods import iso

PROVIDER_NAME = {"aws": "AWS", "azure": "Microsoft", "gcp": "Google Cloud", "oci": "Oracle"}
SUB_ACCOUNT_TYPE = {"aws": "Linked Account", "azure": "Subscription", "gcp": "Project", "oci": "Compartment"}
BILLING_ACCOUNT_TYPE = {"aws": "Payer Account", "azure": "Billing Account", "gcp": "Billing Account", "oci": "Tenancy"}


def money(value: Decimal) -> str:
    return format(value, "f")


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def _memo(fn: Callable[[Charge], str]) -> Callable[[Charge], str]:
    """A per-resource text (its tags or product JSON) computed once per run of its lines, not once per line: the
    bills are written resource by resource, so remembering the last resource is enough and memory stays flat."""
    last: list = [None, None]

    def get(c: Charge) -> str:
        key = (c.resource.index if c.resource is not None else None, c.service.key, c.sub_account.id)
        if last[0] != key:
            last[0], last[1] = key, fn(c)
        return last[1]

    return get


_tags_json = _memo(lambda c: _json(c.tags) if c.tags else "")
_cur2_tags = _memo(lambda c: _json({f"user:{k}": v for k, v in c.tags.items()}) if c.tags else "")
_cur2_product = _memo(
    lambda c: _json({"product_name": c.service.name, "region": REGION["aws"], "servicecode": c.service.code,
                     "sku": c.service.sku})
)  # fmt: skip
_azure_tags = _memo(lambda c: _json(c.tags)[1:-1] if c.tags else "")
_gcp_static = _memo(
    lambda c: (
        _json({"id": c.service.code, "description": c.service.name}),
        _json({"id": c.service.sku, "description": c.service.usage_type}),
        _json({"id": c.sub_account.id, "number": str(int(c.sub_account.id[5:], 16)), "name": c.sub_account.name,
               "labels": []}),
        _json([{"key": k, "value": v} for k, v in c.tags.items()]),
        _json({"name": c.resource.name if c.resource else "", "global_name": c.resource.id if c.resource else ""}),
    )  # type: ignore[arg-type,return-value]
)  # fmt: skip
_GCP_LOCATION = _json({"location": "us", "country": "US", "region": REGION["gcp"], "zone": ""})


@dataclass(frozen=True)
class Layout:
    name: str
    provider: str | None  # None: any
    header: tuple[str, ...]
    row: Callable[[Charge], list[str]]
    day_first: bool = False


# -- FOCUS 1.2 ---------------------------------------------------------------------------------------------------
FOCUS_COLUMNS = (
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "BillingCurrency",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ListUnitPrice",
    "ContractedCost",
    "ContractedUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "ServiceName",
    "ServiceCategory",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "SkuId",
    "SkuPriceId",
    "CommitmentDiscountId",
    "CommitmentDiscountType",
    "CommitmentDiscountCategory",
    "CommitmentDiscountStatus",
    "Tags",
)


def _focus(c: Charge) -> list[str]:
    p = c.provider
    r = c.resource
    sv = c.service
    usage = c.category == "Usage"
    cat = "Spend" if c.commitment_type == "Savings Plan" else "Usage" if c.commitment_type else ""
    quantity = money(c.quantity)
    return [
        c.billing_account.id, c.billing_account.name, BILLING_ACCOUNT_TYPE[p], c.sub_account.id, c.sub_account.name,
        SUB_ACCOUNT_TYPE[p], iso(c.period.start), iso(c.period.end), iso(c.start), iso(c.end),
        c.category, "", c.description, c.frequency, CURRENCY[0], money(c.billed),
        money(c.effective), money(c.list_cost), money(c.list_unit_price), money(c.billed), money(c.unit_price),
        c.pricing_category, quantity, sv.unit, quantity if usage else "", sv.unit if usage else "",
        PROVIDER_NAME[p], PROVIDER_NAME[p], PROVIDER_NAME[p], sv.name, sv.category, REGION[p], REGION[p],
        r.id if r else "", r.name if r else "", sv.key if r else "", sv.sku, "", c.commitment_id or "",
        c.commitment_type or "", cat, c.commitment_status or "", _tags_json(c),
    ]  # fmt: skip


CURRENCY = ["USD"]  # set by the company before writing (one billing currency per simulation)


# -- AWS CUR 2.0 ---------------------------------------------------------------------------------------------------
CUR2_COLUMNS = (
    "identity_line_item_id",
    "identity_time_interval",
    "bill_invoice_id",
    "bill_invoicing_entity",
    "bill_bill_type",
    "bill_payer_account_id",
    "bill_payer_account_name",
    "bill_billing_period_start_date",
    "bill_billing_period_end_date",
    "line_item_usage_account_id",
    "line_item_usage_account_name",
    "line_item_line_item_type",
    "line_item_usage_start_date",
    "line_item_usage_end_date",
    "line_item_product_code",
    "line_item_usage_type",
    "line_item_operation",
    "line_item_availability_zone",
    "line_item_resource_id",
    "line_item_usage_amount",
    "line_item_currency_code",
    "line_item_unblended_rate",
    "line_item_unblended_cost",
    "line_item_net_unblended_cost",
    "line_item_line_item_description",
    "line_item_legal_entity",
    "product",
    "product_region_code",
    "product_sku",
    "pricing_term",
    "pricing_unit",
    "pricing_public_on_demand_cost",
    "pricing_public_on_demand_rate",
    "resource_tags",
    "savings_plan_savings_plan_a_r_n",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
    "savings_plan_savings_plan_rate",
    "reservation_reservation_a_r_n",
    "reservation_effective_cost",
    "reservation_unused_recurring_fee",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
)


def _cur2(c: Charge) -> list[str]:
    r = c.resource
    sv = c.service
    kind = c.line_type
    sp = c.commitment_type == "Savings Plan"
    ri = c.commitment_type == "Reserved Instance"
    covered = kind in ("SavingsPlanCoveredUsage", "DiscountedUsage")
    total = used = ""
    if kind == "SavingsPlanRecurringFee":
        total, used = money(c.billed), money(c.billed - c.effective)
    billed = "0" if covered else money(c.billed)
    ri_cells = ["", "", "", ""]
    if ri:
        ri_cells = [c.commitment_id or "", money(c.effective) if covered else "",
                    money(c.effective) if kind == "RIFee" else "", "0" if kind == "RIFee" else ""]  # fmt: skip
    ba = c.billing_account
    return [
        f"{ba.id}-{c.start:%Y%m%d%H}-{r.index if r else 'fee'}-{kind}", f"{iso(c.start)}/{iso(c.end)}",
        f"INV-{ba.id}-{c.period.month:%Y%m}", "Amazon Web Services, Inc.", "Anniversary", ba.id, ba.name,
        iso(c.period.start), iso(c.period.end), c.sub_account.id, c.sub_account.name, kind, iso(c.start),
        iso(c.end), sv.code, sv.usage_type, "RunInstances" if sv.key == "compute" else "",
        "us-east-1a" if r else "", r.id if r else (c.commitment_id or ""), money(c.quantity), CURRENCY[0],
        money(c.unit_price), billed, billed, c.description, "Amazon Web Services, Inc.", _cur2_product(c),
        REGION["aws"], sv.sku, "Reserved" if ri and covered else "Savings Plan" if covered else "OnDemand", sv.unit,
        money(c.list_cost), money(c.list_unit_price), _cur2_tags(c), c.commitment_id if sp else "",
        money(c.effective) if covered and sp else "", total, used,
        money(c.effective / c.quantity) if covered and sp and c.quantity else "", *ri_cells,
    ]  # fmt: skip


# -- AWS legacy CUR: the same line items under `family/ColumnName` headers, one column per tag key ----------
LEGACY_TAG_KEYS = ("team", "cost_center", "cost-centre", "CostCenter", "product", "environment")
_LEGACY = (
    ("identity/LineItemId", "identity_line_item_id"), ("identity/TimeInterval", "identity_time_interval"),
    ("bill/InvoiceId", "bill_invoice_id"), ("bill/InvoicingEntity", "bill_invoicing_entity"),
    ("bill/BillType", "bill_bill_type"), ("bill/PayerAccountId", "bill_payer_account_id"),
    ("bill/BillingPeriodStartDate", "bill_billing_period_start_date"),
    ("bill/BillingPeriodEndDate", "bill_billing_period_end_date"),
    ("lineItem/UsageAccountId", "line_item_usage_account_id"), ("lineItem/LineItemType", "line_item_line_item_type"),
    ("lineItem/UsageStartDate", "line_item_usage_start_date"), ("lineItem/UsageEndDate", "line_item_usage_end_date"),
    ("lineItem/ProductCode", "line_item_product_code"), ("lineItem/UsageType", "line_item_usage_type"),
    ("lineItem/Operation", "line_item_operation"), ("lineItem/AvailabilityZone", "line_item_availability_zone"),
    ("lineItem/ResourceId", "line_item_resource_id"), ("lineItem/UsageAmount", "line_item_usage_amount"),
    ("lineItem/CurrencyCode", "line_item_currency_code"), ("lineItem/UnblendedRate", "line_item_unblended_rate"),
    ("lineItem/UnblendedCost", "line_item_unblended_cost"),
    ("lineItem/NetUnblendedCost", "line_item_net_unblended_cost"),
    ("lineItem/LineItemDescription", "line_item_line_item_description"),
    ("lineItem/LegalEntity", "line_item_legal_entity"), ("product/region", "product_region_code"),
    ("product/sku", "product_sku"), ("pricing/term", "pricing_term"), ("pricing/unit", "pricing_unit"),
    ("pricing/publicOnDemandCost", "pricing_public_on_demand_cost"),
    ("pricing/publicOnDemandRate", "pricing_public_on_demand_rate"),
    ("savingsPlan/SavingsPlanARN", "savings_plan_savings_plan_a_r_n"),
    ("savingsPlan/SavingsPlanEffectiveCost", "savings_plan_savings_plan_effective_cost"),
    ("savingsPlan/TotalCommitmentToDate", "savings_plan_total_commitment_to_date"),
    ("savingsPlan/UsedCommitment", "savings_plan_used_commitment"),
    ("savingsPlan/SavingsPlanRate", "savings_plan_savings_plan_rate"),
    ("reservation/ReservationARN", "reservation_reservation_a_r_n"),
    ("reservation/EffectiveCost", "reservation_effective_cost"),
    ("reservation/UnusedRecurringFee", "reservation_unused_recurring_fee"),
    ("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
     "reservation_unused_amortized_upfront_fee_for_billing_period"),
)  # fmt: skip
LEGACY_COLUMNS = (
    *(legacy for legacy, _ in _LEGACY), "product/ProductName",
    *(f"resourceTags/user:{k}" for k in LEGACY_TAG_KEYS),
)  # fmt: skip
_CUR2_INDEX = {name: i for i, name in enumerate(CUR2_COLUMNS)}
_LEGACY_PICK = tuple(_CUR2_INDEX[snake] for _, snake in _LEGACY)


def _cur_legacy(c: Charge) -> list[str]:
    row = _cur2(c)
    tags = c.tags
    return [*(row[i] for i in _LEGACY_PICK), c.service.name, *(tags.get(k, "") for k in LEGACY_TAG_KEYS)]


# -- Azure EA cost details -------------------------------------------------------------------------------------------
AZURE_COLUMNS = (
    "InvoiceSectionName",
    "AccountName",
    "AccountOwnerId",
    "SubscriptionId",
    "SubscriptionName",
    "ResourceGroup",
    "ResourceLocation",
    "Date",
    "ProductName",
    "MeterCategory",
    "MeterSubCategory",
    "MeterId",
    "MeterName",
    "MeterRegion",
    "UnitOfMeasure",
    "Quantity",
    "EffectivePrice",
    "CostInBillingCurrency",
    "CostCenter",
    "ConsumedService",
    "ResourceId",
    "Tags",
    "OfferId",
    "AdditionalInfo",
    "ServiceInfo1",
    "ServiceInfo2",
    "ResourceName",
    "ReservationId",
    "ReservationName",
    "UnitPrice",
    "ProductOrderId",
    "ProductOrderName",
    "Term",
    "PublisherType",
    "PublisherName",
    "ChargeType",
    "Frequency",
    "PricingModel",
    "AvailabilityZone",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrencyCode",
    "BillingPeriodStartDate",
    "BillingPeriodEndDate",
    "BillingProfileId",
    "BillingProfileName",
    "PayGPrice",
    "PartNumber",
)


_MODEL = {"Savings Plan": "SavingsPlan", "Reserved Instance": "Reservation"}


def _azure(day_first: bool, amortized: bool) -> Callable[[Charge], list[str]]:
    """Cost is the view's: BilledCost in the actual export, EffectiveCost in the amortized one."""
    date = _azure_day_first if day_first else _azure_month_first

    def row(c: Charge) -> list[str]:
        r = c.resource
        sv = c.service
        ba, sub = c.billing_account, c.sub_account
        return [
            "Engineering", ba.name, "owner@example.com", sub.id, sub.name, f"rg-{sub.name}", REGION["azure"],
            date(c.start), sv.name, sv.meter, "", sv.sku, sv.usage_type, "US East", sv.unit, money(c.quantity),
            money(c.unit_price), money(c.effective if amortized else c.billed), "", sv.code, r.id if r else "",
            _azure_tags(c), "MS-AZR-0017P", "", "", "", r.name if r else "", c.commitment_id or "", "",
            money(c.unit_price), "", "", "", "Azure",
            "Microsoft", c.line_type, "UsageBased" if c.category == "Usage" else "Recurring",
            _MODEL.get(c.commitment_type or "", "OnDemand"), "", ba.id, ba.name, CURRENCY[0],
            date(c.period.start), date(c.period.end - timedelta(days=1)), ba.id, ba.name,
            money(c.list_unit_price), sv.sku,
        ]  # fmt: skip

    return row


@lru_cache(maxsize=1 << 14)
def _azure_day_first(moment: datetime) -> str:
    return f"{moment:%d/%m/%Y}"


@lru_cache(maxsize=1 << 14)
def _azure_month_first(moment: datetime) -> str:
    return f"{moment:%m/%d/%Y}"


# -- GCP BigQuery billing export -------------------------------------------------------------------------------------
GCP_COLUMNS = (
    "billing_account_id",
    "service",
    "sku",
    "usage_start_time",
    "usage_end_time",
    "project",
    "labels",
    "system_labels",
    "location",
    "resource",
    "export_time",
    "cost",
    "currency",
    "currency_conversion_rate",
    "usage",
    "credits",
    "invoice",
    "cost_type",
    "cost_at_list",
)


@lru_cache(maxsize=1 << 16)
def _bq_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _gcp(c: Charge) -> list[str]:
    sv = c.service
    service, sku, project, labels, resource = _gcp_static(c)
    credits = "[]"
    if c.effective != c.billed:
        credits = _json([{"name": "Committed use discount", "amount": money(c.effective - c.billed),
                          "type": "COMMITTED_USAGE_DISCOUNT", "id": c.commitment_id or ""}])  # fmt: skip
    q = money(c.quantity)
    usage = (
        f'{{"amount":"{q}","unit":{_json(sv.unit)},"amount_in_pricing_units":"{q}","pricing_unit":{_json(sv.unit)}}}'
    )
    return [
        c.billing_account.id, service, sku, _bq_time(c.start), _bq_time(c.end), project, labels, "[]",
        _GCP_LOCATION, resource, _bq_time(c.period.end), money(c.billed), CURRENCY[0], "1", usage, credits,
        f'{{"month":"{c.period.month:%Y%m}"}}', "regular", money(c.list_cost),
    ]  # fmt: skip


# -- OCI cost report ------------------------------------------------------------------------------------------------
OCI_TAG_KEYS = ("team", "cost_center", "cost-centre", "CostCenter", "product", "environment")
OCI_COLUMNS = (
    "lineItem/referenceNo",
    "lineItem/tenantId",
    "lineItem/intervalUsageStart",
    "lineItem/intervalUsageEnd",
    "product/service",
    "product/compartmentId",
    "product/compartmentName",
    "product/region",
    "product/availabilityDomain",
    "product/resourceId",
    "usage/billedQuantity",
    "usage/billedQuantityOverage",
    "cost/subscriptionId",
    "cost/productSku",
    "product/Description",
    "cost/unitPrice",
    "cost/unitPriceOverage",
    "cost/myCost",
    "cost/myCostOverage",
    "cost/currencyCode",
    "cost/billingUnitReadable",
    "cost/skuUnitDescription",
    "cost/overageFlag",
    "lineItem/isCorrection",
    "lineItem/backreferenceNo",
    *(f"tags/Finance.{k}" for k in OCI_TAG_KEYS),
)


def _oci(c: Charge) -> list[str]:
    r = c.resource
    s = c.service
    tags = c.tags
    return [
        f"{c.sub_account.id[-8:]}-{c.start:%Y%m%d%H}-{r.index if r else 0}",
        c.billing_account.id,
        iso(c.start),
        iso(c.end),
        s.code,
        c.sub_account.id,
        c.sub_account.name,
        REGION["oci"],
        "AD-1",
        r.id if r else "",
        money(c.quantity),
        "",
        "sub-1",
        s.sku,
        s.usage_type,
        money(c.unit_price),
        "",
        money(c.billed),
        "",
        CURRENCY[0],
        s.unit,
        s.unit,
        "",
        "false",
        "",
        *(tags.get(k, "") for k in OCI_TAG_KEYS),
    ]


def layout(name: str, *, day_first: bool = False) -> Layout:
    if name == "focus":
        return Layout("focus", None, FOCUS_COLUMNS, _focus)
    if name == "aws-cur2":
        return Layout(name, "aws", CUR2_COLUMNS, _cur2)
    if name == "aws-cur-legacy":
        return Layout(name, "aws", LEGACY_COLUMNS, _cur_legacy)
    if name in ("azure-actual", "azure-amortized"):
        return Layout(name, "azure", AZURE_COLUMNS, _azure(day_first, name == "azure-amortized"), day_first)
    if name == "gcp-billing":
        return Layout(name, "gcp", GCP_COLUMNS, _gcp)
    if name == "oci-cost-report":
        return Layout(name, "oci", OCI_COLUMNS, _oci)
    raise ValueError(f"unknown layout {name!r}")
