"""The truth: what each published number must be, accumulated charge by charge from the simulator's own model
(never from the platform's code), exactly, in Decimal."""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from finops_simulate.charges import COMMITTED_PROVIDERS, Charge, eligible
from finops_simulate.org import UNALLOCATED

ZERO = Decimal(0)
CENT = Decimal("0.01")
POOL = "network"


def cost_center_of(c: Charge) -> str | None:
    """Where the rules put a charge's cost: a cost center, UNALLOCATED, or None for the network pool."""
    if c.service.category == "Networking" and c.resource is not None:
        return None
    if c.resource is not None:
        return c.resource.allocated_to
    owner = c.sub_account.owner
    return owner.id if owner is not None else UNALLOCATED


def product_of(c: Charge) -> str | None:
    """The product the rules give a charge's cost; None for the network pool (its lines' product is
    shared-network)."""
    if c.service.category == "Networking" and c.resource is not None:
        return None
    if c.resource is not None:
        return c.resource.product
    owner = c.sub_account.owner
    return owner.product if owner is not None else UNALLOCATED


class Accumulator:
    """Sums per (billing account, period, version); versions are "original" and "restated"."""

    def __init__(self, months: int) -> None:
        self.months = months
        self.billing: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, ZERO, 0])  # billed, effective, list, n
        self.direct: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO])  # (ba, period, version, cc)
        self.pool: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO])  # (ba, period, version)
        self.providers: dict[str, str] = {}
        # commitments: (ba, period, version) -> [ode, covered (list), on-demand cost, commitment cost, unused]
        self.kpi: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, ZERO, ZERO, ZERO])
        # (ba, version, slot start) -> [eligible list cost, hours, period key]
        self.slots: dict[tuple, list] = {}
        self.products: dict[tuple, Decimal] = defaultdict(Decimal)  # (ba, period, version, product)
        self.planted: dict[tuple, Decimal] = defaultdict(Decimal)  # (resource id, version, UTC date)
        self.anomaly: dict[str, Decimal] = defaultdict(Decimal)  # actual, baseline (current version only)
        # (commitment id, period, version) -> [covered list cost, covered effective cost, fee, unused]
        self.plans: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, ZERO, ZERO])

    def add(self, c: Charge, version: str) -> None:
        ba = c.billing_account.id
        key = (ba, c.period.key, version)
        t = self.billing[key]
        t[0] += c.billed
        t[1] += c.effective
        t[2] += c.list_cost
        t[3] += 1
        self.providers[ba] = c.provider
        if c.provider in COMMITTED_PROVIDERS:
            self._commitment(c, key, version)
        r = c.resource
        if r is not None and r.planted is not None and c.period.index == self.months - 1:
            self.planted[(r.id, version, c.start.date())] += c.effective
        if c.baseline is not None:
            self.anomaly[version + "/actual"] += c.effective
            self.anomaly[version + "/baseline"] += c.baseline
            self.anomaly[version + "/day"] = c.start
        product = product_of(c)
        if product is not None:
            self.products[(*key, product)] += c.effective
        cc = cost_center_of(c)
        target = self.pool[key] if cc is None else self.direct[(*key, cc)]
        target[0] += c.billed
        target[1] += c.effective

    def _commitment(self, c: Charge, key: tuple, version: str) -> None:
        if eligible(c):
            k = self.kpi[key]
            # on-demand equivalent: covered usage at its list cost (the plan's discount is off list); uncovered
            # usage at what it cost, its contracted price (a negotiated rate is not a commitment's saving)
            ode = c.list_cost if c.commitment_status == "Used" else c.effective
            k[0] += ode
            slot = self.slots.get((key[0], version, c.start))
            if slot is None:
                hours = int((c.end - c.start).total_seconds()) // 3600
                slot = self.slots[(key[0], version, c.start)] = [ZERO, hours, key[1]]
            slot[0] += ode
            if c.commitment_status == "Used":
                k[1] += c.list_cost
                p = self.plans[(c.commitment_id, key[1], version)]
                p[0] += c.list_cost
                p[1] += c.kpi_effective if c.kpi_effective is not None else c.effective
            else:
                k[2] += c.effective
        elif c.kpi_fee is not None:
            k = self.kpi[key]
            p = self.plans[(c.commitment_id, key[1], version)]
            k[3] += c.kpi_fee
            k[4] += c.kpi_unused
            p[2] += c.kpi_fee
            p[3] += c.kpi_unused


def apportion(amount: Decimal, weights: dict[str, Decimal], places: int) -> dict[str, Decimal]:
    """Largest remainder: each target's exact share floored to `places`, the units left over one each to the
    largest remainders, ties by target name; shares sum to `amount` exactly. A negative amount is split as its
    absolute value and negated."""
    units = int(amount.scaleb(places))
    total = sum((Fraction(w) for w in weights.values()), Fraction(0))
    floors, remainders = {}, {}
    for target, weight in weights.items():
        quota = abs(units) * Fraction(weight) / total
        floors[target] = quota.numerator // quota.denominator
        remainders[target] = quota - floors[target]
    leftover = abs(units) - sum(floors.values())
    for target in sorted(remainders, key=lambda t: (-remainders[t], t))[:leftover]:
        floors[target] += 1
    sign = -1 if units < 0 else 1
    return {t: Decimal(sign * floors[t]).scaleb(-places) for t in sorted(floors)}


def round_to_cents(amounts: dict[str, Decimal]) -> dict[str, Decimal]:
    """Each amount to the cent so that they sum to their exact total rounded half even to the cent: floors, then
    the cents left over one each to the largest remainders (ties by key)."""
    scaled = {k: Fraction(v) * 100 for k, v in amounts.items()}
    target = round(sum(scaled.values(), Fraction(0)))
    floors = {k: v.numerator // v.denominator for k, v in scaled.items()}
    for k in sorted(scaled, key=lambda k: (-(scaled[k] - floors[k]), k))[: target - sum(floors.values())]:
        floors[k] += 1
    return {k: Decimal(floors[k]).scaleb(-2) for k in sorted(floors)}


def s(value: Decimal) -> str:
    return format(value, "f")


def cents(value: Decimal) -> str:
    return format(value.quantize(CENT, ROUND_HALF_EVEN), "f")


def weighted_quantile(values: list[tuple[Decimal, int]], q: Fraction) -> Decimal:
    """Inverted-CDF quantile of values each repeated `weight` times: the smallest value whose cumulative weight
    reaches q x the total weight (numpy's method="inverted_cdf" on the expanded series)."""
    ordered = sorted(values)
    total = sum(w for _, w in ordered)
    need = q * total
    run = 0
    for value, weight in ordered:
        run += weight
        if run >= need:
            return value
    return ordered[-1][0]
