"""Format details: header-only Azure variants, amortized Azure, Azure and OCI FOCUS exports, BOM and gzip, and the
value rules (timestamps, exact decimals, tags)."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_ingest.bills import detect, read_bill
from finops_ingest.bills.values import decimal_text, timestamp
from tests.support.focus_files import FOCUS_SAMPLE, SHARED
from tests.unit.bills import totals

PROVIDER = SHARED / "data" / "provider"
HEADER_VARIANTS = [
    "azure_headerset_Enterprise.csv",
    "azure_headerset_EnterpriseCamel.csv",
    "azure_headerset_PayAsYouGo.csv",
    "azure_values_VirtualMachine.csv",
]


@pytest.mark.samples
@pytest.mark.parametrize("name", HEADER_VARIANTS)
def test_header_only_azure_variant_detects_and_converts_to_an_empty_table(tmp_path, name):
    header = (PROVIDER / name).read_text(encoding="utf-8-sig").splitlines()[0]
    path = tmp_path / name
    path.write_text(header + "\n", encoding="utf-8")

    tables = list(read_bill(path))

    assert detect(path) == "azure-actual"
    assert [t.num_rows for t in tables] == [0]
    assert "BilledCost" in tables[0].column_names and "x_SourceRow" in tables[0].column_names


@pytest.mark.samples
def test_azure_amortized_export_bills_covered_usage_at_zero(tmp_path):
    text = (PROVIDER / "azure_ea_actualcost_small.csv").read_text(encoding="utf-8-sig")
    path = tmp_path / "ea_amortizedcost_202309.csv"
    path.write_text(
        text.replace(",Usage,UsageBased,Azure,0.1,OnDemand,", ",Usage,UsageBased,Azure,0.1,Reservation,", 1)
    )

    tables = list(read_bill(path))

    assert detect(path) == "azure-amortized"
    assert totals.converted(tables) == totals.azure(totals.raw_rows(path), amortized=True)
    rows = tables[0].to_pylist()
    assert any(r["BilledCost"] == "0" and r["EffectiveCost"] != "0" for r in rows)


@pytest.mark.samples
def test_azure_dates_and_tags_forms():
    rows = next(read_bill(PROVIDER / "azure_ea_actualcost_sample.csv")).to_pylist()

    assert (
        rows[0]["ChargePeriodStart"] == "2023-09-02T00:00:00Z" and rows[0]["ChargePeriodEnd"] == "2023-09-03T00:00:00Z"
    )
    assert rows[0]["BillingPeriodEnd"] == "2023-10-01T00:00:00Z"
    assert json.loads(rows[0]["Tags"]) == {"tagA": "valueA", "tagB": "valueB", "tagC": "valueC"}
    camel = next(read_bill(PROVIDER / "azure_headerset_EnterpriseCamel.csv")).to_pylist()[0]
    assert json.loads(camel["Tags"])["Vendor"] == "Databricks"


@pytest.mark.samples
def test_focus_sample_quirks_are_normalized():
    rows = pa.concat_tables(read_bill(FOCUS_SAMPLE)).to_pylist()

    assert rows[0]["BillingPeriodStart"] == "2024-09-01T00:00:00Z"
    assert {r["ChargeFrequency"] for r in rows} <= {"One-Time", "Recurring", "Usage-Based", None}
    assert "x_Id" in rows[0] and "Id" not in rows[0]
    keys = {k for r in rows if r["Tags"] for k in json.loads(r["Tags"])}
    assert keys and all(k == k.strip() for k in keys)
    assert all(r["ChargeClass"] != "NULL" for r in rows)


def test_azure_focus_and_oci_focus_exports_pass_through(tmp_path):
    base = "BillingAccountId,BillingCurrency,BilledCost,EffectiveCost,ChargeCategory,ChargePeriodStart,Tags"
    azure = tmp_path / "azure.csv"
    azure.write_text(f'{base},x_SkuMeterId\n1,EUR,1.50,1.25,usage,2026-05-01T00:00:00Z,"{{""a"":""b""}}",m-1\n')
    oci = tmp_path / "oci.csv.gz"
    oci.write_bytes(gzip.compress(f"\ufeff{base},oci_ReferenceNumber\nocid1,USD,2,2,Usage,2026-05-01,,r-1\n".encode()))

    azure_row = next(read_bill(azure)).to_pylist()[0]
    oci_row = next(read_bill(oci)).to_pylist()[0]

    assert (detect(azure), detect(oci)) == ("azure-focus", "oci-focus")
    assert azure_row["x_SkuMeterId"] == "m-1" and azure_row["ChargeCategory"] == "Usage"
    assert azure_row["BilledCost"] == "1.50" and azure_row["Tags"] == '{"a":"b"}'
    assert oci_row["x_oci_ReferenceNumber"] == "r-1" and oci_row["BillingAccountId"] == "ocid1"
    assert oci_row["ChargePeriodStart"] == "2026-05-01T00:00:00Z" and oci_row["RegionId"] is None


def test_parquet_decimal_columns_keep_their_exact_digits(tmp_path):
    path = tmp_path / "focus.parquet"
    table = pa.table(
        {
            "BillingAccountId": ["a", "b"],
            "BillingCurrency": ["USD", "USD"],
            "BilledCost": pa.array([Decimal("0.1000000000000000001"), Decimal("2")], pa.decimal128(38, 19)),
            "EffectiveCost": pa.array([0.1, 1e-7], pa.float64()),
            "ChargeCategory": ["Usage", "Usage"],
        }
    )
    pq.write_table(table, path)

    row = next(read_bill(path)).to_pylist()

    assert detect(path) == "focus"
    assert row[0]["BilledCost"] == "0.1000000000000000001" and row[1]["BilledCost"] == "2.0000000000000000000"
    assert row[0]["EffectiveCost"] == "0.1" and row[1]["EffectiveCost"] == "0.0000001"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("9/2/2023", "2023-09-02T00:00:00Z"),
        ("09/30/2023", "2023-09-30T00:00:00Z"),
        ("2023-11-13T10:00Z", "2023-11-13T10:00:00Z"),
        ("2023-11-01T00:00:00.000Z", "2023-11-01T00:00:00Z"),
        ("2024-10-01 00:00:00", "2024-10-01T00:00:00Z"),
        ("2026-05-03 07:00:00 UTC", "2026-05-03T07:00:00Z"),
        ("2026-05-03T09:00:00+02:00", "2026-05-03T07:00:00Z"),
    ],
)
def test_timestamp_forms(given, expected):
    assert timestamp(given) == expected


def test_decimal_text_never_goes_through_float():
    assert decimal_text(" 0.00000080000 ") == "0.00000080000"
    assert decimal_text("5.64902E-05") == "0.0000564902"
    assert decimal_text(0.1) == "0.1"
    assert decimal_text(Decimal("123456789012345678.123456789")) == "123456789012345678.123456789"


@pytest.mark.samples
def test_blocks_stream_in_bounded_tables():
    tables = list(read_bill(FOCUS_SAMPLE, block_rows=300))

    assert [t.num_rows for t in tables] == [300, 300, 300, 100]
    assert tables[3].column("x_SourceRow")[0].as_py() == "901"


def test_an_azure_savings_plans_own_rows_are_compute(tmp_path):
    """The savings plan's fee (ConsumedService Microsoft.BillingBenefits) is Compute, as the FinOps toolkit's
    services table maps "Azure savings plan for compute": the plan covers compute only, and its fee must reach the
    compute pool whose commitments it pays for. Other rows keep the category of their ConsumedService."""
    from finops_simulate import Company, SimConfig

    company = Company(SimConfig(seed=3, accounts=2, providers=("azure",), months=1, restate=False))
    (bill,) = [f.path for f in company.write(tmp_path) if f.layout == "azure-actual"]
    rows = pa.concat_tables(read_bill(bill)).to_pylist()
    fees = [r for r in rows if r["ChargeCategory"] == "Purchase"]
    assert fees and {r["x_ConsumedService"] for r in fees} == {"Microsoft.BillingBenefits"}
    assert {r["ServiceCategory"] for r in fees} == {"Compute"}
    vms = [r for r in rows if r["x_ConsumedService"] == "Microsoft.Compute"]
    assert vms and {r["ServiceCategory"] for r in vms} == {"Compute"}
    own = ("Microsoft.Compute", "Microsoft.BillingBenefits")
    others = {r["ServiceCategory"] for r in rows if r["x_ConsumedService"] not in own}
    assert "Compute" not in others
