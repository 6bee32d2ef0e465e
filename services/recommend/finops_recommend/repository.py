"""The recommend service's tables: the usage model per ingest, the current version of each billing period, the
analysis marks, recommendations with their lifecycle, and the KPIs published. Every function works in the
caller's transaction."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pyarrow as pa

from finops_recommend.findings import Resource
from finops_recommend.usage import POOL_AMOUNTS, POOL_KEYS, RESOURCE_AMOUNTS, RESOURCE_KEYS

_CURRENT = """JOIN period_version v ON v.ingest_id = u.ingest_id"""


async def claim_batch(
    conn: asyncpg.Connection, *, ingest_id: uuid.UUID, batch_seq: int, billing_account_id: str, period: datetime
) -> bool:
    """Record a batch as in the model; False when it already was (a redelivery under another ce_id)."""
    return (
        await conn.fetchval(
            """INSERT INTO usage_batch (ingest_id, batch_seq, billing_account_id, billing_period_start)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
            ingest_id,
            batch_seq,
            billing_account_id,
            period,
        )
        is not None
    )


def _columns(table: pa.Table, names: tuple[str, ...]) -> list[list[Any]]:
    return [table.column(n).to_pylist() for n in names]


async def add_pool_usage(conn: asyncpg.Connection, ingest_id: uuid.UUID, rows: pa.Table) -> None:
    if rows.num_rows == 0:
        return
    amounts = ", ".join(f"{a} = pool_usage.{a} + EXCLUDED.{a}" for a in POOL_AMOUNTS)
    await conn.execute(
        f"""INSERT INTO pool_usage (ingest_id, billing_account_id, provider_name, pool, bucket, grain_hours, currency,
                                    team, {", ".join(POOL_AMOUNTS)})
            SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[], $7::text[],
                                     $8::text[], $9::numeric[], $10::numeric[], $11::numeric[], $12::numeric[],
                                     $13::numeric[])
            ON CONFLICT (ingest_id, pool, bucket, grain_hours, currency, team) DO UPDATE SET {amounts}""",
        ingest_id,
        *_columns(rows, (*POOL_KEYS, *POOL_AMOUNTS)),
    )


async def add_resource_days(conn: asyncpg.Connection, ingest_id: uuid.UUID, rows: pa.Table) -> None:
    if rows.num_rows == 0:
        return
    keys = ", ".join(k if k != "billing_currency" else "currency" for k in RESOURCE_KEYS)
    amounts = ", ".join(f"{a} = resource_day.{a} + EXCLUDED.{a}" for a in RESOURCE_AMOUNTS)
    await conn.execute(
        f"""INSERT INTO resource_day (ingest_id, {keys}, effective_cost, billed_cost)
            SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                     $8::text[], $9::text[], $10::boolean[], $11::date[], $12::text[],
                                     $13::numeric[], $14::numeric[])
            ON CONFLICT (ingest_id, {keys}) DO UPDATE SET {amounts}""",
        ingest_id,
        *_columns(rows, (*RESOURCE_KEYS, *RESOURCE_AMOUNTS)),
    )


async def current_version(
    conn: asyncpg.Connection, *, billing_account_id: str, period: datetime
) -> asyncpg.Record | None:
    """The version of the period that counts, and its ingest id; None before one completed."""
    return await conn.fetchrow(
        """SELECT ingest_id, version FROM period_version WHERE billing_account_id = $1 AND billing_period_start = $2""",
        billing_account_id,
        period,
    )


async def make_current(
    conn: asyncpg.Connection,
    *,
    billing_account_id: str,
    period: datetime,
    ingest_id: uuid.UUID,
    version: int,
    provider_name: str,
) -> None:
    """Let this version of the period count instead of the one that did."""
    await conn.execute(
        """INSERT INTO period_version (billing_account_id, billing_period_start, ingest_id, version, provider_name)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (billing_account_id, billing_period_start) DO UPDATE
           SET ingest_id = EXCLUDED.ingest_id, version = EXCLUDED.version, provider_name = EXCLUDED.provider_name,
               completed_at = now()""",
        billing_account_id,
        period,
        ingest_id,
        version,
        provider_name,
    )


