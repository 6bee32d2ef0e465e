"""FOCUS column facts (names, types, allowed values from the FOCUS 1.0-1.4 column reference) and the
pass-through conversion of files that already are FOCUS: FOCUS exports, Azure's and OCI's FOCUS reports, and
the FOCUS 1.3 Contract Commitment dataset."""

from __future__ import annotations

from finops_ingest.bills import tags
from finops_ingest.bills.record import Record

# The columns every converted Cost and Usage table carries, null where the source has no equivalent.
STANDARD = (
    "BillingAccountId", "BillingAccountName", "SubAccountId", "SubAccountName",
    "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "BillingCurrency", "BilledCost", "EffectiveCost", "ListCost", "ContractedCost",
    "PricingCategory", "PricingQuantity", "PricingUnit", "ConsumedQuantity", "ConsumedUnit",
    "ProviderName", "PublisherName", "InvoiceIssuerName", "ServiceName", "ServiceCategory",
    "RegionId", "RegionName", "AvailabilityZone", "ResourceId", "ResourceName", "ResourceType",
    "SkuId", "SkuPriceId", "CommitmentDiscountId", "CommitmentDiscountType", "CommitmentDiscountCategory",
    "CommitmentDiscountStatus", "Tags",
)  # fmt: skip

# Cost and Usage columns of FOCUS 1.0 to 1.4 (reference/focus-columns.csv).
COST_AND_USAGE = frozenset(STANDARD) | {
    "AllocatedMethodDetails", "AllocatedMethodId", "AllocatedResourceId", "AllocatedResourceName", "AllocatedTags",
    "BillingAccountType", "CapacityReservationId", "CapacityReservationStatus", "CommitmentDiscountName",
    "CommitmentDiscountQuantity", "CommitmentDiscountUnit", "CommitmentProgramEligibilityDetails", "ContractApplied",
    "ContractedUnitPrice", "HostProviderName", "InvoiceDetailId", "InvoiceId", "ListUnitPrice", "PricingCurrency",
    "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice",
    "ServiceProviderName", "ServiceSubcategory", "SkuMeter", "SkuPriceDetails", "SubAccountType",
}  # fmt: skip

# Contract Commitment dataset columns of FOCUS 1.3 and 1.4.
CONTRACT_COMMITMENT = frozenset({
    "BillingCurrency", "ContractCommitmentApplicability", "ContractCommitmentBenefitCategory",
    "ContractCommitmentCategory", "ContractCommitmentCost", "ContractCommitmentCreated",
    "ContractCommitmentDescription", "ContractCommitmentDiscountPercentage", "ContractCommitmentDurationType",
    "ContractCommitmentFulfillmentInterval", "ContractCommitmentId", "ContractCommitmentLastUpdated",
    "ContractCommitmentLifecycleStatus", "ContractCommitmentModel", "ContractCommitmentOfferCategory",
    "ContractCommitmentPaymentInterval", "ContractCommitmentPaymentModel",
    "ContractCommitmentPaymentUpfrontPercentage", "ContractCommitmentPeriodEnd", "ContractCommitmentPeriodStart",
    "ContractCommitmentQuantity", "ContractCommitmentType", "ContractCommitmentUnit", "ContractId",
    "ContractPeriodEnd", "ContractPeriodStart", "InvoiceIssuerName", "PricingCurrency",
    "PricingCurrencyContractCommitmentCost", "ServiceProviderName",
})  # fmt: skip

# Extra FOCUS columns every provider-native conversion fills (null where the provider has no equivalent).
PROVIDER_EXTRA = (
    "InvoiceId", "ListUnitPrice", "ContractedUnitPrice", "CommitmentDiscountName", "PricingCurrency",
    "SkuMeter", "BillingAccountType", "SubAccountType",
)  # fmt: skip

DECIMALS = frozenset({
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ListUnitPrice", "ContractedUnitPrice",
    "PricingQuantity", "ConsumedQuantity", "CommitmentDiscountQuantity", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "ContractCommitmentCost",
    "ContractCommitmentQuantity", "ContractCommitmentDiscountPercentage",
    "ContractCommitmentPaymentUpfrontPercentage", "PricingCurrencyContractCommitmentCost",
})  # fmt: skip
TIMESTAMPS = frozenset({
    "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ContractCommitmentCreated", "ContractCommitmentLastUpdated", "ContractCommitmentPeriodStart",
    "ContractCommitmentPeriodEnd", "ContractPeriodStart", "ContractPeriodEnd",
})  # fmt: skip
KEY_VALUE = frozenset({"Tags", "AllocatedTags"})

ALLOWED = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "ChargeClass": ("Correction",),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
    "CapacityReservationStatus": ("Used", "Unused"),
    "PricingCategory": ("Standard", "Dynamic", "Committed", "Other"),
    "ContractCommitmentCategory": ("Spend", "Usage"),
    "ServiceCategory": (
        "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases", "Developer Tools",
        "Multicloud", "Identity", "Integration", "Internet of Things", "Management and Governance", "Media",
        "Migration", "Mobile", "Networking", "Security", "Storage", "Web", "Other",
    ),
}  # fmt: skip
_CANONICAL = {column: {v.lower(): v for v in allowed} for column, allowed in ALLOWED.items()}


def canonical(column: str, value: str | None) -> str | None:
    """An allowed value in its spec spelling when it matches ignoring case (`Usage-based` -> `Usage-Based`)."""
    if value is None or column not in _CANONICAL:
        return value
    return _CANONICAL[column].get(value.lower(), value)


def output_name(column: str, known: frozenset[str]) -> str:
    """FOCUS names stay; anything else is provider data and gets the x_ prefix the spec asks for."""
    return column if column in known or column.startswith("x_") else f"x_{column}"


class PassThrough:
    """A file already in FOCUS: keep every column, normalize values, prefix non-FOCUS columns with x_."""

    def __init__(self, columns: tuple[str, ...], *, contract_commitment: bool = False) -> None:
        known = CONTRACT_COMMITMENT if contract_commitment else COST_AND_USAGE
        self.sources = columns
        self.names = [output_name(c, known) for c in columns]
        self.missing = () if contract_commitment else tuple(c for c in STANDARD if c not in self.names)
        lead = [] if contract_commitment else list(STANDARD)
        self.columns = lead + [n for n in self.names if n not in lead]

    def convert(self, record: Record) -> dict[str, str | None]:
        out: dict[str, str | None] = dict.fromkeys(self.missing)
        for source, name in zip(self.sources, self.names, strict=True):
            if name in DECIMALS:
                out[name] = record.number(source)
            elif name in TIMESTAMPS:
                out[name] = record.timestamp(source)
            elif name in KEY_VALUE:
                out[name] = record.guard(source, tags.merge, record.data.get(source))
            else:
                out[name] = canonical(name, record.text(source))
        return out
