"""Daily cost forecast to the end of a period, respecting weekly seasonality, and budget alerts on it.

The model is additive Holt-Winters (level, damped trend, a 7-day season), its smoothing parameters chosen from a
small grid by the one-step-ahead squared error on the history; seasonal-naive (the same weekday last week) is the
baseline the backtest compares it with. Arithmetic is Decimal throughout, so the same history always gives the
same forecast on every machine, and forecasts come out rounded to the currency's minor unit.

A series is a plain sequence of daily amounts, oldest first, one per calendar day with no gaps; `forecast_period`
takes dated days and checks that.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum

SEASON = 7
"""Days in a season: cost follows the working week."""

Forecaster = Callable[[Sequence[Decimal], int], list[Decimal]]
"""history, horizon -> the next `horizon` daily amounts."""

_GRID_ALPHA = tuple(Decimal(v) for v in ("0.1", "0.3", "0.5", "0.8"))
_GRID_BETA = tuple(Decimal(v) for v in ("0", "0.05", "0.15"))
_GRID_GAMMA = tuple(Decimal(v) for v in ("0.05", "0.2", "0.4"))
_GRID_PHI = tuple(Decimal(v) for v in ("1", "0.9"))
DEFAULT_THRESHOLDS = (Decimal("0.8"), Decimal("1"))
"""Budget thresholds as fractions of the budget: 80 % and 100 %."""


class ForecastError(ValueError):
    """A history that cannot be forecast; the message says what was wrong and what to do."""


@dataclass(frozen=True, slots=True)
class HoltWinters:
    """A fitted additive Holt-Winters model: its parameters, its state after the last day, and its in-sample error."""

    alpha: Decimal
    beta: Decimal
    gamma: Decimal
    phi: Decimal
    level: Decimal
    trend: Decimal
    seasonals: tuple[Decimal, ...]  # seasonals[0] belongs to the day after the last day of history
    sse: Decimal

    def forecast(self, horizon: int) -> list[Decimal]:
        """The next `horizon` days, unrounded."""
        out: list[Decimal] = []
        damped = Decimal(0)
        power = Decimal(1)
        for h in range(horizon):
            power *= self.phi
            damped += power
            out.append(self.level + damped * self.trend + self.seasonals[h % len(self.seasonals)])
        return out


def fit_holt_winters(history: Sequence[Decimal], *, season: int = SEASON) -> HoltWinters:
    """Fit additive Holt-Winters with a damped trend; needs at least two full seasons of history."""
    values = _checked(history, minimum=2 * season, what="Holt-Winters")
    best: HoltWinters | None = None
    for alpha, beta, gamma, phi in itertools.product(_GRID_ALPHA, _GRID_BETA, _GRID_GAMMA, _GRID_PHI):
        model = _run(values, season, alpha, beta, gamma, phi)
        if best is None or model.sse < best.sse:  # strict: the first of equal fits wins, so the choice is stable
            best = model
    assert best is not None
    return best


def holt_winters(history: Sequence[Decimal], horizon: int) -> list[Decimal]:
    """The next `horizon` days by Holt-Winters with a 7-day season, unrounded."""
    return fit_holt_winters(history).forecast(horizon)


def seasonal_naive(history: Sequence[Decimal], horizon: int) -> list[Decimal]:
    """The next `horizon` days, each equal to the same weekday in the last week of history (the baseline)."""
    values = _checked(history, minimum=SEASON, what="seasonal-naive")
    last_week = values[-SEASON:]
    return [last_week[h % SEASON] for h in range(horizon)]


def seasonal_naive_with_trend(history: Sequence[Decimal], horizon: int) -> list[Decimal]:
    """Seasonal-naive plus the mean week-over-week change of the last two weeks, per week ahead."""
    values = _checked(history, minimum=2 * SEASON, what="seasonal-naive with trend")
    weekly_drift = (sum(values[-SEASON:]) - sum(values[-2 * SEASON : -SEASON])) / SEASON
    last_week = values[-SEASON:]
    return [last_week[h % SEASON] + weekly_drift * (h // SEASON + 1) for h in range(horizon)]


@dataclass(frozen=True, slots=True)
class Backtest:
    """Forecast error over rolling origins: MAPE in percent over every forecast day whose actual is not zero."""

    mape: Decimal
    origins: int
    horizon: int
    points: int


def backtest(
    series: Sequence[Decimal],
    *,
    horizon: int,
    origins: int,
    step: int = 1,
    forecaster: Forecaster = holt_winters,
) -> Backtest:
    """Forecast `horizon` days from each of `origins` rolling origins `step` days apart, the last one ending on
    the last day of the series, and report the mean absolute percentage error against what happened."""
    values = _checked(series, minimum=1, what="backtest")
    if horizon < 1 or origins < 1 or step < 1:
        raise ForecastError(f"horizon, origins and step must be at least 1, got {horizon}, {origins}, {step}")
    first = len(values) - horizon - (origins - 1) * step
    if first < 1:
        raise ForecastError(
            f"{len(values)} days cannot hold {origins} origins {step} days apart with a {horizon}-day horizon; "
            "ask for fewer origins or a shorter horizon"
        )
    errors: list[Decimal] = []
    for origin in range(first, len(values) - horizon + 1, step):
        predicted = forecaster(values[:origin], horizon)
        for actual, guess in zip(values[origin : origin + horizon], predicted, strict=True):
            if actual != 0:
                errors.append(abs(actual - guess) / abs(actual))
    if not errors:
        raise ForecastError("every actual in the backtest window is zero, so the percentage error is undefined")
    mape = (sum(errors) / len(errors) * 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    return Backtest(mape=mape, origins=origins, horizon=horizon, points=len(errors))


@dataclass(frozen=True, slots=True)
class DailyCost:
    """The cost of one calendar day."""

    day: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PeriodForecast:
    """Actual cost of a period so far, the forecast of its remaining days, and their sum."""

    period_start: date
    period_end: date  # exclusive, as FOCUS BillingPeriodEnd
    actual: Decimal
    remaining: tuple[DailyCost, ...]
    projected: Decimal


def forecast_period(
    history: Sequence[DailyCost],
    *,
    period_start: date,
    period_end: date,
    places: int = 2,
    forecaster: Forecaster = holt_winters,
) -> PeriodForecast:
    """Forecast a period's total: actual days inside the period plus a forecast of each day left to `period_end`.

    History may start before the period (the model learns the week from it); it must be contiguous and end
    inside the period. Forecast days are rounded to `places` decimals and never go below zero when no history
    day did.
    """
    if not history:
        raise ForecastError("no history to forecast from")
    if period_end <= period_start:
        raise ForecastError(f"period end {period_end} must be after its start {period_start}")
    days = [entry.day for entry in history]
    for before, after in itertools.pairwise(days):
        if after - before != timedelta(days=1):
            raise ForecastError(
                f"history must be one entry per day with no gaps; {before} is followed by {after}. "
                "Fill missing days with their cost (0 if nothing was spent)"
            )
    last = days[-1]
    if not period_start <= last < period_end:
        raise ForecastError(f"history ends on {last}, outside the period {period_start} to {period_end}")
    amounts = [entry.amount for entry in history]
    actual = sum((entry.amount for entry in history if entry.day >= period_start), Decimal(0))
    left = (period_end - last).days - 1
    floor_at_zero = all(amount >= 0 for amount in amounts)
    quantum = Decimal(1).scaleb(-places)
    remaining: list[DailyCost] = []
    for offset, value in enumerate(forecaster(amounts, left) if left else [], start=1):
        value = max(value, Decimal(0)) if floor_at_zero else value
        remaining.append(DailyCost(last + timedelta(days=offset), value.quantize(quantum, ROUND_HALF_EVEN)))
    projected = actual + sum((entry.amount for entry in remaining), Decimal(0))
    return PeriodForecast(period_start, period_end, actual, tuple(remaining), projected)


class AlertBasis(StrEnum):
    ACTUAL = "actual"
    FORECAST = "forecast"


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A budget threshold crossed, by the actual cost so far or by the forecast of the period's total."""

    threshold: Decimal  # a fraction of the budget: 0.8 is 80 %
    basis: AlertBasis
    amount: Decimal  # the actual or forecast amount that crossed
    threshold_amount: Decimal  # budget * threshold
    budget: Decimal
    currency: str


