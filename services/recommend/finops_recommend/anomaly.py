"""Cost anomaly detection on daily cost series: a weekly-seasonal baseline, robust thresholds, severity, grouping
of consecutive anomalous days into one incident, and attribution of an incident to the child series that moved.

Baseline, for day t, from days before t only (so a day is judged as it would have been that morning):
- weekday factors: the median of each weekday over the last `season_weeks` weeks, over the median of them all;
- level: the median of the last `level_days` deseasonalised days;
- month factor: a day's place in its month (its day of the month, or for the month's last 7 days how many days
  before the month's end it is) compared in the `season_months` months before: at each, the day's cost over the
  median of the same weekday's cost in the 4 weeks before it (2 at least). When at least `min_season_months` of
  them moved the same way, the move closest to none is the factor (a month-end batch that costs 1.5x every month
  is expected again; a single month's spike is not, since the other months disagree), and only if it is at least
  `min_month_effect` away from 1 (smaller recurring moves are noise, and a growing series' steady rise is the
  level's to follow);
- expected cost = level x the factor of t's weekday x its month factor.
Spread: 1.4826 x the median absolute one-day-ahead error of the last `spread_days` normal days (a robust standard
deviation of how wrong the baseline usually is). A day is anomalous when its robust z-score passes `threshold`
AND its change is material, both relative (`min_relative_change`) and absolute (`min_absolute_change`): a
z-score alone alerts on a flat series that moves by a cent.

Severity: the weakest of the three ratios (z over its threshold, relative change over its minimum, money over its
minimum) decides: under 2 low, under 4 medium, under 8 high, else critical. A big surprise on a few cents is low.

Anomalous days are replaced by their expected cost in the history later baselines see, so a five-day incident
does not become its own baseline. A change that lasts `accept_after_days` is a new normal: its days go back in,
the level follows, and the incident ends instead of alerting for ever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from finops_contracts.money import Money

CENT = Decimal("0.01")
_CAP = 1e6  # z-scores and relative changes past this are reported as this (a flat series that moves)
Floats = NDArray[np.float64]


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


_SEVERITIES = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


@dataclass(frozen=True)
class Settings:
    season_weeks: int = 8
    level_days: int = 7
    spread_days: int = 56
    min_history_days: int = 21
    """Days before the first judged day: three weeks, so each weekday has been seen three times."""
    threshold: float = 5.0
    """Robust z-score from which a day is anomalous."""
    young_spread_factor: float = 1.5
    """Spread multiplier while fewer than two weeks of baseline errors have been seen."""
    min_relative_change: float = 0.25
    min_absolute_change: float = 1.0
    """In the series' currency, per day: set it to what is worth a person's time for that series."""
    accept_after_days: int = 14
    """An anomaly that lasts this long is the new normal (a level shift): one incident, then the level follows."""
    max_gap_days: int = 1
    """Normal days between two anomalous days that still leave them in one incident."""
    detect_drops: bool = True
    season_months: int = 3
    """Months looked back at for a day's place in the month (a month-end or month-start batch)."""
    min_season_months: int = 2
    """A place in the month must have moved the same way in this many months to be seasonal, not an incident."""
    min_month_effect: float = 0.10


@dataclass(frozen=True)
class Day:
    """One judged day."""

    index: int
    day: date
    cost: Decimal
    expected: Decimal
    z: float
    anomalous: bool
    severity: Severity | None

    @property
    def change(self) -> Decimal:
        return self.cost - self.expected

    @property
    def direction(self) -> str:
        return "up" if self.change >= 0 else "down"


@dataclass(frozen=True)
class Contributor:
    """A child series (a service, resource or tag value) and how much it moved during an incident."""

    dimension: str
    key: str
    change: Money
    """Observed minus expected cost of the child over the incident's days."""
    share: float
    """Its part of the incident's change; the shares of all children of a dimension add up to about 1."""


@dataclass(frozen=True)
class Incident:
    """Consecutive anomalous days of one series, alerted once."""

    series: str
    start: date
    end: date
    direction: str
    severity: Severity
    peak: date
    days: int
    """Anomalous days in the incident (days inside a tolerated gap are not counted)."""
    observed: Money
    expected: Money
    change: Money
    max_z: float
    contributors: tuple[Contributor, ...] = ()

    @property
    def top(self) -> Contributor | None:
        """The child that moved most, whatever its dimension."""
        return max(self.contributors, key=lambda c: abs(c.change.amount), default=None)


