"""Anomaly detection on daily cost: baseline, grouping into incidents, severity and root-cause attribution."""

from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from finops_recommend.anomaly import Settings, Severity, attribute, detect, group, scan

MONDAY = date(2026, 1, 5)


def daily(days: int = 70, level: float = 100.0, seed: int = 1, weekend: float = 1.0) -> np.ndarray:
    """A daily cost series with 2% noise, starting on a Monday."""
    noise = np.random.default_rng(seed).normal(1.0, 0.02, days)
    weekday = np.array([(MONDAY + timedelta(days=i)).weekday() for i in range(days)])
    return level * noise * np.where(weekday >= 5, weekend, 1.0)


def test_a_quiet_series_raises_nothing():
    assert group(detect(daily(), MONDAY)) == []


def test_anomalous_days_one_normal_day_apart_are_one_incident_and_further_apart_are_two():
    # Given spikes on days 40, 41 and 43 (day 42 normal), and again on day 55
    x = daily()
    for day in (40, 41, 43, 55):
        x[day] *= 3

    # When
    incidents = group(detect(x, MONDAY), series="team-a")

    # Then days 40 to 43 are one incident of three anomalous days, day 55 another
    assert [(i.start, i.end, i.days) for i in incidents] == [
        (MONDAY + timedelta(days=40), MONDAY + timedelta(days=43), 3),
        (MONDAY + timedelta(days=55), MONDAY + timedelta(days=55), 1),
    ]
    assert all(i.series == "team-a" and i.direction == "up" for i in incidents)


def test_a_rise_followed_by_a_drop_are_two_incidents():
    x = daily()
    x[40] *= 3
    x[41] *= 0.2

    incidents = group(detect(x, MONDAY))

    assert [i.direction for i in incidents] == ["up", "down"]


def test_a_level_shift_is_one_incident_then_the_new_normal():
    # Given cost doubles on day 30 and stays there for six weeks
    x = daily(days=72)
    x[30:] *= 2

    # When
    incidents = group(detect(x, MONDAY))

    # Then one alert, as long as it takes to accept the new level, and nothing after
    (incident,) = incidents
    assert incident.start == MONDAY + timedelta(days=30)
    assert incident.days == Settings().accept_after_days
    assert incident.change.amount > Decimal(100 * Settings().accept_after_days * 0.9)


def test_the_baseline_is_weekly_seasonal_so_quiet_weekends_are_not_drops():
    # Given weekends cost a tenth of weekdays
    x = daily(weekend=0.1)

    # When
    days = detect(x, MONDAY)

    # Then nothing is anomalous and a Saturday is expected to cost about a tenth of a weekday
    assert not any(d.anomalous for d in days)
    saturday = next(d for d in days if d.day.weekday() == 5)
    assert 5 < saturday.expected < 15


def test_small_changes_are_not_alerted_even_on_a_flat_series():
    # Given a perfectly flat series that moves by 10% on one day, and by one cent on another
    x = np.full(60, 100.0)
    x[40] = 110.0
    x[50] = 100.01

    # Then the z-score is huge but the change is immaterial
    assert group(detect(x, MONDAY)) == []


def test_a_bigger_spike_gets_a_higher_severity():
    x = daily()
    x[35] *= 1.5
    x[50] *= 20

    small, big = group(detect(x, MONDAY))

    order = list(Severity)
    assert order.index(big.severity) > order.index(small.severity)
    assert big.severity == Severity.CRITICAL


def test_drops_can_be_ignored():
    x = daily()
    x[40] *= 0.1

    assert len(group(detect(x, MONDAY))) == 1
    assert group(detect(x, MONDAY, Settings(detect_drops=False))) == []


def test_attribution_names_the_child_that_moved():
    # Given an account whose cost is compute (about 60) and storage (about 40); storage adds 100 on days 45-46
    compute = daily(level=60, seed=2)
    storage = daily(level=40, seed=3)
    storage[45:47] += 100
    account = compute + storage

    # When
    (incident,) = group(detect(account, MONDAY), series="acct", currency="EUR")
    attributed = attribute(incident, {"service": {"compute": compute, "storage": storage}}, MONDAY, currency="EUR")

    # Then storage moved by about 200 EUR, nearly all of the incident's change
    top = attributed.top
    assert top is not None
    assert (top.dimension, top.key) == ("service", "storage")
    assert abs(top.change.amount - Decimal(200)) < 10
    assert top.change.currency == "EUR"
    assert top.share > 0.9
    assert [c.key for c in attributed.contributors] == ["storage"]


def test_scan_attributes_each_series_to_its_children_across_dimensions():
    # Given two teams; team b's spike comes from one tagged resource
    a = daily(seed=4)
    r1, r2 = daily(level=30, seed=5), daily(level=70, seed=6)
    r2[50] += 300
    children = {"b": {"resource": {"r1": r1, "r2": r2}, "tag:env": {"prod": r1 + r2}}}

    # When
    incidents = scan({"a": a, "b": r1 + r2}, MONDAY, children=children)

    # Then one incident, for b, whose biggest mover is resource r2 (tied with the prod tag that contains it)
    (incident,) = incidents
    assert incident.series == "b"
    dims = {(c.dimension, c.key) for c in incident.contributors}
    assert dims == {("resource", "r2"), ("tag:env", "prod")}
    resource = next(c for c in incident.contributors if c.dimension == "resource")
    assert abs(resource.change.amount - Decimal(300)) < 10


def test_a_month_end_peak_seen_every_month_is_seasonal_but_a_one_day_spike_is_not():
    # Given five months (from Monday 5 January 2026) of 100 a day with 2% noise, 0.6 on weekends and 1.5 on the
    # last 3 days of every month (a month-end batch, as the simulated company's seasonal workloads do), and one
    # day at 6x on 15 April
    start = MONDAY
    x = daily(days=170, weekend=0.6)
    days = [start + timedelta(days=i) for i in range(x.size)]
    for i, d in enumerate(days):
        if (d + timedelta(days=3)).month != d.month:
            x[i] *= 1.5
    spike = days.index(date(2026, 4, 15))
    x[spike] *= 6

    # When
    judged = {d.day: d for d in detect(x, start)}
    incidents = group(list(judged.values()))

    # Then once two earlier months have shown it (from March on), a month-end is expected at about 1.5x and is
    # not an incident; the first month-ends, with no months before them to learn from, still are
    late = [d for d in judged if d.month >= 3 and (d + timedelta(days=3)).month != d.month]
    assert len(late) == 9  # March, April and May
    assert not any(judged[d].anomalous for d in late)
    assert all(judged[date(2026, 1, d)].anomalous for d in (29, 30))  # 31 January is a Saturday: 0.9x
    assert all(130 < float(judged[d].expected) / (0.6 if d.weekday() >= 5 else 1.0) < 170 for d in late)
    # and the spike on the 15th is the one incident after February, judged against a plain 15th
    assert [(i.start, i.end) for i in incidents if i.start.month >= 3] == [(date(2026, 4, 15), date(2026, 4, 15))]
    assert 90 < float(judged[date(2026, 4, 15)].expected) < 110
    # and a month later the 15th is still plain: one month's spike is no season
    assert not judged[date(2026, 5, 15)].anomalous and 90 < float(judged[date(2026, 5, 15)].expected) < 110
