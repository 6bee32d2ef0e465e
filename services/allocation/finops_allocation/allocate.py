"""The allocation rule of the first flow: a line belongs to its `team` tag, else its `application` tag,
else to "unallocated"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from finops_contracts.events import CostLine

UNALLOCATED = "unallocated"
OWNER_TAGS = ("team", "application")


def owner_of(tags: Mapping[str, str]) -> str:
    """The owner named by the first owner tag present; tag keys match case-insensitively."""
    normalized = {k.strip().lower(): v.strip() for k, v in tags.items()}
    for key in OWNER_TAGS:
        if normalized.get(key):
            return normalized[key]
    return UNALLOCATED


@dataclass(slots=True)
class OwnerTotal:
    billed_cost: Decimal = Decimal(0)
    effective_cost: Decimal = Decimal(0)
    line_count: int = 0


def allocate(lines: Iterable[CostLine]) -> dict[tuple[str, str], OwnerTotal]:
    """Sum the lines per (owner, currency)."""
    totals: dict[tuple[str, str], OwnerTotal] = {}
    for line in lines:
        total = totals.setdefault((owner_of(line.tags), line.billing_currency), OwnerTotal())
        total.billed_cost += line.billed_cost
        total.effective_cost += line.effective_cost
        total.line_count += 1
    return totals
