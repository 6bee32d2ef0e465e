"""The allocation ledger: cost facts from batches, allocation runs per billing period under the rules in
force, showback and chargeback, and period close with its general-ledger journal.

Each function works in the caller's transaction, so a run, a rules change or a close is all or nothing."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pyarrow as pa
import pyarrow.compute as pc

from finops_allocation.chargeback import Fact, Line, coverage, run
from finops_allocation.journal import AccountMapping, ChargebackLine, Journal, build_journal
from finops_allocation.rules import FACET_FIELDS, Assignment, RuleSet
from finops_contracts.costframe import sums
from finops_contracts.events import Coverage, CoverageMeasured
from finops_contracts.money import Money
from finops_contracts.periods import label_bounds, parse_label, period_label, utc_month_start
from finops_contracts.topics import ALLOCATION
from finops_runtime import outbox
from finops_runtime.inbox import Retry

DEFAULT_RULES = RuleSet()
SOURCE = "/finops/allocation"
_COVERAGE = uuid.UUID("9e1f2a43-7c55-4f0e-8d0e-3c2b1a9f6d71")
DIMENSION_COLUMNS = ("cost_center", "team", "product", "environment")
_LINE_COLUMNS = (
    "billing_period_start", "billing_account_id", "billing_currency", "cost_center", "team", "product",
    "environment", "kind", "pool", "adjusts_period", "billed_cost", "effective_cost", "line_count",
    "ruleset_version",
)  # fmt: skip


_ASSIGNED: dict[tuple[str, int], dict[object, Assignment]] = {}
"""Facet assignments of this process under the rules in force, by rule-set version."""


class PeriodClosed(Exception):
    """The period is closed: its numbers are locked."""


_PERIOD_END = b"billing_period_end"
class ConservationViolated(Exception):
    """An allocation run's lines do not add up to the bill: per (billing account, period, version) and currency,
    allocated + unallocated + shared must equal the bill's total to the cent. Nothing of the run may count."""

    def __init__(self, period: datetime, violations: list[tuple[str, int, str]]) -> None:
        self.period = period
        self.violations = violations  # (billing account, version, what differs)
        super().__init__(
            f"conservation check failed for the period starting {period.isoformat()}: "
            + "; ".join(f"{account} version {version}: {what}" for account, version, what in violations)
        )


def facts_of(frame: pa.Table) -> pa.Table:
    """A batch's cost per facet, charge day and currency (exact sums, one row per distinct combination), with
    the batch's BillingPeriodEnd in the schema metadata (add_facts records it as the period's bound)."""
    day = pc.cast(frame.column("charge_period_start"), pa.timestamp("us", tz="UTC")).cast(pa.date32())
    table = frame.select([*FACET_FIELDS, "tags", "billing_currency", "billed_cost", "effective_cost"])
    table = table.append_column("charge_date", day)
    facts = sums(table, [*FACET_FIELDS, "tags", "charge_date", "billing_currency"])
    if "billing_period_end" in frame.column_names and frame.num_rows:
        end = pc.max(frame.column("billing_period_end")).as_py()
        if end is not None:
            facts = facts.replace_schema_metadata({_PERIOD_END: end.astimezone(UTC).isoformat().encode()})
    return facts


_FACET_IDS: dict[tuple[str, tuple[object, ...], str | None], int] = {}
"""Facet ids this process has seen: a facet's id never changes once written."""
_FACET_CACHE_LIMIT = 1_000_000


async def _database(conn: asyncpg.Connection) -> str:
    """Which database (and which incarnation of its facet table) ids belong to: caches are keyed by it, so a
    process that meets several databases (tests do) never takes one's ids for another's."""
    return await conn.fetchval("SELECT current_database() || '/' || 'facet'::regclass::oid")


