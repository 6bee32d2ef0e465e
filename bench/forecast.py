"""Backtest of the daily cost forecast: MAPE over rolling origins, Holt-Winters against the seasonal-naive baselines.

Series:
  real       daily cost from the usage traces in ../shared/data/traces/ (300 s steps, 28-30 days): each 300 s
             sample is averaged into hours, an hour is priced at an illustrative list price, and 24 hours make a
             day. Four series: CPU and assigned memory of the Azure V2 and Google 2019 traces.
  synthetic  one year of daily cost with a weekday/weekend pattern, a trend and Gaussian noise (seeded).

Each series is forecast from rolling origins a fixed step apart, the last one ending on the last day; MAPE is the
mean of |actual - forecast| / actual over every forecast day. Prints a table and writes bench/results/forecast.json.

    .venv/bin/python bench/forecast.py
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import print_table, write_results
from finops_allocation.forecast import (
    SEASON,
    backtest,
    fit_holt_winters,
    holt_winters,
    seasonal_naive,
    seasonal_naive_with_trend,
)

TRACES = ROOT.parent / "shared" / "data" / "traces"
STEPS_PER_HOUR = 12  # 300 s samples
CENT = Decimal("0.01")

# (file, column, price per unit-hour, what the price means); illustrative list prices, the MAPE does not depend
# on them beyond rounding to the cent.
TRACE_SERIES = (
    ("azure_v2_machine_usage_300s.csv", "cpu_usage", Decimal("0.0000125"), "per unit of summed CPU usage"),
    ("azure_v2_machine_usage_300s.csv", "assigned_mem", Decimal("0.00005"), "per unit of assigned memory"),
    ("google2019_machine_usage_300s.csv", "cpu_util", Decimal("300"), "10,000 vCPU x $0.03 per vCPU-hour"),
    ("google2019_machine_usage_300s.csv", "assigned_mem", Decimal("160"), "40,000 GB x $0.004 per GB-hour"),
)

METHODS: dict[str, Callable[[Sequence[Decimal], int], list[Decimal]]] = {
    "holt_winters": holt_winters,
    "seasonal_naive": seasonal_naive,
    "seasonal_naive_trend": seasonal_naive_with_trend,
}


@dataclass(frozen=True)
class Series:
    name: str
    source: str
    days: list[Decimal]
    horizon: int
    origins: int
    step: int


def hourly(path: Path, column: str) -> list[Decimal]:
    """Mean of each hour's twelve 300 s samples; a trailing partial hour is dropped."""
    with path.open(newline="") as handle:
        samples = [Decimal(row[column]) for row in csv.DictReader(handle)]
    hours = len(samples) // STEPS_PER_HOUR
    return [sum(samples[h * STEPS_PER_HOUR : (h + 1) * STEPS_PER_HOUR]) / STEPS_PER_HOUR for h in range(hours)]


def daily_cost(hours: Sequence[Decimal], price: Decimal) -> list[Decimal]:
    """Each whole day's cost: 24 priced hours, rounded to the cent."""
    return [
        (sum(hours[d * 24 : (d + 1) * 24], Decimal(0)) * price).quantize(CENT, ROUND_HALF_EVEN)
        for d in range(len(hours) // 24)
    ]


def trace_series(horizon: int) -> list[Series]:
    """The real traces' daily cost; none when they are not beside this clone (third-party data in ../shared)."""
    missing = [TRACES / file for file, *_ in TRACE_SERIES if not (TRACES / file).exists()]
    if missing:
        print(f"real traces: not run, {missing[0]} is not beside this clone (third-party data in ../shared)")
        return []
    out = []
    for file, column, price, _meaning in TRACE_SERIES:
        path = TRACES / file
        days = daily_cost(hourly(path, column), price)
        # Holt-Winters needs two weeks of history, so the first origin is day 14 and they step one day apart.
        origins = len(days) - horizon - 2 * SEASON + 1
        out.append(Series(f"{file.split('_machine')[0]} {column}", f"traces/{file}", days, horizon, origins, 1))
    return out


def synthetic(*, seed: int, growth: Decimal, noise: float, weekend: Decimal, days: int = 365) -> list[Decimal]:
    """A year of daily cost: 5,000 a weekday, `weekend` times that on Saturday and Sunday, compounding `growth` a
    year, times (1 + Gaussian noise of standard deviation `noise`)."""
    rng = random.Random(seed)
    daily_growth = (1 + growth) ** (Decimal(1) / 365)
    out = []
    for day in range(days):
        base = Decimal(5000) * (weekend if day % 7 in (5, 6) else 1) * daily_growth**day
        jitter = Decimal(repr(round(rng.gauss(0.0, noise), 6)))
        out.append((base * (1 + jitter)).quantize(CENT, ROUND_HALF_EVEN))
    return out


def synthetic_series() -> list[Series]:
    shapes = (
        ("synthetic 3% noise, +20%/yr", 11, Decimal("0.20"), 0.03, Decimal("0.45")),
        ("synthetic 10% noise, +20%/yr", 12, Decimal("0.20"), 0.10, Decimal("0.45")),
        ("synthetic 5% noise, +80%/yr", 13, Decimal("0.80"), 0.05, Decimal("0.60")),
    )
    out = []
    for name, seed, growth, noise, weekend in shapes:
        days = synthetic(seed=seed, growth=growth, noise=noise, weekend=weekend)
        # 26 weekly origins over the last half year, for a week ahead and for a month (period end) ahead.
        out.append(Series(name, f"seed {seed}", days, 7, 26, 7))
        out.append(Series(name, f"seed {seed}", days, 28, 26, 7))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "forecast.json")
    args = parser.parse_args()

    results = []
    for series in trace_series(horizon=7) + synthetic_series():
        mape = {
            method: backtest(
                series.days, horizon=series.horizon, origins=series.origins, step=series.step, forecaster=forecaster
            )
            for method, forecaster in METHODS.items()
        }
        last_fit = fit_holt_winters(series.days)
        results.append(
            {
                "series": series.name,
                "source": series.source,
                "days": len(series.days),
                "mean_daily_cost": str((sum(series.days) / len(series.days)).quantize(CENT)),
                "horizon_days": series.horizon,
                "origins": series.origins,
                "origin_step_days": series.step,
                "points": mape["holt_winters"].points,
                "mape_pct": {method: str(result.mape) for method, result in mape.items()},
                "holt_winters_fit_on_all_days": {
                    "alpha": str(last_fit.alpha),
                    "beta": str(last_fit.beta),
                    "gamma": str(last_fit.gamma),
                    "phi": str(last_fit.phi),
                },
            }
        )

    print_table(
        "Daily cost forecast backtest: MAPE % over rolling origins (lower is better)",
        ("series", "days", "horizon", "origins", "Holt-Winters", "seasonal-naive", "seasonal-naive+trend"),
        [
            [
                r["series"],
                r["days"],
                r["horizon_days"],
                f"{r['origins']} x {r['origin_step_days']}d",
                r["mape_pct"]["holt_winters"],
                r["mape_pct"]["seasonal_naive"],
                r["mape_pct"]["seasonal_naive_trend"],
            ]
            for r in results
        ],
    )
    write_results(
        args.out,
        "forecast",
        method="additive Holt-Winters, damped trend, 7-day season, parameters by grid on one-step SSE",
        prices={f"{file} {column}": f"{price} ({meaning})" for file, column, price, meaning in TRACE_SERIES},
        results=results,
    )


if __name__ == "__main__":
    main()
