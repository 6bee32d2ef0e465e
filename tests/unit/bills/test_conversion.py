"""Every shared sample file (../shared/data/focus and ../shared/data/provider, see data/MANIFEST.md) and every
generated CUR 2.0 and GCP fixture: detected right, converted with its row count, source rows and money totals
intact. Expected totals come from tests/unit/bills/totals.py, which reads the raw files on its own. A missing
shared file fails the test, it never skips."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from finops_ingest.bills import detect, read_bill
from finops_ingest.bills.focus import STANDARD
from tests.support.focus_files import SHARED
from tests.support.provider_files import CONTAINERS, GCP_CONTAINERS, write_cur2, write_gcp
from tests.unit.bills import totals

DATA = SHARED / "data"
SHARED_FILES = {
    "focus/focus-1.0_multi-provider_aws-azure-oci_focus_sample_1000.csv": ("focus", totals.focus, "BilledCost"),
    "focus/synthetic/focus-1.2_aws_costandusage_synthetic-fdt_1000.csv": ("focus", totals.focus, "BilledCost"),
    "focus/synthetic/focus-1.2_azure_costandusage_synthetic-fdt_1000.csv": ("focus", totals.focus, "BilledCost"),
    "focus/synthetic/focus-1.2_gcp_costandusage_synthetic-fdt_1000.csv": ("focus", totals.focus, "BilledCost"),
    "focus/synthetic/focus-1.3_aws_costandusage_synthetic-fdt_1000.csv": ("focus", totals.focus, "BilledCost"),
    "provider/aws_legacy_cur_sample.csv": ("aws-cur-legacy", totals.aws, "lineItem/UnblendedCost"),
    "provider/azure_ea_actualcost_small.csv": ("azure-actual", totals.azure, "Cost"),
    "provider/azure_ea_actualcost_sample.csv": ("azure-actual", totals.azure, "CostInBillingCurrency"),
    "provider/azure_headerset_Enterprise.csv": ("azure-actual", totals.azure, "CostInBillingCurrency"),
    "provider/azure_headerset_EnterpriseCamel.csv": ("azure-actual", totals.azure, "costInBillingCurrency"),
    "provider/azure_headerset_PayAsYouGo.csv": ("azure-actual", totals.azure, "PreTaxCost"),
    "provider/azure_values_VirtualMachine.csv": ("azure-actual", totals.azure, "costinbillingcurrency"),
    "provider/oci_cost_report_sample.csv": ("oci-cost-report", totals.oci, "cost/myCost"),
}
CONTRACT_COMMITMENT = "focus/synthetic/focus-1.3_aws_contractcommitment_synthetic-fdt.csv"


@pytest.mark.samples
def test_every_shared_sample_file_is_covered():
    on_disk = {
        p.relative_to(DATA).as_posix() for d in ("focus", "provider") for p in (DATA / d).rglob("*") if p.is_file()
    }

    assert on_disk, f"shared data missing at {DATA}"
    assert on_disk == set(SHARED_FILES) | {CONTRACT_COMMITMENT}


def _check(path: Path, expected_format: str, expected_totals, cost_column: str, *, block_rows: int = 50_000):
    raw = totals.raw_rows(path)

    fmt = detect(path)
    tables = list(read_bill(path, block_rows=block_rows))

    assert fmt == expected_format
    assert all(t.schema.equals(tables[0].schema) for t in tables)
    assert all(f.type == pa.string() for f in tables[0].schema)
    assert set(STANDARD) <= set(tables[0].column_names)
    assert sum(t.num_rows for t in tables) == len(raw)
    rows = pa.concat_tables(tables).to_pylist() if tables else []
    assert [r["x_SourceRow"] for r in rows] == [str(i) for i in range(1, len(raw) + 1)]
    assert totals.converted(tables) == expected_totals(raw)
    spot = len(raw) // 2  # 0-based index of a middle row; its x_SourceRow is spot + 1
    out, source = rows[spot], raw[spot]
    assert out["x_SourceRow"] == str(spot + 1)
    mine = out["BilledCost"] if expected_format.startswith("focus") else out[f"x_{cost_column}"]
    assert totals.money(mine) == totals.money(source[cost_column])
    return rows


@pytest.mark.samples
@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_shared_file_converts_with_its_own_totals(name):
    expected_format, expected_totals, cost_column = SHARED_FILES[name]

    rows = _check(DATA / name, expected_format, expected_totals, cost_column, block_rows=128)

    assert all(r["BillingPeriodStart"] is None or r["BillingPeriodStart"].endswith("Z") for r in rows)


@pytest.mark.samples
def test_contract_commitment_dataset_keeps_its_columns_and_costs():
    path = DATA / CONTRACT_COMMITMENT
    raw = totals.raw_rows(path)

    tables = list(read_bill(path))

    assert detect(path) == "focus-contract-commitment"
    rows = pa.concat_tables(tables).to_pylist()
    assert len(rows) == len(raw)
    assert set(raw[0]) | {"x_SourceRow"} == set(rows[0])
    by_currency: dict[str, Decimal] = {}
    for r in raw:
        by_currency[r["BillingCurrency"]] = by_currency.get(r["BillingCurrency"], Decimal(0)) + totals.money(
            r["ContractCommitmentCost"]
        )
    mine: dict[str, Decimal] = {}
    for r in rows:
        mine[r["BillingCurrency"]] = mine.get(r["BillingCurrency"], Decimal(0)) + totals.money(
            r["ContractCommitmentCost"]
        )
    assert mine == by_currency
    assert rows[10]["x_SourceRow"] == "11" and rows[10]["ContractCommitmentId"] == raw[10]["ContractCommitmentId"]
    assert all(r["ContractCommitmentPeriodStart"].endswith("Z") for r in rows)


@pytest.mark.parametrize("container", CONTAINERS)
def test_generated_cur2_converts_with_its_own_totals(tmp_path, container):
    path = write_cur2(tmp_path / f"cur2.{container}", container=container)

    rows = _check(path, "aws-cur2", totals.aws, "line_item_unblended_cost", block_rows=64)

    assert len({r["BillingCurrency"] for r in rows}) == 2 and len({r["BillingAccountId"] for r in rows}) == 3
    tagged = next(r for r in rows if r["Tags"] and "user_team" in r["Tags"])
    assert tagged["Tags"].startswith("{")


@pytest.mark.parametrize("container", GCP_CONTAINERS)
def test_generated_gcp_export_converts_with_its_own_totals(tmp_path, container):
    path = write_gcp(tmp_path / f"gcp.{container}", container=container)

    rows = _check(path, "gcp-billing", totals.gcp, "cost", block_rows=64)

    assert len({r["BillingCurrency"] for r in rows}) == 2 and len({r["BillingAccountId"] for r in rows}) == 3
    assert {r["BillingPeriodStart"] for r in rows} == {"2026-05-01T07:00:00Z", "2026-06-01T07:00:00Z"}
    assert any(r["EffectiveCost"] != r["BilledCost"] for r in rows)


def test_generated_fixtures_are_deterministic(tmp_path):
    first = write_gcp(tmp_path / "a.csv.gz", container="csv.gz").read_bytes()
    second = write_gcp(tmp_path / "b.csv.gz", container="csv.gz").read_bytes()

    assert first == second
