"""Forecast of daily cost with weekly seasonality, its backtest, and budget alerts."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from finops_allocation.forecast import (
    AlertBasis,
    DailyCost,
    ForecastError,
    backtest,
    check_budget,
    fit_holt_winters,
    forecast_period,
    holt_winters,
    seasonal_naive,
    seasonal_naive_with_trend,
)

D = Decimal
WEEK = [D(v) for v in ("120.00", "410.00", "430.00", "425.00", "415.00", "380.00", "95.00")]  # Sun..Sat
FEB_1 = date(2026, 2, 1)  # a Sunday; February 2026 is exactly four weeks
MAR_1 = date(2026, 3, 1)


def weekly(days: int, *, trend: Decimal = D(0)) -> list[Decimal]:
    return [WEEK[i % 7] + trend * i for i in range(days)]


def dated(amounts: list[Decimal], first: date) -> list[DailyCost]:
    return [DailyCost(first + timedelta(days=i), amount) for i, amount in enumerate(amounts)]


def test_a_perfectly_weekly_series_is_forecast_almost_exactly():
    history = weekly(56)

    forecast = holt_winters(history, 21)

    expected = weekly(77)[56:]
    assert max(abs(f - e) for f, e in zip(forecast, expected, strict=True)) < D("0.000001")


def test_a_weekly_series_with_a_linear_trend_is_forecast_almost_exactly():
    history = weekly(63, trend=D("1.5"))

    model = fit_holt_winters(history)
    forecast = model.forecast(14)

    expected = weekly(77, trend=D("1.5"))[63:]
    assert max(abs(f - e) for f, e in zip(forecast, expected, strict=True)) < D("0.000001")
    assert model.phi == 1  # the undamped trend fits a straight line exactly, so the grid must pick it


def test_holt_winters_refuses_less_than_two_weeks():
    with pytest.raises(ForecastError, match="at least 14 days of history, got 13"):
        holt_winters(weekly(13), 7)


def test_seasonal_naive_repeats_last_week_and_the_trend_variant_adds_the_weekly_drift():
    history = weekly(14, trend=D(1))  # day i is WEEK[i % 7] + i, so each week is 7 higher than the last

    naive = seasonal_naive(history, 8)
    drifting = seasonal_naive_with_trend(history, 8)

    # Last week is days 7..13: WEEK[k] + 7 + k. Day 14 + h is predicted as WEEK[h % 7] + 7 + h % 7 (naive),
    # plus 7 per week ahead with the trend (the mean drift is 49 / 7 = 7 per day over a week).
    assert naive == [WEEK[h % 7] + 7 + h % 7 for h in range(8)]
    assert drifting == [WEEK[h % 7] + 7 + h % 7 + 7 * (h // 7 + 1) for h in range(8)]
    assert drifting == weekly(22, trend=D(1))[14:]


def test_backtest_mape_by_hand():
    # A forecaster that always says 100, on actuals 80, 100, 125, 0, 200 with horizon 1 and origins at day 1..4:
    # errors |80-100|/80 = .25 is day 0 (not an origin), so days 1..4: 0, .2, skipped (actual 0), .5
    # -> MAPE = (0 + 0.2 + 0.5) / 3 = 23.33 %
    series = [D(80), D(100), D(125), D(0), D(200)]

    result = backtest(series, horizon=1, origins=4, forecaster=lambda history, horizon: [D(100)] * horizon)

    assert result.mape == D("23.33")
    assert (result.origins, result.points) == (4, 3)


def test_backtest_of_a_perfectly_weekly_series_has_no_error():
    result = backtest(weekly(70), horizon=7, origins=5, step=7)

    assert result.mape == D("0.00") and result.points == 35


def test_backtest_refuses_a_window_that_does_not_fit():
    # 20 days, horizon 7, 14 origins one day apart: the first origin would be day 20 - 7 - 13 = 0, no history.
    with pytest.raises(ForecastError, match="cannot hold 14 origins"):
        backtest(weekly(20), horizon=7, origins=14)


def test_forecast_period_adds_actual_days_to_forecast_days_up_to_the_period_end():
    # Four weeks before February, then Feb 1..10 at the same weekly pattern. Actual: Feb 1..10 = one week (2275)
    # + Sun, Mon, Tue (120 + 410 + 430 = 960) = 3235. The 18 days left (Feb 11..28) are forecast exactly as the
    # pattern, so the period comes to four weeks: 4 * 2275 = 9100.
    history = dated(weekly(38), FEB_1 - timedelta(days=28))

    result = forecast_period(history, period_start=FEB_1, period_end=MAR_1)

    assert result.actual == D("3235.00")
    assert [entry.day for entry in result.remaining] == [date(2026, 2, d) for d in range(11, 29)]
    assert result.projected == D("9100.00")
    assert all(entry.amount == entry.amount.quantize(D("0.01")) for entry in result.remaining)


def test_forecast_period_on_the_last_day_has_nothing_left_to_forecast():
    history = dated(weekly(56), FEB_1 - timedelta(days=28))

    result = forecast_period(history, period_start=FEB_1, period_end=MAR_1)

    assert result.remaining == () and result.projected == result.actual == D("9100.00")


def test_forecast_period_refuses_gaps():
    history = dated(weekly(30), FEB_1 - timedelta(days=20))
    del history[5]

    with pytest.raises(ForecastError, match="no gaps"):
        forecast_period(history, period_start=FEB_1, period_end=MAR_1)


def test_budget_thresholds_by_hand():
    budget = D("1000.00")

    [eighty] = check_budget(budget=budget, actual=D("700"), forecast=D("999.99"), currency="USD")
    assert (eighty.threshold, eighty.basis, eighty.amount, eighty.threshold_amount) == (
        D("0.8"),
        AlertBasis.FORECAST,
        D("999.99"),
        D("800.000"),
    )
    eighty, hundred = check_budget(budget=budget, actual=D("850"), forecast=D("1000.00"), currency="USD")
    assert (eighty.basis, eighty.amount) == (AlertBasis.ACTUAL, D("850"))
    assert (hundred.threshold, hundred.basis, hundred.amount) == (D("1"), AlertBasis.FORECAST, D("1000.00"))
    assert check_budget(budget=budget, actual=D("10"), forecast=D("799.99"), currency="USD") == ()


def test_budget_alert_fires_on_the_day_the_forecast_crosses_the_budget_and_not_before():
    # Four weeks of the usual pattern before February, a February budget of 9,500 (the usual month is 9,100).
    # Up to Feb 8 the projection is exactly the usual 9,100, under budget: no alert. On Feb 9 (a Monday) spend
    # jumps by 60 % on weekdays: the actual stays under budget for a while, but the forecast of the month crosses
    # it that day, and from then on the alert is on the forecast until the actual itself crosses.
    usual = weekly(28)
    february = [v * D("1.6") if d >= 8 and v > 200 else v for d, v in enumerate(weekly(28))]
    days = dated(usual + february, FEB_1 - timedelta(days=28))
    budget = D("9500.00")

    fired_on: dict[date, tuple] = {}
    for today in range(28, 56):
        known = days[: today + 1]
        projection = forecast_period(known, period_start=FEB_1, period_end=MAR_1)
        alerts = check_budget(
            budget=budget, actual=projection.actual, forecast=projection.projected, currency="USD", thresholds=[D(1)]
        )
        assert bool(alerts) == (projection.projected >= budget)  # fires exactly when the projection crosses
        if alerts:
            fired_on[known[-1].day] = (alerts[0].basis, projection.actual, projection.projected)

    first = min(fired_on)
    assert first == date(2026, 2, 9)
    basis, actual, projected = fired_on[first]
    assert basis is AlertBasis.FORECAST and actual < budget <= projected
    assert all(day in fired_on for day in (first + timedelta(days=n) for n in range((MAR_1 - first).days)))
    assert fired_on[date(2026, 2, 28)][0] is AlertBasis.ACTUAL


def test_budget_refuses_nonsense():
    with pytest.raises(ForecastError, match="positive"):
        check_budget(budget=D(0), actual=D(1), forecast=D(1), currency="USD")
    with pytest.raises(ForecastError, match="fractions"):
        check_budget(budget=D(1), actual=D(1), forecast=D(1), currency="USD", thresholds=[D("0.8"), D(-1)])
