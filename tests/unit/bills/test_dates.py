"""The slash-date order is decided per file: evidence from any value, a conflict refused naming the cell, the
override and the layout's default only for a file whose dates are all ambiguous."""

from __future__ import annotations

import datetime as dt

import pytest

from finops_ingest.bills import BillFormatError, read_bill
from finops_ingest.bills.dates import DEFAULTS, check_override, decide
from finops_ingest.bills.values import parse_timestamp

AZURE_HEADER = (
    "BillingAccountId,BillingPeriodStartDate,BillingPeriodEndDate,Date,CostInBillingCurrency,BillingCurrencyCode,"
    "ChargeType,ResourceId,MeterCategory"
)


def cells(*values: str, column: str = "Date") -> list[tuple[int, str, str]]:
    return [(i + 1, column, v) for i, v in enumerate(values)]


def test_a_first_field_above_12_anywhere_makes_the_file_day_first():
    decided = decide(cells("01/02/2026", "03/04/2026", "13/04/2026", "05/06/2026"), file="f.csv", layout="azure-actual")

    assert decided.order == "dmy"
    assert "row 3" in decided.reason and "'Date'" in decided.reason and "first field above 12" in decided.reason


def test_a_second_field_above_12_makes_the_file_month_first():
    decided = decide(cells("01/02/2026", "04/13/2026 10:00"), file="f.csv", layout="oci-cost-report")

    assert decided.order == "mdy"
    assert "row 2" in decided.reason and "second field above 12" in decided.reason


def test_both_evidences_are_refused_naming_the_file_row_and_column():
    mixed = cells("13/04/2026", "02/02/2026") + [(9, "BillingPeriodEndDate", "04/30/2026")]

    with pytest.raises(BillFormatError) as refused:
        decide(mixed, file="mixed.csv", layout="azure-actual")

    error = refused.value
    assert (error.file, error.row, error.column, error.value) == ("mixed.csv", 9, "BillingPeriodEndDate", "04/30/2026")
    assert "row 1, column 'Date' ('13/04/2026')" in error.rule and "day-first" in error.rule


def test_an_ambiguous_file_takes_the_override_else_the_layouts_default():
    ambiguous = cells("01/02/2026", "12/11/2026", "2026-03-04")

    assert decide(ambiguous, file="f.csv", layout="azure-actual").order == DEFAULTS["azure-actual"] == "mdy"
    overridden = decide(ambiguous, file="f.csv", layout="azure-actual", override="dmy")
    assert overridden.order == "dmy" and "date_order was given" in overridden.reason
    assert "default" in decide([], file="f.csv", layout="aws-cur2").reason


def test_an_override_the_file_contradicts_is_refused():
    with pytest.raises(BillFormatError) as refused:
        decide(cells("01/02/2026", "25/02/2026"), file="f.csv", layout="azure-actual", override="mdy")

    assert refused.value.row == 2 and refused.value.column == "Date" and "date_order=mdy" in refused.value.rule


@pytest.mark.parametrize("given", ["DMY", "mdy", " dmy "])
def test_override_values_are_bounded(given):
    assert check_override(given) in ("dmy", "mdy")
    assert check_override(None) is None
    with pytest.raises(ValueError, match="date_order must be one of dmy, mdy"):
        check_override("ymd")


def test_values_read_in_the_files_order():
    assert parse_timestamp("03/04/2026", "dmy") == dt.datetime(2026, 4, 3, tzinfo=dt.UTC)
    assert parse_timestamp("03/04/2026") == dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
    assert parse_timestamp("31/12/26 23:30", "dmy") == dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)


def write_azure(path, dates: list[str], period=("01/03/2026", "31/03/2026")) -> None:
    lines = [AZURE_HEADER] + [
        f"acct,{period[0]},{period[1]},{d},1.25,EUR,Usage,/subscriptions/s/vm{i},Virtual Machines"
        for i, d in enumerate(dates)
    ]
    path.write_text("\n".join(lines) + "\n")


def test_a_day_first_azure_file_decided_by_a_late_row(tmp_path):
    bill = tmp_path / "azure-dmy.csv"
    write_azure(bill, ["01/03/2026", "02/03/2026", "12/03/2026", "25/03/2026"])

    table = next(read_bill(bill, format="azure-actual", block_rows=2))

    assert table.column("ChargePeriodStart").to_pylist() == ["2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"]
    assert table.column("BillingPeriodEnd").to_pylist()[0] == "2026-04-01T00:00:00Z"


def test_a_mixed_azure_file_is_refused_before_any_row(tmp_path):
    bill = tmp_path / "azure-mixed.csv"
    write_azure(bill, ["13/03/2026", "03/14/2026"], period=("03/01/2026", "03/31/2026"))

    with pytest.raises(BillFormatError) as refused:
        list(read_bill(bill, format="azure-actual"))

    assert refused.value.file == "azure-mixed.csv" and refused.value.column in ("Date", "BillingPeriodEndDate")
    assert "mixes day-first dates" in refused.value.rule


def test_the_cli_bounds_date_order_and_export_follows_it(tmp_path, capsys):
    from finops_ingest.cli import parser
    from finops_ingest.export import export_focus

    assert parser().parse_args(["ingest", "bill.csv", "--date-order", "dmy"]).date_order == "dmy"
    with pytest.raises(SystemExit):
        parser().parse_args(["ingest", "bill.csv", "--date-order", "ymd"])
    assert "invalid choice: 'ymd'" in capsys.readouterr().err
    bill = tmp_path / "azure-ambiguous.csv"
    write_azure(bill, ["05/03/2026", "06/03/2026"], period=("01/03/2026", "12/03/2026"))

    export_focus(bill, tmp_path / "out.csv", format="azure-actual", date_order="dmy")

    text = (tmp_path / "out.csv").read_text()
    assert "2026-03-05T00:00:00Z" in text and "2026-05-03T00:00:00Z" not in text


def test_parquet_and_json_lines_text_dates_are_decided_too(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from finops_ingest.bills.reader import date_order

    parquet = tmp_path / "dates.parquet"
    pq.write_table(pa.table({"Date": ["01/02/2026", "14/02/2026"], "Cost": ["1", "2"]}), parquet)
    lines = tmp_path / "dates.jsonl"
    lines.write_text('{"Date": "02/01/2026", "Cost": "1"}\n{"UsageDate": "02/28/2026", "Cost": "2"}\n')

    assert date_order(parquet, format="azure-actual").order == "dmy"
    decided = date_order(lines, format="azure-actual")
    assert decided.order == "mdy" and "row 2, column 'UsageDate'" in decided.reason
