"""Shared-cost splits: hand-worked examples per method, and properties over random pools and weights."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finops_allocation.splits import (
    SplitError,
    SplitMethod,
    apportion,
    minor_unit_places,
    round_preserving_sum,
    split,
    split_by_usage,
    split_even,
    split_fixed,
    split_proportional,
)

D = Decimal


def test_even_split_gives_the_leftover_cent_to_the_first_target_by_name():
    # 100.00 USD over 3 = 10000 cents / 3 = 3333 1/3 each: floors 3333 x 3 = 9999, one cent left over.
    # The remainders tie at 1/3, so the cent goes to the first name: "api" 33.34, "batch" 33.33, "web" 33.33.

    result = split_even(D("100.00"), ["web", "api", "batch"], currency="USD")

    assert result.amounts() == {"api": D("33.34"), "batch": D("33.33"), "web": D("33.33")}
    assert [share.target for share in result.shares] == ["api", "batch", "web"]
    assert result.method is SplitMethod.EVEN and result.places == 2


def test_proportional_split_follows_direct_cost_of_the_chosen_set_only():
    # Pool 1,000.00 over the direct cost of a and b only (c is not in the set): a 300, b 500, total 800.
    # a: 100000 * 300/800 = 37500 cents exactly -> 375.00; b: 100000 * 500/800 = 62500 -> 625.00.
    direct = {"a": D("300"), "b": D("500"), "c": D("9000")}

    result = split_proportional(D("1000.00"), direct, currency="USD", among=["a", "b"])

    assert result.amounts() == {"a": D("375.00"), "b": D("625.00")}


def test_proportional_split_gives_leftover_cents_to_the_largest_remainders():
    # Pool 10.00 = 1000 cents over direct cost a 1, b 1, c 1, d 4 (total 7):
    #   a, b, c: 1000/7 = 142.857 -> floor 142, remainder .857 each
    #   d:       4000/7 = 571.428 -> floor 571, remainder .428
    # floors sum 142*3 + 571 = 997, 3 cents left: they go to a, b, c (remainder .857 > .428).
    # a 1.43, b 1.43, c 1.43, d 5.71 -> 4.29 + 5.71 = 10.00

    result = split_proportional(D("10.00"), {"d": D(4), "c": D(1), "b": D(1), "a": D(1)}, currency="USD")

    assert result.amounts() == {"a": D("1.43"), "b": D("1.43"), "c": D("1.43"), "d": D("5.71")}


def test_fixed_percentages():
    # Pool 999.99 = 99999 cents at 50 / 30 / 20 %:
    #   ops 49999.5 -> 49999 r .5; data 29999.7 -> 29999 r .7; sec 19999.8 -> 19999 r .8
    # floors 99997, 2 cents left: sec (.8) then data (.7). ops 499.99, data 300.00, sec 200.00.

    result = split_fixed(D("999.99"), {"ops": D(50), "data": D(30), "sec": D(20)}, currency="USD")

    assert result.amounts() == {"data": D("300.00"), "ops": D("499.99"), "sec": D("200.00")}


def test_fixed_percentages_must_sum_to_100():
    with pytest.raises(SplitError, match=r"sum to 100, these sum to 99\.9 \(a 33\.3, b 33\.3, c 33\.3\)"):
        split_fixed(D("10"), {"a": D("33.3"), "b": D("33.3"), "c": D("33.3")}, currency="USD")


def test_usage_split_in_yen_has_no_minor_unit():
    # 10,000 JPY (0 decimals) by CPU-hours 1 / 2 / 3 (total 6):
    #   x 1666.67 -> 1666 r .67; y 3333.33 -> 3333 r .33; z 5000 exactly.
    # floors 9999, 1 yen left to x. x 1667, y 3333, z 5000.

    result = split_by_usage(D("10000"), {"x": D("1"), "y": D("2"), "z": D("3")}, currency="JPY")

    assert result.amounts() == {"x": D("1667"), "y": D("3333"), "z": D("5000")}
    assert result.places == 0


def test_a_credit_pool_splits_as_the_negated_charge():
    # -100.00 over 3 is the negation of the even example: api -33.34, batch -33.33, web -33.33.

    result = split_even(D("-100.00"), ["web", "api", "batch"], currency="USD")

    assert result.amounts() == {"api": D("-33.34"), "batch": D("-33.33"), "web": D("-33.33")}


def test_all_zero_weights_are_an_error_unless_even_is_asked_for():
    with pytest.raises(SplitError, match="every weight is zero"):
        split_by_usage(D("9.00"), {"a": D(0), "b": D(0)}, currency="USD")

    # 901 cents / 2 = 450.5 each: one cent left, to "a" by name.
    fallback = split_by_usage(D("9.01"), {"a": D(0), "b": D(0)}, currency="USD", zero_weights="even")

    assert fallback.amounts() == {"a": D("4.51"), "b": D("4.50")}


def test_a_zero_weight_target_gets_nothing_even_when_cents_are_left_over():
    # 10 cents by 1 / 2 / 0: a 3.33 -> 3 r .33, b 6.67 -> 6 r .67, idle 0 r 0. One cent left, to b.
    result = split_by_usage(D("0.10"), {"a": D(1), "b": D(2), "idle": D(0)}, currency="USD")

    assert result.amounts() == {"a": D("0.03"), "b": D("0.07"), "idle": D("0.00")}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: split_by_usage(D("1"), {"a": D(-1), "b": D(2)}, currency="USD"), "must not be negative: a -1"),
        (lambda: split_even(D("1.005"), ["a"], currency="USD"), "more than 2 decimal places"),
        (lambda: split_even(D("1"), [], currency="USD"), "at least one target"),
        (lambda: split_even(D("1"), ["a", "a"], currency="USD"), "distinct"),
        (lambda: split_by_usage(1.5, {"a": 1}, currency="USD"), "must be a Decimal, got float"),
        (lambda: split_by_usage(D("1"), {"a": 0.5}, currency="USD"), "got float"),
        (lambda: split_proportional(D("1"), {"a": D(1)}, currency="USD", among=["a", "zz"]), "no direct cost for zz"),
    ],
)
def test_bad_input_is_refused_with_a_message_that_says_what(call, message):
    with pytest.raises(SplitError, match=message):
        call()


def test_split_dispatches_on_a_method_named_in_data():
    weights = {"a": D(50), "b": D(50)}

    assert split(D("1.01"), "fixed", weights, currency="USD").amounts() == {"a": D("0.51"), "b": D("0.50")}
    assert split(D("1.01"), "even", {"a": D(9), "b": D(1)}, currency="USD").amounts() == {
        "a": D("0.51"),
        "b": D("0.50"),
    }
    assert split(D("1.00"), "usage", {"a": D(9), "b": D(1)}, currency="USD").method is SplitMethod.USAGE
    with pytest.raises(ValueError):
        split(D("1"), "by-vibes", weights, currency="USD")


def test_minor_units():
    assert [minor_unit_places(c) for c in ("USD", "EUR", "JPY", "KRW", "KWD")] == [2, 2, 0, 0, 3]


def test_round_preserving_sum_keeps_the_rounded_total():
    # 1.005 + 2.005 - 0.333 = 2.677 -> 2.68 = 268 cents. Floors (cents): 100, 200, -34 = 266, 2 to give.
    # Remainders: a .5, b .5, c .7 -> c then a (a before b on the tie). a 1.01, b 2.00, c -0.33.

    rounded = round_preserving_sum({"a": D("1.005"), "b": D("2.005"), "c": D("-0.333")})

    assert rounded == {"a": D("1.01"), "b": D("2.00"), "c": D("-0.33")}


names = st.text(alphabet="abcdefghij", min_size=1, max_size=4)
weights = st.dictionaries(names, st.decimals(min_value=0, max_value=10**6, places=3), min_size=1, max_size=12)
places = st.integers(min_value=0, max_value=4)


@settings(max_examples=300, deadline=None)
@given(units=st.integers(min_value=-(10**12), max_value=10**12), weights=weights, places=places)
def test_shares_sum_to_the_pool_and_stay_within_one_minor_unit_of_exact(units, weights, places):
    amount = Decimal(units).scaleb(-places)
    total = sum(weights.values())

    shares = apportion(amount, weights, places=places, zero_weights="even")

    assert sum(shares.values()) == amount
    assert set(shares) == set(weights)
    unit = Fraction(1, 10**places)
    for target, share in shares.items():
        exact = Fraction(amount) * (Fraction(weights[target]) / Fraction(total) if total else Fraction(1, len(weights)))
        assert abs(Fraction(share) - exact) < unit
        assert Fraction(share) * 10**places == int(Fraction(share) * 10**places)  # on the minor unit


@settings(max_examples=200, deadline=None)
@given(units=st.integers(min_value=0, max_value=10**9), weights=weights)
def test_a_credit_is_the_mirror_image_and_input_order_does_not_matter(units, weights):
    amount = Decimal(units).scaleb(-2)
    reversed_weights = dict(reversed(list(weights.items())))

    charge = apportion(amount, weights, zero_weights="even")
    credit = apportion(-amount, reversed_weights, zero_weights="even")

    assert credit == {target: -share for target, share in charge.items()}


@settings(max_examples=200, deadline=None)
@given(amounts=st.dictionaries(names, st.decimals(min_value=-(10**6), max_value=10**6, places=6), max_size=12))
def test_round_preserving_sum_moves_each_amount_by_less_than_a_cent(amounts):
    rounded = round_preserving_sum(amounts)

    assert sum(rounded.values(), D(0)) == sum(amounts.values(), D(0)).quantize(D("0.01"))
    for key, value in rounded.items():
        assert abs(value - amounts[key]) < D("0.01")
