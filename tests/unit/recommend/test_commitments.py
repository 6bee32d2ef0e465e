"""Hand-worked examples of the commitment optimizer: the quantile rule, the KPIs, instrument choice and laddering."""

from decimal import Decimal

import numpy as np
import pytest

from finops_recommend.commitments import (
    AwsStyle,
    Forecasting,
    Settings,
    Tranche,
    evaluate,
    hindsight,
    kpis,
    plan,
    plan_pool,
    quantile_commitment,
    robust_trend,
    simulate,
)
from finops_recommend.prices import Instrument

ONE_YEAR = Instrument("1y", 12, 0.28)
THREE_YEARS = Instrument("3y", 36, 0.50)
BOTH = (ONE_YEAR, THREE_YEARS)
DAY = 24  # short "months" keep the exact hourly LP small; the economics are in months whatever their length


def cost(usage: np.ndarray, commitment: float, discount: float) -> float:
    return float(((1 - discount) * commitment + np.maximum(usage - commitment, 0)).sum())


def test_quantile_rule_raises_the_commitment_while_usage_exceeds_it_in_more_than_1_minus_d_of_hours():
    # Given half the hours at 100 and half at 40: a unit between 40 and 100 saves 1 in half the hours
    usage = np.array([100.0, 40.0] * 10)

    # When the discount is 60%, a unit costs 0.4 every hour, less than the 0.5 it saves on average
    high = quantile_commitment(usage, 0.6)
    # and when it is 40%, it costs 0.6, more than it saves
    low = quantile_commitment(usage, 0.4)

    # Then commit up to 100 in the first case and only the floor of 40 in the second
    assert high == 100.0
    assert low == 40.0
    assert cost(usage, 100, 0.6) < cost(usage, 40, 0.6)
    assert cost(usage, 40, 0.4) < cost(usage, 100, 0.4)


def test_quantile_rule_is_the_brute_force_optimum_and_the_lowest_of_equal_optima():
    # Given four hours 1, 2, 3, 4 and a 50% discount, every level in [2, 3] costs the same (the slope is 0 there)
    usage = np.array([1.0, 2.0, 3.0, 4.0])

    # When
    x = quantile_commitment(usage, 0.5)

    # Then the rule picks 2, the least exposure for the same cost, and nothing on a fine grid does better
    assert x == 2.0
    grid = np.linspace(0, 5, 501)
    assert cost(usage, x, 0.5) == pytest.approx(min(cost(usage, g, 0.5) for g in grid))
    assert cost(usage, 2.5, 0.5) == pytest.approx(cost(usage, 2.0, 0.5))


def test_the_hindsight_lp_with_one_instrument_over_one_term_is_the_quantile_rule():
    # Given one month of noisy usage and a one-month instrument (0.31 x 730 hours is not a whole number of
    # hours, so the optimum is one level, not a range)
    usage = np.random.default_rng(5).gamma(4.0, 25.0, 730)
    monthly = Instrument("1m", 1, 0.31)

    # When
    tranches = hindsight(usage, [monthly])

    # Then the LP buys the 31%-quantile, and the result costs what the rule's does
    assert len(tranches) == 1
    assert float(tranches[0].amount) == pytest.approx(quantile_commitment(usage, 0.31), rel=1e-6)
    assert float(evaluate(usage, tranches).cost) == pytest.approx(cost(usage, quantile_commitment(usage, 0.31), 0.31))


def test_kpis_by_hand():
    # Given four hours of usage 10, 10, 4, 0 and a commitment covering 6 per hour at 50% off
    usage = [10.0, 10.0, 4.0, 0.0]

    # When
    k = kpis(usage, [[6.0, 6.0, 6.0, 6.0]], [0.5])

    # Then: on-demand equivalent 24; commitments cost 0.5 x 6 x 4 = 12; above them 4 + 4 goes on demand;
    # they covered 6 + 6 + 4 + 0 = 16 of 24 they could; 2 + 6 unused units cost 0.5 each
    assert k.on_demand_equivalent == 24.0
    assert k.commitment_cost == 12.0
    assert k.on_demand_cost == 8.0
    assert k.savings == 4.0
    assert k.esr == pytest.approx(4 / 24)
    assert k.coverage == pytest.approx(16 / 24)
    assert k.utilization == pytest.approx(16 / 24)
    assert k.unused_commitment_cost == 4.0


