"""Bad billing files fail with a BillFormatError that names the file, and the row and column when there is one."""

from __future__ import annotations

import csv
import gzip
import random

import pytest

from finops_ingest.bills import BillFormatError, detect, read_bill
from tests.support.focus_files import SHARED, write_focus_csv
from tests.support.provider_files import write_cur2

AWS_SAMPLE = SHARED / "data" / "provider" / "aws_legacy_cur_sample.csv"
AZURE_SAMPLE = SHARED / "data" / "provider" / "azure_ea_actualcost_sample.csv"


def _fails(path) -> BillFormatError:
    with pytest.raises(BillFormatError) as caught:
        detect(path)
        list(read_bill(path))
    assert path.name in str(caught.value) and caught.value.file == path.name
    return caught.value


def test_unknown_header_lists_what_is_recognized(tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_text("Date,Amount,Memo\n2026-01-01,1.00,coffee\n")

    error = _fails(path)

    assert "no known billing format" in error.rule and "AWS CUR" in error.hint and "GCP" in error.hint
    assert error.as_dict()["message"] == str(error)


def test_non_utf8_cell_names_row_and_column(tmp_path):
    path = write_focus_csv(tmp_path / "focus.csv", rows=10)
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"Amazon", b"Am\xe9zon", 1)  # data row 3, a Latin-1 byte
    path.write_bytes(b"\n".join(lines))

    error = _fails(path)

    assert (error.row, error.column) == (3, "ServiceName")
    assert "UTF-8" in error.rule and "row 3" in str(error)


def test_binary_garbage(tmp_path):
    path = tmp_path / "bill.csv"
    path.write_bytes(bytes(random.Random(5).randrange(256) for _ in range(4096)).replace(b"\x1f\x8b", b"xx"))

    error = _fails(path)

    assert error.row is None


def test_truncated_gzip(tmp_path):
    whole = write_cur2(tmp_path / "whole.csv.gz", container="csv.gz").read_bytes()
    path = tmp_path / "cur2.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])

    error = _fails(path)

    assert "truncated" in error.rule or "ends early" in error.rule


def test_truncated_gzip_after_the_header_fails_while_streaming(tmp_path):
    path = write_focus_csv(tmp_path / "big.csv", rows=40_000)
    packed = gzip.compress(path.read_bytes(), mtime=0)
    cut = tmp_path / "big.csv.gz"
    cut.write_bytes(packed[: len(packed) * 3 // 4])

    assert detect(cut) == "focus"
    with pytest.raises(BillFormatError) as caught:
        list(read_bill(cut, block_rows=1000))

    assert "ends early" in caught.value.rule and caught.value.file == "big.csv.gz"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    error = _fails(path)

    assert "empty" in error.rule


def test_semicolon_delimiter_is_named(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("BillingAccountId;BillingCurrency;BilledCost;EffectiveCost;ChargeCategory\n1;USD;1.0;1.0;Usage\n")

    error = _fails(path)

    assert "';'" in error.rule and "comma-separated" in error.hint and error.column.startswith("BillingAccountId;")


@pytest.mark.samples
def test_non_numeric_cost_names_the_row_and_the_provider_column(tmp_path):
    with AWS_SAMPLE.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows[5][rows[0].index("lineItem/UnblendedCost")] = "12.3x"  # rows[0] is the header, so this is data row 5
    path = tmp_path / "cur.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)

    assert detect(path) == "aws-cur-legacy"
    with pytest.raises(BillFormatError) as caught:
        list(read_bill(path))

    error = caught.value
    assert (error.row, error.column, error.value) == (5, "lineItem/UnblendedCost", "12.3x")
    assert "decimal" in error.rule
    assert "row 5" in str(error) and "lineItem/UnblendedCost" in str(error) and "12.3x" in str(error)


@pytest.mark.samples
def test_non_numeric_azure_cost_names_the_azure_column(tmp_path):
    text = AZURE_SAMPLE.read_text(encoding="utf-8")
    path = tmp_path / "azure.csv"
    path.write_text(text.replace(",0.000305367,", ",N/A,", 1), encoding="utf-8")

    with pytest.raises(BillFormatError) as caught:
        list(read_bill(path))

    assert (caught.value.row, caught.value.column, caught.value.value) == (1, "CostInBillingCurrency", "N/A")


def test_unknown_format_name_is_refused(tmp_path):
    path = write_focus_csv(tmp_path / "f.csv", rows=2)

    with pytest.raises(BillFormatError) as caught:
        list(read_bill(path, format="aws-cur3"))

    assert "aws-cur2" in caught.value.hint
