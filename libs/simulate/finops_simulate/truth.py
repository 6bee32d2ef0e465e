"""The truth: what each published number must be, accumulated charge by charge from the simulator's own model
(never from the platform's code), exactly, in Decimal."""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from finops_simulate.charges import Charge
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


class Accumulator:
    """Sums per (billing account, period, version); versions are "original" and "restated"."""

    def __init__(self) -> None:
        self.billing: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, ZERO, 0])  # billed, effective, list, n
        self.direct: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO])  # (ba, period, version, cc)
        self.pool: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO])  # (ba, period, version)
        self.providers: dict[str, str] = {}

    def add(self, c: Charge, version: str) -> None:
        ba = c.billing_account.id
        key = (ba, c.period.key, version)
        t = self.billing[key]
        t[0] += c.billed
        t[1] += c.effective
        t[2] += c.list_cost
        t[3] += 1
        self.providers[ba] = c.provider
        cc = cost_center_of(c)
        target = self.pool[key] if cc is None else self.direct[(*key, cc)]
        target[0] += c.billed
        target[1] += c.effective


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