async def add_facts(
    conn: asyncpg.Connection,
    *,
    billing_account_id: str,
    billing_period_start: datetime,
    ingest_id: object,
    facts: pa.Table,
) -> None:
    """Add a batch's facts (facts_of) to the period's. Amounts go to PostgreSQL as exact decimal text."""
    end = (facts.schema.metadata or {}).get(_PERIOD_END)
    if end is not None and datetime.fromisoformat(end.decode()) <= billing_period_start:
        end = None  # no bound to learn from a period that ends where it starts: the next UTC month stands in
    if end is not None:
        await conn.execute(
            """INSERT INTO billing_period (billing_period_start, billing_period_end) VALUES ($1, $2)
               ON CONFLICT (billing_period_start) DO UPDATE SET billing_period_end = excluded.billing_period_end""",
            billing_period_start,
            datetime.fromisoformat(end.decode()),
        )
    columns = {name: facts.column(name).to_pylist() for name in (*FACET_FIELDS, "tags")}
    database = await _database(conn)
    keys = [(database, tuple(columns[f][i] for f in FACET_FIELDS), columns["tags"][i]) for i in range(facts.num_rows)]
    new: dict[bytes, tuple[str, str, tuple[str, tuple[object, ...], str | None]]] = {}
    for key in keys:
        if key in _FACET_IDS:
            continue
        dims = json.dumps(dict(zip(FACET_FIELDS, key[1], strict=True)), sort_keys=True, separators=(",", ":"))
        tags = json.dumps(json.loads(key[2]) if key[2] else {}, sort_keys=True, separators=(",", ":"))
        new[hashlib.sha256(f"{dims}\n{tags}".encode()).digest()[:16]] = (dims, tags, key)
    if new:
        hashes = sorted(new)  # one lock order, so instances adding the same new facets cannot deadlock
        await conn.execute(
            """INSERT INTO facet (facet_hash, dims, tags)
               SELECT h, d::jsonb, t::jsonb FROM unnest($1::bytea[], $2::text[], $3::text[]) AS u(h, d, t)
               ON CONFLICT (facet_hash) DO NOTHING""",
            hashes,
            [new[h][0] for h in hashes],
            [new[h][1] for h in hashes],
        )
        if len(_FACET_IDS) > _FACET_CACHE_LIMIT:
            _FACET_IDS.clear()
        found = await conn.fetch("SELECT facet_hash, facet_id FROM facet WHERE facet_hash = ANY($1::bytea[])", hashes)
        for r in found:
            _FACET_IDS[new[r["facet_hash"]][2]] = r["facet_id"]
    try:
        await conn.execute(
            """INSERT INTO cost_fact AS f (billing_account_id, billing_period_start, ingest_id, charge_date,
                                           billing_currency, facet_id, billed_cost, effective_cost, line_count)
               SELECT $1, $2, $3, u.day, u.currency, u.facet, u.billed::numeric, u.effective::numeric, u.lines
               FROM unnest($4::date[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::bigint[])
                    AS u(day, currency, facet, billed, effective, lines)
               ON CONFLICT (billing_account_id, billing_period_start, ingest_id, charge_date, billing_currency,
                            facet_id)
               DO UPDATE SET billed_cost = f.billed_cost + excluded.billed_cost,
                             effective_cost = f.effective_cost + excluded.effective_cost,
                             line_count = f.line_count + excluded.line_count""",
            billing_account_id,
            billing_period_start,
            ingest_id,
            facts.column("charge_date").to_pylist(),
            facts.column("billing_currency").to_pylist(),
            [_FACET_IDS[key] for key in keys],
            facts.column("billed_cost_sum").cast(pa.string()).to_pylist(),
            facts.column("effective_cost_sum").cast(pa.string()).to_pylist(),
            facts.column("_lines_sum").to_pylist(),
        )
    except (asyncpg.ForeignKeyViolationError, KeyError):
        # A facet id cached from a transaction that was rolled back: forget them all and apply the batch again.
        _FACET_IDS.clear()
        raise Retry("facet id cache was stale") from None


