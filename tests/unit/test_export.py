"""`finops export focus` against every shared sample file (../shared/data/focus and ../shared/data/provider, see
data/MANIFEST.md), to Parquet and to CSV, checked for FOCUS 1.2 conformance against
../shared/reference/focus-columns.{csv,json}: column names, Mandatory columns, types, allowed values, nulls, and
the money totals of the input, read on their own by tests/unit/bills/totals.py. A missing shared file fails the
test, it never skips."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_ingest import cli
from finops_ingest.export import export_focus
from finops_ingest.rejection import FileRejected
from tests.support.focus_files import SHARED, write_focus_csv
from tests.unit.bills import totals

DATA = SHARED / "data"
REFERENCE = SHARED / "reference"
CONTRACT_COMMITMENT = "focus/synthetic/focus-1.3_aws_contractcommitment_synthetic-fdt.csv"
EXPECTED = {"focus": totals.focus, "aws": totals.aws, "azure": totals.azure, "oci": totals.oci}
PLAIN_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
FOCUS_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _shared_files() -> list[str]:
    found = sorted(
        p.relative_to(DATA).as_posix() for d in ("focus", "provider") for p in (DATA / d).rglob("*") if p.is_file()
    )
    return [f for f in found if f != CONTRACT_COMMITMENT]


SHARED_FILES = _shared_files()


def _reference() -> dict[str, dict]:
    """FOCUS 1.2 Cost and Usage columns: data type, allows nulls, level, allowed values (None: any)."""
    pairs = {
        e["column"]: e["allowed_values"]
        for e in json.loads((REFERENCE / "focus-columns.json").read_text())["versions"]["v1.2"]
    }
    columns = {}
    with (REFERENCE / "focus-columns.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["v1.2"] == "-":
                continue
            listed = row["allowed_values_or_format"]
            allowed = None
            if row["column"] == "ServiceSubcategory":
                allowed = set(pairs["ServiceSubcategory"])  # `Category > Subcategory` pairs
            elif listed and "(#" not in listed:
                allowed = {v.strip() for v in listed.split(",")}
            columns[row["column"]] = {
                "type": row["data_type"],
                "nulls": row["allows_nulls"] == "True",
                "level": row["v1.2"],
                "allowed": allowed,
            }
    return columns


def _family(name: str) -> str:
    return "focus" if name.startswith("focus/") else Path(name).name.split("_")[0]


def _expected(name: str) -> tuple[dict, str | None]:
    """The input's own totals, and the currency to pass when the file names none."""
    expected = EXPECTED[_family(name)](totals.raw_rows(DATA / name))
    if any(currency is None for _, currency in expected):
        return {(account, "USD"): money for (account, _), money in expected.items()}, "USD"
    return expected, None


def _exported_totals(rows: list[dict]) -> dict:
    found = defaultdict(lambda: (Decimal(0), Decimal(0)))
    for r in rows:
        b, e = found[(r["BillingAccountId"], r["BillingCurrency"])]
        found[(r["BillingAccountId"], r["BillingCurrency"])] = (
            b + Decimal(str(r["BilledCost"])),
            e + Decimal(str(r["EffectiveCost"])),
        )
    return dict(found)


def _check_values(columns: dict[str, list], reference: dict[str, dict]) -> None:
    """Allowed values and nulls, on values as Python objects (None for a null)."""
    for column, values in columns.items():
        if column.startswith("x_"):
            continue
        spec = reference[column]
        if not spec["nulls"]:
            assert None not in values, f"{column} allows no nulls"
        if spec["allowed"] is None:
            continue
        if column == "ServiceSubcategory":
            categories = columns["ServiceCategory"]
            found = {f"{c} > {s}" for c, s in zip(categories, values, strict=True) if s is not None}
        else:
            found = {v for v in values if v is not None}
        assert found <= spec["allowed"], f"{column} has values FOCUS 1.2 does not allow: {found - spec['allowed']}"


def _check_columns(names: list[str], reference: dict[str, dict]) -> None:
    assert len(names) == len(set(names))
    assert all(n in reference or n.startswith("x_") for n in names), [
        n for n in names if n not in reference and not n.startswith("x_")
    ]
    mandatory = {c for c, spec in reference.items() if spec["level"] == "M"}
    assert mandatory <= set(names), f"Mandatory columns missing: {mandatory - set(names)}"


def _json_objects(values: list) -> bool:
    return all(v is None or isinstance(json.loads(v), dict) for v in values)


@pytest.fixture(scope="module")
def reference() -> dict[str, dict]:
    return _reference()


