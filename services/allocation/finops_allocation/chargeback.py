"""One allocation run: cost facts of a billing period and a rule set in, allocation lines out.

A fact is the cost of one facet (the distinct dimensions and tags rules can see) in one billing account and
currency. Each fact lands exactly once: on the dimensions its rules assign (a *direct* line), or in a shared pool
that is then split, per billing account and currency, over the pool's targets (*shared* lines) by the largest
remainder method, so that every account's, period's and currency's total is conserved to the last digit.
BilledCost and EffectiveCost are split alike; EffectiveCost (amortized) is what showback reports by default.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from finops_allocation.rules import DIMENSIONS, UNALLOCATED, Assignment, Pool, RuleSet, assign
from finops_allocation.splits import SplitError, SplitMethod, minor_unit_places, split


@dataclass(frozen=True, slots=True)
class Fact:
    billing_account_id: str
    billing_currency: str
    facet: Mapping[str, str | None]
    tags: Mapping[str, str]
    billed_cost: Decimal
    effective_cost: Decimal
    line_count: int
    facet_id: int | None = None  # when known, the key under which its assignment is remembered
    tagged: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    """One allocation line: where an amount of one account and currency landed."""

    billing_account_id: str
    billing_currency: str
    cost_center: str
    team: str
    product: str
    environment: str
    kind: str  # "direct" or "shared"
    pool: str | None
    billed_cost: Decimal
    effective_cost: Decimal
    line_count: int


Key = tuple[str, str, str, str, str, str, str, str | None]


def signature(fact: Fact) -> object:
    """The key of a fact's assignment: its facet id, or its dimensions and tags."""
    if fact.facet_id is not None:
        return fact.facet_id
    return (tuple(sorted(fact.facet.items())), tuple(sorted(fact.tags.items())))


def coverage(facts: Iterable[Fact], decided: Mapping[object, Assignment]) -> dict[tuple[str, str, str], list[Decimal]]:
    """(scope kind, scope, currency) -> [total, tagged, allocated] EffectiveCost, per billing account and per team.
    Allocated: a team and a cost center were found for it, or it went to a shared pool that splits it."""
    out: dict[tuple[str, str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
    for fact in facts:
        a = decided[signature(fact)]
        allocated = a.pool is not None or (a.team != UNALLOCATED and a.cost_center != UNALLOCATED)
        for key in (("account", fact.billing_account_id, fact.billing_currency),
                    ("team", "shared" if a.pool else a.team, fact.billing_currency)):  # fmt: skip
            k = out[key]
            k[0] += fact.effective_cost
            k[1] += fact.effective_cost if fact.tagged else 0
            k[2] += fact.effective_cost if allocated else 0
    return out


def run(facts: Iterable[Fact], ruleset: RuleSet, *, decided: dict[object, Assignment] | None = None) -> list[Line]:
    """Allocate a period's facts. Rules run once per distinct facet (`decided` may carry the assignments of
    earlier runs under the same rules); a pool split follows the direct lines."""
    decided = {} if decided is None else decided
    direct: dict[Key, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    pooled: dict[tuple[str, str, str], list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    pool_dims: dict[str, dict[str, str]] = {}
    for fact in facts:
        key = signature(fact)
        assignment = decided.get(key)
        if assignment is None:
            assignment = decided[key] = assign(fact.facet, fact.tags, ruleset)
        if assignment.pool is not None:
            total = pooled[(fact.billing_account_id, fact.billing_currency, assignment.pool)]
            pool_dims.setdefault(assignment.pool, dict(zip(DIMENSIONS, assignment.dimensions(), strict=True)))
        else:
            key = (fact.billing_account_id, fact.billing_currency, *assignment.dimensions(), "direct", None)
            total = direct[key]
        total[0] += fact.billed_cost
        total[1] += fact.effective_cost
        total[2] += fact.line_count
    lines = [Line(*key, *amounts) for key, amounts in direct.items()]
    for (account, currency, name), (billed, effective, count) in sorted(pooled.items()):
        pool = ruleset.pool(name)
        weights = _weights(pool, currency, direct)
        dims = pool_dims[name]
        try:
            billed_shares = _split(billed, pool, weights, currency)
            effective_shares = _split(effective, pool, weights, currency)
        except SplitError:
            # Nothing to split over (no target has direct cost in this currency, say): the pool stays visible
            # as its own unallocated line rather than failing the period.
            lines.append(Line(account, currency, *(UNALLOCATED,) * 4, "shared", name, billed, effective, count))
            continue
        first = True
        for target in sorted(billed_shares):
            values = {**{d: dims[d] if dims[d] != UNALLOCATED else "shared" for d in DIMENSIONS}, pool.by: target}
            lines.append(
                Line(
                    account,
                    currency,
                    *(values[d] for d in DIMENSIONS),
                    "shared",
                    name,
                    billed_shares[target],
                    effective_shares[target],
                    count if first else 0,  # the pool's lines are counted once, on its first share
                )
            )
            first = False
    return sorted(lines, key=_order)


def _order(line: Line) -> tuple:
    return (line.billing_account_id, line.billing_currency, line.kind, line.pool or "", line.cost_center, line.team,
            line.product, line.environment)  # fmt: skip


def _weights(pool: Pool, currency: str, direct: Mapping[Key, list]) -> dict[str, Decimal]:
    if pool.method is SplitMethod.EVEN:
        return dict.fromkeys(pool.targets, Decimal(1))
    if pool.method is SplitMethod.FIXED:
        return dict(pool.percentages)
    if pool.method is SplitMethod.USAGE:
        return dict(pool.usage)
    index = 2 + ("cost_center", "team", "product", "environment").index(pool.by)
    weights: dict[str, Decimal] = defaultdict(Decimal)
    for key, (_, effective, _) in direct.items():
        target = key[index]
        if key[1] == currency and target != UNALLOCATED and (not pool.targets or target in pool.targets):
            weights[target] += effective
    return {t: w for t, w in weights.items() if w > 0}


def _split(amount: Decimal, pool: Pool, weights: dict[str, Decimal], currency: str) -> dict[str, Decimal]:
    """Shares in the amount's own precision (at least the currency's minor unit), so they sum back exactly."""
    places = max(minor_unit_places(currency), -int(amount.as_tuple().exponent))
    if not weights:
        raise SplitError(f"pool {pool.name!r} has nothing to split over in {currency}: no target has direct cost")
    return split(amount, pool.method, weights, currency=currency, places=places).amounts()
