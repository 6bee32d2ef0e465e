"""The forecasting policy's evidence: on steady usage it is the quantile rule itself (the provider-style number,
exactly), a level shift down is acted on at once, a weekend is not a shift, and a step is not a trend."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from finops_recommend.commitments import (
    AwsStyle,
    Forecasting,
    Settings,
    Tranche,
    forecast,
    level_shift,
    plan_pool,
    quantile_commitment,
    simulate,
)
from finops_recommend.prices import Instrument

ONE_YEAR = Instrument("1y", 12, 0.28)
THREE_YEARS = Instrument("3y", 36, 0.50)
BOTH = (ONE_YEAR, THREE_YEARS)


def weekly_pattern(days: int, level: float = 100.0, weekend: float = 0.7, seed: int = 1) -> np.ndarray:
    """Hourly usage with a daily cycle, lower weekends and a little noise."""
    t = np.arange(days * 24)
    daily = 1 + 0.2 * np.sin(2 * np.pi * t / 24)
    week = np.where((t // 24) % 7 >= 5, weekend, 1.0)
    return level * daily * week * np.random.default_rng(seed).lognormal(0, 0.03, t.size)


def test_on_steady_usage_ours_buys_exactly_what_the_provider_style_rule_buys():
    # Given five months of steady usage with daily and weekly cycles, after three months of history
    series = weekly_pattern(90 + 150)
    history, usage = series[: 90 * 24], series[90 * 24 :]

    # When both policies run month by month
    ours = simulate(Forecasting(BOTH), usage, history=history)
    aws = simulate(AwsStyle(THREE_YEARS), usage, history=history)

    # Then they buy the same tranches to the last digit: the flat forecast is the 50%-quantile of the same window
    assert [(t.instrument, t.start_month, t.amount) for t in ours] == [
        (t.instrument, t.start_month, t.amount) for t in aws
    ]
    assert float(ours[0].amount) == quantile_commitment(history[-720:], 0.5)


def test_a_step_down_is_a_level_shift_and_the_forecast_rests_on_the_days_after_it():
    # Given eight weeks at 100 that fall to 60 for the last ten days
    series = weekly_pattern(56)
    series[-10 * 24 :] *= 0.6

    # When
    shift = level_shift(series, days=56, z=5.0, min_change=0.1)
    fc = forecast(series, Settings())

    # Then the shift is found ten days back, and the forecast's window is those ten days only
    assert shift is not None and shift.down
    assert shift.hours_ago == 10 * 24
    assert 0.55 < shift.after / shift.before < 0.65
    assert fc.recent.size == 10 * 24
    assert fc.flat


def test_a_weekend_is_not_a_level_shift_and_steady_growth_is_a_trend_not_a_shift():
    # Given steady usage whose last two days are a weekend at 70%, and usage growing 40% over eight weeks
    weekend_last = weekly_pattern(54)  # 54 days: days 52 and 53 are a Saturday and a Sunday
    growing = np.linspace(100.0, 140.0, 56 * 24)

    # Then neither is a level shift
    assert level_shift(weekend_last, days=56, z=5.0, min_change=0.1) is None
    assert level_shift(growing, days=56, z=5.0, min_change=0.1) is None


def test_after_a_step_down_an_expiring_commitment_is_replaced_at_the_new_level_only():
    # Given usage that fell from 100 to 60 ten days ago, and a 1-year commitment of 100 ending next month
    series = weekly_pattern(60, weekend=1.0)
    series[-10 * 24 :] *= 0.6
    held = [Tranche(ONE_YEAR, -11, 100.0)]

    # When
    result = plan_pool("pool", series, BOTH, existing=held)

    # Then nothing is bought now, and the replacement at month 1 covers the new level's median, not the old one
    (replacement,) = result.tranches
    assert replacement.start_month == 1
    expected = quantile_commitment(series[-10 * 24 :], 0.5)
    assert replacement.covered_usage_per_hour == Decimal(repr(expected)).quantize(Decimal("0.0001"))
    assert float(replacement.covered_usage_per_hour) < 65
