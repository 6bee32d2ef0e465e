"""The per-batch owner totals of the legacy store (cost_allocation, CostAllocated): each line's owner is the team
that rules.owner_of decides (the allocation rules in force, then the team tag, else "unallocated"), the one
definition of an owner.

Batches arrive as Arrow frames, so the owner is decided once per distinct facet (FACET_FIELDS and Tags; a bill
repeats the same few over and over) and the sums are taken column-wise, exactly, in 76-digit decimals."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from finops_allocation.rules import FACET_FIELDS, UNALLOCATED, RuleSet, owner_of
from finops_contracts.costframe import sums

__all__ = ["UNALLOCATED", "OwnerTotal", "allocate", "owner_totals", "owners"]

_DEFAULT = RuleSet()


@dataclass(slots=True)
class OwnerTotal:
    billed_cost: Decimal = Decimal(0)
    effective_cost: Decimal = Decimal(0)
    line_count: int = 0


def owners(table: pa.Table, ruleset: RuleSet = _DEFAULT) -> pa.Array:
    """The owner team of every row of `table` (FACET_FIELDS and tags columns), deciding once per distinct facet."""
    columns = [table.column(f).to_pylist() for f in (*FACET_FIELDS, "tags")]
    decided: dict[tuple[object, ...], str] = {}
    out = []
    for row in zip(*columns, strict=True):
        team = decided.get(row)
        if team is None:
            facet = dict(zip(FACET_FIELDS, row[:-1], strict=True))
            team = decided[row] = owner_of(facet, json.loads(row[-1]) if row[-1] else {}, ruleset).team
        out.append(team)
    return pa.array(out, pa.string())


def allocate(frame: pa.Table, ruleset: RuleSet = _DEFAULT) -> dict[tuple[str, str], OwnerTotal]:
    """Sum a frame of cost lines per (owner, currency)."""
    table = frame.select(["billing_currency", "billed_cost", "effective_cost"]).append_column(
        "owner", owners(frame, ruleset)
    )
    totals: dict[tuple[str, str], OwnerTotal] = {}
    for row in sums(table, ["owner", "billing_currency"]).to_pylist():
        totals[(row["owner"], row["billing_currency"])] = OwnerTotal(
            billed_cost=row["billed_cost_sum"], effective_cost=row["effective_cost_sum"], line_count=row["_lines_sum"]
        )
    return totals


def owner_totals(facts: pa.Table, ruleset: RuleSet = _DEFAULT) -> dict[tuple[str, str], OwnerTotal]:
    """Sum a batch's facts (ledger.facts_of: facet, tags, billing_currency and sums) per (owner, currency)."""
    table = facts.select(["billing_currency", "billed_cost_sum", "effective_cost_sum", "_lines_sum"])
    table = table.append_column("owner", owners(facts, ruleset))
    totals: dict[tuple[str, str], OwnerTotal] = {}
    grouped = table.group_by(["owner", "billing_currency"], use_threads=False).aggregate(
        [("billed_cost_sum", "sum"), ("effective_cost_sum", "sum"), ("_lines_sum", "sum")]
    )
    for row in grouped.to_pylist():
        totals[(row["owner"], row["billing_currency"])] = OwnerTotal(
            billed_cost=row["billed_cost_sum_sum"],
            effective_cost=row["effective_cost_sum_sum"],
            line_count=row["_lines_sum_sum"],
        )
    return totals
