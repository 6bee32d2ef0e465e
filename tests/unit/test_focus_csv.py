"""The FOCUS CSV reader against the real sample (named in shared/data/MANIFEST.md) and bad input."""

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from finops_ingest.focus_csv import BillingFileRejected, read_rows
from tests.support.focus_files import FOCUS_SAMPLE, file_totals


def totals_read(path: Path) -> dict[tuple[str, str], tuple[Decimal, Decimal, int]]:
    totals = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for row in read_rows(path, path.name):
        t = totals[(row.values["billing_account_id"], row.values["billing_currency"])]
        t[0] += row.values["billed_cost"]
        t[1] += row.values["effective_cost"]
        t[2] += 1
    return {k: tuple(v) for k, v in totals.items()}


@pytest.mark.samples
def test_real_sample_reads_to_the_files_own_totals():
    assert FOCUS_SAMPLE.exists(), f"{FOCUS_SAMPLE} is missing: the tests need ../shared/data"

    assert totals_read(FOCUS_SAMPLE) == file_totals(FOCUS_SAMPLE)


@pytest.mark.samples
def test_real_sample_quirks_are_tolerated():
    rows = list(read_rows(FOCUS_SAMPLE, "sample.csv"))

    assert len(rows) == 1000
    assert all(r.values["billing_period_start"].tzinfo is not None for r in rows)
    assert any("org" in r.values["tags"] for r in rows), "the key ' org' is read as 'org'"
    assert {r.values["billing_account_id"] for r in rows} >= {"1234567890123", "20209880"}


def write(tmp_path: Path, text: str, name: str = "bill.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = (
    "BillingAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,"
    "ChargeCategory,BillingCurrency,BilledCost,EffectiveCost,ProviderName\n"
)
GOOD = "1,2026-01-01,2026-02-01,2026-01-01,2026-01-02,Usage,USD,1.5,1.25,AWS\n"


def test_non_numeric_cost_names_file_row_and_column(tmp_path):
    path = write(tmp_path, HEADER + GOOD + GOOD.replace("1.5", "abc"))

    with pytest.raises(BillingFileRejected) as caught:
        list(read_rows(path, "bill.csv"))

    assert (caught.value.file, caught.value.row, caught.value.column, caught.value.value) == (
        "bill.csv",
        3,
        "BilledCost",
        "abc",
    )
    assert "decimal" in caught.value.rule


def test_missing_mandatory_column_is_named(tmp_path):
    path = write(tmp_path, HEADER.replace("EffectiveCost,", "") + GOOD.replace("1.25,", ""))

    with pytest.raises(BillingFileRejected, match="EffectiveCost"):
        list(read_rows(path, "bill.csv"))


def test_empty_file_is_rejected(tmp_path):
    with pytest.raises(BillingFileRejected, match="empty"):
        list(read_rows(write(tmp_path, ""), "bill.csv"))


def test_empty_mandatory_value_is_rejected(tmp_path):
    path = write(tmp_path, HEADER + GOOD.replace(",USD,", ",,"))

    with pytest.raises(BillingFileRejected) as caught:
        list(read_rows(path, "bill.csv"))

    assert (caught.value.row, caught.value.column) == (2, "BillingCurrency")


def test_unknown_currency_is_rejected(tmp_path):
    path = write(tmp_path, HEADER + GOOD.replace(",USD,", ",XYZ,"))

    with pytest.raises(BillingFileRejected) as caught:
        list(read_rows(path, "bill.csv"))

    assert (caught.value.column, caught.value.value) == ("BillingCurrency", "XYZ")
    assert "ISO 4217" in caught.value.rule


def test_value_outside_focus_allowed_values_is_rejected(tmp_path):
    path = write(tmp_path, HEADER + GOOD.replace(",Usage,", ",Spending,"))

    with pytest.raises(BillingFileRejected, match="one of Usage, Purchase, Tax, Credit, Adjustment"):
        list(read_rows(path, "bill.csv"))


def test_charge_period_must_start_before_it_ends(tmp_path):
    path = write(tmp_path, HEADER + GOOD.replace("2026-01-01,2026-01-02", "2026-01-02,2026-01-01"))

    with pytest.raises(BillingFileRejected) as caught:
        list(read_rows(path, "bill.csv"))

    assert caught.value.column == "ChargePeriodStart"
    assert "before ChargePeriodEnd" in caught.value.rule


def test_known_quirks_are_tolerated_and_counted(tmp_path):
    from collections import Counter

    path = write(tmp_path, HEADER + GOOD.replace(",Usage,", ",usage,"))
    warnings = Counter()

    [row] = list(read_rows(path, "bill.csv", warnings=warnings))

    assert row.values["charge_category"] == "Usage"
    assert warnings["ChargeCategory in the wrong case"] == 1
    assert warnings["timestamp without zone, read as UTC"] == 4


def test_every_bad_row_is_reported_by_kind_and_count(tmp_path):
    from finops_ingest.rejection import Problems

    path = write(tmp_path, HEADER + GOOD + GOOD.replace("1.5", "abc") * 3 + GOOD.replace(",USD,", ",XYZ,"))
    problems = Problems("bill.csv")

    good = list(read_rows(path, "bill.csv", on_error=problems.add))

    report = problems.rejection().as_dict()
    assert len(good) == 1
    assert report["error_count"] == 4
    assert [(e["column"], e["row"], e["count"]) for e in report["errors"]] == [
        ("BilledCost", 3, 3),
        ("BillingCurrency", 6, 1),
    ]