async def current_rules(conn: asyncpg.Connection) -> tuple[int, RuleSet]:
    row = await conn.fetchrow("SELECT version, body FROM ruleset ORDER BY version DESC LIMIT 1")
    if row is None:
        return 0, DEFAULT_RULES
    return row["version"], RuleSet.model_validate(json.loads(row["body"]))


async def set_rules(conn: asyncpg.Connection, ruleset: RuleSet, *, by: str) -> int:
    """Put a rule set in force and re-allocate every period under it; the new version."""
    await conn.execute("LOCK TABLE ruleset IN EXCLUSIVE MODE")
    version = await conn.fetchval(
        "INSERT INTO ruleset (body, created_by) VALUES ($1::jsonb, $2) RETURNING version",
        ruleset.model_dump_json(),
        by,
    )
    periods = await conn.fetch("SELECT DISTINCT billing_period_start FROM current_period ORDER BY 1")
    for p in periods:
        await run_period(conn, p["billing_period_start"])
    return version


async def _facts(conn: asyncpg.Connection, period: datetime, version: int) -> list[Fact]:
    rows = await conn.fetch(
        """SELECT f.billing_account_id, f.billing_currency, s.facet_id, s.dims, s.tags, s.tags <> '{}'::jsonb AS tagged,
                  sum(f.billed_cost) AS billed,
                  sum(f.effective_cost) AS effective, sum(f.line_count) AS lines
           FROM cost_fact f
           JOIN current_period p USING (billing_account_id, billing_period_start, ingest_id)
           JOIN facet s USING (facet_id)
           WHERE f.billing_period_start = $1
           GROUP BY f.billing_account_id, f.billing_currency, s.facet_id""",
        period,
    )
    known = _ASSIGNED.get((await _database(conn), version), {})
    return [
        Fact(
            r["billing_account_id"],
            r["billing_currency"].strip(),
            {} if r["facet_id"] in known else json.loads(r["dims"]),
            {} if r["facet_id"] in known else json.loads(r["tags"]),
            r["billed"],
            r["effective"],
            int(r["lines"]),
            r["facet_id"],
            r["tagged"],
        )
        for r in rows
    ]


async def mark(conn: asyncpg.Connection, period: datetime) -> None:
    """Ask for a run of `period`: many completions of one period (one per billing account) make one run.

    The mark is written, or its existing row updated, never left alone: the update locks the row until the
    caller's transaction commits, so a run cannot claim the period (take_marked skips locked rows) before this
    transaction's facts are visible. With ON CONFLICT DO NOTHING a run could claim an existing mark, read the
    period without this transaction's billing account, and delete the only mark that would have brought it in:
    a whole account's month was missing from chargeback, for good."""
    await conn.execute(
        """INSERT INTO period_dirty (billing_period_start) VALUES ($1)
           ON CONFLICT (billing_period_start) DO UPDATE SET marked_at = now()""",
        period,
    )


async def take_marked(
    conn: asyncpg.Connection, period: datetime | None = None, *, quiet_s: float = 0.0
) -> datetime | None:
    """Claim a marked period in the caller's transaction: `period` if it is marked, else the oldest one not
    marked again in the last `quiet_s` seconds (so a burst of completions makes one run, after the burst)."""
    return await conn.fetchval(
        """DELETE FROM period_dirty WHERE billing_period_start = (
               SELECT billing_period_start FROM period_dirty
               WHERE ($1::timestamptz IS NULL OR billing_period_start = $1)
                 AND ($1::timestamptz IS NOT NULL OR marked_at < now() - make_interval(secs => $2))
               ORDER BY marked_at FOR UPDATE SKIP LOCKED LIMIT 1)
           RETURNING billing_period_start""",
        period,
        quiet_s,
    )