def test_usage_fills_the_deepest_discount_first_so_waste_falls_on_the_shallow_one():
    # Given 5 of a 50%-off and 5 of a 30%-off commitment, and one hour using 6
    k = kpis([6.0], [[5.0], [5.0]], [0.5, 0.3])

    # Then the 50% one is used whole, the 30% one for 1: its 4 unused units cost 0.7 each
    assert k.covered_usage == 6.0
    assert float(k.unused_commitment_cost) == pytest.approx(2.8)
    assert float(k.cost) == pytest.approx(0.5 * 5 + 0.7 * 5)


def test_no_commitment_means_no_savings_and_full_utilization_by_convention():
    k = evaluate([3.0, 4.0], [])

    assert k.esr == 0.0
    assert k.coverage == 0.0
    assert k.utilization == 1.0


@pytest.mark.parametrize(
    ("months_used", "expected"),
    [
        (36, {"3y": 100.0}),  # 36 x 0.5 = 18 beats three 1y at 3 x 12 x 0.72 = 25.92
        (12, {"1y": 100.0}),  # one 1y costs 8.64 for 12 of use; a 3y would cost 18
        (24, {"1y": 200.0}),  # two 1y cost 17.28, less than one 3y at 18: a 1y at month 0 and one at month 12
        (30, {"3y": 100.0}),  # 3y at 18 saves 12; two 1y and 6 months on demand save only 6.72
    ],
)
def test_hindsight_chooses_between_one_and_three_years_by_how_long_usage_lasts(months_used, expected):
    # Given 100 per hour for `months_used` months of a 36-month horizon, then nothing
    usage = np.zeros(36 * DAY)
    usage[: months_used * DAY] = 100.0

    # When
    tranches = hindsight(usage, BOTH, hours_per_month=DAY)

    # Then
    bought: dict[str, float] = {}
    for t in tranches:
        bought[t.instrument.name] = bought.get(t.instrument.name, 0.0) + float(t.amount)
    assert bought == pytest.approx(expected)
    if months_used == 24:
        assert sorted(t.start_month for t in tranches) == [0, 12]


def test_forecasting_picks_three_years_for_flat_usage_and_one_year_for_a_decline():
    # Given twelve weeks of flat usage, and twelve weeks of usage falling by a tenth
    hours = 84 * 24
    flat = np.full(hours, 200.0)
    falling = np.linspace(200.0, 180.0, hours)

    # When
    flat_plan = plan_pool("flat", flat, BOTH)
    falling_plan = plan_pool("falling", falling, BOTH)

    # Then flat usage is worth three years in full; a decline that empties the pool within the 3-year term is
    # cheaper to cover with one year at a time (a unit used 11 months: 1y costs 8.64, 3y costs 18)
    now = [t for t in flat_plan.tranches if t.start_month == 0]
    assert [(t.instrument, t.covered_usage_per_hour) for t in now] == [("3y", Decimal("200.0000"))]
    bought = {t.instrument: t.covered_usage_per_hour for t in falling_plan.tranches if t.start_month == 0}
    assert bought.get("1y", 0) > bought.get("3y", 0)
    assert falling_plan.evidence.trend_significant
    assert falling_plan.evidence.trend_per_month < 0


def test_plan_anticipates_an_expiry_with_a_tranche_at_the_month_it_ends():
    # Given flat usage of 100 and a 1-year commitment of 100 bought 10 months ago (it ends in 2 months)
    history = np.full(60 * 24, 100.0)
    held = [Tranche(ONE_YEAR, -10, 100.0)]

    # When
    result = plan_pool("pool", history, BOTH, existing=held)

    # Then nothing is bought now, and a replacement starts exactly when the old one ends
    assert result.evidence.existing_per_month[:3] == (100.0, 100.0, 0.0)
    assert [(t.start_month, t.instrument, t.covered_usage_per_hour) for t in result.tranches] == [
        (2, "3y", Decimal("100.0000"))
    ]


