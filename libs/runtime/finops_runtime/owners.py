"""The owners allocation published (ResourceOwned), as a consuming service keeps them in its own
`resource_owner` table (each service's own migration creates it; see finops_recommend's 0006_resource_owner.sql).

Allocation alone decides owners: a consumer never derives one from tags, and a resource it holds no owner for is
"unallocated" (UNALLOCATED; SQL: `COALESCE(o.owner_team, 'unallocated')` over a LEFT JOIN on
(billing_account_id, resource_id))."""

from __future__ import annotations

import asyncpg

from finops_contracts.events import ResourceOwned

UNALLOCATED = "unallocated"


async def keep(conn: asyncpg.Connection, event: ResourceOwned) -> bool:
    """Keep `event` as the resource's owner unless one of a later (billing period, run) is held; whether it was
    kept (a stale or repeated event changes nothing)."""
    status = await conn.execute(
        """INSERT INTO resource_owner AS o (billing_account_id, resource_id, owner_team, cost_center, decided_by,
                                            billing_period_start, run, ruleset_version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (billing_account_id, resource_id) DO UPDATE
           SET owner_team = excluded.owner_team, cost_center = excluded.cost_center,
               decided_by = excluded.decided_by, billing_period_start = excluded.billing_period_start,
               run = excluded.run, ruleset_version = excluded.ruleset_version, updated_at = now()
           WHERE (o.billing_period_start, o.run) < (excluded.billing_period_start, excluded.run)""",
        event.billing_account_id,
        event.resource_id,
        event.owner_team,
        event.cost_center,
        event.decided_by,
        event.billing_period_start,
        event.run,
        event.ruleset_version,
    )
    return status.endswith(" 1")


async def owner_of(conn: asyncpg.Connection, billing_account_id: str, resource_id: str | None) -> str:
    """The owner team held for a resource, else "unallocated"."""
    if not resource_id:
        return UNALLOCATED
    team = await conn.fetchval(
        "SELECT owner_team FROM resource_owner WHERE billing_account_id = $1 AND resource_id = $2",
        billing_account_id,
        resource_id,
    )
    return team or UNALLOCATED