async def drop_ingest(conn: asyncpg.Connection, ingest_id: uuid.UUID) -> None:
    """Forget the model of one version of a period (superseded, or completed after a newer one)."""
    await conn.execute("DELETE FROM usage_batch WHERE ingest_id = $1", ingest_id)
    await conn.execute("DELETE FROM pool_usage WHERE ingest_id = $1", ingest_id)
    await conn.execute("DELETE FROM resource_day WHERE ingest_id = $1", ingest_id)


# --- analysis marks -------------------------------------------------------------------------------------------


async def mark(conn: asyncpg.Connection, scope: str = "all") -> None:
    await conn.execute(
        "INSERT INTO analysis_mark (scope) VALUES ($1) ON CONFLICT (scope) DO UPDATE SET marked_at = now()", scope
    )


async def take_mark(conn: asyncpg.Connection, *, quiet_s: float) -> str | None:
    """Claim a mark untouched for `quiet_s` seconds (SKIP LOCKED: another instance may be running it)."""
    return await conn.fetchval(
        """DELETE FROM analysis_mark WHERE scope = (
               SELECT scope FROM analysis_mark WHERE marked_at <= now() - make_interval(secs => $1)
               ORDER BY marked_at LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING scope""",
        quiet_s,
    )


# --- reading the model ----------------------------------------------------------------------------------------


async def pool_buckets(conn: asyncpg.Connection) -> dict[tuple[str, str], list[tuple[datetime, int, Decimal]]]:
    """Per (pool, currency): (bucket, hours, usage not covered by existing commitments), current versions only."""
    rows = await conn.fetch(
        f"""SELECT u.pool, u.currency, u.bucket, u.grain_hours, sum(u.on_demand_equivalent - u.covered) AS uncovered
            FROM pool_usage u {_CURRENT}
            GROUP BY u.pool, u.currency, u.bucket, u.grain_hours ORDER BY u.pool, u.currency, u.bucket"""
    )
    out: dict[tuple[str, str], list[tuple[datetime, int, Decimal]]] = defaultdict(list)
    for r in rows:
        out[(r["pool"], r["currency"])].append((r["bucket"], r["grain_hours"], r["uncovered"]))
    return dict(out)


async def pool_teams(conn: asyncpg.Connection) -> dict[tuple[str, str], list[tuple[str, Decimal]]]:
    """Per (pool, currency): each team's on-demand-equivalent usage, largest first."""
    rows = await conn.fetch(
        f"""SELECT u.pool, u.currency, u.team, sum(u.on_demand_equivalent) AS usage
            FROM pool_usage u {_CURRENT}
            GROUP BY u.pool, u.currency, u.team ORDER BY u.pool, u.currency, usage DESC, u.team"""
    )
    out: dict[tuple[str, str], list[tuple[str, Decimal]]] = defaultdict(list)
    for r in rows:
        out[(r["pool"], r["currency"])].append((r["team"], r["usage"]))
    return dict(out)


