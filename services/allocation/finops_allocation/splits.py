"""Shared-cost splitting: a pool (a support contract, a shared cluster, untagged networking) is divided over
targets evenly, proportionally to their direct cost, by fixed percentages, or by a usage metric.

Every method ends in the same exact step, `apportion`: the pool is counted in minor units (cents, or yen), each
target's exact share is floored, and the units left over go one each to the largest remainders, ties broken by
target name. So the shares sum to the pool exactly, every unit lands exactly once, each share is within one
minor unit of its exact proportional value, and the same input always gives the same output. A negative pool (a
credit) is split like its positive counterpart and negated, so `split(-x) == -split(x)` share by share.

Weights are exact too: a Decimal weight is read as the exact fraction it writes, never through a float.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Literal, TypeVar

K = TypeVar("K")
ZeroWeights = Literal["error", "even"]
"""What to do when every weight is zero: raise `SplitError` (the default), or fall back to an even split."""

_ZERO_DECIMAL_CURRENCIES = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split())
_THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
_FOUR_DECIMAL_CURRENCIES = frozenset({"CLF", "UYW"})


class SplitError(ValueError):
    """A pool that cannot be split as asked; the message says what was wrong and what to do."""


class SplitMethod(StrEnum):
    EVEN = "even"
    PROPORTIONAL = "proportional"
    FIXED = "fixed"
    USAGE = "usage"


@dataclass(frozen=True, slots=True)
class Share:
    """The part of a pool that lands on one target."""

    target: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Split:
    """A pool divided over targets; `shares` are ordered by target name and sum to `pool` exactly."""

    pool: Decimal
    currency: str
    method: SplitMethod
    places: int
    shares: tuple[Share, ...]

    def amounts(self) -> dict[str, Decimal]:
        """Target -> amount, in target-name order."""
        return {share.target: share.amount for share in self.shares}


def minor_unit_places(currency: str) -> int:
    """Decimal places of the currency's minor unit (ISO 4217): 0 for JPY, 3 for KWD, 2 for most others."""
    if currency in _ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in _THREE_DECIMAL_CURRENCIES:
        return 3
    if currency in _FOUR_DECIMAL_CURRENCIES:
        return 4
    return 2


def apportion(
    amount: Decimal, weights: Mapping[str, Decimal | int], *, places: int = 2, zero_weights: ZeroWeights = "error"
) -> dict[str, Decimal]:
    """Divide `amount` over the weights' targets by the largest-remainder method, exact to `places` decimals."""
    units = _units(amount, places)
    exact = _fractions(weights)
    total = sum(exact.values(), Fraction(0))
    if total == 0:
        if zero_weights == "even":
            exact = {target: Fraction(1) for target in exact}
            total = Fraction(len(exact))
        else:
            raise SplitError(
                f"every weight is zero ({', '.join(sorted(exact))}): nothing to split by; "
                "give some target a positive weight or pass zero_weights='even'"
            )
    floors: dict[str, int] = {}
    remainders: dict[str, Fraction] = {}
    for target, weight in exact.items():
        quota = abs(units) * weight / total
        floors[target] = quota.numerator // quota.denominator
        remainders[target] = quota - floors[target]
    leftover = abs(units) - sum(floors.values())
    # Largest remainder first; equal remainders go in target-name order so the result never depends on input order.
    for target in sorted(remainders, key=lambda t: (-remainders[t], t))[:leftover]:
        floors[target] += 1
    sign = -1 if units < 0 else 1
    return {target: Decimal(sign * floors[target]).scaleb(-places) for target in sorted(floors)}


def split_even(amount: Decimal, targets: Iterable[str], *, currency: str, places: int | None = None) -> Split:
    """Split a pool into equal shares, the leftover units going one each to the first targets by name."""
    names = list(targets)
    if len(set(names)) != len(names):
        raise SplitError(f"targets must be distinct, got {sorted(names)}")
    return _split(amount, {name: 1 for name in names}, currency, SplitMethod.EVEN, places, "error")


def split_proportional(
    amount: Decimal,
    direct_costs: Mapping[str, Decimal],
    *,
    currency: str,
    among: Iterable[str] | None = None,
    places: int | None = None,
    zero_weights: ZeroWeights = "error",
) -> Split:
    """Split a pool in proportion to the direct cost of a chosen set of targets (`among`, default all of them).

    Direct costs must not be negative: a target whose credits exceed its charges has no share to be proportional
    to. Leave it out of `among`, or split by a usage metric instead.
    """
    if among is not None:
        chosen = list(among)
        missing = sorted(set(chosen) - set(direct_costs))
        if missing:
            raise SplitError(f"no direct cost for {', '.join(missing)}; give a direct cost (0 is allowed) for each")
        direct_costs = {target: direct_costs[target] for target in chosen}
    return _split(amount, direct_costs, currency, SplitMethod.PROPORTIONAL, places, zero_weights)


