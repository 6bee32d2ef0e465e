"""Benchmark of the commitment optimizer: Effective Savings Rate of three policies over a 3-year horizon.

- hindsight: the LP that knows every hour of the horizon (the upper bound);
- AWS-style: each month, the quantile-rule optimum of the last 30 days for one term, net of what is held
  (run for the 1-year and the 3-year term: the recommender makes the user pick one);
- ours: `finops_recommend.commitments.Forecasting`, monthly tranches chosen by an LP on a pessimistic forecast.

Workloads: the real traces in ../shared/data/traces/ (300 s steps averaged to hours; 4 weeks of data, so the trace
is its own 4-week history and is repeated over the horizon, a smooth sanity check), and a synthetic suite (stable,
growth, step decline, spikes, mixed), several seeds each, with 90 days of history before the horizon. Every policy
starts with no commitment; a term that outlives the horizon counts inside it only (see commitments.py).

Targets (issue 5): ours reaches >= 97% of the hindsight ESR on average, and ours >= AWS-style in every scenario
(both terms). Then the scale part: `plan` for 1,000 pools x 8,760 hourly points, timed (target < 30 s).

Exactness. The comparison of ours with AWS-style is exact: each policy's cost over the horizon is recomputed in
Decimal from the float usage and the tranches (every float converted exactly), so a tie is a tie and a loss of
one part in a billion is a loss. The ESRs in the tables are those exact values rounded for print.

Honesty. A policy sees only the usage before each decision: `simulate` hands it the history and the months
already past, nothing else. The benchmark checks it: every policy is run again on a copy of each workload whose
future after month `PEEK_MONTH` is replaced by other numbers, and what it bought up to that month must be
identical, tranche for tranche.

The bound. A step decline that no data announce cannot be foreseen: up to the step, a step-decline workload is
identical to the same workload without the step (its counterfactual), so any honest policy makes the same
purchases on both until then. For each step-decline seed, one LP over both workloads, with the purchases up to
the step month shared, finds the most ESR any honest policy could keep on the decline while doing at least as
well as AWS-style on the counterfactual (it even knows the step month and every hour after it, so it is an upper
bound, not a policy). With every other scenario counted at a perfect 1.0, that caps the mean over scenarios.
The same LP without the AWS-style condition, maximising the mean of the two ratios, bounds what hedging could
buy; and the hedge sweep runs the obvious hedge (a share of the 3-year optimum in 3-year terms, the rest in
1-year) on every workload, to show what it costs where no step comes.

Prints tables and writes bench/results/commitments.json.

    .venv/bin/python bench/commitments.py                 # everything, 5 seeds
    .venv/bin/python bench/commitments.py --seeds 2 --no-scale --no-bound --no-hedge
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import print_table, write_results
from finops_contracts.money import Money
from finops_recommend.commitments import (
    HOURS_PER_MONTH,
    AwsStyle,
    Forecasting,
    Settings,
    Tranche,
    evaluate,
    hindsight,
    plan,
    quantile_commitment,
    simulate,
)
from finops_recommend.prices import Instrument, PriceTable, Program

TRACES = ROOT.parent / "shared" / "data" / "traces"
HAVE_TRACES = TRACES.is_dir() and any(TRACES.glob("*.csv"))
"""The real traces are third-party data beside the clone (../shared); without them the generated scenarios run."""
HORIZON = 36 * HOURS_PER_MONTH
HISTORY = 90 * 24
SCENARIOS = ("stable", "growth", "step_decline", "spikes", "mixed")
PEEK_MONTH = 12
"""The no-peeking check replaces the usage after this month and expects the same purchases up to it."""


GROUPS = (*(("traces",) if HAVE_TRACES else ()), *SCENARIOS)


def _shape(rng: np.random.Generator, t: np.ndarray, noise: float) -> np.ndarray:
    """Daily and weekly seasonality times AR(1) log-normal noise."""
    daily = 1 + rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * (t - rng.integers(24)) / 24)
    weekly = np.where(((t // 24) % 7) >= 5, rng.uniform(0.75, 0.95), 1.0)
    e = rng.normal(0, noise, t.size)
    ar = np.empty_like(e)
    ar[0] = e[0]
    for i in range(1, e.size):  # a short loop over ~27k points: fine for a benchmark
        ar[i] = 0.8 * ar[i - 1] + e[i]
    return daily * weekly * np.exp(ar * np.sqrt(1 - 0.8**2))


def _spikes(rng: np.random.Generator, t: np.ndarray, per_day: float) -> np.ndarray:
    factor = np.ones(t.size)
    for day in np.flatnonzero(rng.random(t.size // 24 + 1) < per_day):
        start = day * 24 + rng.integers(24)
        factor[start : start + rng.integers(1, 13)] *= rng.uniform(1.5, 4.0)
    for day in np.flatnonzero(rng.random(t.size // 24 + 1) < per_day / 5):  # outages and batch gaps
        start = day * 24 + rng.integers(24)
        factor[start : start + rng.integers(1, 7)] *= 0.3
    return factor


def synthetic(scenario: str, seed: int, *, without_step: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """(history, horizon usage, description) of one synthetic workload, hourly, level about 100; with
    `without_step`, a step decline's counterfactual: the same draws, no step."""
    rng = np.random.default_rng([SCENARIOS.index(scenario), seed])
    t = np.arange(-HISTORY, HORIZON)
    years = t / 8760
    level = np.full(t.size, 100.0)
    if scenario == "stable":
        series, what = level * _shape(rng, t, 0.05), "flat"
    elif scenario == "growth":
        g = rng.uniform(0.2, 0.8)
        series, what = level * (1 + g * np.maximum(years, -0.2)) * _shape(rng, t, 0.05), f"+{g:.0%}/year linear"
    elif scenario == "step_decline":
        f, month = rng.uniform(0.2, 0.5), int(rng.integers(6, 31))
        step = np.where((t >= month * HOURS_PER_MONTH) & (not without_step), 1 - f, 1.0)
        series, what = level * step * _shape(rng, t, 0.05), f"-{f:.0%} at month {month}"
    elif scenario == "spikes":
        series, what = level * _shape(rng, t, 0.05) * _spikes(rng, t, 0.15), "flat, 15% of days spike"
    elif scenario == "mixed":
        g, f, month = rng.uniform(-0.15, 0.5), rng.uniform(-0.3, 0.3), int(rng.integers(6, 31))
        trend = 1 + g * np.maximum(years, -0.2)
        step = np.where(t >= month * HOURS_PER_MONTH, 1 + f, 1.0)
        series = level * trend * step * _shape(rng, t, 0.08) * _spikes(rng, t, 0.08)
        what = f"{g:+.0%}/year, {f:+.0%} at month {month}, spikes"
    else:
        raise ValueError(scenario)
    series = np.maximum(series, 0.0)
    return series[:HISTORY], series[HISTORY:], what


