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

from finops_contracts.periods import period_label, utc_month_start
from finops_recommend.existing import KnownCommitment, LineStats
from finops_recommend.findings import Resource
from finops_recommend.prices import Program
from finops_recommend.usage import (
    COMMITMENT_AMOUNTS,
    COMMITMENT_KEYS,
    FAMILY_AMOUNTS,
    FAMILY_KEYS,
    POOL_AMOUNTS,
    POOL_KEYS,
    RESOURCE_AMOUNTS,
    RESOURCE_KEYS,
    family_of,
    pool_key,
    program_of,
    scoped_program_of,
)

_OWNER = """LEFT JOIN resource_owner o
                 ON o.billing_account_id = u.billing_account_id AND o.resource_id = u.resource_id"""
"""Each resource's owner, as allocation published it (ResourceOwned); none held: "unallocated". Owners are read
when the analysis runs, and an owner arriving marks the model, so the next run updates a recommendation's owner."""
_TEAM = "COALESCE(o.owner_team, 'unallocated')"
# A row counts under the current version of its own billing account and period: one file carries many of both,
# so joining on the ingest alone would count each row once per (account, period) of its file.
_CURRENT = """JOIN period_version v ON v.ingest_id = u.ingest_id AND v.billing_account_id = u.billing_account_id
                                   AND v.billing_period_start = u.billing_period_start"""


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


async def add_pool_usage(conn: asyncpg.Connection, ingest_id: uuid.UUID, period: datetime, rows: pa.Table) -> None:
    types = ("text", "text", "text", "timestamptz", "int", "text", "text", *(["numeric"] * len(POOL_AMOUNTS)))
    await _add(conn, "pool_usage", ingest_id, period, rows, POOL_KEYS, POOL_AMOUNTS, types)


async def add_resource_days(conn: asyncpg.Connection, ingest_id: uuid.UUID, period: datetime, rows: pa.Table) -> None:
    types = ("text", "text", "text", "text", "text", "text", "text", "text", "boolean", "date", "text", "text",
             "numeric", "numeric")  # fmt: skip
    await _add(conn, "resource_day", ingest_id, period, rows, RESOURCE_KEYS, RESOURCE_AMOUNTS, types)


async def _add(conn: asyncpg.Connection, table: str, ingest_id: uuid.UUID, period: datetime, rows: pa.Table,
               keys: tuple[str, ...], amounts: tuple[str, ...], types: tuple[str, ...]) -> None:  # fmt: skip
    """Add a batch's sums to `table` under its ingest and billing period, adding to the sums of the same key
    already there (same ingest and period, other batch)."""
    if rows.num_rows == 0:
        return
    columns = [k if k != "billing_currency" else "currency" for k in (*keys, *amounts)]
    key_columns = ", ".join(columns[: len(keys)])
    params = ", ".join(f"${i + 3}::{t}[]" for i, t in enumerate(types))
    update = ", ".join(f"{a} = {table}.{a} + EXCLUDED.{a}" for a in amounts)
    await conn.execute(
        f"""INSERT INTO {table} (ingest_id, billing_period_start, {", ".join(columns)})
            SELECT $1, $2, * FROM unnest({params})
            ON CONFLICT (ingest_id, billing_period_start, {key_columns}) DO UPDATE SET {update}""",
        ingest_id,
        period,
        *_columns(rows, (*keys, *amounts)),
    )


async def add_family_usage(conn: asyncpg.Connection, ingest_id: uuid.UUID, period: datetime, rows: pa.Table) -> None:
    types = ("text", "text", "text", "text", "timestamptz", "int", "text", "text", *(["numeric"] * len(FAMILY_AMOUNTS)))
    await _add(conn, "family_usage", ingest_id, period, rows, FAMILY_KEYS, FAMILY_AMOUNTS, types)


async def add_commitment_usage(
    conn: asyncpg.Connection, ingest_id: uuid.UUID, period: datetime, rows: pa.Table
) -> None:
    types = ("text", "text", "text", "text", "text", "text", "timestamptz", "int", "text", *(["numeric"] * 4))
    await _add(conn, "commitment_usage", ingest_id, period, rows, COMMITMENT_KEYS, COMMITMENT_AMOUNTS, types)


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


