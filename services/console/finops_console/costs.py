"""The cost read model: cost batches pre-aggregated per day and dimension (billing account, provider, service,
resource, product tag, currency; a resource's team and cost center are the owner allocation published, joined
when read), the newest complete version of each billing period counted.

A batch of 20,000 lines becomes a few hundred rows (COPY); when its period completes, the version's rows are
summed once more into the counted daily facts (cost_day) and monthly facts (cost_month), and the version they
replace is dropped, so a restated period replaces its older figures and never adds to them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime

import asyncpg
import pyarrow as pa
import pyarrow.compute as pc

from finops_contracts.costframe import sums
from finops_contracts.events import CostPeriodCompleted
from finops_contracts.periods import period_month

UNALLOCATED = "unallocated"
NONE = "(none)"
PRODUCT_TAG = "product"
"""The tag naming a line's product (keys match case-insensitively). Team and cost center are owners: they come
from allocation (ResourceOwned, kept in resource_owner) through the cost_day and cost_month views, never from tags."""
STAGE_COLUMNS = (
    "ingest_id", "billing_account_id", "period", "day", "provider", "service", "resource_id", "product",
    "currency", "billed_cost", "effective_cost", "line_count",
)  # fmt: skip
DIMENSIONS = ("billing_account", "provider", "service", "team", "cost_center", "product", "period", "day")
"""What costs can be grouped and filtered by."""
_COLUMN = {"billing_account": "billing_account_id"}


def product_of(tags: Mapping[str, str]) -> str:
    """The product a line's tags name, UNALLOCATED where none does."""
    return next((str(v).strip() for k, v in tags.items() if k.strip().lower() == PRODUCT_TAG and str(v).strip()),
                UNALLOCATED)  # fmt: skip


def _products(tags: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The product of every line, deciding once per distinct Tags value."""
    if isinstance(tags, pa.ChunkedArray):
        tags = tags.combine_chunks()
    encoded = pc.dictionary_encode(tags)
    decided = [product_of(json.loads(text) if text else {}) for text in encoded.dictionary.to_pylist()]
    return pa.array([*decided, UNALLOCATED], pa.string()).take(encoded.indices.fill_null(len(decided)))


def day_facts(frame: pa.Table) -> pa.Table:
    """A batch's exact sums per charge day, provider, service, resource, product and currency."""
    product = _products(frame.column("tags"))
    day = pc.cast(frame.column("charge_period_start"), pa.timestamp("us", tz="UTC")).cast(pa.date32())
    table = pa.table(
        {
            "day": day,
            "provider": frame.column("provider_name"),
            "service": pc.fill_null(frame.column("service_name"), NONE),
            "resource_id": pc.fill_null(frame.column("resource_id"), ""),
            "product": product,
            "currency": frame.column("billing_currency"),
            "billed_cost": frame.column("billed_cost"),
            "effective_cost": frame.column("effective_cost"),
        }
    )
    return sums(table, ["day", "provider", "service", "resource_id", "product", "currency"])


def stage_records(
    facts: pa.Table, *, ingest_id: uuid.UUID, billing_account_id: str, period: date
) -> list[tuple[object, ...]]:
    """day_facts as rows of cost_stage."""
    columns = {name: facts.column(name).to_pylist() for name in facts.column_names}
    return [
        (
            ingest_id,
            billing_account_id,
            period,
            columns["day"][i],
            columns["provider"][i],
            columns["service"][i],
            columns["resource_id"][i],
            columns["product"][i],
            columns["currency"][i],
            columns["billed_cost_sum"][i],
            columns["effective_cost_sum"][i],
            columns["_lines_sum"][i],
        )
        for i in range(facts.num_rows)
    ]


async def claim_batch(
    conn: asyncpg.Connection,
    *,
    ingest_id: uuid.UUID,
    batch_seq: int,
    billing_account_id: str,
    period: date,
    line_count: int,
) -> bool:
    """True the first time a batch is seen, whatever ce_id it came with."""
    return (
        await conn.fetchval(
            """INSERT INTO cost_batch (ingest_id, batch_seq, billing_account_id, period, line_count)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
            ingest_id,
            batch_seq,
            billing_account_id,
            period,
            line_count,
        )
        is not None
    )


async def stage(conn: asyncpg.Connection, records: list[tuple[object, ...]]) -> None:
    if records:
        await conn.copy_records_to_table("cost_stage", records=records, columns=STAGE_COLUMNS)


async def complete(conn: asyncpg.Connection, event: CostPeriodCompleted, *, at: datetime) -> bool:
    """Count the completed version if it is the newest of its period; True when the counted facts changed."""
    period = period_month(event.billing_period_start)
    key = (event.billing_account_id, period)
    current = await conn.fetchrow(
        "SELECT ingest_id, version FROM cost_version WHERE billing_account_id = $1 AND period = $2 FOR UPDATE", *key
    )
    if current is not None and current["version"] >= event.version:
        if current["ingest_id"] != event.ingest_id:  # an older version completing late never counts
            await conn.execute(
                "DELETE FROM cost_stage WHERE ingest_id = $1 AND billing_account_id = $2 AND period = $3",
                event.ingest_id,
                *key,
            )
        return False
    for table in ("cost_day_fact", "cost_month_fact"):
        await conn.execute(f"DELETE FROM {table} WHERE billing_account_id = $1 AND period = $2", *key)
    dims = "billing_account_id, period, provider, service, resource_id, product, currency"
    await conn.execute(
        f"""INSERT INTO cost_day_fact ({dims}, day, billed_cost, effective_cost, line_count)
            SELECT {dims}, day, sum(billed_cost), sum(effective_cost), sum(line_count) FROM cost_stage
            WHERE ingest_id = $1 AND billing_account_id = $2 AND period = $3
            GROUP BY {dims}, day""",
        event.ingest_id,
        *key,
    )
    await conn.execute(
        f"""INSERT INTO cost_month_fact ({dims}, billed_cost, effective_cost, line_count)
            SELECT {dims}, sum(billed_cost), sum(effective_cost), sum(line_count) FROM cost_day_fact
            WHERE billing_account_id = $1 AND period = $2
            GROUP BY {dims}""",
        *key,
    )
    await conn.execute(
        "DELETE FROM cost_stage WHERE ingest_id = $1 AND billing_account_id = $2 AND period = $3",
        event.ingest_id,
        *key,
    )
    await conn.execute(
        """INSERT INTO cost_version
               (billing_account_id, period, ingest_id, version, provider, line_count, totals, completed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
           ON CONFLICT (billing_account_id, period) DO UPDATE SET ingest_id = EXCLUDED.ingest_id,
               version = EXCLUDED.version, provider = EXCLUDED.provider, line_count = EXCLUDED.line_count,
               totals = EXCLUDED.totals, completed_at = EXCLUDED.completed_at""",
        *key,
        event.ingest_id,
        event.version,
        event.provider_name,
        event.line_count,
        json.dumps([t.model_dump(mode="json") for t in event.totals]),
        at,
    )
    return True


def column(dimension: str) -> str:
    """The SQL column of a dimension name (checked against DIMENSIONS by the caller)."""
    return _COLUMN.get(dimension, dimension)