async def pool_months(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The KPI sums per pool, provider, billing account, month and currency."""
    return await conn.fetch(
        f"""SELECT u.pool, u.provider_name, u.billing_account_id, u.currency,
                   date_trunc('month', u.bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS month,
                   sum(u.on_demand_equivalent) AS on_demand_equivalent, sum(u.covered) AS covered,
                   sum(u.commitment_cost) AS commitment_cost, sum(u.unused_commitment_cost) AS unused,
                   sum(u.on_demand_cost) AS on_demand_cost
            FROM pool_usage u {_CURRENT}
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 4, 5"""
    )


async def resources(conn: asyncpg.Connection) -> tuple[list[Resource], date | None]:
    """Every resource's daily cost (current versions), and the last day of the data."""
    rows = await conn.fetch(
        f"""SELECT u.provider_name, u.billing_account_id, u.sub_account_id, u.region_id, u.service_name,
                   u.service_category, u.resource_id, u.team, u.currency, u.snapshot, u.day,
                   sum(u.effective_cost) AS cost
            FROM resource_day u {_CURRENT}
            GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11"""
    )
    daily: dict[tuple[Any, ...], dict[date, Decimal]] = defaultdict(dict)
    last: date | None = None
    for r in rows:
        key = tuple(r[k] for k in ("provider_name", "billing_account_id", "sub_account_id", "region_id",
                                   "service_name", "service_category", "resource_id", "team", "currency",
                                   "snapshot"))  # fmt: skip
        daily[key][r["day"]] = r["cost"]
        last = r["day"] if last is None else max(last, r["day"])
    return [Resource(*key, daily=days) for key, days in sorted(daily.items())], last


async def team_days(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Daily EffectiveCost per team, currency and child (service, account, resource), current versions only."""
    return await conn.fetch(
        f"""SELECT u.team, u.currency, u.day, u.service_name, u.billing_account_id, u.resource_id,
                   sum(u.effective_cost) AS cost
            FROM resource_day u {_CURRENT}
            GROUP BY 1, 2, 3, 4, 5, 6"""
    )


# --- recommendations ------------------------------------------------------------------------------------------


async def open_recommendations(conn: asyncpg.Connection) -> dict[tuple[str, str], asyncpg.Record]:
    """Open (issued or updated) recommendations by (kind, target), locked for this run."""
    rows = await conn.fetch("SELECT * FROM recommendation WHERE status IN ('issued', 'updated') ORDER BY id FOR UPDATE")
    return {(r["kind"], r["target"]): r for r in rows}


async def recommendation(conn: asyncpg.Connection, rec_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM recommendation WHERE id = $1", rec_id)


async def save_recommendation(
    conn: asyncpg.Connection, *, status: str, fingerprint: str, content: dict[str, Any]
) -> None:
    money = content["estimated_monthly_savings"]
    await conn.execute(
        """INSERT INTO recommendation (id, kind, target, status, version, fingerprint, owner_team, personas, savings,
                                       currency, expires_at, content)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)
           ON CONFLICT (id) DO UPDATE
           SET status = EXCLUDED.status, version = EXCLUDED.version, fingerprint = EXCLUDED.fingerprint,
               owner_team = EXCLUDED.owner_team, personas = EXCLUDED.personas, savings = EXCLUDED.savings,
               currency = EXCLUDED.currency, expires_at = EXCLUDED.expires_at, content = EXCLUDED.content,
               updated_at = now()""",
        uuid.UUID(content["recommendation_id"]),
        content["kind"],
        content["target"],
        status,
        content["version"],
        fingerprint,
        content["owner_team"],
        list(content["personas"]),
        Decimal(money["amount"]),
        money["currency"],
        datetime.fromisoformat(content["expires_at"]),
        json.dumps(content),
    )


async def close_recommendation(
    conn: asyncpg.Connection, rec_id: uuid.UUID, *, status: str, superseded_by: uuid.UUID | None = None
) -> None:
    await conn.execute(
        "UPDATE recommendation SET status = $2, superseded_by = $3, updated_at = now() WHERE id = $1",
        rec_id,
        status,
        superseded_by,
    )


async def list_recommendations(
    conn: asyncpg.Connection, *, status: str | None, kind: str | None, teams: set[str] | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, kind, target, status, version, owner_team, personas, savings, currency, expires_at,
                  superseded_by, content, created_at, updated_at
           FROM recommendation
           WHERE ($1::text IS NULL OR status = $1 OR ($1 = 'open' AND status IN ('issued', 'updated')))
             AND ($2::text IS NULL OR kind = $2)
             AND ($3::text[] IS NULL OR owner_team = ANY($3))
           ORDER BY savings DESC, id""",
        status,
        kind,
        sorted(teams) if teams is not None else None,
    )


async def kpi_fingerprint(conn: asyncpg.Connection, *, pool: str, month: datetime, currency: str) -> str | None:
    return await conn.fetchval(
        "SELECT fingerprint FROM kpi WHERE pool = $1 AND month = $2 AND currency = $3", pool, month, currency
    )


async def save_kpi(
    conn: asyncpg.Connection, *, pool: str, month: datetime, currency: str, fingerprint: str, content: str
) -> None:
    await conn.execute(
        """INSERT INTO kpi (pool, month, currency, fingerprint, content) VALUES ($1, $2, $3, $4, $5::jsonb)
           ON CONFLICT (pool, month, currency) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                                                            content = EXCLUDED.content""",
        pool,
        month,
        currency,
        fingerprint,
        content,
    )
