"""Commitment optimizer: how much to commit, for how long, and when, for one commitment pool (`plan_pool`) or for
an account's flexible pool and its instance-family pools together (`plan_account`).

Units. Usage is the pool's hourly on-demand-equivalent spend (what the hour would have cost with no commitment).
A commitment is measured by the on-demand-equivalent usage it covers per hour: `amount` x costs
`(1 - discount) * x` every hour of its term, used or not, and covers up to x of that hour's usage. (An AWS Savings
Plan's "commitment per hour" is that `(1 - discount) * x`; `PlannedTranche.commitment_per_hour` reports it.)

Time. Hour 0 is the first hour of the horizon. Purchases happen at monthly decision points (a month is
`HOURS_PER_MONTH` hours) and a commitment bought at month m is active from month m for its whole term. When a
horizon ends before a term does, only the hours inside the horizon are counted, for every policy alike: that is how
a period's ESR is reported, and it lets the hindsight LP buy late commitments that only count until the end, which
makes it a stronger upper bound, not a weaker one.

The quantile rule. For one pool and one instrument with discount d, the hindsight-optimal flat commitment is the
d-quantile of hourly usage. Marginal analysis: one more unit of commitment costs (1 - d) in every hour, and saves 1
(one unit of on-demand usage) in exactly the hours whose usage exceeds the commitment. Raising the commitment pays
while the fraction of hours above it exceeds 1 - d, and stops paying where that fraction falls to 1 - d, i.e. at the
level that usage stays below in a fraction d of hours: the d-quantile. The cost is flat near that level, so a small
shortfall below it costs little (second order) while an excess over a usage decline costs in full (first order);
that asymmetry is why `Settings.risk_margin` can commit slightly below the quantile (off by default: see there).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.optimize import linprog

from finops_contracts.money import Money
from finops_recommend.prices import NO_UPFRONT, Instrument

HOURS_PER_MONTH = 730
"""8,760 hours a year over 12 months: the unit of the monthly decision points."""

CENT = Decimal("0.01")
PER_HOUR = Decimal("0.0001")

Floats = NDArray[np.float64]


class OptimizerFailed(RuntimeError):
    """HiGHS did not solve a commitment LP; the message carries its status. Check the usage series for NaN."""


def as_decimal(value: float | Decimal) -> Decimal:
    """A solver's float as the Decimal of its shortest round-trip text (no binary expansion); Decimals pass."""
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


