"""Events per second come from the growth of end offsets between samples about a window apart; dead letters are
what the dead-letter topics hold."""

from __future__ import annotations

from finops_console.pipeline import Sample, Sampler


def test_rates_dead_letters_and_lag_from_samples():
    # Given samples ten seconds apart over a minute and a half
    sampler = Sampler("unused:9092", namespace="", every_s=10)
    for i in range(10):
        sampler._samples.append(
            Sample(
                at=1000.0 + 10 * i,
                ends={"finops.cost.v1": 100 * i, "finops.cost.v1.dlq": 3},
                starts={"finops.cost.v1": 0, "finops.cost.v1.dlq": 1},
                lag={"allocation": {"finops.cost.v1": 7}},
            )
        )

    # When the report is made over a 60-second window
    report = sampler.report(window_s=60)

    # Then the rate is the growth over the newest sample at least 60 s old
    cost = next(t for t in report["topics"] if t["topic"] == "finops.cost.v1")
    assert report["window_seconds"] == 60
    assert cost["events_per_second"] == 10.0
    assert cost["events"] == 900
    assert cost["dead_letters"] == 2
    assert report["groups"] == [{"group": "allocation", "lag": 7, "topics": [{"topic": "finops.cost.v1", "lag": 7}]}]


def test_no_samples_yet_is_an_empty_report():
    report = Sampler("unused:9092", namespace="", every_s=5).report()

    assert report["topics"] == [] and report["sampled_at"] is None
