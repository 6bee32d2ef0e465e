"""The price table: documented defaults, updatable rows, and a clear error for a missing rate."""

from decimal import Decimal

import pytest

from finops_recommend.prices import (
    ALL_UPFRONT,
    NO_UPFRONT,
    PARTIAL_UPFRONT,
    PriceTable,
    PriceTableError,
    Program,
    Rate,
    UnknownRate,
    effective_discount,
    load,
)


def test_every_default_rate_has_a_source_and_three_years_discount_more_than_one():
    table = PriceTable()

    for program in Program:
        one, three = table.instruments(program)
        assert (one.term_months, three.term_months) == (12, 36)
        assert 0 < one.discount < three.discount < 1
    assert all(r.source.startswith("https://") for r in table.rates)


def test_updated_replaces_the_row_with_the_same_key_and_keeps_the_others():
    table = PriceTable()
    negotiated = Rate(Program.AWS_COMPUTE_SAVINGS_PLAN, 36, NO_UPFRONT, Decimal("0.53"), "contract 2026-07")

    new = table.updated(negotiated)

    assert new.rate(Program.AWS_COMPUTE_SAVINGS_PLAN, 36).discount == Decimal("0.53")
    assert table.rate(Program.AWS_COMPUTE_SAVINGS_PLAN, 36).discount == Decimal("0.50")
    assert len(new.rates) == len(table.rates)


def test_rows_round_trip_and_a_missing_rate_says_what_to_do():
    table = PriceTable.from_rows(PriceTable().to_rows())

    assert table == PriceTable()
    with pytest.raises(UnknownRate, match="add it to the price table"):
        table.rate(Program.AZURE_RESERVATION, 60)


def test_an_upfront_payment_is_weighed_net_of_the_cost_of_capital():
    # 36 monthly payments of 1 at the start of each month are worth A = 32.2495 today at 8% a year, so paying the
    # whole price upfront costs 36 / A = 1.116298 times its monthly equivalent, and half upfront 1.058149 times.
    d, r = Decimal("0.56"), Decimal("0.08")
    assert effective_discount(d, 36, ALL_UPFRONT, r) == pytest.approx(
        1 - (1 - d) * Decimal("1.116298"), abs=Decimal("1e-6")
    )
    assert effective_discount(d, 36, PARTIAL_UPFRONT, r) == pytest.approx(
        1 - (1 - d) * Decimal("1.058149"), abs=Decimal("1e-6")
    )
    # Money that costs nothing, or nothing paid upfront: the rate's own discount
    assert effective_discount(d, 36, ALL_UPFRONT, Decimal(0)) == d
    assert effective_discount(d, 36, NO_UPFRONT, r) == d


def test_aws_upfront_options_are_priced_from_the_no_upfront_rate_and_offered_only_when_allowed():
    table = PriceTable()
    # EC2 Instance SP 3y all upfront: the calculator's 0.264 against 0.276 no upfront, applied to 1 - 0.56
    assert table.rate(Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, 36, ALL_UPFRONT).discount == Decimal("0.579")

    monthly_only = table.choices(Program.AWS_EC2_INSTANCE_SAVINGS_PLAN)
    every = table.choices(Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, (PARTIAL_UPFRONT, ALL_UPFRONT), Decimal("0.08"))

    assert [i.name for i in monthly_only] == ["1y", "3y"]
    assert [i.name for i in every] == [
        "1y", "1y partial_upfront", "1y all_upfront", "3y", "3y partial_upfront", "3y all_upfront",
    ]  # fmt: skip
    all_upfront = every[-1]
    assert all_upfront.payment == ALL_UPFRONT and all_upfront.rate_discount == Decimal("0.579")
    assert all_upfront.discount == pytest.approx(1 - 0.421 * 1.116298, abs=1e-6)
    # Azure and GCP bill monthly at the same price: nothing upfront to weigh
    assert [i.name for i in table.choices(Program.AZURE_RESERVATION, (ALL_UPFRONT,))] == ["1y", "3y"]


def test_a_price_table_file_replaces_the_rows_it_names_and_keeps_the_defaults(tmp_path):
    # Given negotiated rates in a CSV (one replacing a default, one new option) and the same in JSON
    csv_file = tmp_path / "rates.csv"
    csv_file.write_text(
        "program,term_months,payment,discount,source,note\n"
        "aws_compute_savings_plan,36,no_upfront,0.53,EDP 2026,negotiated\n"
        "azure_reservation,36,all_upfront,0.62,EA 2026,\n"
    )
    json_file = tmp_path / "rates.json"
    json_file.write_text(
        '[{"program": "aws_compute_savings_plan", "term_months": 36, "discount": "0.53", "source": "EDP 2026"},'
        ' {"program": "azure_reservation", "term_months": 36, "payment": "all_upfront", "discount": 0.62,'
        ' "source": "EA 2026"}]'
    )

    for path in (csv_file, json_file):
        # When
        table = load(path)

        # Then
        assert table.rate(Program.AWS_COMPUTE_SAVINGS_PLAN, 36).discount == Decimal("0.53")
        assert table.rate(Program.AZURE_RESERVATION, 36, ALL_UPFRONT).discount == Decimal("0.62")
        assert table.rate(Program.AWS_COMPUTE_SAVINGS_PLAN, 12).discount == Decimal("0.28")
        assert len(table.rates) == len(PriceTable().rates) + 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("program,term_months,discount,source\naws_compute_savings_plan,36,28%,page\n",
         "rates.csv row 2, column discount: '28%' is not a fraction between 0 and 1; write 28% off as 0.28"),
        ("program,term_months,discount,source\naws_compute_savings_plan,36,0.5,page\naws_savings,12,0.3,page\n",
         "rates.csv row 3, column program: 'aws_savings' is not a program"),
        ("program,term_months,discount,source\naws_compute_savings_plan,3 years,0.5,page\n",
         "rates.csv row 2, column term_months: '3 years' is not a number of months"),
        ("program,term_months,discount,source\naws_compute_savings_plan,36,0.5,\n",
         "rates.csv row 2, column source: missing; every row needs source"),
        ("program,term_months,discount,source,rate\naws_compute_savings_plan,36,0.5,page,1\n",
         "rates.csv row 2: unknown column rate"),
        ("program,term_months,discount,source\naws_compute_savings_plan,36,0.5,a\naws_compute_savings_plan,36,0.6,b\n",
         "rates.csv row 3: aws_compute_savings_plan 36 months no_upfront is already priced in row 2; keep one"),
    ],
)  # fmt: skip
def test_a_bad_price_table_row_is_refused_naming_the_file_row_and_column(tmp_path, content, message):
    path = tmp_path / "rates.csv"
    path.write_text(content)

    with pytest.raises(PriceTableError) as refused:
        load(path)

    assert str(refused.value).startswith(message)