async def drop_version(
    conn: asyncpg.Connection, *, ingest_id: uuid.UUID, billing_account_id: str, period: datetime
) -> None:
    """Forget the model of one version of one account's period (superseded, or completed after a newer one).
    The same file's other accounts and periods keep theirs."""
    for table in ("usage_batch", "pool_usage", "resource_day", "family_usage", "commitment_usage"):
        await conn.execute(
            f"""DELETE FROM {table}
                WHERE ingest_id = $1 AND billing_account_id = $2 AND billing_period_start = $3""",
            ingest_id,
            billing_account_id,
            period,
        )


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
    """Per (pool, currency): (bucket, hours, usage), current versions only. Usage is on-demand equivalent, less
    what commitments the lines do not name covered (the named ones are planned with their expiry instead)."""
    rows = await conn.fetch(
        f"""WITH p AS (
                SELECT u.pool, u.billing_account_id, u.currency, u.bucket, u.grain_hours,
                       sum(u.on_demand_equivalent) AS ode, sum(u.covered) AS covered
                FROM pool_usage u {_CURRENT}
                GROUP BY 1, 2, 3, 4, 5),
            c AS (
                SELECT u.billing_account_id, u.currency, u.bucket, u.grain_hours, sum(u.covered) AS covered
                FROM commitment_usage u {_CURRENT}
                GROUP BY 1, 2, 3, 4)
            SELECT p.pool, p.currency, p.bucket, p.grain_hours,
                   p.ode - greatest(p.covered - coalesce(c.covered, 0), 0) AS usage
            FROM p LEFT JOIN c USING (billing_account_id, currency, bucket, grain_hours)
            ORDER BY p.pool, p.currency, p.bucket"""
    )
    out: dict[tuple[str, str], list[tuple[datetime, int, Decimal]]] = defaultdict(list)
    for r in rows:
        out[(r["pool"], r["currency"])].append((r["bucket"], r["grain_hours"], r["usage"]))
    return dict(out)


async def family_buckets(
    conn: asyncpg.Connection,
) -> dict[tuple[str, str, str, str, str], list[tuple[datetime, int, Decimal]]]:
    """Per (provider, billing account, region, family, currency): (bucket, hours, on-demand-equivalent usage)."""
    rows = await conn.fetch(
        f"""SELECT u.provider_name, u.billing_account_id, u.region_id, u.family, u.currency, u.bucket, u.grain_hours,
                   sum(u.on_demand_equivalent) AS usage
            FROM family_usage u {_CURRENT}
            GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6"""
    )
    out: dict[tuple[str, str, str, str, str], list[tuple[datetime, int, Decimal]]] = defaultdict(list)
    for r in rows:
        key = (r["provider_name"], r["billing_account_id"], r["region_id"], r["family"], r["currency"])
        out[key].append((r["bucket"], r["grain_hours"], r["usage"]))
    return dict(out)


