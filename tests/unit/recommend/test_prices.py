"""The price table: documented defaults, updatable rows, and a clear error for a missing rate."""

from decimal import Decimal

import pytest

from finops_recommend.prices import NO_UPFRONT, PriceTable, Program, Rate, UnknownRate


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