@pytest.mark.samples
def test_the_shared_data_is_there():
    assert (REFERENCE / "focus-columns.csv").is_file(), f"{REFERENCE} is missing: the tests need ../shared"
    assert len(SHARED_FILES) >= 13, f"shared data missing at {DATA}"
    assert (DATA / CONTRACT_COMMITMENT).is_file()


@pytest.mark.samples
@pytest.mark.parametrize("name", SHARED_FILES)
def test_parquet_export_conforms_to_focus_1_2(name, reference, tmp_path):
    expected, currency = _expected(name)
    output = tmp_path / "focus.parquet"

    report = export_focus(DATA / name, output, currency=currency)

    table = pq.read_table(output)
    assert report.rows == table.num_rows == len(totals.raw_rows(DATA / name))
    assert report.columns == table.column_names
    _check_columns(table.column_names, reference)
    for f in table.schema:
        kind = "x" if f.name.startswith("x_") else reference[f.name]["type"]
        if kind == "Decimal":
            assert pa.types.is_decimal(f.type), f
        elif kind == "Date/Time":
            assert pa.types.is_timestamp(f.type) and f.type.tz == "UTC", f
        else:
            assert f.type == pa.string(), f
        if kind == "JSON":
            assert _json_objects(table.column(f.name).to_pylist()), f.name
    _check_values({c: table.column(c).to_pylist() for c in table.column_names}, reference)
    assert _exported_totals(table.to_pylist()) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["focus.parquet"]


@pytest.mark.samples
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("name", SHARED_FILES)
def test_csv_export_conforms_to_focus_1_2(name, suffix, reference, tmp_path):
    expected, currency = _expected(name)
    output = tmp_path / f"focus{suffix}"

    report = export_focus(DATA / name, output, currency=currency)

    rows = totals.raw_rows(output)
    header = list(rows[0])
    assert report.rows == len(rows) == len(totals.raw_rows(DATA / name))
    assert report.columns == header
    _check_columns(header, reference)
    columns = {c: [r[c] if r[c] != "" else None for r in rows] for c in header}
    for column, values in columns.items():
        kind = "x" if column.startswith("x_") else reference[column]["type"]
        present = [v for v in values if v is not None]
        if kind == "Decimal":
            assert all(PLAIN_DECIMAL.fullmatch(v) for v in present), column
        elif kind == "Date/Time":
            assert all(FOCUS_DATETIME.fullmatch(v) for v in present), column
        elif kind == "JSON":
            assert _json_objects(present), column
    _check_values(columns, reference)
    assert _exported_totals(rows) == expected


@pytest.mark.samples
def test_parquet_decimals_keep_every_digit(tmp_path):
    output = tmp_path / "oci.parquet"

    report = export_focus(DATA / "provider/oci_cost_report_sample.csv", output)

    assert report.decimal_type == "decimal128(38, 18)"
    raw = totals.raw_rows(DATA / "provider/oci_cost_report_sample.csv")
    exported = pq.read_table(output, columns=["BilledCost"]).column("BilledCost").to_pylist()
    assert [Decimal(r["cost/myCost"]) for r in raw] == exported


@pytest.mark.samples
def test_contract_commitment_dataset_is_refused_with_its_reason(tmp_path):
    output = tmp_path / "commitments.parquet"

    with pytest.raises(FileRejected) as refused:
        export_focus(DATA / CONTRACT_COMMITMENT, output)

    assert "Contract Commitment dataset, not a Cost and Usage dataset" in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def _with_bad_billed_cost(path: Path, line: int) -> Path:
    write_focus_csv(path, rows=1000)
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    rows[line - 1][rows[0].index("BilledCost")] = "twelve"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_non_numeric_billed_cost_exits_2_and_writes_nothing(suffix, tmp_path, capsys):
    bad = _with_bad_billed_cost(tmp_path / "bad.csv", line=300)
    output = tmp_path / f"out{suffix}"

    code = cli.main(["export", "focus", str(bad), "-o", str(output)])

    printed = capsys.readouterr().out
    assert code == 2
    assert "row 300" in printed and "column BilledCost" in printed and "'twelve'" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_an_unknown_output_suffix_is_a_usage_error(tmp_path, tmp_path_factory, capsys):
    bill = write_focus_csv(tmp_path_factory.mktemp("bill") / "bill.csv", rows=10)
    code = cli.main(["export", "focus", str(bill), "-o", str(tmp_path / "out.xlsx")])

    assert code == 1
    assert ".parquet" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