def _severity(z: float, relative: float, change: float, settings: Settings) -> Severity:
    # the surprise, the relative size and the money must all be large for a high severity: each doubling of the
    # weakest of the three over its threshold is one step up
    score = min(
        abs(z) / settings.threshold,
        abs(relative) / settings.min_relative_change,
        abs(change) / settings.min_absolute_change if settings.min_absolute_change > 0 else np.inf,
    )
    return _SEVERITIES[int(np.clip(np.floor(np.log2(max(score, 1.0))), 0, 3))]


def _robust_scale(errors: Floats) -> float:
    if errors.size == 0:
        return 0.0
    return 1.4826 * float(np.median(np.abs(errors - np.median(errors))))


def _weekday_factors(past: Floats, past_dow: NDArray[np.int64]) -> Floats:
    """Median ratio of each weekday to its centred 7-day mean: a level change in the window does not bias it."""
    factors = np.ones(7)
    if past.size < 14:
        return factors
    week_mean = np.convolve(past, np.ones(7) / 7, mode="valid")  # centred on past[3:-3]
    inner, inner_dow = past[3:-3], past_dow[3:-3]
    ok = week_mean > 0
    for w in range(7):
        sel = ok & (inner_dow == w)
        if sel.any():
            factors[w] = float(np.median(inner[sel] / week_mean[sel]))
    mean = factors.mean()
    return factors / mean if mean > 0 else np.ones(7)


MONTH_END_DAYS = 7
"""A month's last days are placed by how many days before its end they are: every month has them."""


def _place(day: date) -> tuple[str, int]:
    before_end = ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - day).days - 1  # 0 on the last day
    return ("end", before_end) if before_end < MONTH_END_DAYS else ("day", day.day)


def _month_factors(x: Floats, start: date, s: Settings) -> Floats:
    """Per day, the month factor (see the module docstring), from earlier days only."""
    n = x.size
    factors = np.ones(n)
    if s.season_months <= 0 or n <= 14:
        return factors
    ratio = np.full(n, np.nan)
    for p in range(14, n):
        ref = float(np.median(x[[q for q in (p - 7, p - 14, p - 21, p - 28) if q >= 0]]))  # same weekday
        if ref > 0:
            ratio[p] = x[p] / ref
    where: dict[tuple[int, tuple[str, int]], int] = {}
    days = [start + timedelta(days=i) for i in range(n)]
    for i, d in enumerate(days):
        where[(d.year * 12 + d.month - 1, _place(d))] = i
    for t, d in enumerate(days):
        month, place = d.year * 12 + d.month - 1, _place(d)
        seen = [where.get((month - k, place)) for k in range(1, s.season_months + 1)]
        moves = [float(ratio[p]) for p in seen if p is not None and not np.isnan(ratio[p])]
        if len(moves) < s.min_season_months:
            continue
        if all(m > 1 for m in moves):
            factor = min(moves)
        elif all(m < 1 for m in moves):
            factor = max(moves)
        else:
            continue
        if abs(factor - 1) >= s.min_month_effect:
            factors[t] = factor
    return factors


def detect(costs: Sequence[float | Decimal], start: date, settings: Settings | None = None) -> list[Day]:
    """Judge every day of a daily cost series that has enough history before it."""
    s = settings or Settings()
    x = np.array([float(c) for c in costs], dtype=float)
    clean = x.copy()
    dow = np.array([(start + timedelta(days=i)).weekday() for i in range(x.size)])
    monthly = _month_factors(x, start, s)
    errors: list[float] = []  # one-day-ahead errors of normal days, deseasonalised (relative to a weekday)
    run = gap = 0
    first = 0
    out: list[Day] = []
    for t in range(s.min_history_days, x.size):
        lo = max(0, t - 7 * s.season_weeks)
        past, past_dow = clean[lo:t], dow[lo:t]
        factors = _weekday_factors(past, past_dow)
        # a weekday that usually costs nothing (a weekend shutdown) is expected to cost nothing again
        seen = factors[past_dow] > 0
        deseason = past[seen] / factors[past_dow][seen]
        level = float(np.median(deseason[-s.level_days :])) if deseason.size else 0.0
        factor = factors[dow[t]] * monthly[t]
        expected = level * factor
        recent = np.asarray(errors[-s.spread_days :])
        spread = _robust_scale(recent) if recent.size >= 7 else 0.0
        if recent.size < 14:
            # few errors seen yet: the weekday factors are young too, so be wary of a small spread
            spread = max(spread, _robust_scale(deseason[-s.spread_days :] - level)) * s.young_spread_factor
        spread *= factor if factor > 0 else 1.0
        change = x[t] - expected
        z = float(np.clip(change / spread if spread > 0 else np.sign(change) * _CAP, -_CAP, _CAP))
        relative = float(np.clip(change / expected if expected > 0 else np.sign(change) * _CAP, -_CAP, _CAP))
        anomalous = (
            abs(z) >= s.threshold
            and abs(change) >= s.min_absolute_change
            and abs(relative) >= s.min_relative_change
            and (change > 0 or s.detect_drops)
        )
        if anomalous:
            if run == 0:
                first = t
            run, gap = run + 1, 0
            if run >= s.accept_after_days:
                clean[first : t + 1] = x[first : t + 1]  # a new normal: let the level follow
            else:
                clean[t] = expected
        else:
            gap += 1
            if gap > s.max_gap_days:
                run = 0
            errors.append(change / factor if factor > 0 else change)
        out.append(
            Day(
                index=t,
                day=start + timedelta(days=t),
                cost=Decimal(repr(float(x[t]))),
                expected=Decimal(repr(float(expected))),
                z=z,
                anomalous=bool(anomalous),
                severity=_severity(z, relative, change, s) if anomalous else None,
            )
        )
    return out


