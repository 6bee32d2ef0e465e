"""Rightsizing and idle rules on FOCUS data: each finding names a resource, its owner team and what removing (or
shrinking) it saves per month, with the evidence behind it.

Rules, judged on the last `window_days` days of a resource's daily cost, for resources still costing on the last
day of the data:
- stale snapshot: a snapshot (its resource id, SKU or service says so) seen for `stale_snapshot_days` or more;
- storage with no compute: storage that costs money in a billing account, sub account and region where no compute
  ran over the window, so there is nothing for it to be attached to. Compute that ran at no cost counts: usage a
  commitment covered costs 0 in an actual-cost export (Azure's), the commitment's purchase carries the money;
- steady tiny cost: a resource that has cost the same small amount every day for `steady_days` days or more (an
  unattached address, an idle load balancer, a forgotten small instance): real work varies, idle capacity does not;
- unused compute: a compute resource whose peak (p95) CPU utilization, from the metrics feed, stays under
  `idle_cpu_p95` over at least `min_utilization_samples` samples. It does no work, so the finding is to stop it
  (idle, its whole run rate), not to shrink it: a smaller size of nothing is still nothing. Memory is not
  looked at: a process that does nothing still holds its resident memory. The threshold follows the providers'
  own idle rules (AWS Compute Optimizer: peak CPU under 5%; Azure Advisor shutdown: P95 CPU under 3%);
- over-provisioned: a compute resource whose peak (p95) CPU and memory utilization, from the metrics feed, both
  stay under `overprovisioned_p95` over at least `min_utilization_samples` samples. It is moved to the smallest
  type of its family (8, 4 or 2 times smaller, see `sizes`) that keeps its peak under `resize_target_p95`, named
  in the evidence; when the bill names no instance type, one size down is assumed.
A resource gets at most one finding, the first rule above that holds. Savings are the monthly run rate (the mean
daily cost of the last `run_rate_days` days x 365.25 / 12), or (1 - 1/factor) of it for a resize: within a
family, price is proportional to size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import median

from finops_contracts.money import Money
from finops_contracts.recommendations import Kind
from finops_recommend import sizes

CENT = Decimal("0.01")
DAYS_PER_MONTH = Decimal("365.25") / 12


@dataclass(frozen=True)
class Settings:
    window_days: int = 30
    run_rate_days: int = 7
    steady_days: int = 7
    steady_tolerance: Decimal = Decimal("0.05")
    """How far a day may be from the median, relative to it, and still count as the same cost."""
    tiny_daily_cost: Decimal = Decimal("5")
    """At most this per day (in the billing currency) is "tiny"."""
    stale_snapshot_days: int = 30
    idle_cpu_p95: float = 0.05
    """A compute resource whose peak CPU stays under this does no work: idle, to stop, rather than to resize."""
    overprovisioned_p95: float = 0.40
    resize_target_p95: float = 0.80
    """A resize to a type `factor` times smaller is proposed only if the peak (p95) times the factor stays at most
    this: the largest of 8, 4 and 2 that does, among the sizes the family offers."""
    min_utilization_samples: int = 24
    """A day of hourly samples at least, before a p95 says anything."""
    min_monthly_savings: Decimal = Decimal("1")
    """Findings that would save less than this per month are not worth a person's time."""


@dataclass(frozen=True)
class Resource:
    """One resource's daily cost (EffectiveCost) and where it lives."""

    provider_name: str
    billing_account_id: str
    sub_account_id: str
    region_id: str
    service_name: str
    service_category: str
    resource_id: str
    team: str
    currency: str
    snapshot: bool
    daily: Mapping[date, Decimal]
    instance_type: str = ""
    """The instance type its compute lines name, most recent first ("" when they name none)."""


@dataclass(frozen=True)
class Utilization:
    """A resource's peak utilization from the metrics feed: p95 of CPU and of memory (fractions, None when the feed
    sends none) over `samples` samples."""

    cpu_p95: float | None
    memory_p95: float | None = None
    samples: int = 1_000_000

    @property
    def peak(self) -> float | None:
        """The higher of the two: a resource is over-provisioned only if neither CPU nor memory is used."""
        known = [v for v in (self.cpu_p95, self.memory_p95) if v is not None]
        return max(known) if known else None


@dataclass(frozen=True)
class Finding:
    kind: Kind
    rule: str
    resource: Resource
    monthly_savings: Money
    evidence: dict[str, object] = field(default_factory=dict)

    @property
    def target(self) -> str:
        r = self.resource
        return f"resource/{r.provider_name}/{r.billing_account_id}/{r.resource_id}"


def _run_rate(days: list[Decimal], settings: Settings) -> Decimal:
    recent = days[-settings.run_rate_days :]
    return sum(recent, Decimal(0)) / len(recent) * DAYS_PER_MONTH


def _money(value: Decimal, currency: str) -> Money:
    return Money(amount=value.quantize(CENT, rounding=ROUND_HALF_EVEN), currency=currency)


def _steady_run(daily: Mapping[date, Decimal], last: date, settings: Settings) -> list[Decimal]:
    """The costs of the consecutive days up to `last` that stay within the tolerance of their median."""
    run: list[Decimal] = []
    day = last
    while daily.get(day, Decimal(0)) > 0:
        candidate = [daily[day], *run]
        mid = Decimal(median(candidate))
        if any(abs(c - mid) > settings.steady_tolerance * mid for c in candidate):
            break
        run = candidate
        day -= timedelta(days=1)
    return run


