"""Which billing format a file is, from its container and its header or field names alone."""

from __future__ import annotations

from pathlib import Path

from finops_ingest.bills.container import Source, open_source
from finops_ingest.bills.errors import BillFormatError

FORMATS = (
    "focus",
    "focus-contract-commitment",
    "aws-cur-legacy",
    "aws-cur2",
    "azure-actual",
    "azure-amortized",
    "azure-focus",
    "gcp-billing",
    "oci-cost-report",
    "oci-focus",
)
RECOGNIZED = (
    "FOCUS Cost and Usage (BilledCost, EffectiveCost, ChargeCategory, BillingAccountId), FOCUS Contract "
    "Commitment (ContractCommitmentId, ContractCommitmentCost), AWS CUR legacy (lineItem/UnblendedCost or "
    "line_item_unblended_cost), AWS CUR 2.0 (line_item_unblended_cost with product/resource_tags maps), Azure "
    "cost details EA/MCA/pay-as-you-go (Cost/CostInBillingCurrency/PreTaxCost with MeterCategory or "
    "ConsumedService), Azure and OCI FOCUS exports, GCP BigQuery billing export (billing_account_id, cost, "
    "usage_start_time), OCI cost report (lineItem/referenceNo, cost/myCost); as CSV, JSON lines or Parquet, "
    "optionally gzip-compressed"
)
_FOCUS_CORE = {"billedcost", "effectivecost", "chargecategory", "billingaccountid"}
_AZURE_FOCUS_MARKERS = {"x_skumeterid", "x_skumetercategory", "x_billingprofileid", "x_resourcegroupname"}
_AZURE_COST = {"cost", "costinbillingcurrency", "pretaxcost", "costinusd"}
_AZURE_METER = {"metercategory", "meterid", "consumedservice"}
_CUR2_MARKERS = {"product", "resource_tags", "bill_payer_account_name", "line_item_usage_account_name"}


def detect(path: Path) -> str:
    """The format of a billing file (one of FORMATS); BillFormatError listing what is recognized otherwise."""
    return classify(open_source(Path(path)))


def classify(source: Source) -> str:
    columns = {c.lower() for c in source.columns}
    found = _format(columns, source)
    if found is not None:
        return found
    header = ",".join(source.columns)
    delimiter = next((d for d in (";", "\t", "|") if d in header), None)
    if len(source.columns) == 1 and delimiter:
        raise BillFormatError(
            file=source.name,
            row=None,
            column=source.columns[0][:80],
            rule=f"the header is one column that contains {delimiter!r}: the file is not comma-separated",
            hint="Export the file as comma-separated CSV (not semicolon or tab separated).",
        )
    raise BillFormatError(
        file=source.name,
        row=None,
        column=None,
        value=header[:200],
        rule=f"the {source.container} header matches no known billing format",
        hint=f"Recognized: {RECOGNIZED}.",
    )


def _format(columns: set[str], source: Source) -> str | None:
    if {"contractcommitmentid", "contractcommitmentcost"} <= columns and "billedcost" not in columns:
        return "focus-contract-commitment"
    if _FOCUS_CORE <= columns:
        if any(c.startswith("oci_") for c in columns):
            return "oci-focus"
        if columns & _AZURE_FOCUS_MARKERS:
            return "azure-focus"
        return "focus"
    if "lineitem/unblendedcost" in columns:
        return "aws-cur-legacy"
    if "line_item_unblended_cost" in columns:
        return "aws-cur2" if columns & _CUR2_MARKERS else "aws-cur-legacy"
    if {"lineitem/referenceno", "cost/mycost"} <= columns:
        return "oci-cost-report"
    if {"billing_account_id", "cost", "usage_start_time"} <= columns:
        return "gcp-billing"
    if columns & _AZURE_COST and columns & _AZURE_METER:
        # Actual and amortized cost exports share one header; only the export's name tells them apart.
        return "azure-amortized" if "amortized" in source.name.lower() else "azure-actual"
    return None
