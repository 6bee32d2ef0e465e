"""Benchmark of cost anomaly detection (finops_recommend.anomaly).

1. Generated daily cost series (weekly seasonality, trend, log-normal noise of 2% to 10% a day) with injected
   anomalies: spikes (1-3 days, +60% to +300%), sustained rises (4-10 days, +50% to +150%), drops (1-3 days,
   -60% to -95%) and permanent level shifts (+60% to +150%), after a clean first month; a third of the series have
   none. Scored per incident: a detected incident is a true positive when it overlaps an injected anomaly (for a
   level shift, its first `accept_after_days` days); recall counts the injected anomalies that some incident
   overlaps. Target (issue 5): precision and recall >= 0.9 each.
2. The real FOCUS 1.0 sample (../shared/data/focus/, 30 days of AWS, Azure and OCI): daily EffectiveCost per
   (provider, sub account) and per (provider, sub account, service), the sub-account series attributed to their
   services. Printed: the number of anomalous days and of incidents (it must not be an alert storm).
3. The same sample through the recommend service's own analysis (`analysis.anomalies`): series per team (the
   `team` tag), service and billing account, every incident of the window, one alert per incident however many
   series it moved. Printed: the alerts, and the incidents folded into them.

Prints tables and writes bench/results/anomaly.json.

    .venv/bin/python bench/anomaly.py
    .venv/bin/python bench/anomaly.py --series 100 --seed 3
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import print_table, write_results
from finops_allocation.rules import RuleSet, owner_of
from finops_recommend import analysis
from finops_recommend.anomaly import Settings, detect, group, scan

FOCUS = ROOT.parent / "shared" / "data" / "focus" / "focus-1.0_multi-provider_aws-azure-oci_focus_sample_1000.csv"
START = date(2026, 1, 5)
KINDS = ("spike", "sustained", "drop", "level_shift")


def generated(rng: np.random.Generator, days: int, settings: Settings) -> tuple[np.ndarray, list[dict[str, object]]]:
    """A daily cost series and the anomalies injected into it."""
    t = np.arange(days)
    level = rng.lognormal(5, 1.5)
    weekend = rng.uniform(0.5, 1.0)
    trend = 1 + rng.uniform(-0.3, 0.6) * t / 365
    noise = rng.lognormal(0, rng.uniform(0.02, 0.10), days)
    x = level * trend * np.where(((t + START.weekday()) % 7) >= 5, weekend, 1.0) * noise
    injected: list[dict[str, object]] = []
    n = rng.choice([0, 1, 2, 3], p=[1 / 3, 2 / 9, 2 / 9, 2 / 9])
    taken = np.zeros(days, bool)
    for _ in range(n):
        kind = KINDS[rng.integers(len(KINDS))]
        length = {"spike": rng.integers(1, 4), "sustained": rng.integers(4, 11), "drop": rng.integers(1, 4)}.get(
            kind, settings.accept_after_days
        )
        first = int(rng.integers(35, days - 14))
        span = slice(first - 7, first + length + 14)  # keep anomalies apart so that each is scored on its own
        if taken[span].any() or (kind == "level_shift" and any(a["kind"] == "level_shift" for a in injected)):
            continue
        taken[span] = True
        if kind == "spike":
            x[first : first + length] *= 1 + rng.uniform(0.6, 3.0)
        elif kind == "sustained":
            x[first : first + length] *= 1 + rng.uniform(0.5, 1.5)
        elif kind == "drop":
            x[first : first + length] *= 1 - rng.uniform(0.6, 0.95)
        else:
            x[first:] *= 1 + rng.uniform(0.6, 1.5)
        injected.append({"kind": kind, "first": first, "last": first + int(length) - 1})
    return x, injected


def synthetic(series: int, days: int, seed: int, settings: Settings) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    tp_incidents = fp_incidents = detected = injected_total = anomalous_days = 0
    per_kind = {k: [0, 0] for k in KINDS}
    for _ in range(series):
        x, injected = generated(rng, days, settings)
        judged = detect(x, START, settings)
        anomalous_days += sum(d.anomalous for d in judged)
        incidents = group(judged, settings=settings)
        spans = [((i.start - START).days, (i.end - START).days) for i in incidents]
        for lo, hi in spans:
            if any(lo <= a["last"] and hi >= a["first"] for a in injected):
                tp_incidents += 1
            else:
                fp_incidents += 1
        for a in injected:
            hit = any(lo <= a["last"] and hi >= a["first"] for lo, hi in spans)
            detected += hit
            per_kind[str(a["kind"])][0] += hit
            per_kind[str(a["kind"])][1] += 1
        injected_total += len(injected)
    incidents_total = tp_incidents + fp_incidents
    return {
        "series": series,
        "days": days,
        "injected": injected_total,
        "anomalous_days": anomalous_days,
        "incidents": incidents_total,
        "true_positive_incidents": tp_incidents,
        "false_positive_incidents": fp_incidents,
        "precision": tp_incidents / incidents_total if incidents_total else 1.0,
        "recall": detected / injected_total if injected_total else 1.0,
        "recall_per_kind": {k: (hit / n if n else None) for k, (hit, n) in per_kind.items()},
    }


RULES = RuleSet()


def _tags(text: str | None) -> dict[str, str]:
    try:
        tags = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def _day(text: str) -> date:
    return datetime.strptime(text[:10], "%Y-%m-%d").date()


def focus_sample(settings: Settings) -> dict[str, object]:
    """Daily EffectiveCost per (provider, sub account) with its services as children, and per service too."""
    with FOCUS.open(newline="") as f:
        rows = list(csv.DictReader(f))
    days = sorted({_day(r["ChargePeriodStart"]) for r in rows})
    start, n = days[0], (days[-1] - days[0]).days + 1
    accounts: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * n)
    services: dict[str, dict[str, list[Decimal]]] = defaultdict(lambda: defaultdict(lambda: [Decimal(0)] * n))
    by_service: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * n)
    currencies = set()
    for r in rows:
        cost = r["EffectiveCost"].strip()
        if cost in ("", "NULL"):
            continue
        i = (_day(r["ChargePeriodStart"]) - start).days
        account = f"{r['ProviderName']}/{r['SubAccountId'] or r['BillingAccountId']}"
        accounts[account][i] += Decimal(cost)
        services[account][r["ServiceName"] or "(none)"][i] += Decimal(cost)
        by_service[f"{account}/{r['ServiceName']}"][i] += Decimal(cost)
        currencies.add(r["BillingCurrency"])
    children = {a: {"service": dict(s)} for a, s in services.items()}
    account_incidents = scan(accounts, start, children=children, settings=settings)
    service_incidents = scan(by_service, start, settings=settings)
    judged_days = sum(len(detect(c, start, settings)) for c in (*accounts.values(), *by_service.values()))
    anomalous_days = sum(
        sum(d.anomalous for d in detect(c, start, settings)) for c in (*accounts.values(), *by_service.values())
    )
    return {
        "rows": len(rows),
        "days": n,
        "currencies": sorted(currencies),
        "account_series": len(accounts),
        "service_series": len(by_service),
        "judged_series_days": judged_days,
        "anomalous_days": anomalous_days,
        "account_incidents": len(account_incidents),
        "service_incidents": len(service_incidents),
        "incidents": [
            {
                "series": i.series,
                "start": i.start.isoformat(),
                "end": i.end.isoformat(),
                "direction": i.direction,
                "severity": i.severity.value,
                "change": str(i.change.amount),
                "top": None if i.top is None else f"{i.top.dimension}={i.top.key} ({i.top.change.amount})",
            }
            for i in (*account_incidents, *service_incidents)
        ],
    }


def service_alerts(settings: Settings) -> dict[str, object]:
    """What the recommend service itself alerts on the FOCUS sample: `analysis.anomalies` over every team, service
    and billing account series (team from the `team` tag), every incident of the window counted (not only those
    still going on), one alert per incident however many series it moved."""
    with FOCUS.open(newline="") as f:
        lines = list(csv.DictReader(f))
    rows, sums = [], defaultdict(Decimal)
    for r in lines:
        cost = r["EffectiveCost"].strip()
        if cost in ("", "NULL"):
            continue
        team = owner_of({}, _tags(r.get("Tags")), RULES).team  # allocation's owner under no rules: the team tag
        key = (team, r["BillingCurrency"], _day(r["ChargePeriodStart"]), r["ServiceName"] or "",
               r["BillingAccountId"], r["ResourceId"] or "")  # fmt: skip
        sums[key] += Decimal(cost)
    for (team, currency, day, service, account, resource), cost in sums.items():
        rows.append(dict(team=team, currency=currency, day=day, service_name=service, billing_account_id=account,
                         resource_id=resource, cost=cost))  # fmt: skip
    days = (max(r["day"] for r in rows) - min(r["day"] for r in rows)).days + 1
    model = analysis.Settings(anomaly=settings, anomaly_recent_days=days)
    drafts = analysis.anomalies(rows, model)
    keys = {(d, str(r[f]), r["currency"]) for r in rows for d, f in
            (("team", "team"), ("service", "service_name"), ("account", "billing_account_id"))}  # fmt: skip
    return {
        "series": len(keys),
        "alerts": len(drafts),
        "incidents_folded_into_them": sum(len(d.evidence["also_seen_in"]) for d in drafts),
        "by_dimension": {
            dim: sum(d.evidence["series"]["dimension"] == dim for d in drafts) for dim in analysis.ANOMALY_DIMENSIONS
        },
        "alert_list": [
            {
                "target": d.target,
                "owner_team": d.owner_team,
                "severity": d.evidence["severity"],
                "change": d.evidence["change"],
                "also_seen_in": len(d.evidence["also_seen_in"]),
            }
            for d in drafts
        ],  # fmt: skip
    }


def print_targets(targets: list[dict[str, object]]) -> None:
    rows = [[t["target"], t["measured"], "PASS" if t["pass"] else "FAIL"] for t in targets]
    print_table("Targets", ["target", "measured", "result"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--days", type=int, default=182)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "anomaly.json")
    args = parser.parse_args()
    settings = Settings()

    syn = synthetic(args.series, args.days, args.seed, settings)
    print_table(
        f"Generated series: {args.series} x {args.days} days, injected anomalies scored per incident",
        ["injected", "anomalous days", "incidents", "true positives", "false positives", "precision", "recall"],
        [
            [
                syn["injected"],
                syn["anomalous_days"],
                syn["incidents"],
                syn["true_positive_incidents"],
                syn["false_positive_incidents"],
                f"{syn['precision']:.3f}",
                f"{syn['recall']:.3f}",
            ]
        ],
    )
    print_table(
        "Recall per kind of anomaly",
        ["kind", "recall"],
        [[k, "-" if v is None else f"{v:.3f}"] for k, v in syn["recall_per_kind"].items()],
    )
    synthetic_targets = [
        {"target": "precision >= 0.9 on generated series", "measured": f"{syn['precision']:.3f}",
         "pass": syn["precision"] >= 0.9},
        {"target": "recall >= 0.9 on generated series", "measured": f"{syn['recall']:.3f}",
         "pass": syn["recall"] >= 0.9},
    ]  # fmt: skip
    if not FOCUS.exists():
        print(f"\nReal FOCUS sample: not run, {FOCUS} is not beside this clone (third-party data in ../shared)")
        print_targets(synthetic_targets)
        write_results(args.out, "anomaly", settings=asdict(settings), seed=args.seed, targets=synthetic_targets,
                      synthetic=syn, focus=None, service=None)  # fmt: skip
        return
    real = focus_sample(settings)
    print_table(
        f"Real FOCUS 1.0 sample: {real['rows']} rows over {real['days']} days (first {settings.min_history_days} "
        "days are history only)",
        ["series", "count", "judged series-days", "anomalous days", "incidents"],
        [
            ["(provider, sub account)", real["account_series"], "", "", real["account_incidents"]],
            ["(provider, sub account, service)", real["service_series"], "", "", real["service_incidents"]],
            ["all", real["account_series"] + real["service_series"], real["judged_series_days"],
             real["anomalous_days"], real["account_incidents"] + real["service_incidents"]],
        ],
    )  # fmt: skip
    if real["incidents"]:
        print_table(
            "Incidents on the FOCUS sample",
            ["series", "start", "end", "direction", "severity", "change", "top contributor"],
            [[i["series"], i["start"], i["end"], i["direction"], i["severity"], i["change"], i["top"] or "-"]
             for i in real["incidents"]],
        )  # fmt: skip
    alerts = service_alerts(settings)
    print_table(
        "The recommend service on the FOCUS sample: team, service and account series, one alert per incident",
        ["series", "alerts", "team / service / account", "incidents folded into them"],
        [[alerts["series"], alerts["alerts"], " / ".join(str(v) for v in alerts["by_dimension"].values()),
          alerts["incidents_folded_into_them"]]],
    )  # fmt: skip
    storm_limit = max(5, real["account_series"] + real["service_series"]) // 5
    incidents_real = real["account_incidents"] + real["service_incidents"]
    targets = [
        *synthetic_targets,
        {"target": f"no alert storm on the FOCUS sample (incidents <= {storm_limit}, a fifth of the series)",
         "measured": f"{incidents_real} incidents from {real['anomalous_days']} anomalous days",
         "pass": incidents_real <= storm_limit},
        {"target": f"no alert storm from the service's own analysis (alerts <= {max(5, alerts['series']) // 5}, "
                   "a fifth of its series)",
         "measured": f"{alerts['alerts']} alerts over {alerts['series']} series "
                     f"({alerts['incidents_folded_into_them']} more incidents folded into them)",
         "pass": alerts["alerts"] <= max(5, alerts["series"]) // 5},
    ]  # fmt: skip
    print_targets(targets)
    write_results(
        args.out,
        "anomaly",
        settings=asdict(settings),
        seed=args.seed,
        targets=targets,
        synthetic=syn,
        focus=real,
        service=alerts,
    )


if __name__ == "__main__":
    main()
