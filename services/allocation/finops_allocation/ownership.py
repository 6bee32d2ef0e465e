"""Resource ownership: allocation alone decides who owns a resource, and publishes it as ResourceOwned.

A batch records each resource's facets (FACET_FIELDS and tags) with their EffectiveCost; when an allocation run
of a billing period completes, every resource of the period's current versions gets its owner from
rules.owner_of under the rules in force (of its largest facet, when its lines differ), and one ResourceOwned
per resource goes to the outbox, in the run's transaction, numbered by the run."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from decimal import Decimal

import asyncpg
import pyarrow as pa
import pyarrow.compute as pc

from finops_allocation.rules import FACET_FIELDS, Owner, RuleSet, owner_of
from finops_contracts.costframe import sums
from finops_contracts.events import ResourceOwned
from finops_runtime import outbox

SOURCE = "/finops/allocation"
_OWNED = uuid.UUID("5d0c7f0e-3b2a-4e61-9a57-21c4f8e0b6a3")


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


async def add_resources(
    conn: asyncpg.Connection,
    *,
    billing_account_id: str,
    billing_period_start: datetime,
    ingest_id: object,
    frame: pa.Table,
) -> None:
    """Record the resources of a batch (lines without a ResourceId have no resource owner to publish)."""
    table = frame.select([*FACET_FIELDS, "tags", "resource_id", "effective_cost"])
    table = table.filter(pc.not_equal(pc.fill_null(table.column("resource_id"), ""), ""))
    if table.num_rows == 0:
        return
    grouped = sums(table, [*FACET_FIELDS, "tags", "resource_id"], ("effective_cost",))  # exact, per resource, facet
    columns = {n: grouped.column(n).to_pylist() for n in (*FACET_FIELDS, "tags", "resource_id", "effective_cost_sum")}
    cost: dict[tuple[str, bytes], list] = {}
    for i, resource in enumerate(columns["resource_id"]):
        dims = _canonical({f: columns[f][i] for f in FACET_FIELDS})
        tags = _canonical(json.loads(columns["tags"][i]) if columns["tags"][i] else {})
        digest = hashlib.sha256(f"{dims}\n{tags}".encode()).digest()[:16]
        entry = cost.setdefault((resource, digest), [dims, tags, Decimal(0)])
        entry[2] += columns["effective_cost_sum"][i]
    if not cost:
        return
    keys = sorted(cost)
    await conn.execute(
        """INSERT INTO resource_facet AS r (billing_account_id, billing_period_start, ingest_id, resource_id,
                                            facet_hash, dims, tags, effective_cost)
           SELECT $1, $2, $3, u.resource, u.hash, u.dims::jsonb, u.tags::jsonb, u.cost::numeric
           FROM unnest($4::text[], $5::bytea[], $6::text[], $7::text[], $8::text[])
                AS u(resource, hash, dims, tags, cost)
           ON CONFLICT (billing_account_id, billing_period_start, ingest_id, resource_id, facet_hash)
           DO UPDATE SET effective_cost = r.effective_cost + excluded.effective_cost""",
        billing_account_id,
        billing_period_start,
        ingest_id,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [cost[k][0] for k in keys],
        [cost[k][1] for k in keys],
        [format(cost[k][2], "f") for k in keys],
    )


async def owners(conn: asyncpg.Connection, period: datetime, ruleset: RuleSet) -> dict[tuple[str, str], Owner]:
    """Each resource of the period's current versions and its owner (of its largest facet by EffectiveCost,
    ties broken by the facet's hash so every run decides alike)."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (r.billing_account_id, r.resource_id) r.billing_account_id, r.resource_id, r.dims, r.tags
           FROM resource_facet r
           JOIN current_period p USING (billing_account_id, billing_period_start, ingest_id)
           WHERE r.billing_period_start = $1
           ORDER BY r.billing_account_id, r.resource_id, abs(r.effective_cost) DESC, r.facet_hash""",
        period,
    )
    decided: dict[tuple[str, str], Owner] = {}
    out = {}
    for r in rows:
        key = (r["dims"], r["tags"])
        owner = decided.get(key)
        if owner is None:
            owner = decided[key] = owner_of(json.loads(r["dims"]), json.loads(r["tags"]), ruleset)
        out[(r["billing_account_id"], r["resource_id"])] = owner
    return out


async def publish(conn: asyncpg.Connection, period: datetime, *, ruleset_version: int, ruleset: RuleSet) -> int:
    """Put one ResourceOwned per resource of the period in the outbox, for a new run; the run's number."""
    decided = await owners(conn, period, ruleset)
    if not decided:
        return 0
    run = await conn.fetchval("SELECT nextval('ownership_run')")
    messages = [
        outbox.message_for(
            ResourceOwned(
                billing_account_id=account,
                resource_id=resource,
                billing_period_start=period,
                owner_team=o.team,
                cost_center=o.cost_center,
                decided_by=o.decided_by,
                run=run,
                ruleset_version=ruleset_version,
            ),
            source=SOURCE,
            event_id=uuid.uuid5(_OWNED, f"{account}/{resource}/{run}"),
        )
        for (account, resource), o in sorted(decided.items())
    ]
    await outbox.add(conn, messages)
    return run


async def publish_all(conn: asyncpg.Connection, *, ruleset_version: int, ruleset: RuleSet) -> None:
    """Publish the owners of every period with a current version (after a rules change re-ran them)."""
    periods = await conn.fetch("SELECT DISTINCT billing_period_start FROM current_period ORDER BY 1")
    for p in periods:
        await publish(conn, p["billing_period_start"], ruleset_version=ruleset_version, ruleset=ruleset)