@dataclass(frozen=True)
class Tranche:
    """A commitment bought at the start of month `start_month` covering `amount` of on-demand usage per hour."""

    instrument: Instrument
    start_month: int
    amount: Decimal
    """On-demand-equivalent money per hour; given as a float by the solvers, kept as the float's exact text."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", as_decimal(self.amount))

    @property
    def end_month(self) -> int:
        """First month no longer covered."""
        return self.start_month + self.instrument.term_months

    def active(self, month: int) -> bool:
        return self.start_month <= month < self.end_month


def quantile_commitment(usage: ArrayLike, discount: float) -> float:
    """The hindsight-optimal flat commitment for one instrument: the `discount`-quantile of hourly usage.

    Where a range of levels is optimal (the cost is flat between two usage values), the lowest one is returned:
    the same savings for less exposure.
    """
    u = np.asarray(usage, dtype=float)
    if not 0.0 < discount < 1.0:
        raise ValueError(f"discount must be a fraction in (0, 1), got {discount}")
    if u.size == 0:
        return 0.0
    return max(0.0, float(np.quantile(u, discount, method="inverted_cdf")))


# --- KPIs -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpis:
    """Commitment KPIs of a usage series under a commitment schedule (amounts in the usage's currency)."""

    on_demand_equivalent: Decimal
    """What the usage would have cost at on-demand rates."""
    commitment_cost: Decimal
    """What the commitments cost, used or not."""
    on_demand_cost: Decimal
    """Usage above the commitments, paid at on-demand rates."""
    covered_usage: float
    """On-demand-equivalent usage that commitments covered."""
    committed: float
    """On-demand-equivalent usage the commitments could have covered."""
    unused_commitment_cost: Decimal
    """Waste: the part of the commitment cost that covered nothing."""

    @property
    def cost(self) -> Decimal:
        return self.commitment_cost + self.on_demand_cost

    @property
    def savings(self) -> Decimal:
        return self.on_demand_equivalent - self.cost

    @property
    def esr(self) -> float:
        """Effective Savings Rate (FinOps Foundation): savings over on-demand-equivalent spend."""
        return float(self.savings / self.on_demand_equivalent) if self.on_demand_equivalent > 0 else 0.0

    @property
    def coverage(self) -> float:
        """Share of on-demand-equivalent usage that commitments covered."""
        return self.covered_usage / float(self.on_demand_equivalent) if self.on_demand_equivalent > 0 else 0.0

    @property
    def utilization(self) -> float:
        """Share of the committed capacity that usage used (1.0 when nothing is committed)."""
        return self.covered_usage / self.committed if self.committed > 0 else 1.0


def kpis(usage: ArrayLike, coverage: ArrayLike, discounts: ArrayLike, hours: ArrayLike | None = None) -> Kpis:
    """KPIs of hourly `usage` under `coverage[i, t]`, the amount of instrument i active at point t.

    Usage fills the commitments with the highest discount first (as AWS applies Savings Plans), so unused
    capacity, and the waste, falls on the cheapest-to-waste ones last. `hours` weighs each point (default 1 hour).
    """
    u = np.maximum(np.asarray(usage, dtype=float), 0.0)
    cov = np.atleast_2d(np.asarray(coverage, dtype=float))
    d = np.atleast_1d(np.asarray(discounts, dtype=float))
    w = np.ones_like(u) if hours is None else np.broadcast_to(np.asarray(hours, dtype=float), u.shape)
    order = np.argsort(-d, kind="stable")
    remaining = u.copy()
    commitment_cost = covered = committed = unused_cost = 0.0
    for i in order:
        c = np.broadcast_to(cov[i], u.shape)
        used = np.minimum(remaining, c)
        remaining -= used
        rate = 1.0 - float(d[i])
        commitment_cost += rate * float(np.dot(c, w))
        covered += float(np.dot(used, w))
        committed += float(np.dot(c, w))
        unused_cost += rate * float(np.dot(c - used, w))
    return Kpis(
        on_demand_equivalent=as_decimal(float(np.dot(u, w))),
        commitment_cost=as_decimal(commitment_cost),
        on_demand_cost=as_decimal(float(np.dot(remaining, w))),
        covered_usage=covered,
        committed=committed,
        unused_commitment_cost=as_decimal(unused_cost),
    )


def schedule(
    tranches: Sequence[Tranche], hours: int, *, start_month: int = 0, hours_per_month: int = HOURS_PER_MONTH
) -> tuple[Floats, Floats]:
    """Hourly coverage per instrument over `hours` hours from `start_month`: (coverage[i, t], discounts[i])."""
    instruments = sorted({t.instrument for t in tranches}, key=lambda i: (i.term_months, i.name, i.discount))
    index = {inst: i for i, inst in enumerate(instruments)}
    months = -(-hours // hours_per_month)
    monthly = np.zeros((len(instruments), months))
    for t in tranches:
        lo = max(t.start_month - start_month, 0)
        hi = min(t.end_month - start_month, months)
        if hi > lo:
            monthly[index[t.instrument], lo:hi] += float(t.amount)
    coverage = np.repeat(monthly, hours_per_month, axis=1)[:, :hours]
    return coverage, np.array([i.discount for i in instruments], dtype=float)


def evaluate(usage: ArrayLike, tranches: Sequence[Tranche], *, hours_per_month: int = HOURS_PER_MONTH) -> Kpis:
    """KPIs of an hourly usage series (hour 0 = start of month 0) under a list of tranches."""
    u = np.asarray(usage, dtype=float)
    if not tranches:
        return kpis(u, np.zeros((1, u.size)), [0.5])
    coverage, discounts = schedule(tranches, u.size, hours_per_month=hours_per_month)
    return kpis(u, coverage, discounts)


def active_amount(tranches: Sequence[Tranche], month: int) -> float:
    return sum(float(t.amount) for t in tranches if t.active(month))


# --- the LP ---------------------------------------------------------------------------------------------------


def _solve(
    points: Sequence[Floats],
    weights: Sequence[Floats],
    existing: Floats,
    instruments: Sequence[Instrument],
    *,
    buy_months: int,
    risk_margin: float = 0.0,
    tranche_cap: float | None = None,
    max_coverage: Floats | None = None,
    prefer_early: bool = False,
) -> Floats:
    """Minimum-cost purchases [instrument, month] over a horizon, each month's usage as points weighted in hours.

    Variables: y[i, m] >= 0 bought of instrument i at month m (m < buy_months); X[k] >= 0 the new coverage active in
    month k; s[k, j] >= 0 the usage of point j of month k left on demand. Minimise the commitment cost (with a risk
    premium per committed unit-hour) plus the on-demand cost, where s[k, j] + X[k] >= points[k][j] - existing[k] and
    X[k] = sum of y active in month k. Rows whose point is already covered by existing commitments are dropped.
    Risk controls: what one month buys, all instruments together, is at most `tranche_cap`; the total coverage
    of month k, existing included, is at most `max_coverage[k]`.
    """
    months = len(points)
    n_inst = len(instruments)
    month_hours = np.array([float(np.sum(w)) for w in weights])
    n_y = n_inst * buy_months
    # objective of y: (1 - d + margin) times the hours it is active inside the horizon
    c_y = np.empty(n_y)
    for i, inst in enumerate(instruments):
        for m in range(buy_months):
            active_hours = month_hours[m : m + inst.term_months].sum()
            c_y[i * buy_months + m] = (1.0 - inst.discount + risk_margin) * active_hours
    if prefer_early:
        # break ties between the same layer bought now or later: now, in one tranche
        c_y *= 1 + 1e-6 * np.tile(np.arange(buy_months), n_inst)
    rows_pts: list[Floats] = []
    rows_w: list[Floats] = []
    rows_month: list[Floats] = []
    for k in range(months):
        need = np.asarray(points[k], dtype=float) - existing[k]
        keep = need > 1e-12
        rows_pts.append(need[keep])
        rows_w.append(np.broadcast_to(np.asarray(weights[k], dtype=float), need.shape)[keep])
        rows_month.append(np.full(int(keep.sum()), k))
    need_all = np.concatenate(rows_pts) if rows_pts else np.empty(0)
    w_all = np.concatenate(rows_w) if rows_w else np.empty(0)
    k_all = np.concatenate(rows_month).astype(np.int64) if rows_month else np.empty(0, np.int64)
    n_s = need_all.size
    if n_s == 0:
        return np.zeros((n_inst, buy_months))
    n_x = months
    x0 = n_y
    s0 = n_y + n_x
    c = np.concatenate([c_y, np.zeros(n_x), w_all])
    # -s - X[k] <= -need
    r = np.arange(n_s)
    a_ub = sparse.csr_matrix(
        (np.full(2 * n_s, -1.0), (np.concatenate([r, r]), np.concatenate([s0 + r, x0 + k_all]))),
        shape=(n_s, n_y + n_x + n_s),
    )
    b_ub = -need_all
    if tranche_cap is not None:
        cap_r = np.repeat(np.arange(buy_months), n_inst)
        cap_c = np.array([i * buy_months + m for m in range(buy_months) for i in range(n_inst)])
        caps = sparse.csr_matrix((np.ones(cap_c.size), (cap_r, cap_c)), shape=(buy_months, n_y + n_x + n_s))
        a_ub = sparse.vstack([a_ub, caps], format="csr")
        b_ub = np.concatenate([b_ub, np.full(buy_months, max(tranche_cap, 0.0))])
    # X[k] - sum_{active y} y = 0
    eq_r, eq_c, eq_v = [], [], []
    for k in range(months):
        eq_r.append(k)
        eq_c.append(x0 + k)
        eq_v.append(1.0)
        for i, inst in enumerate(instruments):
            for m in range(max(0, k - inst.term_months + 1), min(k, buy_months - 1) + 1):
                eq_r.append(k)
                eq_c.append(i * buy_months + m)
                eq_v.append(-1.0)
    a_eq = sparse.csr_matrix((eq_v, (eq_r, eq_c)), shape=(months, n_y + n_x + n_s))
    upper = np.full(n_y + n_x + n_s, np.inf)
    if max_coverage is not None:
        upper[x0 : x0 + n_x] = np.maximum(np.asarray(max_coverage, dtype=float) - existing, 0.0)
    bounds = np.column_stack([np.zeros_like(upper), upper])
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.zeros(months), bounds=bounds, method="highs")
    if res.status != 0:
        raise OptimizerFailed(f"commitment LP not solved: {res.message}")
    return np.maximum(res.x[:n_y], 0.0).reshape(n_inst, buy_months)


def _tranches(purchases: Floats, instruments: Sequence[Instrument], offset: int = 0) -> list[Tranche]:
    out = []
    for i, inst in enumerate(instruments):
        for m in np.flatnonzero(purchases[i] > 1e-9):
            out.append(Tranche(inst, offset + int(m), float(purchases[i, m])))
    return out


def hindsight(
    usage: ArrayLike, instruments: Sequence[Instrument], *, hours_per_month: int = HOURS_PER_MONTH
) -> list[Tranche]:
    """The hindsight-optimal purchases (the upper bound): an LP over every hour of the horizon, exact."""
    u = np.maximum(np.asarray(usage, dtype=float), 0.0)
    months = -(-u.size // hours_per_month)
    points = [u[k * hours_per_month : (k + 1) * hours_per_month] for k in range(months)]
    weights = [np.ones_like(p) for p in points]
    return _tranches(_solve(points, weights, np.zeros(months), instruments, buy_months=months), instruments)


# --- policies -------------------------------------------------------------------------------------------------


Policy = Callable[[Floats, Sequence[Tranche], int], list[Tranche]]
"""A purchasing policy: given the usage observed so far, the tranches held and the month, what to buy now."""


@dataclass(frozen=True)
class AwsStyle:
    """The provider recommender's rule: each month, the optimum of the last 30 days for one instrument, net of
    what is already committed. No forecast, no expiry anticipation."""

    instrument: Instrument
    lookback_hours: int = 720

    def __call__(self, observed: Floats, held: Sequence[Tranche], month: int) -> list[Tranche]:
        window = observed[-self.lookback_hours :]
        if window.size == 0:
            return []
        extra = quantile_commitment(window, self.instrument.discount) - active_amount(held, month)
        return [Tranche(self.instrument, month, extra)] if extra > 1e-9 else []


@dataclass(frozen=True)
class Settings:
    """Knobs of the forecasting policy and of `plan`."""

    lookback_hours: int = 720
    """Recent usage whose distribution is forecast forward (30 days, as the provider recommenders)."""
    trend_days: int = 84
    """History the robust trend is fitted on (12 weeks)."""
    min_trend_days: int = 42
    """With less history than this (6 weeks), no trend is used: a month of data cannot tell a trend from a cycle."""
    trend_z: float = 3.0
    """A trend, up or down, is used only when it is this many standard errors from zero."""
    growth_z: float = 2.0
    """A significant rising trend is shrunk towards zero by this many standard errors before it is extrapolated."""
    growth_anticipation_hours: float = HOURS_PER_MONTH / 2
    """How far ahead an upward trend is extrapolated: to the middle of the month being bought for. Later growth
    is bought later, in later tranches, so a trend that stops costs nothing."""
    shift_days: int = 56
    """Days of history searched for a level shift down (a step that a trend does not explain). The forecast
    then rests on the days after it only, at once: committing less is the safe side. A step up is left to the
    lookback window, which reaches the new level within weeks."""
    shift_z: float = 5.0
    """A level shift counts when the step between the medians before and after is this many standard errors."""
    shift_min: float = 0.10
    """... and at least this share of the level before it."""
    risk_margin: float = 0.0
    """Risk premium per committed unit-hour, as a fraction of on-demand: commits at the (d - margin)-quantile,
    slightly below the quantile rule (second-order cost if usage holds, first-order saving if it falls). Off by
    default: on bench/commitments.py it made ours fall below the provider-style rule on steady usage and saved
    little on declines that no data announce (see the README)."""
    margin_fade_z: float = 2.0
    """The margin shrinks linearly to nothing as the rise in usage reaches this many standard errors: when usage
    grows, committing under the quantile is the likelier loss."""
    coverage_target: float = 1.0
    """Upper bound on the projected coverage of the month being bought for (1.0: no bound)."""
    tranche_cap: float = 1.5
    """A month's tranche covers at most this multiple of the forecast median hourly usage: room for a first
    purchase at the quantile, none for one that a burst in the lookback window inflated."""
    quantile_points: int = 24
    """Points that represent one month's forecast usage distribution in the LP, besides the exact quantiles the
    marginal rule lands on (24 buys the same as 40 on the benchmark, in two thirds of the time)."""
    joint_points: int = 144
    """Hours of the lookback window that represent a month when an account's pools are planned together."""
    horizon_months: int = 36
    """Months the LP plans over (at least the longest term)."""
    plan_months: int = 12
    """A plan lists the purchases of its first months: now, and the ones anticipated (expiries, declines) later."""


@dataclass(frozen=True)
class Trend:
    per_hour: float
    """Slope of usage, per hour (0.0 when not significant)."""
    raw_per_hour: float
    standard_error: float
    significant: bool


NO_TREND = Trend(0.0, 0.0, 0.0, False)


def robust_trend(history: Floats, *, days: int, z: float, growth_z: float | None = None, min_days: int = 42) -> Trend:
    """A trend in usage that holds week after week, per hour; zero unless significant.

    Two robust estimates over the last `days`: the Theil-Sen slope of daily means (efficient, tested against its
    standard error) and the median week-over-week change of weekly means (which ignores a single step: a workload
    that moved once, a migration or a new customer, is a new level, not a trend to extrapolate, whereas steady
    growth moves every week). The trend is the smaller of the two when they agree in sign and it is `z` standard
    errors from zero, else none; a rise is then shrunk by `growth_z` standard errors (a noisy rise adds little).
    """
    growth_z = z if growth_z is None else growth_z
    n_days = min(days, history.size // 24)
    weeks = n_days // 7
    if n_days < max(min_days, 21):
        return NO_TREND
    daily = history[history.size - n_days * 24 :].reshape(n_days, 24).mean(axis=1)
    i, j = np.triu_indices(n_days, 1)
    theil_sen = float(np.median((daily[j] - daily[i]) / (j - i))) / 24.0
    x = np.arange(n_days)
    resid = daily - theil_sen * 24.0 * x
    sigma = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    se = sigma * np.sqrt(12.0 / (n_days * (n_days**2 - 1))) / 24.0
    weekly = history[history.size - weeks * 168 :].reshape(weeks, 168).mean(axis=1)
    week_over_week = float(np.median(np.diff(weekly))) / 168.0
    agree = theil_sen * week_over_week > 0
    smaller = min(abs(theil_sen), abs(week_over_week)) if agree else 0.0
    significant = bool(agree and abs(theil_sen) > z * se and smaller > 0)
    if theil_sen < 0:
        slope = -smaller
    else:
        slope = max(0.0, smaller - growth_z * se)
        significant = bool(significant and slope > 0)  # a Python bool: evidence is JSON
    return Trend(float(slope) if significant else 0.0, float(theil_sen), float(se), significant)


@dataclass(frozen=True)
class Shift:
    """A level shift: usage stepped from one level to another `hours_ago` hours before the end of the history."""

    hours_ago: int
    before: float
    after: float
    z: float

    @property
    def down(self) -> bool:
        return self.after < self.before


def _weekday_adjusted(daily: Floats) -> Floats:
    """Daily means divided by their weekday's index (the weekday's median over the overall median), so that a
    weekend is not a step; unchanged with less than two weeks."""
    n = daily.size
    if n < 14:
        return daily
    overall = float(np.median(daily))
    if overall <= 0:
        return daily
    weekday = (np.arange(n) - n) % 7  # aligned on the last day, whatever weekday the history starts on
    index = np.array([float(np.median(daily[weekday == w])) / overall for w in range(7)])
    index = np.where(index > 0, index, 1.0)
    return daily / index[weekday]


def _running_medians(values: Floats) -> Floats:
    """The median of values[:i + 1] for every i (as numpy's median), by insertion into a sorted list."""
    ordered: list[float] = []
    out = np.empty(values.size)
    for i, v in enumerate(values.tolist()):
        bisect.insort(ordered, v)
        out[i] = (ordered[i // 2] + ordered[(i + 1) // 2]) / 2
    return out


def level_shift(
    history: Floats, *, days: int, z: float, min_change: float, min_days: int = 3, min_days_before: int = 7
) -> Shift | None:
    """The most significant single step in the (weekday-adjusted) daily means of the last `days`, if it is one.

    The split (`min_days_before` before it, so that the old level is a level, and `min_days` after) is where the
    days lie closest to their own side's median (least absolute deviations); the step, the difference of the two
    medians, is tested against the robust spread (MAD) of the days around them. It counts when it is `z` standard
    errors and `min_change` of the level before, and when a step fits the days better than a straight line does
    (so steady growth is left to the trend).
    """
    n = min(days, history.size // 24)
    if n < min_days + min_days_before:
        return None
    end = history.size
    daily = _weekday_adjusted(history[end - n * 24 :].reshape(n, 24).mean(axis=1))
    splits = np.arange(min_days_before, n - min_days + 1)
    before = _running_medians(daily)[splits - 1]  # median of daily[:split]
    after = _running_medians(daily[::-1])[n - splits - 1]  # median of daily[split:]
    levels = np.where(np.arange(n)[None, :] < splits[:, None], before[:, None], after[:, None])
    cost = np.abs(daily[None, :] - levels).sum(axis=1)  # least absolute deviations: where the step most likely is
    best = int(np.argmin(cost))
    split, a, b = int(splits[best]), float(before[best]), float(after[best])
    resid = daily - levels[best]
    scale = 1.4826 * float(np.median(np.abs(resid))) * np.sqrt(np.pi / 2)
    if scale <= 0:
        scale = 1e-9 * max(abs(a), abs(b), 1e-9)
    t = abs(b - a) / (scale * np.sqrt(1 / split + 1 / (n - split)))
    if t < z or abs(b - a) < min_change * max(a, 1e-12):
        return None
    x = np.arange(n, dtype=float)
    line = np.polyfit(x, daily, 1)
    step = np.where(x < split, a, b)
    if np.median(np.abs(daily - step)) >= np.median(np.abs(daily - np.polyval(line, x))):
        return None
    return Shift(hours_ago=(n - split) * 24, before=a, after=b, z=float(t))


@dataclass(frozen=True)
class Forecast:
    points: Floats
    """[month, j]: usage points of each forecast month."""
    weights: Floats
    """[j]: the share of a month's hours each point stands for (they add up to 1)."""
    trend: Trend
    recent: Floats
    """The hours the forecast rests on: the lookback window, or what followed a level shift in it."""
    shift: Shift | None = None

    @property
    def flat(self) -> bool:
        """No trend: every month ahead is the recent distribution itself."""
        return self.trend.per_hour == 0.0


def _grid(points: int, levels: Sequence[float]) -> tuple[Floats, Floats]:
    """Probabilities at which to take quantiles, and the probability mass each stands for: a uniform grid plus
    the exact `levels` (the quantiles the LP's marginal rule lands on), so that they are not rounded."""
    p = np.unique(np.concatenate([(np.arange(points) + 0.5) / points, np.clip(levels, 1e-6, 1 - 1e-6)]))
    edges = np.concatenate([[0.0], (p[1:] + p[:-1]) / 2, [1.0]])
    return p, np.diff(edges)


def forecast(
    history: ArrayLike, settings: Settings, *, levels: Sequence[float] = (), hours_per_month: int = HOURS_PER_MONTH
) -> Forecast:
    """Monthly usage distributions ahead: the recent distribution, de-trended to now, shifted by a robust trend.

    Recent means the lookback window, cut to what followed a level shift down when one is found; the trend is
    then fitted on the same stretch only, so a step is never read as a slope. A rising trend is carried only to
    the middle of the next month (the ladder buys later growth later); a falling trend is carried all the way,
    floored at zero: the forecast is pessimistic on purpose, since excess commitment costs in full and a
    shortfall costs little.
    """
    h = np.asarray(history, dtype=float)
    recent, trend, shift = _evidence(h, settings)
    if recent.size == 0:
        return Forecast(np.zeros((settings.horizon_months, 1)), np.ones(1), trend, recent, shift)
    base = recent + trend.per_hour * (recent.size - np.arange(recent.size))
    probs, weights = _grid(settings.quantile_points, levels)
    q = np.quantile(base, probs, method="inverted_cdf")
    step = _trend_steps(trend, settings, hours_per_month)
    return Forecast(np.maximum(q[None, :] + step[:, None], 0.0), weights, trend, recent, shift)


def _evidence(h: Floats, settings: Settings) -> tuple[Floats, Trend, Shift | None]:
    """The recent hours a forecast rests on, the trend fitted on them, and the level shift down that cut them."""
    shift = level_shift(h, days=settings.shift_days, z=settings.shift_z, min_change=settings.shift_min)
    if shift is not None and not shift.down:
        shift = None  # a step up reaches the lookback window's quantile within weeks; buying it sooner is a bet
    since = h[-shift.hours_ago :] if shift is not None else h
    trend = robust_trend(
        since,
        days=settings.trend_days,
        z=settings.trend_z,
        growth_z=settings.growth_z,
        min_days=settings.min_trend_days,
    )
    return since[-settings.lookback_hours :], trend, shift


def _trend_steps(trend: Trend, settings: Settings, hours_per_month: int) -> Floats:
    """How far the trend moves usage by the middle of each month ahead (growth only to the first month's)."""
    mid = np.arange(settings.horizon_months) * hours_per_month + hours_per_month / 2
    if trend.per_hour >= 0:
        return trend.per_hour * np.minimum(mid, settings.growth_anticipation_hours)
    return trend.per_hour * mid


def _coverage_level(points: Floats, weights: Floats, target: float) -> float:
    """The commitment whose coverage of these weighted points is `target`."""
    total = float(np.dot(points, weights))
    if target >= 1.0 or total <= 0:
        return float("inf")
    lo, hi = 0.0, float(points.max())
    for _ in range(50):
        mid = (lo + hi) / 2
        if float(np.dot(np.minimum(points, mid), weights)) / total < target:
            lo = mid
        else:
            hi = mid
    return hi


def _margin(settings: Settings, trend: Trend) -> float:
    """The risk margin, faded out as the evidence of growth (the slope's t-statistic) rises to margin_fade_z."""
    if trend.standard_error > 0:
        t = trend.raw_per_hour / trend.standard_error
    else:
        t = np.inf if trend.raw_per_hour > 0 else 0.0
    return settings.risk_margin * float(np.clip(1.0 - t / settings.margin_fade_z, 0.0, 1.0))


def observed_ceiling(recent: Floats, instruments: Sequence[Instrument]) -> float:
    """The most a plan may cover now: the d-quantile of the usage observed in its lookback window, d the deepest
    discount on offer. Past that level a unit of commitment idles in more than 1 - d of the hours seen, so it
    costs more than it saves on the evidence; growth that a trend forecasts is bought in a later month, once it
    has been observed, never ahead of it."""
    if recent.size == 0 or not instruments:
        return 0.0
    return quantile_commitment(recent, max(i.discount for i in instruments))


@dataclass(frozen=True)
class _Decision:
    forecast: Forecast
    existing: Floats
    purchases: Floats
    instruments: tuple[Instrument, ...]
    rule: bool
    """True when the forecast was flat and the purchases are the quantile rule's ladder (no LP needed)."""


def _flat_ladder(
    recent: Floats,
    existing: Floats,
    instruments: Sequence[Instrument],
    *,
    margin: float,
    cap: float,
    coverage_level: float,
) -> Floats:
    """The LP's solution when every month ahead has the recent distribution: the deepest discount at its
    quantile (for a flat forecast a layer worth any instrument is worth the deepest one, and the quantile rule
    says how many layers), topped up in each month where existing commitments fall below it. Computed by the
    rule itself, with the same quantile as the provider-style recommender, so that on steady usage the two buy
    exactly the same and ours can never lose to it there by a rounding."""
    best = max(range(len(instruments)), key=lambda i: (instruments[i].discount, -instruments[i].term_months))
    inst = instruments[best]
    level = min(quantile_commitment(recent, max(inst.discount - margin, 1e-6)), coverage_level)
    months = existing.size
    purchases = np.zeros((len(instruments), months))
    added = np.zeros(months)
    for k in range(months):
        need = level - existing[k] - added[k]
        if need > 1e-9:
            buy = min(need, max(cap, 0.0))
            purchases[best, k] = buy
            added[k : k + inst.term_months] += buy
    return purchases


def _decide(
    history: Floats,
    held: Sequence[Tranche],
    month: int,
    instruments: Sequence[Instrument],
    settings: Settings,
    hours_per_month: int,
) -> _Decision:
    levels = [i.discount - m for i in instruments for m in (0.0, settings.risk_margin)]
    fc = forecast(history, settings, levels=levels, hours_per_month=hours_per_month)
    horizon = settings.horizon_months
    existing = np.array([active_amount(held, month + k) for k in range(horizon)])
    median = float(np.median(fc.points[0]))
    margin = _margin(settings, fc.trend)
    coverage = np.array([_coverage_level(p, fc.weights, settings.coverage_target) for p in fc.points])
    coverage[0] = min(coverage[0], observed_ceiling(fc.recent, instruments))
    if fc.flat:
        purchases = _flat_ladder(
            fc.recent, existing, instruments, margin=margin, cap=settings.tranche_cap * median,
            coverage_level=float(coverage[0]),
        )  # fmt: skip
        return _Decision(fc, existing, purchases, tuple(instruments), rule=True)
    weights = [fc.weights * hours_per_month] * horizon
    purchases = _solve(
        list(fc.points),
        weights,
        existing,
        instruments,
        buy_months=horizon,
        risk_margin=margin,
        tranche_cap=settings.tranche_cap * median,
        max_coverage=coverage,
        prefer_early=True,
    )
    return _Decision(fc, existing, purchases, tuple(instruments), rule=False)


@dataclass(frozen=True)
class Forecasting:
    """Ours: each month, an LP on a pessimistic forecast chooses the tranche and its instrument.

    Rolling horizon: the LP plans every month of the next 36 with the commitments held (expiries included), and
    only this month's purchases are made; later ones are planned again next month with the usage seen by then.
    So tranches ladder month by month, an expiry is replaced in the month it ends, and the 1-year/3-year choice
    follows from how long the forecast says each layer of usage will last. Risk controls: a falling trend is
    extrapolated in full but a rising one only to the middle of the month bought for (shrunk by its standard
    error), the commitment sits at the (d - risk_margin)-quantile unless usage has been rising, one month's
    tranche is capped, and the projected coverage may be bounded by a target.
    """

    instruments: tuple[Instrument, ...]
    settings: Settings = field(default_factory=Settings)
    hours_per_month: int = HOURS_PER_MONTH

    def __call__(self, observed: Floats, held: Sequence[Tranche], month: int) -> list[Tranche]:
        if observed.size == 0:
            return []
        d = _decide(observed, held, month, self.instruments, self.settings, self.hours_per_month)
        return _tranches(d.purchases[:, :1], self.instruments, offset=month)


def simulate(
    policy: Policy,
    usage: ArrayLike,
    *,
    history: ArrayLike = (),
    held: Sequence[Tranche] = (),
    hours_per_month: int = HOURS_PER_MONTH,
) -> list[Tranche]:
    """Run a policy month by month over `usage`, each decision seeing `history` and the usage before it.

    Returns the tranches it bought; `held` are commitments owned before month 0 (negative start months allowed).
    """
    u = np.asarray(usage, dtype=float)
    h = np.asarray(history, dtype=float)
    series = np.concatenate([h, u])
    portfolio = list(held)
    bought: list[Tranche] = []
    for month in range(-(-u.size // hours_per_month)):
        seen = series[: h.size + month * hours_per_month]
        new = policy(seen, tuple(portfolio), month)
        portfolio.extend(new)
        bought.extend(new)
    return bought


# --- the plan -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedTranche:
    """A purchase in a plan. Month 0 is the month that starts at the end of the usage history."""

    instrument: str
    term_months: int
    discount: float
    start_month: int
    start: datetime | None
    covered_usage_per_hour: Decimal
    """On-demand-equivalent usage covered per hour, 4 decimals."""
    commitment_per_hour: Money
    """What the tranche costs per hour, used or not (an AWS Savings Plan's hourly commitment), 4 decimals."""
    payment: str = NO_UPFRONT
    price_discount: Decimal | None = None
    """The rate's own discount when `discount` is net of the cost of capital (an upfront payment)."""


@dataclass(frozen=True)
class Evidence:
    """What a plan rests on, for the person approving it."""

    history_hours: int
    lookback_hours: int
    recent_p10: float
    recent_p50: float
    recent_p90: float
    trend_per_month: float
    """Change in hourly usage per month found in the history (before the significance test)."""
    trend_significant: bool
    quantile_rule: Mapping[str, float]
    """Per instrument, the hindsight-optimal flat commitment on the lookback window (the quantile rule)."""
    existing_per_month: tuple[float, ...]
    """Coverage already held, per month ahead, expiries included."""
    forecast_median_per_month: tuple[float, ...]
    risk_margin: float
    coverage_target: float
    joint: Mapping[str, float] = field(default_factory=dict)
    """For a pool planned with the other pools of its account: the account-wide figures the choice rests on."""


@dataclass(frozen=True)
class PoolPlan:
    """A pool's purchase plan with its projected economics over `horizon_months` of the forecast."""

    pool: str
    tranches: tuple[PlannedTranche, ...]
    """Purchases, the ones to make now first (start_month 0), then those anticipated in the plan's first months."""
    horizon_months: int
    expected_savings: Money
    """Savings the planned tranches add over the horizon, against keeping only the existing commitments."""
    expected_monthly_savings: Money
    break_even_month: int | None
    """The first month (1-based) at whose end the plan's cumulative added savings are no longer negative."""
    projected_esr: float
    projected_coverage: float
    projected_utilization: float
    projected_unused_commitment_cost: Money
    evidence: Evidence


def _planned(t: Tranche, now: datetime | None, hours_per_month: float, currency: str) -> PlannedTranche:
    """A tranche as a plan states it: its start as a date, and its hourly commitment, (1 - the rate's discount) x
    the usage it covers, computed in Decimal from the discount's shortest text."""
    rate = t.instrument.rate_discount
    return PlannedTranche(
        instrument=t.instrument.name,
        term_months=t.instrument.term_months,
        discount=t.instrument.discount,
        start_month=t.start_month,
        start=None if now is None else now + timedelta(hours=t.start_month * hours_per_month),
        covered_usage_per_hour=t.amount.quantize(PER_HOUR, rounding=ROUND_HALF_EVEN),
        commitment_per_hour=_money((1 - rate) * t.amount, currency, PER_HOUR),
        payment=t.instrument.payment,
        price_discount=t.instrument.price_discount,
    )


def _money(value: float | Decimal, currency: str, unit: Decimal = CENT) -> Money:
    return Money(
        amount=(value if isinstance(value, Decimal) else Decimal(repr(float(value)))).quantize(
            unit, rounding=ROUND_HALF_EVEN
        ),
        currency=currency,
    )


def _monthly_cost(points: Floats, weights: Floats, hours: float, coverage: Floats, discounts: Floats) -> Floats:
    """Cost per forecast month (points weighted by shares of `hours`) under coverage[i, month]."""
    total_cov = coverage.sum(axis=0)
    on_demand = np.maximum(points - total_cov[:, None], 0.0) @ weights * hours
    commitment = ((1.0 - discounts)[:, None] * coverage).sum(axis=0) * hours
    return on_demand + commitment


def plan_pool(
    pool: str,
    history: ArrayLike,
    instruments: Sequence[Instrument],
    *,
    existing: Sequence[Tranche] = (),
    settings: Settings | None = None,
    currency: str = "USD",
    now: datetime | None = None,
    hours_per_month: int = HOURS_PER_MONTH,
) -> PoolPlan:
    """The purchase plan of one pool from its hourly on-demand-equivalent usage history.

    `existing` tranches count months relative to now (a tranche bought 5 months ago has start_month -5).
    """
    s = settings or Settings()
    h = np.asarray(history, dtype=float)
    insts = tuple(sorted(instruments, key=lambda i: i.term_months))
    d = _decide(h, existing, 0, insts, s, hours_per_month)
    fc, horizon = d.forecast, s.horizon_months
    new = [t for t in _tranches(d.purchases, insts) if t.start_month < s.plan_months]
    new.sort(key=lambda t: (t.start_month, t.instrument.term_months))

    def coverage_of(tranches: Sequence[Tranche]) -> tuple[Floats, Floats]:
        cov = np.zeros((len(insts), horizon))
        for t in tranches:
            i = insts.index(t.instrument) if t.instrument in insts else None
            if i is None:
                continue
            cov[i, max(t.start_month, 0) : max(min(t.end_month, horizon), 0)] += float(t.amount)
        return cov, np.array([i.discount for i in insts])

    held = [t for t in existing if t.instrument in insts]
    foreign = [t for t in existing if t.instrument not in insts]
    cov_before, disc = coverage_of(held)
    cov_after, _ = coverage_of(held + new)
    if foreign:
        # commitments of other instruments still cover usage: treat their coverage as a floor that is already paid
        extra = np.array([active_amount(foreign, k) for k in range(horizon)])
        cov_before = np.vstack([cov_before, extra])
        cov_after = np.vstack([cov_after, extra])
        disc = np.append(disc, np.mean([t.instrument.discount for t in foreign]))
    before = _monthly_cost(fc.points, fc.weights, hours_per_month, cov_before, disc)
    after = _monthly_cost(fc.points, fc.weights, hours_per_month, cov_after, disc)
    added = before - after
    cumulative = np.cumsum(added)
    break_even = None
    if new:
        nonneg = np.flatnonzero(cumulative >= -1e-9)
        # break-even is the first month from which the cumulative stays non-negative
        ok = [k for k in nonneg if np.all(cumulative[k:] >= -1e-9)]
        break_even = int(ok[0]) + 1 if ok else None

    flat = fc.points.reshape(-1)
    n = fc.points.shape[1]
    k = kpis(flat, np.repeat(cov_after, n, axis=1), disc, hours=np.tile(fc.weights, horizon) * hours_per_month)
    r = fc.recent if fc.recent.size else np.zeros(1)
    evidence = Evidence(
        history_hours=int(h.size),
        lookback_hours=int(fc.recent.size),
        recent_p10=float(np.quantile(r, 0.1)),
        recent_p50=float(np.quantile(r, 0.5)),
        recent_p90=float(np.quantile(r, 0.9)),
        trend_per_month=fc.trend.raw_per_hour * hours_per_month,
        trend_significant=fc.trend.significant,
        quantile_rule={i.name: quantile_commitment(r, i.discount) for i in insts},
        existing_per_month=tuple(float(x) for x in d.existing),
        forecast_median_per_month=tuple(float(x) for x in np.median(fc.points, axis=1)),
        risk_margin=s.risk_margin,
        coverage_target=s.coverage_target,
    )
    planned = tuple(_planned(t, now, hours_per_month, currency) for t in new)
    total_added = float(added.sum())
    return PoolPlan(
        pool=pool,
        tranches=planned,
        horizon_months=horizon,
        expected_savings=_money(total_added, currency),
        expected_monthly_savings=_money(total_added / horizon, currency),
        break_even_month=break_even,
        projected_esr=round(k.esr, 4),
        projected_coverage=round(k.coverage, 4),
        projected_utilization=round(k.utilization, 4),
        projected_unused_commitment_cost=_money(k.unused_commitment_cost, currency),
        evidence=evidence,
    )


def plan(
    usage_by_pool: Mapping[str, ArrayLike],
    instruments: Sequence[Instrument],
    *,
    existing: Mapping[str, Sequence[Tranche]] | None = None,
    settings: Settings | None = None,
    currency: str = "USD",
    now: datetime | None = None,
) -> list[PoolPlan]:
    """A purchase plan per pool, in the order of `usage_by_pool`."""
    held = existing or {}
    return [
        plan_pool(pool, usage, instruments, existing=held.get(pool, ()), settings=settings, currency=currency, now=now)
        for pool, usage in usage_by_pool.items()
    ]


# --- several pools of one account: Compute flexibility or Instance plans per family -------------------------


@dataclass(frozen=True)
class ScopedPool:
    """Usage that narrower, deeper-discount instruments can cover: one instance family in one region (EC2 Instance
    Savings Plans and RIs, Azure reservations, GCP resource CUDs), with the commitments it already holds."""

    pool: str
    usage: ArrayLike
    """Hourly on-demand-equivalent usage of the family in the region, aligned with the account's series."""
    instruments: tuple[Instrument, ...]
    existing: tuple[Tranche, ...] = ()


@dataclass(frozen=True)
class _Joint:
    """The forecast of an account's pools as representative hours: points[c][k, j] for component c (each scoped
    pool, then the usage only the flexible instruments cover), weights[j] the share of a month each stands for."""

    points: list[Floats]
    weights: Floats
    trends: list[Trend]
    shifts: list[Shift | None]
    recent: list[Floats]


def _joint_forecast(series: Sequence[Floats], settings: Settings, hours_per_month: int) -> _Joint:
    """Each component's own trend and level shift, on common recent hours, sampled as representative hours.

    Every `stride`-th hour of the lookback window, with a stride prime to 24 so that every hour of the day is
    sampled, stands for its share of the month, whole: actual hours keep what a quantile or an average cannot,
    which families are busy at the same time, and that is what flexibility across families is worth.
    """
    n = min(s.size for s in series)
    window = min(n, settings.lookback_hours)
    bases, trends, shifts, recents = [], [], [], []
    for s in series:
        h = np.asarray(s[-n:], dtype=float)
        recent, trend, shift = _evidence(h, settings)
        base = h[-window:].copy() if window else np.zeros(0)
        if shift is not None and shift.before > 0:
            before = base.size - min(shift.hours_ago, base.size)
            base[:before] *= shift.after / shift.before  # the hours before a step down, at the new level
        base = base + trend.per_hour * (base.size - np.arange(base.size))
        bases.append(base)
        trends.append(trend)
        shifts.append(shift)
        recents.append(recent)
    if window == 0:
        zero = [np.zeros((settings.horizon_months, 1)) for _ in series]
        return _Joint(zero, np.ones(1), trends, shifts, recents)
    stack = np.vstack(bases)  # [component, hour]
    stride = max(1, -(-window // settings.joint_points))
    while np.gcd(stride, 24) != 1:
        stride += 1
    reps = stack[:, window - 1 :: -stride]  # [component, j], the newest hour first
    weights = np.full(reps.shape[1], 1.0 / reps.shape[1])
    points = []
    for c, trend in enumerate(trends):
        step = _trend_steps(trend, settings, hours_per_month)
        points.append(np.maximum(reps[c][None, :] + step[:, None], 0.0))
    return _Joint(points, weights, trends, shifts, recents)


def _solve_joint(
    joint: _Joint,
    instruments: Sequence[Sequence[Instrument]],
    existing: Sequence[Floats],
    *,
    hours_per_month: int,
    risk_margin: float,
    tranche_caps: Sequence[float],
    max_coverage: Floats | None = None,
) -> list[Floats]:
    """Minimum-cost purchases per pool [instrument, month] for scoped pools 0..n-2 and the flexible pool n-1.

    Usage of a scoped pool is covered by its own commitments first; what they leave, with the usage no scoped
    instrument covers, is covered by the flexible commitments; the rest is paid on demand. Per representative
    hour j of month k: s[c] >= u[c] - existing[c] - X[c] for each scoped pool c, and
    r >= sum(s) + u[flex] - existing[flex] - X[flex]; the cost is the commitments' plus sum(r) weighted in hours.
    Risk controls: what one month buys per pool is at most its tranche cap, and the account's total coverage of
    month k, existing included and every pool together, is at most `max_coverage[k]`.
    """
    months = joint.points[0].shape[0]
    n_pools = len(instruments)
    n_j = joint.weights.size
    hours = joint.weights * hours_per_month
    cols: list[int] = []
    offsets = []
    n = 0
    for insts in instruments:
        offsets.append(n)
        n += len(insts) * months
    x0 = n
    n += n_pools * months
    s0 = n
    n += (n_pools - 1) * months * n_j
    r0 = n
    n += months * n_j
    c = np.zeros(n)
    month_hours = np.full(months, float(hours_per_month))
    for p, insts in enumerate(instruments):
        for i, inst in enumerate(insts):
            for m in range(months):
                active = month_hours[m : m + inst.term_months].sum()
                c[offsets[p] + i * months + m] = (1.0 - inst.discount + risk_margin) * active * (1 + 1e-6 * m)
    c[r0:] = np.tile(hours, months)
    rows, cols, vals, rhs = [], [], [], []
    row = 0
    flex = n_pools - 1
    for k in range(months):
        for j in range(n_j):
            for p in range(flex):
                si = s0 + (p * months + k) * n_j + j
                rows += [row, row]
                cols += [si, x0 + p * months + k]
                vals += [-1.0, -1.0]
                rhs.append(-(joint.points[p][k, j] - existing[p][k]))
                row += 1
            ri = r0 + k * n_j + j
            rows += [row, row]
            cols += [ri, x0 + flex * months + k]
            vals += [-1.0, -1.0]
            for p in range(flex):
                rows.append(row)
                cols.append(s0 + (p * months + k) * n_j + j)
                vals.append(1.0)
            rhs.append(-(joint.points[flex][k, j] - existing[flex][k]))
            row += 1
    for p, insts in enumerate(instruments):
        for m in range(months):
            for i in range(len(insts)):
                rows.append(row)
                cols.append(offsets[p] + i * months + m)
                vals.append(1.0)
            rhs.append(max(tranche_caps[p], 0.0))
            row += 1
    if max_coverage is not None:
        held = np.sum(existing, axis=0)
        for k in range(months):
            if np.isfinite(max_coverage[k]):
                rows += [row] * n_pools
                cols += [x0 + p * months + k for p in range(n_pools)]
                vals += [1.0] * n_pools
                rhs.append(max(float(max_coverage[k] - held[k]), 0.0))
                row += 1
    a_ub = sparse.csr_matrix((vals, (rows, cols)), shape=(row, n))
    er, ec, ev = [], [], []
    for p, insts in enumerate(instruments):
        for k in range(months):
            e = p * months + k
            er.append(e)
            ec.append(x0 + e)
            ev.append(1.0)
            for i, inst in enumerate(insts):
                for m in range(max(0, k - inst.term_months + 1), k + 1):
                    er.append(e)
                    ec.append(offsets[p] + i * months + m)
                    ev.append(-1.0)
    a_eq = sparse.csr_matrix((ev, (er, ec)), shape=(n_pools * months, n))
    res = linprog(
        c, A_ub=a_ub, b_ub=np.array(rhs), A_eq=a_eq, b_eq=np.zeros(n_pools * months), bounds=(0, None),
        method="highs",
    )  # fmt: skip
    if res.status != 0:
        raise OptimizerFailed(f"account commitment LP not solved: {res.message}")
    x = np.maximum(res.x, 0.0)
    return [x[offsets[p] : offsets[p] + len(insts) * months].reshape(len(insts), months) for p, insts in
            enumerate(instruments)]  # fmt: skip


def _joint_monthly_cost(
    joint: _Joint, coverage: Sequence[Floats], discounts: Sequence[Floats], hours_per_month: int
) -> tuple[Floats, list[Floats], list[Floats]]:
    """Cost per forecast month under coverage[p][i, k], and per pool the usage left to it and what it covered."""
    flex = len(coverage) - 1
    leftover = joint.points[flex].copy()
    left_to: list[Floats] = []
    used: list[Floats] = []
    cost = np.zeros(joint.points[0].shape[0])
    for p in range(len(coverage)):
        total = coverage[p].sum(axis=0)[:, None]
        usage = joint.points[p] if p < flex else leftover
        left_to.append(usage)
        covered = np.minimum(usage, total)
        used.append(covered)
        if p < flex:
            leftover = leftover + (usage - covered)
        cost += ((1.0 - discounts[p])[:, None] * coverage[p]).sum(axis=0) * hours_per_month
    cost += (np.maximum(leftover - coverage[flex].sum(axis=0)[:, None], 0.0) @ joint.weights) * hours_per_month
    return cost, left_to, used


def plan_account(
    flexible_pool: str,
    total: ArrayLike,
    flexible_instruments: Sequence[Instrument],
    scoped: Sequence[ScopedPool],
    *,
    existing: Sequence[Tranche] = (),
    settings: Settings | None = None,
    currency: str = "USD",
    now: datetime | None = None,
    hours_per_month: int = HOURS_PER_MONTH,
) -> list[PoolPlan]:
    """Plans for an account's flexible pool and its scoped pools at once: one LP chooses, layer by layer, between
    an Instance plan of a family (deeper discount, that family only) and the flexible plan (any family).

    `total` is all the hourly usage the flexible instruments can cover, the scoped pools' included; `existing` are
    the flexible commitments held. A family whose usage is steady gets its own plan; usage that moves between
    families, or a family that is shrinking, is left to the flexible plan. Settings.coverage_target bounds the
    account's projected coverage, all pools together. Returns the flexible pool's plan first.
    """
    s = settings or Settings()
    t = np.maximum(np.asarray(total, dtype=float), 0.0)
    parts = [np.maximum(np.asarray(p.usage, dtype=float), 0.0) for p in scoped]
    n = min([t.size, *(p.size for p in parts)])
    parts = [p[-n:] for p in parts]
    rest = np.maximum(t[-n:] - (np.sum(parts, axis=0) if parts else 0.0), 0.0)
    joint = _joint_forecast([*parts, rest], s, hours_per_month)
    horizon = s.horizon_months
    pools = [*(p.pool for p in scoped), flexible_pool]
    insts = [tuple(sorted(p.instruments, key=lambda i: i.term_months)) for p in scoped]
    insts.append(tuple(sorted(flexible_instruments, key=lambda i: i.term_months)))
    held = [list(p.existing) for p in scoped] + [list(existing)]
    existing_cov = [np.array([active_amount(h, k) for k in range(horizon)]) for h in held]
    caps = [s.tranche_cap * float(np.median(pt[0] if pt.size else 0.0)) for pt in joint.points]
    caps[-1] = s.tranche_cap * float(np.median(sum(pt[0] for pt in joint.points)))
    account_points = sum(joint.points)
    max_coverage = np.array([_coverage_level(pt, joint.weights, s.coverage_target) for pt in account_points])
    every = [i for group in insts for i in group]
    max_coverage[0] = min(max_coverage[0], observed_ceiling(t[-n:][-s.lookback_hours :], every))
    purchases = _solve_joint(
        joint, insts, existing_cov, hours_per_month=hours_per_month, risk_margin=s.risk_margin, tranche_caps=caps,
        max_coverage=max_coverage,
    )  # fmt: skip
    new = [_tranches(purchases[p], insts[p]) for p in range(len(pools))]
    new = [[t for t in tr if t.start_month < s.plan_months] for tr in new]

    def coverage(tranches: Sequence[Sequence[Tranche]]) -> list[Floats]:
        out = []
        for p, tr in enumerate(tranches):
            cov = np.zeros((len(insts[p]) + 1, horizon))
            for t in tr:
                i = insts[p].index(t.instrument) if t.instrument in insts[p] else len(insts[p])
                cov[i, max(t.start_month, 0) : max(min(t.end_month, horizon), 0)] += float(t.amount)
            out.append(cov)
        return out

    def discounts(tranches: Sequence[Sequence[Tranche]]) -> list[Floats]:
        out = []
        for p, tr in enumerate(tranches):
            foreign = [t.instrument.discount for t in tr if t.instrument not in insts[p]]
            out.append(np.array([*(i.discount for i in insts[p]), float(np.mean(foreign)) if foreign else 0.0]))
        return out

    before_t = held
    after_t = [h + nw for h, nw in zip(held, new, strict=True)]
    disc = discounts(after_t)
    cost_before, _, _ = _joint_monthly_cost(joint, coverage(before_t), disc, hours_per_month)
    cost_after, left_to, used = _joint_monthly_cost(joint, coverage(after_t), disc, hours_per_month)
    plans = []
    for p in reversed(range(len(pools))):  # the flexible pool first
        without = [h + (nw if q != p else []) for q, (h, nw) in enumerate(zip(held, new, strict=True))]
        cost_without, _, _ = _joint_monthly_cost(joint, coverage(without), disc, hours_per_month)
        added = cost_without - cost_after
        cov_p = coverage(after_t)[p]
        usage_p = left_to[p]
        flat = usage_p.reshape(-1)
        k = kpis(
            flat,
            np.repeat(cov_p, joint.weights.size, axis=1),
            disc[p],
            hours=np.tile(joint.weights, horizon) * hours_per_month,
        )
        series = parts[p] if p < len(parts) else t[-n:]
        plans.append(
            _pool_plan(
                pools[p], new[p], added, k, joint.recent[p], joint.trends[p], series, existing_cov[p],
                np.median(joint.points[p], axis=1), insts[p], s, currency, now, hours_per_month,
                alternatives={"account_added_savings": float((cost_before - cost_after).sum())},
            )
        )  # fmt: skip
    del used
    return plans


def _pool_plan(
    pool: str,
    new: Sequence[Tranche],
    added: Floats,
    k: Kpis,
    recent: Floats,
    trend: Trend,
    history: Floats,
    existing: Floats,
    forecast_median: Floats,
    insts: Sequence[Instrument],
    s: Settings,
    currency: str,
    now: datetime | None,
    hours_per_month: int,
    alternatives: Mapping[str, float] | None = None,
) -> PoolPlan:
    """A PoolPlan from a solved plan's numbers: the added savings per month, the projected KPIs, the evidence."""
    cumulative = np.cumsum(added)
    break_even = None
    if new:
        ok = [m for m in range(cumulative.size) if np.all(cumulative[m:] >= -1e-9)]
        break_even = int(ok[0]) + 1 if ok else None
    r = recent if recent.size else np.zeros(1)
    evidence = Evidence(
        history_hours=int(history.size),
        lookback_hours=int(recent.size),
        recent_p10=float(np.quantile(r, 0.1)),
        recent_p50=float(np.quantile(r, 0.5)),
        recent_p90=float(np.quantile(r, 0.9)),
        trend_per_month=trend.raw_per_hour * hours_per_month,
        trend_significant=trend.significant,
        quantile_rule={i.name: quantile_commitment(r, i.discount) for i in insts},
        existing_per_month=tuple(float(x) for x in existing),
        forecast_median_per_month=tuple(float(x) for x in forecast_median),
        risk_margin=s.risk_margin,
        coverage_target=s.coverage_target,
        joint=dict(alternatives or {}),
    )
    ordered = sorted(new, key=lambda t: (t.start_month, t.instrument.term_months))
    planned = tuple(_planned(t, now, hours_per_month, currency) for t in ordered)
    total_added = float(added.sum())
    return PoolPlan(
        pool=pool,
        tranches=planned,
        horizon_months=s.horizon_months,
        expected_savings=_money(total_added, currency),
        expected_monthly_savings=_money(total_added / s.horizon_months, currency),
        break_even_month=break_even,
        projected_esr=round(k.esr, 4),
        projected_coverage=round(k.coverage, 4),
        projected_utilization=round(k.utilization, 4),
        projected_unused_commitment_cost=_money(k.unused_commitment_cost, currency),
        evidence=evidence,
    )
