"""The guard before money moves: a purchase request is sent only when its hourly commitment is within a share of
the pool's observed usage, as the decision service itself measured it from the cost batches (independently of
the recommend service that proposed the commitment).

Pool: the usage one commitment program can cover, per billing account. A recommendation names it by its
billing account and its purchase's `program`; the flexible programs (AWS Compute Savings Plans, Azure savings
plans, GCP flexible CUDs) cover the account's compute usage: the lines with ServiceCategory `Compute` and
ChargeCategory `Usage` of the program's provider. A narrower program (EC2 Instance Savings Plans, reservations,
resource-based CUDs) is checked against its provider's flexible pool of the same account, which contains its
usage: a looser bound, never a stricter one.

On-demand-equivalent usage of a line (what it would have cost with no commitment): a line a commitment covered
(CommitmentDiscountStatus `Used`): its ContractedCost, else its ListCost, else its EffectiveCost; an unused
commitment line (`Unused`): nothing (it is waste, not usage); any other usage line: its EffectiveCost. A line
longer than an hour (a daily line) is spread evenly over the hours it spans.

The statistic is the MEDIAN hourly on-demand-equivalent usage over the lookback (FINOPS_GUARD_LOOKBACK_DAYS, 30
by default, or the plan's own lookback when the recommendation carries one), ending at the pool's newest
observed hour (bills arrive late; the window follows the data, not the clock), and starting no earlier than the
pool's first observed hour; an hour of that span without usage counts as zero. The rule refuses a commitment
per hour above FINOPS_GUARD_MAX_USAGE_SHARE (1.0 by default) x that median, and refuses when the pool has no
observed usage at all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

HOUR = timedelta(hours=1)
FLEXIBLE = {"aws": "aws_compute_savings_plan", "azure": "azure_savings_plan", "gcp": "gcp_flexible_cud"}
"""The flexible program of a provider, by the prefix of any of its programs."""
_PROVIDER_WORDS = (("aws", ("amazon", "aws")), ("azure", ("microsoft", "azure")), ("gcp", ("google", "gcp")))
_COLUMNS = (
    "billing_account_id", "billing_period_start", "provider_name", "charge_period_start", "charge_period_end",
    "billing_currency", "effective_cost", "list_cost", "contracted_cost", "commitment_discount_status",
)  # fmt: skip


@dataclass(frozen=True)
class Guard:
    """The guard's settings."""

    max_usage_share: Decimal = Decimal(1)
    lookback_days: int = 30


def pool_of_program(program: str) -> str:
    """The pool a commitment program is checked against: its provider's flexible program (itself if unknown)."""
    return FLEXIBLE.get(program.split("_", 1)[0], program)


def pool_of_provider(provider_name: str) -> str | None:
    """The flexible pool of a FOCUS ProviderName's compute usage; None for a provider no program covers."""
    name = provider_name.lower()
    for prefix, words in _PROVIDER_WORDS:
        if any(w in name for w in words):
            return FLEXIBLE[prefix]
    return None


Key = tuple[str, datetime, str, datetime, str]
"""(billing account, billing period start, pool, hour, currency)."""


def _positive(value: Decimal | None) -> bool:
    return value is not None and value > 0