def test_monthly_tranches_ladder_a_growing_pool_and_replace_an_expiry_without_a_gap():
    # Given a pool growing steadily, with a 1-year commitment that ends at month 3
    hours_per_month = 730
    history = np.linspace(50.0, 100.0, 90 * 24)
    slope = history[1] - history[0]
    usage = history[-1] + slope * np.arange(1, 6 * hours_per_month + 1)
    held = [Tranche(ONE_YEAR, -9, 40.0)]

    # When ours runs month by month
    bought = simulate(Forecasting(BOTH), usage, history=history, held=held)

    # Then it buys a tranche every month (a ladder), and at month 3 it also replaces the 40 that ended
    assert sorted({t.start_month for t in bought}) == [0, 1, 2, 3, 4, 5]
    by_month = {m: sum(t.amount for t in bought if t.start_month == m) for m in range(6)}
    assert by_month[3] > by_month[2] + 30
    covered = [sum(t.amount for t in [*held, *bought] if t.active(m)) for m in range(6)]
    assert covered == sorted(covered)


def test_the_tranche_cap_and_coverage_target_bound_what_one_month_buys():
    # Given flat usage of 100 per hour
    history = np.full(60 * 24, 100.0)

    # When a tranche may cover at most half the median usage, or coverage may reach only 80%
    capped = plan_pool("p", history, BOTH, settings=Settings(tranche_cap=0.5))
    targeted = plan_pool("p", history, BOTH, settings=Settings(coverage_target=0.8))

    # Then
    assert sum(t.covered_usage_per_hour for t in capped.tranches if t.start_month == 0) == Decimal("50.0000")
    assert targeted.projected_coverage == pytest.approx(0.8, abs=1e-3)


def test_aws_style_buys_the_window_quantile_net_of_what_is_held():
    # Given the last 30 days alternate 100 and 40, and 30 already committed
    observed = np.array([100.0, 40.0] * 360)
    policy = AwsStyle(Instrument("1y", 12, 0.6))

    # When
    bought = policy(observed, [Tranche(ONE_YEAR, 0, 30.0)], 0)

    # Then it tops up to the 60%-quantile (100) only
    assert [(t.amount, t.start_month) for t in bought] == [(70.0, 0)]


def test_plan_reports_money_in_decimal_with_its_currency_and_a_first_month_break_even():
    # Given flat usage of 100 per hour for 60 days and no commitment
    history = np.full(60 * 24, 100.0)

    # When
    (result,) = plan({"compute": history}, BOTH, currency="EUR")

    # Then one 3y tranche covers 100 for 50 EUR per hour, saving 50 EUR per hour over 36 months of 730 hours
    (tranche,) = result.tranches
    assert tranche.commitment_per_hour.amount == Decimal("50.0000")
    assert tranche.commitment_per_hour.currency == "EUR"
    assert result.expected_savings.amount == Decimal("1314000.00")
    assert result.expected_monthly_savings.amount == Decimal("36500.00")
    assert result.break_even_month == 1
    assert (result.projected_esr, result.projected_coverage, result.projected_utilization) == (0.5, 1.0, 1.0)
    assert result.evidence.quantile_rule == {"1y": 100.0, "3y": 100.0}


def test_a_single_step_is_a_new_level_but_steady_growth_is_a_trend():
    # Given twelve weeks that step from 100 to 130 halfway, and twelve weeks that grow steadily from 100 to 130
    hours = 84 * 24
    step = np.where(np.arange(hours) < hours // 2, 100.0, 130.0)
    growth = np.linspace(100.0, 130.0, hours)

    # When
    stepped = robust_trend(step, days=84, z=3.0)
    grown = robust_trend(growth, days=84, z=3.0)

    # Then the step is not extrapolated; the growth is, at its own slope
    assert stepped.per_hour == 0.0
    assert grown.significant
    assert grown.per_hour == pytest.approx(30.0 / hours, rel=1e-3)
