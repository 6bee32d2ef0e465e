"""Planted findings and the feeds beside the bills.

- one anomaly: a steady compute resource (not on AWS when another provider is simulated) runs 6x its usage on the
  15th of the second-to-last month (root cause "runaway autoscaling: six times the instances for one day").
- idle resources: one forgotten instance (one unit of the compute service, no noise: the same tiny cost every day,
  under 5 a day) in each of the first two providers' first single-owner sub account, CPU about 1% in the feed.
- over-provisioned resources: the first two steady compute resources of single-owner sub accounts; CPU 5-20% and
  memory 10-25% in the feed.

utilization.csv: resource_id, timestamp, cpu_utilization, memory_utilization (fractions, 4 places), hourly over the
last 14 days of the simulation (UTC), for the planted resources and up to 20 ordinary compute resources (CPU
45-90%, memory 50-85%): the recommend service's metrics feed.

metrics.csv: product, period (YYYY-MM), metric, units: one business metric per product and month, the allocation
service's business-metrics input.
"""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from finops_simulate.org import COST_CENTERS, Organisation, Resource
from finops_simulate.periods import add_months

FEED_DAYS = 14
METRICS = {
    "checkout": ("orders", 120_000),
    "catalog": ("searches", 4_000_000),
    "analytics": ("queries", 250_000),
    "recommendations": ("recommendations_served", 9_000_000),
    "core": ("requests", 60_000_000),
    "app": ("monthly_active_users", 300_000),
}
RANGES = {
    "idle": ((2, 200), (500, 800)),  # per ten-thousand: cpu 0.02-2%, memory 5-8%
    "overprovisioned": ((500, 2000), (1000, 2500)),
    None: ((4500, 9000), (5000, 8500)),
}


def feed_resources(org: Organisation) -> list[Resource]:
    planted = [r for r in org.resources if r.planted in ("idle", "overprovisioned")]
    ordinary = [r for r in org.resources if r.service.key == "compute" and r.planted is None and r.stops_after is None]
    return planted + ordinary[:20]


def feed_end(cfg) -> datetime:
    last = add_months(cfg.first_month, cfg.months)
    return datetime(last.year, last.month, 1, tzinfo=UTC)


def write_utilization(path: Path, org: Organisation, cfg) -> dict[str, dict[str, Decimal | int]]:
    """Write the feed; per resource the samples' p95 of CPU and memory (inverted CDF) and their count."""
    end = feed_end(cfg)
    start = end - timedelta(days=FEED_DAYS)
    stats = {}
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["resource_id", "timestamp", "cpu_utilization", "memory_utilization"])
        for r in feed_resources(org):
            rng = random.Random(f"{cfg.seed}/utilization/{r.index}")
            (c_lo, c_hi), (m_lo, m_hi) = RANGES.get(r.planted, RANGES[None])
            cpu, mem = [], []
            moment = start
            while moment < end:
                c = Decimal(rng.randint(c_lo, c_hi)).scaleb(-4)
                m = Decimal(rng.randint(m_lo, m_hi)).scaleb(-4)
                cpu.append(c)
                mem.append(m)
                out.writerow([r.id, moment.strftime("%Y-%m-%dT%H:%M:%SZ"), format(c, "f"), format(m, "f")])
                moment += timedelta(hours=1)
            stats[r.id] = {"cpu_p95": _p95(cpu), "memory_p95": _p95(mem), "samples": len(cpu)}
    return stats


def _p95(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    rank = -(-95 * len(ordered) // 100)  # ceil(0.95 n): numpy's inverted_cdf
    return ordered[rank - 1]


def metrics(cfg) -> list[tuple[str, str, str, int]]:
    """(product, YYYY-MM, metric, units): each product's metric grows 3% a month from a seeded start."""
    rng = random.Random(f"{cfg.seed}/metrics")
    rows = []
    for cc in COST_CENTERS:
        metric, base = METRICS[cc.product]
        start = base * rng.randint(80, 120) // 100
        for i in range(cfg.months):
            month = add_months(cfg.first_month, i)
            rows.append((cc.product, f"{month:%Y-%m}", metric, start * (100 + 3 * i) // 100))
    return rows


def write_metrics(path: Path, cfg) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["product", "period", "metric", "units"])
        out.writerows(metrics(cfg))
