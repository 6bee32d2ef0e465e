"""The allocation rule of the first flow: a line belongs to its `team` tag, else its `application` tag,
else to "unallocated".

Batches arrive as Arrow frames, so the rule runs once per distinct Tags value (a bill repeats the same few
tag sets over and over) and the sums are taken column-wise, exactly, in 76-digit decimals."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from finops_contracts.costframe import sums

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


def owners(tags: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The owner of every line, from its Tags JSON text, deciding once per distinct Tags value."""
    if isinstance(tags, pa.ChunkedArray):
        tags = tags.combine_chunks()
    encoded = pc.dictionary_encode(tags)
    decided = [owner_of(json.loads(text)) for text in encoded.dictionary.to_pylist()]
    return pa.array(decided + [UNALLOCATED], pa.string()).take(encoded.indices.fill_null(len(decided)))


def allocate(frame: pa.Table) -> dict[tuple[str, str], OwnerTotal]:
    """Sum a frame of cost lines per (owner, currency)."""
    table = frame.select(["billing_currency", "billed_cost", "effective_cost"]).append_column(
        "owner", owners(frame.column("tags"))
    )
    totals: dict[tuple[str, str], OwnerTotal] = {}
    for row in sums(table, ["owner", "billing_currency"]).to_pylist():
        totals[(row["owner"], row["billing_currency"])] = OwnerTotal(
            billed_cost=row["billed_cost_sum"], effective_cost=row["effective_cost_sum"], line_count=row["_lines_sum"]
        )
    return totals


def owner_totals(facts: pa.Table) -> dict[tuple[str, str], OwnerTotal]:
    """Sum a batch's facts (ledger.facts_of: tags, billing_currency and sums) per (owner, currency)."""
    table = facts.select(["billing_currency", "billed_cost_sum", "effective_cost_sum", "_lines_sum"])
    table = table.append_column("owner", owners(facts.column("tags")))
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
