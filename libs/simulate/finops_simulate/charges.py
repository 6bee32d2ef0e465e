"""Charges: one simulated cost line in provider-neutral FOCUS terms, generated one at a time.

Every amount is exact: quantity = units x per_hour x hours x factor x noise, to 4 decimal places (half even);
cost = quantity x unit price, to 6 decimal places (half even). The factor follows the resource's workload:

    steady     1
    seasonal   0.6 on Saturdays and Sundays, 1.5 on the month's last 3 days (0.9 if both); hourly rows also
               1.25 from 08:00 to 19:59 UTC and 0.75 otherwise
    growing    1 + 0.05 x (days since the simulation's first day) / 30
    migrating  1 until its `stops_after` period, no cost after it (it moved away)

noise is a whole per-mille in [0.950, 1.050] drawn from a generator seeded by (seed, resource, period), so
every account-period can be generated alone, in any order, and comes out the same.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from finops_simulate.org import ANOMALY_FACTOR, BillingAccount, Resource, Service, SubAccount
from finops_simulate.periods import Period

Q4 = Decimal("0.0001")
Q6 = Decimal("0.000001")
ONE = Decimal(1)
ZERO = Decimal(0)
WEEKEND = Decimal("0.6")
MONTH_END = Decimal("1.5")
DAY_HOURS = Decimal("1.25")
NIGHT_HOURS = Decimal("0.75")
GROWTH = Decimal("0.05")
RESTATED_RATE = Decimal("0.9")


@dataclass(slots=True)
class Charge:
    billing_account: BillingAccount
    sub_account: SubAccount
    period: Period
    start: datetime
    end: datetime
    service: Service
    resource: Resource | None
    quantity: Decimal
    unit_price: Decimal
    list_unit_price: Decimal
    billed: Decimal
    effective: Decimal
    list_cost: Decimal
    category: str = "Usage"  # FOCUS ChargeCategory
    frequency: str = "Usage-Based"
    pricing_category: str = "Standard"
    commitment_id: str | None = None
    commitment_type: str | None = None  # "Savings Plan", "Reserved Instance"
    commitment_status: str | None = None  # "Used", "Unused"
    line_type: str = "Usage"  # the native kind (AWS LineItemType, Azure ChargeType)
    description: str = ""
    baseline: Decimal | None = None  # a planted anomaly's cost without the anomaly
    kpi_effective: Decimal | None = None  # covered usage: its amortized cost, whatever the view shows
    kpi_fee: Decimal | None = None  # a plan's own row: the interval's commitment ...
    kpi_unused: Decimal | None = None  # ... and what of it went unused

    @property
    def provider(self) -> str:
        return self.sub_account.provider

    @property
    def tags(self) -> dict[str, str]:
        return self.resource.tags if self.resource is not None else {}


SP_FEE = Service(
    "savings-plan",
    "ComputeSavingsPlans",
    "Savings Plans for AWS Compute usage",
    "Compute",
    "Savings Plans for AWS Compute usage",
    "SP-COMPUTE-1Y-NU",
    "ComputeSP:1yrNoUpfront",
    "Hrs",
    ZERO,
    ONE,
)


AZ_SP_FEE = Service(
    "savings-plan", "Microsoft.BillingBenefits", "Azure savings plan for compute", "Other",
    "Azure savings plan for compute", "SP-AZ-COMPUTE-3Y", "Savings Plan Compute", "1 Hour", ZERO, ONE,
)  # fmt: skip
COMMITTED_PROVIDERS = ("aws", "azure")


def eligible(c: Charge) -> bool:
    """Usage a compute savings plan is for: the simulated compute service on AWS (EC2) and Azure (VMs)."""
    return c.resource is not None and c.service.key == "compute" and c.provider in COMMITTED_PROVIDERS


def coverable(c: Charge) -> bool:
    """Eligible usage a plan may cover: all of it but the planted resources (anomaly, idle, over-provisioned),
    which stay on demand so that their findings are pure usage: a cost delta, a steady tiny cost, a run rate."""
    return eligible(c) and c.resource.planted is None


RI_FEE = Service(
    "reserved-instance", "AmazonEC2", "Amazon Elastic Compute Cloud", "Compute", "Amazon Elastic Compute Cloud",
    "RI-EC2-1Y-NU", "USE1-HeavyUsage:m5.xlarge", "Hrs", ZERO, ONE,
)  # fmt: skip


def cover(c: Charge, commitment_id: str, effective: Decimal, style: str, kind: str = "Savings Plan") -> None:
    """Make an on-demand charge covered usage of a plan, as the bill `style` shows it (see commitments.py)."""
    c.billed = ZERO
    c.effective = ZERO if style == "azure-actual" else effective
    c.kpi_effective = effective
    c.pricing_category = "Committed"
    c.commitment_id = commitment_id
    c.commitment_type = kind
    c.commitment_status = "Used"
    if c.provider == "azure":
        c.line_type = "Usage"
    else:
        c.line_type = "DiscountedUsage" if kind == "Reserved Instance" else "SavingsPlanCoveredUsage"


def fees(
    ba, sub, period, start, end, commitment_id: str, total: Decimal, unused: Decimal, *, style: str,
    kind: str = "Savings Plan",
):  # fmt: skip
    """The commitment's own rows of one interval (see commitments.py); the first carries the interval's
    commitment and unused amounts for the truth whatever the rows show."""
    hours = Decimal(int((end - start).total_seconds()) // 3600)
    total, unused = total.quantize(Q6), unused.quantize(Q6)
    ri = kind == "Reserved Instance"
    common = dict(
        service=AZ_SP_FEE if ba.provider == "azure" else RI_FEE if ri else SP_FEE, resource=None, quantity=hours,
        unit_price=total / hours if hours else ZERO, list_unit_price=ZERO, list_cost=ZERO,
        commitment_id=commitment_id, commitment_type=kind,
    )  # fmt: skip
    fee = dict(category="Purchase", frequency="Recurring", pricing_category="", description="Savings Plan fee")
    kpi = dict(kpi_fee=total, kpi_unused=unused)
    unused_row = dict(category="Usage", commitment_status="Unused", pricing_category="Committed",
                      description="Savings Plan unused commitment")  # fmt: skip
    if style == "cur":
        yield Charge(ba, sub, period, start, end, billed=total, effective=unused,
                     line_type="RIFee" if ri else "SavingsPlanRecurringFee", **fee, **kpi, **common)  # fmt: skip
    elif style == "azure-actual":
        yield Charge(ba, sub, period, start, end, billed=total, effective=ZERO, line_type="Purchase",
                     **fee, **kpi, **common)  # fmt: skip
    elif style == "azure-amortized":  # no purchase row: the amortized export spreads it over usage and unused
        yield Charge(ba, sub, period, start, end, billed=ZERO, effective=unused, line_type="UnusedSavingsPlan",
                     **unused_row, **kpi, **common)  # fmt: skip
    else:
        yield Charge(ba, sub, period, start, end, billed=total, effective=ZERO, line_type="SavingsPlanRecurringFee",
                     **fee, **kpi, **common)  # fmt: skip
        if unused:
            yield Charge(ba, sub, period, start, end, billed=ZERO, effective=unused,
                         line_type="UnusedSavingsPlan" if ba.provider == "azure" else "RIUnused" if ri
                         else "SavingsPlanUnused",
                         **unused_row, **common)  # fmt: skip


def seed_of(seed: int, resource: Resource, period: Period) -> int:
    return (seed * 1_000_003 + resource.index) * 10_007 + period.index


def day_factor(resource: Resource, day: date, period: Period, first: date) -> Decimal:
    if resource.pattern == "seasonal":
        factor = ONE
        if day.weekday() >= 5:
            factor *= WEEKEND
        last = (period.end.astimezone(period.zone).date() - day).days  # 1 on the last day
        if last <= 3:
            factor *= MONTH_END
        return factor
    if resource.pattern == "growing":
        return ONE + GROWTH * Decimal((day - first).days) / 30
    return ONE


def usage(
    resource: Resource, period: Period, *, seed: int, first: date, hourly: bool, restated: bool = False
) -> Iterator[Charge]:
    """The resource's usage charges in one period, in time order."""
    if resource.stops_after is not None and period.index > resource.stops_after:
        return
    rng = random.Random(seed_of(seed, resource, period))
    service = resource.service
    price = service.price * RESTATED_RATE if restated else service.price
    base = resource.units * service.per_hour
    sub = resource.sub_account
    ba = sub.billing_account
    seasonal = resource.pattern == "seasonal"
    idle = resource.pattern == "idle"
    for day, start, end in period.days():
        factor = day_factor(resource, day, period, first)
        anomalous = day == resource.anomaly_day
        if hourly:
            for h_start, h_end in period.hours(start, end):
                shape = (DAY_HOURS if 8 <= h_start.hour < 20 else NIGHT_HOURS) if seasonal else ONE
                noise = ONE if idle else Decimal(950 + rng.randrange(101)) / 1000
                qty = (base * factor * shape * noise).quantize(Q4, ROUND_HALF_EVEN)
                yield _charge(ba, sub, period, h_start, h_end, resource, qty, price, anomalous)
        else:
            hours = Decimal(int((end - start).total_seconds()) // 3600)
            noise = ONE if idle else Decimal(950 + rng.randrange(101)) / 1000
            qty = (base * hours * factor * noise).quantize(Q4, ROUND_HALF_EVEN)
            yield _charge(ba, sub, period, start, end, resource, qty, price, anomalous)


def _charge(ba, sub, period, start, end, resource: Resource, qty: Decimal, price: Decimal, anomalous=False) -> Charge:
    baseline = None
    if anomalous:
        baseline = (qty * price).quantize(Q6, ROUND_HALF_EVEN)
        qty = qty * ANOMALY_FACTOR
    cost = (qty * price).quantize(Q6, ROUND_HALF_EVEN)
    list_cost = (qty * resource.service.price).quantize(Q6, ROUND_HALF_EVEN)
    return Charge(
        ba,
        sub,
        period,
        start,
        end,
        resource.service,
        resource,
        qty,
        price,
        resource.service.price,
        cost,
        cost,
        max(cost, list_cost),
        description=resource.service.usage_type,
        baseline=baseline,
    )
