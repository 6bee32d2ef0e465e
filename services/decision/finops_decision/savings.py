"""Savings verification: the cost lines that used a purchased commitment, summed per cost batch, and the verdict
once they span enough hours.

Realized savings over the window = sum over the commitment's covered usage lines of (ListCost - EffectiveCost),
minus the unused commitment cost (its lines with CommitmentDiscountStatus 'Unused'). The estimate is the
decision's estimated monthly savings pro-rated to the window's hours (730 hours a month). Savings are verified
when realized >= tolerance x estimated, else they fall short."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import pyarrow as pa
import pyarrow.compute as pc

from finops_decision.proposals import HOURS_PER_MONTH

CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
COLUMNS = (
    "commitment_discount_id",
    "commitment_discount_status",
    "charge_category",
    "billing_currency",
    "list_cost",
    "effective_cost",
    "charge_period_start",
    "charge_period_end",
)


@dataclass(frozen=True)
class BatchMatch:
    """One commitment's lines in one cost batch."""

    commitment_id: str
    lines: int
    covered_savings: Decimal
    unused_cost: Decimal
    window_start: datetime
    window_end: datetime
    other_currency_lines: int = 0


@dataclass
class _Sums:
    lines: int = 0
    saved: Decimal = Decimal(0)
    unused: Decimal = Decimal(0)
    start: datetime | None = None
    end: datetime | None = None
    foreign: int = 0

    def span(self, start: datetime, end: datetime) -> None:
        self.start = start if self.start is None else min(self.start, start)
        self.end = end if self.end is None else max(self.end, end)


def match(frame: pa.Table, commitments: Mapping[str, str]) -> dict[str, BatchMatch]:
    """Per commitment id of `commitments` (id -> the decision's currency), the sums of this frame's lines that
    carry it. Covered usage is a Usage line with status 'Used' (or no status); a line with a ListCost missing
    saves nothing by this measure. Lines in another currency than the decision's are counted apart."""
    if not commitments or frame.num_rows == 0 or "commitment_discount_id" not in frame.column_names:
        return {}
    ids = pa.array(sorted(commitments), pa.string())
    hit = frame.filter(pc.fill_null(pc.is_in(frame.column("commitment_discount_id"), value_set=ids), False))
    if hit.num_rows == 0:
        return {}
    cols = {name: hit.column(name).to_pylist() for name in COLUMNS}
    sums: dict[str, _Sums] = {}
    for i in range(hit.num_rows):
        cid = cols["commitment_discount_id"][i]
        s = sums.setdefault(cid, _Sums())
        if cols["billing_currency"][i] != commitments[cid]:
            s.foreign += 1
            continue
        status = cols["commitment_discount_status"][i]
        effective = cols["effective_cost"][i]
        if status == "Unused":
            s.unused += effective
        elif cols["charge_category"][i] == "Usage" and status in ("Used", None):
            listed = cols["list_cost"][i]
            if listed is not None:
                s.saved += listed - effective
        else:
            continue  # the commitment's purchase or fee lines are not usage it covered
        s.lines += 1
        s.span(cols["charge_period_start"][i], cols["charge_period_end"][i])
    return {
        cid: BatchMatch(
            commitment_id=cid,
            lines=s.lines,
            covered_savings=s.saved,
            unused_cost=s.unused,
            window_start=s.start,
            window_end=s.end,
            other_currency_lines=s.foreign,
        )
        for cid, s in sums.items()
        if s.lines and s.start is not None and s.end is not None
    }


def hours(start: datetime, end: datetime) -> Decimal:
    delta = end - start
    return (Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000) / 3600


@dataclass(frozen=True)
class Verdict:
    verified: bool
    hours: Decimal
    estimated: Decimal
    """The estimate pro-rated to the window, in cents."""
    realized: Decimal
    """Exact: covered savings less unused commitment cost."""
    realization: Decimal
    reason: str = ""


def judge(
    *,
    estimated_monthly: Decimal,
    covered_savings: Decimal,
    unused_cost: Decimal,
    window_start: datetime,
    window_end: datetime,
    tolerance: Decimal,
    currency: str,
) -> Verdict:
    """The verdict on a window of matched lines."""
    span = hours(window_start, window_end)
    estimated = (estimated_monthly * span / HOURS_PER_MONTH).quantize(CENT, rounding=ROUND_HALF_EVEN)
    realized = covered_savings - unused_cost
    if estimated > 0:
        realization = (realized / estimated).quantize(RATIO, rounding=ROUND_HALF_EVEN)
    else:
        realization = Decimal(1) if realized >= 0 else Decimal(0)
    verified = realized >= tolerance * estimated
    reason = ""
    if not verified:
        reason = (
            f"realized {realized} {currency} over {span.normalize():f} hours is {realization * 100:.2f}% of the "
            f"estimated {estimated} {currency}; the policy expects at least {tolerance * 100:.2f}%. Covered usage "
            f"saved {covered_savings} {currency} and the unused commitment cost {unused_cost} {currency}"
        )
    return Verdict(
        verified=verified, hours=span, estimated=estimated, realized=realized, realization=realization, reason=reason
    )