def traces() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, history, horizon) per usage column of the real traces: hourly means, the trace repeated."""
    out = []
    for path in sorted(TRACES.glob("*.csv")):
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        for column in rows[0]:
            if "cycles" in column:
                continue  # not a usage measure
            values = np.array([float(r[column]) for r in rows])
            hourly = values[: values.size // 12 * 12].reshape(-1, 12).mean(axis=1)
            reps = -(-HORIZON // hourly.size)
            horizon = np.tile(hourly, reps)[:HORIZON]
            out.append((f"{path.stem.removesuffix('_machine_usage_300s')}/{column}", hourly, horizon))
    return out


def exact_cost(usage: np.ndarray, tranches: list[Tranche]) -> Decimal:
    """The cost of `usage` under `tranches` over the horizon, exactly: each float converted to Decimal without
    rounding, sums in 80 digits. Commitments cost (1 - d) per covered unit-hour whether used or not; usage above
    the month's total commitment is paid on demand."""
    months = -(-usage.size // HOURS_PER_MONTH)
    with localcontext() as ctx:
        ctx.prec = 80
        total = Decimal(0)
        for k in range(months):
            hours = usage[k * HOURS_PER_MONTH : (k + 1) * HOURS_PER_MONTH]
            active = [t for t in tranches if t.active(k)]
            level = sum((t.amount for t in active), Decimal(0))
            rate = sum(((1 - Decimal(repr(t.instrument.discount))) * t.amount for t in active), Decimal(0))
            total += rate * len(hours)
            above = hours[hours > float(level)]  # a preselection only: the exact test is below
            total += sum((u - level for u in map(Decimal, above.tolist()) if u > level), Decimal(0))
        return total


def exact_esr(usage: np.ndarray, tranches: list[Tranche]) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 80
        ode = sum(map(Decimal, usage.tolist()), Decimal(0))
        return (ode - exact_cost(usage, tranches)) / ode if ode > 0 else Decimal(0)


def peeks(policy, history: np.ndarray, usage: np.ndarray, bought: list[Tranche]) -> bool:
    """Whether `policy` bought anything up to PEEK_MONTH differently when the usage after it is replaced."""
    cut = PEEK_MONTH * HOURS_PER_MONTH
    other = usage.copy()
    other[cut:] = np.random.default_rng(0).permutation(usage[cut:]) * 1.7 + 13.0
    again = simulate(policy, other, history=history)
    early = [(t.instrument, t.start_month, t.amount) for t in bought if t.start_month <= PEEK_MONTH]
    early_again = [(t.instrument, t.start_month, t.amount) for t in again if t.start_month <= PEEK_MONTH]
    return early != early_again


def run(history: np.ndarray, usage: np.ndarray, instruments) -> dict[str, object]:
    one, three = instruments
    policies = {
        "aws_1y": AwsStyle(one),
        "aws_3y": AwsStyle(three),
        "ours": Forecasting(tuple(instruments)),
    }
    bought = {"hindsight": hindsight(usage, instruments)}
    for name, policy in policies.items():
        bought[name] = simulate(policy, usage, history=history)
    exact = {name: exact_esr(usage, tranches) for name, tranches in bought.items()}
    results: dict[str, object] = {name: float(v) for name, v in exact.items()}
    results["exact"] = exact
    results["ours_minus_best_aws_exact"] = exact["ours"] - max(exact["aws_1y"], exact["aws_3y"])
    results["peeked"] = sorted(name for name, policy in policies.items() if peeks(policy, history, usage, bought[name]))
    ours = bought["ours"]
    k = evaluate(usage, ours)
    results["ours_coverage"] = k.coverage
    results["ours_utilization"] = k.utilization
    amount = sum((t.amount for t in ours), Decimal(0))
    one_year = sum((t.amount for t in ours if t.instrument == one), Decimal(0))
    results["ours_1y_share"] = float(one_year / amount) if amount else 0.0  # a share, not money
    results["ours_tranches"] = len(ours)
    return results


@dataclass(frozen=True)
class Hedged:
    """A hedge against declines that no data announce, in the hedge sweep: each month, `share` of the 30-day optimum
    for the 3-year term is held in 3-year tranches and the rest, up to the 30-day optimum for the 1-year term, in
    1-year tranches, which a decline outlasts by at most a year. `share` 1.0 is AWS-style 3y topped up in 1y."""

    share: float
    one: Instrument
    three: Instrument

    def __call__(self, observed: np.ndarray, held: list[Tranche], month: int) -> list[Tranche]:
        window = observed[-720:]
        if window.size == 0:
            return []
        three = quantile_commitment(window, self.three.discount) * self.share
        one = quantile_commitment(window, self.one.discount)
        held_three = sum(float(t.amount) for t in held if t.active(month) and t.instrument == self.three)
        held_one = sum(float(t.amount) for t in held if t.active(month) and t.instrument == self.one)
        out = []
        if three - held_three > 1e-9:
            out.append(Tranche(self.three, month, three - held_three))
        if one - max(held_three, three) - held_one > 1e-9:
            out.append(Tranche(self.one, month, one - max(held_three, three) - held_one))
        return out


def hedge_sweep(seeds: int, instruments, shares=(1.0, 0.9, 0.8, 0.7)) -> list[dict[str, object]]:
    """Mean ESR over hindsight per scenario of `Hedged` at each share: what giving up some 3-year cover buys on
    step declines and costs everywhere else."""
    workloads = [("traces", h, u) for _, h, u in traces()]
    workloads += [(sc, *synthetic(sc, seed)[:2]) for sc in SCENARIOS for seed in range(seeds)]
    best = [evaluate(u, hindsight(u, instruments)).esr for _, _, u in workloads]
    out = []
    for share in shares:
        policy = Hedged(share, *instruments)
        esr = [evaluate(u, simulate(policy, u, history=h)).esr for _, h, u in workloads]
        ratios = {}
        for scenario in GROUPS:
            idx = [i for i, w in enumerate(workloads) if w[0] == scenario]
            ratios[scenario] = float(np.mean([esr[i] for i in idx]) / np.mean([best[i] for i in idx]))
        out.append({"share_3y": share, **ratios, "mean": float(np.mean(list(ratios.values())))})
    return out


# --- the bound for step declines ------------------------------------------------------------------------------


def decline_bound(seed: int, instruments) -> dict[str, float]:
    """Upper bounds for step-decline seed `seed`, each one LP over the workload and its counterfactual (the same
    workload without the step), purchases up to the step month shared (a policy cannot tell them apart before the
    step), everything after free:

    - `bound_ratio`: the most hindsight ratio any honest policy keeps on the decline if it does at least as well
      as AWS-style (3y) on the counterfactual;
    - `joint_bound`: with no AWS-style condition at all, the most any honest policy keeps on the two workloads
      together (the mean of its two hindsight ratios). The counterfactual is drawn like the `stable` scenario, so
      an honest policy's stable and step-decline ratios cannot average above this in expectation, whatever it
      gives up against AWS-style."""
    history, steady, _ = synthetic("step_decline", seed, without_step=True)
    _, decline, _ = synthetic("step_decline", seed)
    step_month = int(np.flatnonzero(decline != steady)[0] // HOURS_PER_MONTH)
    hs_steady = float(Decimal(steady.sum().item()) * exact_esr(steady, hindsight(steady, instruments)))
    hs_decline = float(Decimal(decline.sum().item()) * exact_esr(decline, hindsight(decline, instruments)))
    aws = float(exact_esr(steady, simulate(AwsStyle(instruments[-1]), steady, history=history)))
    aws_ratio = aws * float(steady.sum()) / hs_steady
    months, n_i = 36, len(instruments)
    n_y, n_u = n_i * months, steady.size
    # variables per workload w: y_w[i, m], X_w[k], s_w[t]
    per = n_y + months + n_u
    cost = []
    for _w in range(2):
        c = np.zeros(per)
        for i, inst in enumerate(instruments):
            for m in range(months):
                c[i * months + m] = (1 - inst.discount) * (min(m + inst.term_months, months) - m) * HOURS_PER_MONTH
        c[n_y + months :] = 1.0
        cost.append(c)
    rows, cols, vals, rhs = [], [], [], []
    t = np.arange(n_u)
    for w, u in enumerate((steady, decline)):
        o = w * per
        rows += [*(len(rhs) + t), *(len(rhs) + t)]
        cols += [*(o + n_y + months + t), *(o + n_y + t // HOURS_PER_MONTH)]
        vals += [-1.0] * (2 * n_u)
        rhs += list(-u)
    nz = np.flatnonzero(cost[0])
    rows += [len(rhs)] * nz.size
    cols += list(nz)
    vals += list(cost[0][nz])
    rhs.append(float(steady.sum()) - aws_ratio * hs_steady)  # the steady workload does at least as well as AWS
    hourly_rows = len(rhs) - 1  # every row but the AWS-style one
    a_ub = sparse.csr_matrix((vals, (rows, cols)), shape=(len(rhs), 2 * per))
    er, ec, ev, e = [], [], [], 0
    for w in range(2):
        o = w * per
        for k in range(months):
            er.append(e)
            ec.append(o + n_y + k)
            ev.append(1.0)
            for i, inst in enumerate(instruments):
                for m in range(max(0, k - inst.term_months + 1), k + 1):
                    er.append(e)
                    ec.append(o + i * months + m)
                    ev.append(-1.0)
            e += 1
    for i in range(n_i):
        for m in range(step_month + 1):  # the decision at the step month has not seen the step yet
            er += [e, e]
            ec += [i * months + m, per + i * months + m]
            ev += [1.0, -1.0]
            e += 1
    a_eq = sparse.csr_matrix((ev, (er, ec)), shape=(e, 2 * per))
    b_ub = np.array(rhs)

    def solve(objective: np.ndarray, rows: int) -> np.ndarray:
        res = linprog(objective, A_ub=a_ub[:rows], b_ub=b_ub[:rows], A_eq=a_eq, b_eq=np.zeros(e), bounds=(0, None),
                      method="highs")  # fmt: skip
        if res.status != 0:
            raise RuntimeError(f"bound LP for seed {seed} not solved: {res.message}")
        return res.x

    x = solve(np.concatenate([np.zeros(per), cost[1]]), len(rhs))
    decline_ratio = (float(decline.sum()) - float(cost[1] @ x[per:])) / hs_decline
    x = solve(np.concatenate([cost[0] / hs_steady, cost[1] / hs_decline]), hourly_rows)
    steady_joint = (float(steady.sum()) - float(cost[0] @ x[:per])) / hs_steady
    decline_joint = (float(decline.sum()) - float(cost[1] @ x[per:])) / hs_decline
    return {
        "seed": seed,
        "step_month": step_month,
        "aws_ratio_without_step": aws_ratio,
        "bound_ratio": decline_ratio,
        "joint_bound": (steady_joint + decline_joint) / 2,
        "joint_ratio_without_step": steady_joint,
        "joint_ratio_with_step": decline_joint,
    }


def _signed(value: Decimal) -> str:
    """An exact difference for print: a tie is a tie."""
    return "0 (tie)" if value == 0 else f"{value:+.2E}"


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Money):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal | datetime):
        return str(value)
    if isinstance(value, np.floating | np.integer | np.bool_):
        return value.item()
    return value


def scale(pools: int, hours: int, instruments) -> dict[str, object]:
    rng = np.random.default_rng(7)
    t = np.arange(hours)
    usage = {}
    for p in range(pools):
        level = rng.lognormal(4, 1)
        trend = 1 + rng.uniform(-0.3, 0.6) * t / 8760
        usage[f"pool-{p:04d}"] = level * trend * (1 + 0.2 * np.sin(2 * np.pi * t / 24)) * rng.lognormal(0, 0.08, hours)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    plans = plan(usage, instruments)
    seconds = time.perf_counter() - start
    return {
        "pools": pools,
        "hours": hours,
        "seconds": round(seconds, 2),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_seconds_per_pool": round(seconds / pools, 4),
        "tranches": sum(len(p.tranches) for p in plans),
        "example_plan": _jsonable(asdict(plans[0])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-scale", action="store_true", help="skip the 1,000-pool timing")
    parser.add_argument("--no-bound", action="store_true", help="skip the step-decline bound (a few minutes)")
    parser.add_argument("--no-hedge", action="store_true", help="skip the sweep of a hedge against declines")
    parser.add_argument("--scale-only", action="store_true", help="only the 1,000-pool timing (printed, not written)")
    parser.add_argument("--pools", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "commitments.json")
    args = parser.parse_args()
    instruments = PriceTable().instruments(Program.AWS_COMPUTE_SAVINGS_PLAN)
    settings = Settings()
    if args.scale_only:
        result = scale(args.pools, 8760, instruments)
        print({k: v for k, v in result.items() if k != "example_plan"})
        return

    runs = []
    if not HAVE_TRACES:
        print(f"real traces: not run, {TRACES} is not beside this clone (third-party data in ../shared)")
    for name, history, usage in traces():
        runs.append({"scenario": "traces", "case": name, **run(history, usage, instruments)})
    for scenario in SCENARIOS:
        for seed in range(args.seeds):
            history, usage, what = synthetic(scenario, seed)
            runs.append({"scenario": scenario, "case": f"seed {seed}: {what}", **run(history, usage, instruments)})
    for r in runs:
        r["ratio"] = r["ours"] / r["hindsight"]

    print_table(
        "Commitment policies per run: ESR over 36 months (AWS Compute Savings Plans, no upfront: 1y 28%, 3y 50%)",
        ["scenario", "case", "hindsight", "AWS-style 1y", "AWS-style 3y", "ours", "ours/hindsight",
         "ours - best AWS (exact)", "ours 1y share"],
        [
            [r["scenario"], r["case"], f"{r['hindsight']:.4f}", f"{r['aws_1y']:.4f}", f"{r['aws_3y']:.4f}",
             f"{r['ours']:.4f}", f"{r['ratio']:.4f}", _signed(r["ours_minus_best_aws_exact"]),
             f"{r['ours_1y_share']:.2f}"]
            for r in runs
        ],
    )  # fmt: skip
    summary = []
    for scenario in GROUPS:
        group = [r for r in runs if r["scenario"] == scenario]
        mean = {k: float(np.mean([r[k] for r in group])) for k in ("hindsight", "aws_1y", "aws_3y", "ours", "ratio")}
        # exact: the scenario's mean ESR of ours minus that of the better AWS-style term, in Decimal
        exact_margin = min(
            sum((r["exact"]["ours"] - r["exact"][term] for r in group), Decimal(0)) / len(group)
            for term in ("aws_1y", "aws_3y")
        )
        summary.append(
            {
                "scenario": scenario,
                "runs": len(group),
                **mean,
                "min_ratio": min(r["ratio"] for r in group),
                "ours_minus_best_aws": exact_margin,
                "runs_below_aws": sum(r["ours_minus_best_aws_exact"] < 0 for r in group),
                "runs_tied_with_aws": sum(r["ours_minus_best_aws_exact"] == 0 for r in group),
                "ours_coverage": float(np.mean([r["ours_coverage"] for r in group])),
                "ours_utilization": float(np.mean([r["ours_utilization"] for r in group])),
            }
        )
    print_table(
        "Commitment policies per scenario: mean ESR",
        ["scenario", "runs", "hindsight", "AWS-style 1y", "AWS-style 3y", "ours", "ours/hindsight",
         "worst ours/hindsight", "ours - best AWS (exact)", "runs below / tied", "ours coverage", "ours utilization"],
        [
            [s["scenario"], s["runs"], f"{s['hindsight']:.4f}", f"{s['aws_1y']:.4f}", f"{s['aws_3y']:.4f}",
             f"{s['ours']:.4f}", f"{s['ratio']:.4f}", f"{s['min_ratio']:.4f}", _signed(s["ours_minus_best_aws"]),
             f"{s['runs_below_aws']} / {s['runs_tied_with_aws']}", f"{s['ours_coverage']:.4f}",
             f"{s['ours_utilization']:.4f}"]
            for s in summary
        ],
    )  # fmt: skip
    bounds = []
    if not args.no_bound:
        bounds = [decline_bound(seed, instruments) for seed in range(args.seeds)]
        ours_decline = {r["case"].split(":")[0]: r["ratio"] for r in runs if r["scenario"] == "step_decline"}
        print_table(
            "Step declines: the most any honest policy can keep (hindsight ratio), if it does at least as well as "
            "AWS-style on the same workload without the step",
            ["seed", "step month", "AWS-style 3y ratio without the step", "bound on the ratio with it", "ours",
             "no AWS-style condition: bound on the mean of both ratios"],
            [[b["seed"], b["step_month"], f"{b['aws_ratio_without_step']:.4f}", f"{b['bound_ratio']:.4f}",
              f"{ours_decline['seed ' + str(b['seed'])]:.4f}", f"{b['joint_bound']:.4f}"] for b in bounds],
        )  # fmt: skip
    hedged = []
    if not args.no_hedge:
        hedged = hedge_sweep(args.seeds, instruments)
        print_table(
            "A hedge against unannounced declines: share of the 3-year optimum bought in 3-year, the rest in 1-year "
            "(ESR over hindsight, mean per scenario)",
            ["3y share", *GROUPS, "mean over scenarios"],
            [[f"{h['share_3y']:.1f}", *(f"{h[k]:.4f}" for k in GROUPS), f"{h['mean']:.4f}"]
             for h in hedged],
        )  # fmt: skip
    mean_ratio_scenarios = float(np.mean([s["ratio"] for s in summary]))
    mean_ratio_runs = float(np.mean([r["ratio"] for r in runs]))
    without_declines = float(np.mean([s["ratio"] for s in summary if s["scenario"] != "step_decline"]))
    worst_scenario = min(s["ours_minus_best_aws"] for s in summary)
    below = sum(r["ours_minus_best_aws_exact"] < 0 for r in runs)
    worst_run = min(r["ours_minus_best_aws_exact"] for r in runs)
    peeked = sorted({f"{name} ({r['case']})" for r in runs for name in r["peeked"]})
    measured = (
        f"{mean_ratio_scenarios:.4f} (over runs {mean_ratio_runs:.4f}; without step declines {without_declines:.4f})"
    )
    if bounds:
        bound = float(np.mean([b["bound_ratio"] for b in bounds]))
        cap = (len(summary) - 1 + bound) / len(summary)
        joint = float(np.mean([b["joint_bound"] for b in bounds]))
        measured += (
            f"; no honest policy that matches AWS-style on steady usage can exceed {bound:.4f} on step declines, "
            f"so {cap:.4f} over scenarios even with every other scenario at 1.0 (without the AWS-style condition, "
            f"a step-month-clairvoyant bound allows {(len(summary) - 2 + 2 * joint) / len(summary):.4f})"
        )
    if hedged:
        best = max(hedged, key=lambda h: h["mean"])
        measured += f"; best hedge: 3y share {best['share_3y']:.1f}, mean {best['mean']:.4f}"
    targets = [
        {
            "target": "ours >= 97% of hindsight ESR on average (mean over scenarios)",
            "measured": measured,
            "pass": bool(mean_ratio_scenarios >= 0.97),
        },
        {
            "target": "ours >= AWS-style (best of 1y and 3y) in every scenario (mean ESR, exact)",
            "measured": f"worst scenario margin {_signed(worst_scenario)}",
            "pass": bool(worst_scenario >= 0),
        },
        {
            "target": "(information, not a target) ours >= AWS-style in every single run (exact)",
            "measured": f"worst run margin {_signed(worst_run)}; strictly below in {below}/{len(runs)} runs",
            "pass": None,
        },
        {
            "target": f"no policy's purchases up to month {PEEK_MONTH} change when the usage after it changes",
            "measured": f"{len(runs)} runs x 3 policies checked; peeked: " + (", ".join(peeked) if peeked else "none"),
            "pass": not peeked,
        },
    ]
    scale_result = None
    if not args.no_scale:
        scale_result = scale(args.pools, 8760, instruments)
        targets.append(
            {
                "target": f"plan for {args.pools:,} pools x 8,760 hourly points in < 30 s",
                "measured": f"{scale_result['seconds']} s (1-minute load average before/after "
                f"{scale_result['load_average_1m'][0]}/{scale_result['load_average_1m'][1]} on "
                f"{os.cpu_count()} cores)",
                "pass": scale_result["seconds"] < 30 and args.pools >= 1000,
            }
        )
    print_table(
        "Targets",
        ["target", "measured", "result"],
        [[t["target"], t["measured"], {None: "info", True: "PASS", False: "FAIL"}[t["pass"]]] for t in targets],
    )
    write_results(
        args.out,
        "commitments",
        instruments=[asdict(i) for i in instruments],
        settings=asdict(settings),
        horizon_hours=HORIZON,
        history_hours=HISTORY,
        seeds=args.seeds,
        targets=targets,
        scenarios=_jsonable(summary),
        decline_bounds=bounds,
        hedged=hedged,
        runs=_jsonable(runs),
        scale=scale_result,
    )


if __name__ == "__main__":
    main()