def hourly_usage(frame: pa.Table) -> dict[Key, Decimal]:
    """A batch's on-demand-equivalent compute usage per billing account, period, pool, hour and currency."""
    if frame.num_rows == 0:
        return {}
    eligible = pc.and_(
        pc.equal(pc.fill_null(frame.column("service_category"), ""), "Compute"),
        pc.equal(frame.column("charge_category"), "Usage"),
    )
    lines = frame.filter(eligible)
    out: dict[Key, Decimal] = defaultdict(Decimal)
    if lines.num_rows == 0:
        return {}
    cols = {n: lines.column(n).to_pylist() for n in _COLUMNS}
    pools = {p: pool_of_provider(p) for p in set(cols["provider_name"])}
    for i in range(lines.num_rows):
        pool = pools[cols["provider_name"][i]]
        if pool is None:
            continue
        status = (cols["commitment_discount_status"][i] or "").lower()
        effective = cols["effective_cost"][i] or Decimal(0)
        if status == "unused":
            continue
        if status == "used":
            contracted, listed = cols["contracted_cost"][i], cols["list_cost"][i]
            amount = contracted if _positive(contracted) else listed if _positive(listed) else effective
        else:
            amount = effective
        start, end = cols["charge_period_start"][i], cols["charge_period_end"][i]
        first = start.replace(minute=0, second=0, microsecond=0)
        hours = max(1, -(-(end - first) // HOUR))  # the hours the line touches
        share = amount / hours
        for h in range(hours):
            key = (
                cols["billing_account_id"][i], cols["billing_period_start"][i], pool, first + h * HOUR,
                cols["billing_currency"][i],
            )  # fmt: skip
            out[key] += share
    return dict(out)


def median(values: Iterable[Decimal]) -> Decimal:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return Decimal(0)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True)
class Check:
    """The guard's finding on one purchase request."""

    allowed: bool
    commitment_per_hour: Decimal
    observed_usage_per_hour: Decimal | None
    """The median hourly usage over the lookback; None when the pool has no observed usage."""
    max_usage_share: Decimal
    lookback_hours: int
    pool: str
    billing_account_id: str | None
    currency: str
    hours_observed: int
    window_start: datetime | None
    window_end: datetime | None
    reason: str

    def detail(self) -> dict[str, Any]:
        """Both figures, the share and the lookback, as the audit log and the API show them."""
        return {
            "allowed": self.allowed,
            "commitment_per_hour": format(self.commitment_per_hour, "f"),
            "observed_usage_per_hour": (
                format(self.observed_usage_per_hour, "f") if self.observed_usage_per_hour is not None else None
            ),
            "usage_statistic": "median hourly on-demand-equivalent usage",
            "max_usage_share": format(self.max_usage_share, "f"),
            "limit_per_hour": (
                format(self.max_usage_share * self.observed_usage_per_hour, "f")
                if self.observed_usage_per_hour is not None
                else None
            ),
            "lookback_hours": self.lookback_hours,
            "lookback_days": format(Decimal(self.lookback_hours) / 24, "f"),
            "pool": self.pool,
            "billing_account_id": self.billing_account_id,
            "currency": self.currency,
            "hours_observed": self.hours_observed,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "reason": self.reason,
        }


def judge(
    *,
    usage: Mapping[datetime, Decimal],
    commitment_per_hour: Decimal,
    guard: Guard,
    lookback_hours: int | None,
    pool: str,
    billing_account_id: str | None,
    currency: str,
) -> Check:
    """The rule on the pool's hourly usage (hour -> amount, current versions only)."""
    lookback = lookback_hours if lookback_hours and lookback_hours > 0 else guard.lookback_days * 24
    common: dict[str, Any] = dict(
        commitment_per_hour=commitment_per_hour, max_usage_share=guard.max_usage_share, lookback_hours=lookback,
        pool=pool, billing_account_id=billing_account_id, currency=currency,
    )  # fmt: skip
    if not usage:
        return Check(
            allowed=False, observed_usage_per_hour=None, hours_observed=0, window_start=None, window_end=None,
            reason=f"no usage observed in pool {pool} of billing account {billing_account_id} in {currency}; "
            "money does not move on figures nobody checked",
            **common,
        )  # fmt: skip
    end = max(usage) + HOUR
    start = max(end - lookback * HOUR, min(usage))
    hours = int((end - start) / HOUR)
    series = [usage.get(start + h * HOUR, Decimal(0)) for h in range(hours)]
    observed = median(series)
    limit = guard.max_usage_share * observed
    allowed = commitment_per_hour <= limit
    reason = (
        f"commitment {commitment_per_hour} {currency}/h is within {guard.max_usage_share} x the median hourly "
        f"usage {observed} {currency}/h"
        if allowed
        else f"commitment {commitment_per_hour} {currency}/h exceeds {guard.max_usage_share} x the median hourly "
        f"usage of pool {pool} of billing account {billing_account_id}, {observed} {currency}/h over {hours} "
        f"hours to {end.isoformat()}"
    )
    return Check(
        allowed=allowed, observed_usage_per_hour=observed, hours_observed=hours, window_start=start, window_end=end,
        reason=reason, **common,
    )  # fmt: skip