async def family_teams(conn: asyncpg.Connection) -> dict[tuple[str, str, str, str, str], list[tuple[str, Decimal]]]:
    """Per (provider, account, region, family, currency): each owner team's compute cost (EffectiveCost of its
    resources of the family), largest first; owners as allocation published them."""
    rows = await conn.fetch(
        f"""SELECT u.provider_name, u.billing_account_id, coalesce(u.region_id, '') AS region_id, u.instance_type,
                   u.resource_id, u.currency, {_TEAM} AS team, sum(u.effective_cost) AS usage
            FROM resource_day u {_CURRENT} {_OWNER}
            WHERE u.service_category = 'Compute'
            GROUP BY 1, 2, 3, 4, 5, 6, 7"""
    )
    sums: dict[tuple[str, str, str, str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in rows:
        family = family_of(r["provider_name"], r["instance_type"], r["resource_id"])
        if family is not None:
            key = (r["provider_name"], r["billing_account_id"], r["region_id"], family, r["currency"])
            sums[key][r["team"]] += r["usage"]
    return {k: sorted(v.items(), key=lambda t: (-t[1], t[0])) for k, v in sums.items()}


async def commitment_lines(conn: asyncpg.Connection, *, recent_hours: int = 168) -> list[LineStats]:
    """What the lines say of each commitment: when it was first and last seen, and its sums over its last
    `recent_hours` hours (where most of what it covered ran, for a scoped one)."""
    rows = await conn.fetch(
        f"""WITH c AS (SELECT u.* FROM commitment_usage u {_CURRENT}),
            span AS (SELECT commitment_id, min(bucket) AS first_seen,
                            max(bucket + make_interval(hours => grain_hours)) AS last_seen
                     FROM c GROUP BY commitment_id),
            recent AS (
                SELECT c.commitment_id, c.billing_account_id, c.provider_name, c.category, c.currency,
                       sum(c.covered) AS covered, sum(c.used_cost) AS used_cost, sum(c.unused_cost) AS unused_cost,
                       sum(c.purchase_cost) AS purchase_cost,
                       extract(epoch FROM max(s.last_seen) - greatest(min(c.bucket),
                               max(s.last_seen) - make_interval(hours => $1::int))) / 3600 AS hours
                FROM c JOIN span s USING (commitment_id)
                WHERE c.bucket >= s.last_seen - make_interval(hours => $1::int)
                GROUP BY 1, 2, 3, 4, 5),
            place AS (
                SELECT DISTINCT ON (commitment_id) commitment_id, region_id, family
                FROM c GROUP BY commitment_id, region_id, family
                ORDER BY commitment_id, sum(covered) DESC, region_id, family)
            SELECT r.*, s.first_seen, s.last_seen, p.region_id, p.family
            FROM recent r JOIN span s USING (commitment_id) JOIN place p USING (commitment_id)
            ORDER BY r.commitment_id, r.currency""",
        recent_hours,
    )
    return [
        LineStats(
            commitment_id=r["commitment_id"],
            billing_account_id=r["billing_account_id"],
            provider_name=r["provider_name"],
            category=r["category"],
            currency=r["currency"],
            first_seen=r["first_seen"],
            last_seen=r["last_seen"],
            hours=max(int(r["hours"]), 1),
            covered=r["covered"],
            used_cost=r["used_cost"],
            unused_cost=r["unused_cost"],
            region_id=r["region_id"],
            family=r["family"],
        )  # fmt: skip
        for r in rows
    ]


async def known_commitments(conn: asyncpg.Connection) -> list[KnownCommitment]:
    """Commitments with their terms (dataset rows, purchases), a purchase completed by the request behind it."""
    rows = await conn.fetch(
        """SELECT c.*, p.billing_account_id AS request_account, p.scope AS request_scope,
                  p.covered_usage_per_hour AS request_covered, p.commitment_per_hour AS request_per_hour
           FROM commitment c LEFT JOIN purchase_request p ON p.decision_id = c.decision_id
           ORDER BY c.commitment_id"""
    )
    out = []
    for r in rows:
        covered = r["covered_usage_per_hour"]
        if covered is None and r["request_covered"] is not None and r["request_per_hour"]:
            # the request's covered usage, scaled to what was bought if the provider rounded the commitment
            covered = r["request_covered"] * (r["commitment_per_hour"] or r["request_per_hour"]) / r["request_per_hour"]
        scope = json.loads(r["request_scope"]) if r["request_scope"] is not None else {}
        scope.update(json.loads(r["scope"]) if r["scope"] else {})
        out.append(
            KnownCommitment(
                commitment_id=r["commitment_id"],
                source=r["source"],
                program=Program(r["program"]) if r["program"] in Program._value2member_map_ else None,
                starts_at=r["starts_at"],
                ends_at=r["ends_at"],
                term_months=r["term_months"],
                payment=r["payment"],
                billing_account_id=r["billing_account_id"] or r["request_account"],
                provider_name=r["provider_name"],
                scope=scope,
                commitment_per_hour=r["commitment_per_hour"],
                covered_usage_per_hour=covered,
                currency=r["currency"],
                category=r["category"],
                description=r["description"],
                dry_run=r["dry_run"],
            )  # fmt: skip
        )
    return out


async def save_commitment(
    conn: asyncpg.Connection, c: KnownCommitment, *, decision_id: uuid.UUID | None = None
) -> None:
    """Record a commitment's terms; a purchase's record is never replaced by a dataset row."""
    await conn.execute(
        """INSERT INTO commitment (commitment_id, source, program, billing_account_id, provider_name, scope,
                                   term_months, payment, starts_at, ends_at, commitment_per_hour,
                                   covered_usage_per_hour, currency, category, description, decision_id, dry_run)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
           ON CONFLICT (commitment_id) DO UPDATE
           SET source = EXCLUDED.source, program = EXCLUDED.program,
               billing_account_id = coalesce(EXCLUDED.billing_account_id, commitment.billing_account_id),
               provider_name = coalesce(EXCLUDED.provider_name, commitment.provider_name),
               scope = EXCLUDED.scope, term_months = EXCLUDED.term_months, payment = EXCLUDED.payment,
               starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
               commitment_per_hour = EXCLUDED.commitment_per_hour,
               covered_usage_per_hour = EXCLUDED.covered_usage_per_hour, currency = EXCLUDED.currency,
               category = EXCLUDED.category, description = EXCLUDED.description,
               decision_id = coalesce(EXCLUDED.decision_id, commitment.decision_id), dry_run = EXCLUDED.dry_run,
               updated_at = now()
           WHERE commitment.source <> 'purchase' OR EXCLUDED.source = 'purchase'""",
        c.commitment_id, c.source, c.program.value if c.program else None, c.billing_account_id, c.provider_name,
        json.dumps(dict(c.scope)), c.term_months, c.payment, c.starts_at, c.ends_at, c.commitment_per_hour,
        c.covered_usage_per_hour, c.currency, c.category, c.description, decision_id, c.dry_run,
    )  # fmt: skip


async def save_purchase_request(conn: asyncpg.Connection, **fields: Any) -> None:
    await conn.execute(
        """INSERT INTO purchase_request (decision_id, recommendation_id, billing_account_id, provider_name, program,
                                         term_months, payment, scope, commitment_per_hour, covered_usage_per_hour,
                                         currency)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)
           ON CONFLICT (decision_id) DO NOTHING""",
        fields["decision_id"], fields["recommendation_id"], fields["billing_account_id"], fields["provider_name"],
        fields["program"], fields["term_months"], fields["payment"], json.dumps(fields["scope"]),
        fields["commitment_per_hour"], fields["covered_usage_per_hour"], fields["currency"],
    )  # fmt: skip


# --- decision feedback and metrics ------------------------------------------------------------------------------


async def save_rejection(conn: asyncpg.Connection, **fields: Any) -> None:
    await conn.execute(
        """INSERT INTO rejection (recommendation_id, decision_id, kind, target, principal, comment, rejected_at, until)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (recommendation_id) DO UPDATE SET until = greatest(rejection.until, EXCLUDED.until)""",
        fields["recommendation_id"], fields["decision_id"], fields["kind"], fields["target"], fields["principal"],
        fields["comment"], fields["rejected_at"], fields["until"],
    )  # fmt: skip


async def cooling_down(conn: asyncpg.Connection, *, now: datetime) -> dict[tuple[str, str], asyncpg.Record]:
    """(kind, target) of advice rejected whose cool-down has not ended, with the latest rejection."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (kind, target) kind, target, until, principal, comment, recommendation_id
           FROM rejection WHERE until > $1 ORDER BY kind, target, until DESC""",
        now,
    )
    return {(r["kind"], r["target"]): r for r in rows}


async def add_utilization(
    conn: asyncpg.Connection, rows: list[tuple[str, datetime, Decimal | None, Decimal | None]]
) -> int:
    """Store metric rows (a resend of the same resource and timestamp replaces it); how many were stored."""
    if not rows:
        return 0
    await conn.execute(
        """INSERT INTO utilization (resource_id, ts, cpu, memory)
           SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::numeric[], $4::numeric[])
           ON CONFLICT (resource_id, ts) DO UPDATE SET cpu = EXCLUDED.cpu, memory = EXCLUDED.memory,
                                                        received_at = now()""",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
    )  # fmt: skip
    return len(rows)


async def utilization_p95(conn: asyncpg.Connection, *, until: datetime, days: int) -> dict[str, dict[str, Any]]:
    """Per resource, over the `days` before `until`: the p95 of CPU and of memory utilization and the sample count."""
    rows = await conn.fetch(
        """SELECT resource_id, count(*) AS samples,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY cpu) AS cpu_p95,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY memory) AS memory_p95,
                  min(ts) AS first, max(ts) AS last
           FROM utilization WHERE ts > $1::timestamptz - make_interval(days => $2::int) AND ts <= $1::timestamptz
           GROUP BY resource_id""",
        until,
        days,
    )
    return {r["resource_id"]: dict(r) for r in rows}


async def pool_teams(conn: asyncpg.Connection) -> dict[tuple[str, str], list[tuple[str, Decimal]]]:
    """Per (pool, currency): each owner team's compute cost (EffectiveCost of its resources in the pool's
    account), largest first; owners as allocation published them."""
    rows = await conn.fetch(
        f"""SELECT u.provider_name, u.billing_account_id, u.currency, {_TEAM} AS team, sum(u.effective_cost) AS usage
            FROM resource_day u {_CURRENT} {_OWNER}
            WHERE u.service_category = 'Compute'
            GROUP BY 1, 2, 3, 4"""
    )
    sums: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in rows:
        program = program_of(r["provider_name"])
        if program is not None:
            sums[(pool_key(program, r["billing_account_id"]), r["currency"])][r["team"]] += r["usage"]
    return {k: sorted(v.items(), key=lambda t: (-t[1], t[0])) for k, v in sums.items()}


async def pool_months(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The KPI sums per pool, provider, billing account, month and currency; the month of a row is the one its
    billing period is named by (finops_contracts.periods), not the UTC month of its hour."""
    rows = await conn.fetch(
        f"""SELECT u.pool, u.provider_name, u.billing_account_id, u.currency, u.billing_period_start,
                   sum(u.on_demand_equivalent) AS on_demand_equivalent, sum(u.covered) AS covered,
                   sum(u.commitment_cost) AS commitment_cost, sum(u.unused_commitment_cost) AS unused,
                   sum(u.on_demand_cost) AS on_demand_cost, sum(u.commitment_fee) AS commitment_fee
            FROM pool_usage u {_CURRENT}
            GROUP BY 1, 2, 3, 4, 5"""
    )
    return _by_named_month(rows, ("pool", "provider_name", "billing_account_id", "currency"))


_KPI_SUMS = ("on_demand_equivalent", "covered", "commitment_cost", "unused", "on_demand_cost", "commitment_fee")


def _by_named_month(rows: list[asyncpg.Record], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """KPI sums per billing period folded into the month each period is named by: a GCP period's last hours
    (already the next UTC month) count in its own month. Ordered by the keys, then the month."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        month = utc_month_start(period_label(r["billing_period_start"]))
        key = (*(r[k] for k in keys), month)
        if key not in out:
            out[key] = {**{k: r[k] for k in keys}, "month": month, **{k: r[k] for k in _KPI_SUMS}}
            continue
        for k in _KPI_SUMS:
            out[key][k] += r[k]
    return [out[k] for k in sorted(out, key=lambda k: tuple(str(x) for x in k[:-1]) + (k[-1],))]


async def family_months(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The KPI sums per scoped pool (program, account, region, family), provider, month and currency, as the
    rows of `pool_months`. A month with rows summed before these sums existed (migration 0003) is left out."""
    rows = await conn.fetch(
        f"""SELECT u.provider_name, u.billing_account_id, u.region_id, u.family, u.currency, u.billing_period_start,
                   sum(u.on_demand_equivalent) AS on_demand_equivalent, sum(u.covered) AS covered,
                   sum(u.commitment_cost) AS commitment_cost, sum(u.unused_commitment_cost) AS unused,
                   sum(u.on_demand_cost) AS on_demand_cost, 0::numeric AS commitment_fee
            FROM family_usage u {_CURRENT}
            GROUP BY 1, 2, 3, 4, 5, 6
            HAVING bool_and(u.on_demand_cost IS NOT NULL)  -- rows from before migration 0003 cannot say"""
    )
    out = []
    for r in _by_named_month(rows, ("provider_name", "billing_account_id", "region_id", "family", "currency")):
        program = scoped_program_of(r["provider_name"])
        if program is None:
            continue
        pool = pool_key(program, r["billing_account_id"], r["region_id"], r["family"])
        out.append({**dict(r), "pool": pool})
    return out


async def resources(conn: asyncpg.Connection) -> tuple[list[Resource], date | None]:
    """Every resource's daily cost (current versions), and the last day of the data."""
    rows = await conn.fetch(
        f"""SELECT u.provider_name, u.billing_account_id, u.sub_account_id, u.region_id, u.service_name,
                   u.service_category, u.resource_id, {_TEAM} AS team, u.currency, u.snapshot, u.day,
                   sum(u.effective_cost) AS cost, max(u.instance_type) AS instance_type
            FROM resource_day u {_CURRENT} {_OWNER}
            GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11"""
    )
    daily: dict[tuple[Any, ...], dict[date, Decimal]] = defaultdict(dict)
    types: dict[tuple[Any, ...], tuple[date, str]] = {}
    last: date | None = None
    for r in rows:
        key = tuple(r[k] for k in ("provider_name", "billing_account_id", "sub_account_id", "region_id",
                                   "service_name", "service_category", "resource_id", "team", "currency",
                                   "snapshot"))  # fmt: skip
        daily[key][r["day"]] = r["cost"]
        last = r["day"] if last is None else max(last, r["day"])
        if r["instance_type"] and (key not in types or types[key][0] <= r["day"]):
            types[key] = (r["day"], r["instance_type"])  # the type it ran as most recently (a resize changes it)
    return [
        Resource(*key, daily=days, instance_type=types.get(key, (None, ""))[1]) for key, days in sorted(daily.items())
    ], last


async def team_days(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Daily EffectiveCost per team, currency and child (service, account, resource), current versions only."""
    return await conn.fetch(
        f"""SELECT {_TEAM} AS team, u.currency, u.day, u.service_name, u.billing_account_id, u.resource_id,
                   sum(u.effective_cost) AS cost
            FROM resource_day u {_CURRENT} {_OWNER}
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