async def run_period(conn: asyncpg.Connection, period: datetime) -> list[Line]:
    """Allocate a billing period under the rules in force. For a closed period, the difference from what was
    closed (and already adjusted) is booked as adjustment lines in the next open period instead."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('allocation-period'), hashtext($1::text))", str(period))
    version, ruleset = await current_rules(conn)
    cache_key = (await _database(conn), version)
    if cache_key not in _ASSIGNED:
        _ASSIGNED.clear()  # assignments are only valid under the rules (and in the database) that made them
    decided = _ASSIGNED.setdefault(cache_key, {})
    facts = await _facts(conn, period, version)
    lines = run(facts, ruleset, decided=decided)
    await check_conservation(conn, period, lines)
    await conn.execute("DELETE FROM allocation_line WHERE billing_period_start = $1 AND kind <> 'adjustment'", period)
    await _insert(conn, [_record(period, line, version) for line in lines])
    if await is_closed(conn, period):
        await _adjust(conn, period, lines, version)
    await _measure_coverage(conn, period, version, coverage(facts, decided))
    return lines


_CENT = Decimal("0.01")


async def record_bill(
    conn: asyncpg.Connection,
    *,
    billing_account_id: str,
    billing_period_start: datetime,
    ingest_id: object,
    version: int,
    totals: list[tuple[str, Decimal, Decimal, int]],
) -> None:
    """Keep a version's bill totals (currency, billed, effective, lines), which its allocation must conserve."""
    await conn.executemany(
        """INSERT INTO period_bill (billing_account_id, billing_period_start, ingest_id, version, billing_currency,
                                    billed_cost, effective_cost, line_count)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
        [(billing_account_id, billing_period_start, ingest_id, version, *t) for t in totals],
    )


async def fact_totals(
    conn: asyncpg.Connection, *, billing_account_id: str, billing_period_start: datetime, ingest_id: object
) -> dict[str, tuple[Decimal, Decimal, int]]:
    """The ledger's facts of one version, per currency: (billed, effective, lines)."""
    rows = await conn.fetch(
        """SELECT billing_currency, sum(billed_cost) AS b, sum(effective_cost) AS e, sum(line_count) AS n
           FROM cost_fact WHERE billing_account_id = $1 AND billing_period_start = $2 AND ingest_id = $3
           GROUP BY 1""",
        billing_account_id,
        billing_period_start,
        ingest_id,
    )
    return {r["billing_currency"].strip(): (r["b"], r["e"], int(r["n"])) for r in rows}


async def check_conservation(conn: asyncpg.Connection, period: datetime, lines: list[Line]) -> None:
    """Raise ConservationViolated unless, for every billing account of the period whose bill totals are known,
    the run's lines (allocated, unallocated and shared alike) add up to the bill per currency to the cent."""
    bills = await conn.fetch(
        """SELECT b.billing_account_id, p.version, b.billing_currency, b.billed_cost, b.effective_cost, b.line_count
           FROM period_bill b JOIN current_period p USING (billing_account_id, billing_period_start, ingest_id)
           WHERE b.billing_period_start = $1""",
        period,
    )
    expected: dict[tuple[str, str], tuple[Decimal, Decimal, int]] = {}
    versions: dict[str, int] = {}
    for r in bills:
        versions[r["billing_account_id"]] = r["version"]
        key = (r["billing_account_id"], r["billing_currency"].strip())
        expected[key] = (r["billed_cost"].quantize(_CENT), r["effective_cost"].quantize(_CENT), int(r["line_count"]))
    got: dict[tuple[str, str], list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for line in lines:
        if line.billing_account_id in versions:
            g = got[(line.billing_account_id, line.billing_currency)]
            g[0] += line.billed_cost
            g[1] += line.effective_cost
            g[2] += line.line_count
    violations = []
    for key in sorted(set(expected) | set(got)):
        want = expected.get(key, (Decimal(0), Decimal(0), 0))
        g = got.get(key, [Decimal(0), Decimal(0), 0])
        have = (g[0].quantize(_CENT), g[1].quantize(_CENT), g[2])
        if have != want:
            violations.append(
                (key[0], versions[key[0]], f"{key[1]}: allocated billed {have[0]}, effective {have[1]}, {have[2]} "
                 f"lines; the bill has billed {want[0]}, effective {want[1]}, {want[2]} lines")
            )  # fmt: skip
    if violations:
        raise ConservationViolated(period, violations)


async def record_violation(conn: asyncpg.Connection, exc: ConservationViolated) -> None:
    """Make a failed run visible: a row per account in conservation_violation, and a dead letter on the
    allocation topic's DLQ naming the reason (the run itself wrote and published nothing)."""
    await conn.executemany(
        """INSERT INTO conservation_violation (billing_account_id, billing_period_start, version, detail)
           VALUES ($1, $2, $3, $4)""",
        [(account, exc.period, version, what) for account, version, what in exc.violations],
    )
    payload = json.dumps(
        {
            "billing_period_start": exc.period.isoformat(),
            "violations": [{"billing_account_id": a, "version": v, "detail": d} for a, v, d in exc.violations],
        }
    ).encode()
    headers = {"dlq_reason": str(exc), "dlq_origin_topic": "allocation-run", "dlq_consumer": "allocation"}
    await outbox.add(
        conn,
        [outbox.OutboxMessage(topic=ALLOCATION.dlq, key=f"period/{exc.period:%Y-%m}".encode(), headers=headers,
                              payload=payload)],
    )  # fmt: skip


async def _measure_coverage(
    conn: asyncpg.Connection, period: datetime, version: int, kpis: dict[tuple[str, str, str], list[Decimal]]
) -> None:
    """Store the period's coverage KPIs and announce them when they changed."""
    rows = sorted((kind, scope, cur, total, tagged, allocated) for (kind, scope, cur), (total, tagged, allocated)
                  in kpis.items())  # fmt: skip
    old = await conn.fetch(
        """SELECT scope_kind, scope, currency, total_cost, tagged_cost, allocated_cost FROM coverage_kpi
           WHERE billing_period_start = $1 ORDER BY 1, 2, 3""",
        period,
    )
    if [(r[0], r[1], r[2].strip(), r[3], r[4], r[5]) for r in old] == rows:
        return
    await conn.execute("DELETE FROM coverage_kpi WHERE billing_period_start = $1", period)
    await conn.executemany(
        """INSERT INTO coverage_kpi (billing_period_start, scope_kind, scope, currency, total_cost, tagged_cost,
                                     allocated_cost) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        [(period, *row) for row in rows],
    )
    items = tuple(
        Coverage(
            scope_kind=kind,
            scope=scope,
            total=Money(amount=total, currency=cur),
            tagged_share=_share(tagged, total),
            allocated_share=_share(allocated, total),
        )
        for kind, scope, cur, total, tagged, allocated in rows
    )
    event = CoverageMeasured(billing_period_start=period, ruleset_version=version, items=items)
    digest = hashlib.sha256(event.model_dump_json().encode()).hexdigest()
    await outbox.add(conn, [outbox.message_for(event, source=SOURCE, event_id=uuid.uuid5(_COVERAGE, digest))])


def _share(part: Decimal, total: Decimal) -> Decimal:
    return (part / total).quantize(Decimal("0.0001")) if total else Decimal(0)


def _record(period: datetime, line: Line, version: int, *, kind: str | None = None, adjusts: datetime | None = None):
    return (
        period, line.billing_account_id, line.billing_currency, line.cost_center, line.team, line.product,
        line.environment, kind or line.kind, line.pool, adjusts, line.billed_cost, line.effective_cost,
        line.line_count, version,
    )  # fmt: skip


async def _insert(conn: asyncpg.Connection, records: list[tuple]) -> None:
    if records:
        await conn.copy_records_to_table("allocation_line", records=records, columns=_LINE_COLUMNS)


async def is_closed(conn: asyncpg.Connection, period: datetime) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM period_close WHERE billing_period_start = $1", period))


async def _adjust(conn: asyncpg.Connection, period: datetime, lines: list[Line], version: int) -> None:
    """Book the restated period's difference from its closed numbers into the next open period."""
    key = ("billing_account_id", "billing_currency", "cost_center", "team", "product", "environment", "pool")
    booked = await conn.fetch(
        f"""SELECT {", ".join(key)}, sum(billed_cost) b, sum(effective_cost) e, sum(line_count) n FROM (
                SELECT * FROM closed_allocation_line WHERE billing_period_start = $1
                UNION ALL
                SELECT * FROM allocation_line WHERE kind = 'adjustment' AND adjusts_period = $1
            ) x GROUP BY {", ".join(key)}""",
        period,
    )
    delta: dict[tuple, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for line in lines:
        d = delta[tuple(getattr(line, k) for k in key)]
        d[0] += line.billed_cost
        d[1] += line.effective_cost
        d[2] += line.line_count
    for r in booked:
        d = delta[(r["billing_account_id"], r["billing_currency"].strip(), *(r[k] for k in key[2:]))]
        d[0] -= r["b"]
        d[1] -= r["e"]
        d[2] -= int(r["n"])
    target = await next_open_period(conn, period)
    records = []
    for k, (billed, effective, count) in sorted(delta.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        if billed or effective or count:
            line = Line(k[0], k[1], k[2], k[3], k[4], k[5], "adjustment", k[6], billed, effective, count)
            records.append(_record(target, line, version, kind="adjustment", adjusts=period))
    await _insert(conn, records)


async def next_open_period(conn: asyncpg.Connection, period: datetime) -> datetime:
    """The first period after `period` that is not closed: each period's successor starts at its end."""
    candidate = await period_end(conn, period)
    while await is_closed(conn, candidate):
        candidate = await period_end(conn, candidate)
    return candidate


async def period_end(conn: asyncpg.Connection, period: datetime) -> datetime:
    """The period's BillingPeriodEnd as its bill gave it; the next UTC month for a period no batch bounded."""
    end = await conn.fetchval("SELECT billing_period_end FROM billing_period WHERE billing_period_start = $1", period)
    return end if end is not None else next_month(period)


def next_month(value: datetime) -> datetime:
    """The next UTC month's start: only for periods without a BillingPeriodEnd (and label-keyed budgets)."""
    value = value.astimezone(UTC)
    return datetime(value.year + value.month // 12, value.month % 12 + 1, 1, tzinfo=UTC)


async def periods_named(conn: asyncpg.Connection, label: str) -> list[datetime]:
    """The BillingPeriodStarts a `YYYY-MM` name stands for (finops_contracts.periods: the month of the start in
    the bill's own zone), oldest first; the UTC month's start when no known period has that name, as before."""
    label = parse_label(label)
    known = await conn.fetch(
        """SELECT billing_period_start FROM (
               SELECT billing_period_start FROM billing_period UNION SELECT billing_period_start FROM current_period
               UNION SELECT billing_period_start FROM period_close) p
           WHERE billing_period_start >= $1 AND billing_period_start < $2 ORDER BY 1""",
        *label_bounds(label),
    )
    named = [r[0] for r in known if period_label(r[0]) == label]
    return named or [utc_month_start(label)]


async def report(
    conn: asyncpg.Connection, *, period: datetime, by: str, scope: dict[str, set[str]] | None = None
) -> list[dict[str, object]]:
    """Showback/chargeback of a period per `by` dimension and currency: the closed numbers of a closed
    period, else the live ones, with adjustment lines for earlier periods included and marked."""
    if by not in DIMENSION_COLUMNS:
        raise ValueError(f"by must be one of {', '.join(DIMENSION_COLUMNS)}")
    table = "closed_allocation_line" if await is_closed(conn, period) else "allocation_line"
    rows = await conn.fetch(
        f"""SELECT {by} AS name, billing_currency, kind, cost_center, team, product,
                   sum(billed_cost) AS billed_cost, sum(effective_cost) AS effective_cost, sum(line_count) AS lines
            FROM {table} WHERE billing_period_start = $1
            GROUP BY {by}, billing_currency, kind, cost_center, team, product""",
        period,
    )
    totals: dict[tuple[str, str], dict[str, object]] = {}
    for r in rows:
        if scope is not None and not any(r[dim] in allowed for dim, allowed in scope.items()):
            continue
        t = totals.setdefault(
            (r["name"], r["billing_currency"].strip()),
            {"name": r["name"], "currency": r["billing_currency"].strip(), "billed_cost": Decimal(0),
             "effective_cost": Decimal(0), "adjustments": Decimal(0), "line_count": 0},
        )  # fmt: skip
        t["billed_cost"] += r["billed_cost"]
        t["effective_cost"] += r["effective_cost"]
        t["line_count"] += int(r["lines"])
        if r["kind"] == "adjustment":
            t["adjustments"] += r["effective_cost"]
    return [totals[k] for k in sorted(totals)]


async def close_period(
    conn: asyncpg.Connection, *, period: datetime, by: str, mapping: AccountMapping, entity: str
) -> Journal:
    """Lock a period: snapshot its allocation and write its journal (EffectiveCost per cost center)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('allocation-period'), hashtext($1::text))", str(period))
    if await is_closed(conn, period):
        raise PeriodClosed(f"{period_label(period)} (BillingPeriodStart {period.isoformat()}) is already closed")
    await conn.execute(
        "INSERT INTO closed_allocation_line SELECT * FROM allocation_line WHERE billing_period_start = $1", period
    )
    rows = await conn.fetch(
        """SELECT cost_center, billing_currency, kind = 'adjustment' AS adjustment, adjusts_period,
                  sum(effective_cost) AS amount
           FROM closed_allocation_line WHERE billing_period_start = $1
           GROUP BY 1, 2, 3, 4""",
        period,
    )
    journal = build_journal(
        [
            ChargebackLine(
                cost_center=r["cost_center"],
                currency=r["billing_currency"].strip(),
                amount=r["amount"],
                adjustment=r["adjustment"],
                adjusts_period=period_label(r["adjusts_period"]) if r["adjusts_period"] else None,
            )
            for r in rows
            if r["amount"]
        ],
        mapping,
        entity=entity,
        period_start=utc_month_start(period_label(period)).date(),
        period_end=utc_month_start(period_label(await period_end(conn, period))).date(),
    )
    await conn.execute(
        """INSERT INTO period_close (billing_period_start, closed_by, journal_id, journal_csv, journal_json)
           VALUES ($1, $2, $3, $4, $5)""",
        period,
        by,
        journal.journal_id,
        journal.to_csv(),
        journal.to_json(),
    )
    return journal


async def journal_of(conn: asyncpg.Connection, period: datetime) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT journal_id, journal_csv, journal_json, closed_by, closed_at FROM period_close "
        "WHERE billing_period_start = $1",
        period,
    )


async def set_rates(conn: asyncpg.Connection, rates: list[dict[str, object]]) -> int:
    """Upsert dated exchange rates: {date: YYYY-MM-DD, from, to, rate}."""
    records = []
    for r in rates:
        rate = Decimal(str(r["rate"]))
        if not rate.is_finite() or rate <= 0:
            raise ValueError(f"rate must be a positive number, got {r['rate']!r}")
        records.append((datetime.strptime(str(r["date"]), "%Y-%m-%d").date(), str(r["from"]), str(r["to"]), rate))
    await conn.executemany(
        """INSERT INTO fx_rate (rate_date, from_currency, to_currency, rate) VALUES ($1, $2, $3, $4)
           ON CONFLICT (from_currency, to_currency, rate_date) DO UPDATE SET rate = excluded.rate""",
        records,
    )
    return len(records)


async def rate(conn: asyncpg.Connection, source: str, target: str, on: datetime) -> tuple[Decimal, str]:
    """The rate from `source` to `target` dated on or before `on`, and its date; ValueError when there is none."""
    if source == target:
        return Decimal(1), f"{on:%Y-%m-%d}"
    row = await conn.fetchrow(
        """SELECT rate, rate_date FROM fx_rate WHERE from_currency = $1 AND to_currency = $2 AND rate_date <= $3
           ORDER BY rate_date DESC LIMIT 1""",
        source,
        target,
        on.date(),
    )
    if row is None:
        raise ValueError(
            f"no {source}->{target} exchange rate on or before {on:%Y-%m-%d}; add one with PUT /v1/fx-rates"
        )
    return row["rate"], f"{row['rate_date']:%Y-%m-%d}"


async def in_currency(
    conn: asyncpg.Connection, rows: list[dict[str, object]], *, target: str, period: datetime
) -> list[dict[str, object]]:
    """Report rows with their amounts also in `target`, at the rate dated on or before the period start, rounded
    half-even to the cent per row (the billing-currency amounts stay exact beside them)."""
    out = []
    for row in rows:
        factor, dated = await rate(conn, str(row["currency"]), target, period)
        out.append(
            {
                **row,
                "reporting_currency": target,
                "rate": factor,
                "rate_date": dated,
                "reporting_effective_cost": (row["effective_cost"] * factor).quantize(Decimal("0.01")),
                "reporting_billed_cost": (row["billed_cost"] * factor).quantize(Decimal("0.01")),
            }
        )
    return out


async def set_metrics(conn: asyncpg.Connection, metrics: list[dict[str, object]], *, by: str) -> list[datetime]:
    """Upsert business metrics {product, period: YYYY-MM, metric, units}; the periods touched."""
    periods = set()
    for m in metrics:
        period = datetime.strptime(str(m["period"]), "%Y-%m").replace(tzinfo=UTC)
        units = Decimal(str(m["units"]))
        if not units.is_finite() or units <= 0:
            raise ValueError(f"units must be a positive number, got {m['units']!r}")
        await conn.execute(
            """INSERT INTO business_metric (product, billing_period_start, metric, units, reported_by)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (product, billing_period_start, metric) DO UPDATE
               SET units = excluded.units, reported_by = excluded.reported_by""",
            str(m["product"]),
            period,
            str(m["metric"]),
            units,
            by,
        )
        periods.add(period)
    return sorted(periods)


async def unit_costs(conn: asyncpg.Connection, period: datetime) -> list[dict[str, object]]:
    """Per product, metric and currency: the product's allocated EffectiveCost in the period over the units.
    Metrics are keyed by their month's UTC start; the cost is that of every billing period of the month's name
    (a GCP period starts at 08:00Z or 07:00Z), the closed numbers of a closed one."""
    starts = await periods_named(conn, period_label(period))
    closed = [p for p in starts if await is_closed(conn, p)]
    rows = await conn.fetch(
        """SELECT m.product, m.metric, m.units, c.billing_currency, c.cost
            FROM business_metric m
            JOIN (SELECT product, billing_currency, sum(effective_cost) AS cost FROM (
                      SELECT product, billing_currency, effective_cost FROM allocation_line
                      WHERE billing_period_start = ANY($2::timestamptz[])
                        AND billing_period_start <> ALL($3::timestamptz[])
                      UNION ALL
                      SELECT product, billing_currency, effective_cost FROM closed_allocation_line
                      WHERE billing_period_start = ANY($3::timestamptz[])) l
                  GROUP BY 1, 2) c USING (product)
            WHERE m.billing_period_start = $1
            ORDER BY 1, 2, 4""",
        period,
        starts,
        closed,
    )
    return [
        {
            "product": r["product"],
            "metric": r["metric"],
            "units": r["units"],
            "currency": r["billing_currency"].strip(),
            "cost": r["cost"],
            "unit_cost": (r["cost"] / r["units"]).quantize(Decimal("0.000001")),
        }
        for r in rows
    ]