def _resize(instance_type: str, peak: float, settings: Settings) -> tuple[int, str] | None:
    """(factor, smaller type) for an over-provisioned resource: the most it can shrink with its peak still at most
    resize_target_p95 (sizes.py prices a type `factor` times smaller at 1/factor). A type the bill does not name
    is assumed to have one size down (factor 2); a named type with no smaller size in its family gets none."""
    if not instance_type:
        return (2, "") if peak * 2 <= settings.resize_target_p95 else None
    for factor in (8, 4, 2):
        if peak * factor <= settings.resize_target_p95 and (target := sizes.smaller(instance_type, factor)):
            return factor, target
    return None


def judge(
    resources: Iterable[Resource],
    *,
    last_day: date,
    utilization_p95: Mapping[str, float | Utilization] | None = None,
    settings: Settings | None = None,
) -> list[Finding]:
    """The findings among `resources`, whose data ends on `last_day`, ordered by savings (largest first)."""
    s = settings or Settings()
    first = last_day - timedelta(days=s.window_days - 1)
    alive = [r for r in resources if r.resource_id and r.daily.get(last_day, Decimal(0)) > 0]
    compute_scopes = {
        (r.billing_account_id, r.sub_account_id, r.region_id)
        for r in resources
        if r.service_category == "Compute" and any(first <= d <= last_day for d in r.daily)
    }
    metrics = utilization_p95 or {}
    found = []
    for r in alive:
        window = {d: c for d, c in r.daily.items() if first <= d <= last_day}
        days = [window.get(first + timedelta(days=i), Decimal(0)) for i in range(s.window_days)]
        seen = [d for d, c in r.daily.items() if c > 0]
        age = (last_day - min(seen)).days + 1
        run_rate = _run_rate(days, s)
        evidence: dict[str, object] = {
            "days_seen": age,
            "window_days": s.window_days,
            "run_rate_per_month": str(run_rate.quantize(CENT)),
            "last_day": last_day.isoformat(),
            "service_name": r.service_name,
            "service_category": r.service_category,
            "region_id": r.region_id,
        }
        finding: Finding | None = None
        if r.snapshot and age >= s.stale_snapshot_days:
            finding = Finding(Kind.IDLE, "stale_snapshot", r, _money(run_rate, r.currency), evidence)
        elif r.service_category == "Storage" and (r.billing_account_id, r.sub_account_id, r.region_id) not in (
            compute_scopes
        ):
            evidence["compute_in_scope"] = "none"
            finding = Finding(Kind.IDLE, "storage_without_compute", r, _money(run_rate, r.currency), evidence)
        elif r.resource_id in metrics and r.service_category == "Compute":
            m = metrics[r.resource_id]
            u = m if isinstance(m, Utilization) else Utilization(cpu_p95=float(m))
            enough = u.samples >= s.min_utilization_samples
            if u.cpu_p95 is not None and u.cpu_p95 < s.idle_cpu_p95 and enough:
                evidence.update(cpu_p95=f"{u.cpu_p95:.4f}", utilization_samples=u.samples)
                if u.memory_p95 is not None:
                    evidence["memory_p95"] = f"{u.memory_p95:.4f}"
                finding = Finding(Kind.IDLE, "unused_compute", r, _money(run_rate, r.currency), evidence)
            elif u.peak is not None and u.peak < s.overprovisioned_p95 and enough:
                evidence["utilization_p95"] = f"{u.peak:.4f}"
                if u.cpu_p95 is not None:
                    evidence["cpu_p95"] = f"{u.cpu_p95:.4f}"
                if u.memory_p95 is not None:
                    evidence["memory_p95"] = f"{u.memory_p95:.4f}"
                evidence["utilization_samples"] = u.samples
                resize = _resize(r.instance_type, u.peak, s)
                if resize is not None:
                    factor, target = resize
                    if r.instance_type:
                        evidence.update(instance_type=r.instance_type, recommended_type=target)
                    else:
                        evidence["instance_type"] = "not named in the bill: one size down, half the cost, assumed"
                    evidence["size_factor"] = factor
                    saved = run_rate * (1 - Decimal(1) / factor)
                    finding = Finding(Kind.RIGHTSIZING, "overprovisioned", r, _money(saved, r.currency), evidence)
        if finding is None:
            steady = _steady_run(r.daily, last_day, s)
            mid = Decimal(median(steady)) if steady else Decimal(0)
            if len(steady) >= s.steady_days and mid <= s.tiny_daily_cost:
                evidence.update(steady_days=len(steady), median_daily_cost=str(mid), min_daily_cost=str(min(steady)),
                                max_daily_cost=str(max(steady)))  # fmt: skip
                finding = Finding(Kind.IDLE, "steady_tiny_cost", r, _money(mid * DAYS_PER_MONTH, r.currency), evidence)
        if finding is not None and finding.monthly_savings.amount >= s.min_monthly_savings:
            found.append(finding)
    return sorted(found, key=lambda f: (-f.monthly_savings.amount, f.target))