def _money(value: float | Decimal, currency: str) -> Money:
    return Money(
        amount=(value if isinstance(value, Decimal) else Decimal(repr(float(value)))).quantize(
            CENT, rounding=ROUND_HALF_EVEN
        ),
        currency=currency,
    )


def group(
    days: Sequence[Day], *, series: str = "", currency: str = "USD", settings: Settings | None = None
) -> list[Incident]:
    """Incidents from judged days: anomalous days in the same direction, at most `max_gap_days` apart."""
    s = settings or Settings()
    flagged = [d for d in days if d.anomalous]
    runs: list[list[Day]] = []
    for d in flagged:
        last = runs[-1][-1] if runs else None
        if last is not None and d.index - last.index <= s.max_gap_days + 1 and d.direction == last.direction:
            runs[-1].append(d)
        else:
            runs.append([d])
    incidents = []
    for r in runs:
        peak = max(r, key=lambda d: abs(d.change))
        observed = sum(d.cost for d in r)
        expected = sum(d.expected for d in r)
        incidents.append(
            Incident(
                series=series,
                start=r[0].day,
                end=r[-1].day,
                direction=r[0].direction,
                severity=max((d.severity or Severity.LOW for d in r), key=_SEVERITIES.index),
                peak=peak.day,
                days=len(r),
                observed=_money(observed, currency),
                expected=_money(expected, currency),
                change=_money(observed - expected, currency),
                max_z=max(abs(d.z) for d in r),
            )
        )
    return incidents


def attribute(
    incident: Incident,
    children: Mapping[str, Mapping[str, Sequence[float | Decimal]]],
    start: date,
    *,
    currency: str = "USD",
    settings: Settings | None = None,
    top: int = 5,
    min_share: float = 0.05,
) -> Incident:
    """The incident with its contributors: per dimension (service, resource, tag...), the children whose cost moved
    most in the incident's direction over its days, each measured against its own baseline. Children that moved
    less than `min_share` of their dimension's change are noise, not causes, and are left out."""
    s = settings or Settings()
    first = (incident.start - start).days
    last = (incident.end - start).days
    sign = 1.0 if incident.direction == "up" else -1.0
    found: list[Contributor] = []
    for dimension, series_by_key in children.items():
        changes: dict[str, float] = {}
        for key, costs in series_by_key.items():
            judged = {d.index: d for d in detect(costs, start, s)}
            x = [float(c) for c in costs]
            change = 0.0
            for i in range(first, min(last, len(x) - 1) + 1):
                d = judged.get(i)
                change += x[i] - (float(d.expected) if d is not None else x[i])
            changes[key] = change
        total = sum(changes.values())
        ranked = sorted(changes.items(), key=lambda kv: -sign * kv[1])[:top]
        for key, change in ranked:
            share = float(change / total) if total else 0.0
            if sign * change > 0 and share >= min_share:
                found.append(Contributor(dimension, key, _money(change, currency), share))
    found.sort(key=lambda c: -abs(c.change.amount))
    return Incident(**{**incident.__dict__, "contributors": tuple(found)})


def scan(
    series: Mapping[str, Sequence[float | Decimal]],
    start: date,
    *,
    children: Mapping[str, Mapping[str, Mapping[str, Sequence[float | Decimal]]]] | None = None,
    currency: str = "USD",
    settings: Settings | None = None,
) -> list[Incident]:
    """Incidents of many daily series that start on the same day, each attributed to its children if given."""
    s = settings or Settings()
    incidents = []
    for key, costs in series.items():
        for incident in group(detect(costs, start, s), series=key, currency=currency, settings=s):
            kids = (children or {}).get(key)
            incidents.append(attribute(incident, kids, start, currency=currency, settings=s) if kids else incident)
    return sorted(incidents, key=lambda i: (i.start, i.series))