def check_budget(
    *,
    budget: Decimal,
    actual: Decimal,
    forecast: Decimal,
    currency: str,
    thresholds: Sequence[Decimal] = DEFAULT_THRESHOLDS,
) -> tuple[BudgetAlert, ...]:
    """The thresholds crossed (amount >= budget * threshold), lowest threshold first.

    A threshold already crossed by the actual cost gives one alert on the actual; otherwise one crossed by the
    forecast gives one alert on the forecast. The caller publishes each (budget, threshold, basis) once per
    period, so an alert on the forecast is followed by one on the actual when the money is really spent.
    """
    if budget <= 0:
        raise ForecastError(f"a budget must be positive, got {budget}")
    if any(threshold <= 0 for threshold in thresholds):
        raise ForecastError(f"thresholds are positive fractions of the budget (0.8 for 80 %), got {list(thresholds)}")
    alerts: list[BudgetAlert] = []
    for threshold in sorted(set(thresholds)):
        line = budget * threshold
        if actual >= line:
            alerts.append(BudgetAlert(threshold, AlertBasis.ACTUAL, actual, line, budget, currency))
        elif forecast >= line:
            alerts.append(BudgetAlert(threshold, AlertBasis.FORECAST, forecast, line, budget, currency))
    return tuple(alerts)