def split_fixed(
    amount: Decimal, percentages: Mapping[str, Decimal | int], *, currency: str, places: int | None = None
) -> Split:
    """Split a pool by fixed percentages, which must sum to exactly 100."""
    exact = _fractions(percentages)
    total = sum(exact.values(), Fraction(0))
    if total != 100:
        shown = ", ".join(f"{target} {percentages[target]}" for target in sorted(percentages))
        raise SplitError(f"fixed percentages must sum to 100, these sum to {_show(total)} ({shown})")
    return _split(amount, percentages, currency, SplitMethod.FIXED, places, "error")


def split_by_usage(
    amount: Decimal,
    usage: Mapping[str, Decimal | int],
    *,
    currency: str,
    places: int | None = None,
    zero_weights: ZeroWeights = "error",
) -> Split:
    """Split a pool in proportion to a usage metric per target (CPU-hours, requests, bytes, seats)."""
    return _split(amount, usage, currency, SplitMethod.USAGE, places, zero_weights)


def split(
    amount: Decimal,
    method: SplitMethod | str,
    weights: Mapping[str, Decimal | int],
    *,
    currency: str,
    places: int | None = None,
    zero_weights: ZeroWeights = "error",
) -> Split:
    """Split a pool by a method named in data; `weights` are direct costs, percentages or usage, and their keys
    are the targets (for an even split only the keys count)."""
    method = SplitMethod(method)
    if method is SplitMethod.EVEN:
        return split_even(amount, weights, currency=currency, places=places)
    if method is SplitMethod.FIXED:
        return split_fixed(amount, weights, currency=currency, places=places)
    if method is SplitMethod.PROPORTIONAL:
        return split_proportional(amount, weights, currency=currency, places=places, zero_weights=zero_weights)
    return split_by_usage(amount, weights, currency=currency, places=places, zero_weights=zero_weights)


def round_preserving_sum(amounts: Mapping[K, Decimal], *, places: int = 2) -> dict[K, Decimal]:
    """Round signed amounts to `places` decimals so that they sum to their exact total rounded half-even,
    each one moving by less than one minor unit (largest remainder, ties by key; keys must be sortable)."""
    scaled = {key: _exact(value, str(key)) * 10**places for key, value in amounts.items()}
    total = sum(scaled.values(), Fraction(0))
    target = round(total)  # Fraction rounds half to even
    floors = {key: value.numerator // value.denominator for key, value in scaled.items()}
    leftover = target - sum(floors.values())
    for key in sorted(scaled, key=lambda k: (-(scaled[k] - floors[k]), k))[:leftover]:
        floors[key] += 1
    return {key: Decimal(floors[key]).scaleb(-places) for key in sorted(floors)}


def _split(
    amount: Decimal,
    weights: Mapping[str, Decimal | int],
    currency: str,
    method: SplitMethod,
    places: int | None,
    zero_weights: ZeroWeights,
) -> Split:
    if not weights:
        raise SplitError(f"a {method.value} split needs at least one target")
    places = minor_unit_places(currency) if places is None else places
    shares = apportion(amount, weights, places=places, zero_weights=zero_weights)
    return Split(
        pool=amount,
        currency=currency,
        method=method,
        places=places,
        shares=tuple(Share(target, value) for target, value in shares.items()),
    )


def _units(amount: Decimal, places: int) -> int:
    if places < 0:
        raise SplitError(f"places must be 0 or more, got {places}")
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise SplitError(f"a pool must be a Decimal, got {type(amount).__name__} {amount!r}")
    if isinstance(amount, Decimal) and not amount.is_finite():
        raise SplitError(f"a pool must be a finite amount, got {amount}")
    scaled = Decimal(amount).scaleb(places)
    if scaled != scaled.to_integral_value():
        raise SplitError(
            f"pool {amount} has more than {places} decimal places, so its shares cannot sum back to it exactly; "
            f"round the pool to the minor unit first (round_preserving_sum) or pass places= its precision"
        )
    return int(scaled)


def _fractions(weights: Mapping[str, Decimal | int]) -> dict[str, Fraction]:
    exact = {target: _exact(weight, target) for target, weight in weights.items()}
    negative = sorted(target for target, weight in exact.items() if weight < 0)
    if negative:
        raise SplitError(
            f"weights must not be negative: {', '.join(f'{t} {weights[t]}' for t in negative)}; "
            "leave those targets out or give them 0"
        )
    return exact


def _exact(value: Decimal | int, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise SplitError(f"{name}: amounts and weights must be Decimal or int, got {type(value).__name__} {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise SplitError(f"{name}: amounts and weights must be finite, got {value}")
    return Fraction(value)


def _show(value: Fraction) -> str:
    return str(Decimal(value.numerator) / Decimal(value.denominator))