def _run(
    values: Sequence[Decimal], season: int, alpha: Decimal, beta: Decimal, gamma: Decimal, phi: Decimal
) -> HoltWinters:
    # Start from the first two seasons: trend from the change of their means, level at the end of the first
    # season, seasonals as the first season's deviations from that trend line. A series that is exactly
    # linear plus a weekly pattern is then fitted with zero error from the first step.
    with localcontext() as ctx:
        ctx.prec = 28
        first = sum(values[:season]) / season
        second = sum(values[season : 2 * season]) / season
        trend = (second - first) / season
        middle = Decimal(season - 1) / 2
        seasonals = [values[i] - (first + (i - middle) * trend) for i in range(season)]
        level = first + middle * trend
        sse = Decimal(0)
        one_minus_alpha, one_minus_beta, one_minus_gamma = 1 - alpha, 1 - beta, 1 - gamma
        for t in range(season, len(values)):
            s = seasonals[t % season]
            damped = phi * trend
            error = values[t] - (level + damped + s)
            sse += error * error
            new_level = alpha * (values[t] - s) + one_minus_alpha * (level + damped)
            trend = beta * (new_level - level) + one_minus_beta * damped
            seasonals[t % season] = gamma * (values[t] - new_level) + one_minus_gamma * s
            level = new_level
        n = len(values)
        ahead = tuple(seasonals[(n + h) % season] for h in range(season))
    return HoltWinters(alpha, beta, gamma, phi, level, trend, ahead, sse)


def _checked(series: Sequence[Decimal], *, minimum: int, what: str) -> list[Decimal]:
    values = list(series)
    if len(values) < minimum:
        raise ForecastError(f"{what} needs at least {minimum} days of history, got {len(values)}")
    for i, value in enumerate(values):
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise ForecastError(f"day {i}: amounts must be Decimal, got {type(value).__name__} {value!r}")
    return [Decimal(value) for value in values]
