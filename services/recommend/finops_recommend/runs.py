"""Analysis runs off the consumer's path: a period completion marks the model; this loop runs the analysis once
however many periods completed meanwhile, and reconciles its drafts with the recommendations already published,
in one transaction with the outbox.

Lifecycle, per kind and target (a pool, a resource, an anomaly):
- the id is derived from kind, target and generation (the month of the data for plans and findings, the
  incident's first day for anomalies), so a rerun on the same data computes the same ids;
- a draft whose id is open with the same content publishes nothing; with other content, RecommendationUpdated;
- a draft with a new id supersedes the open one of its target, then is issued;
- an open recommendation that no run draft matches any more, or whose expiry passed, expires;
- advice a person rejected (finops.decision.v1) is not drafted again for its kind and target during the
  cool-down: its open recommendation expires at the rejection, and drafts for that target are dropped.
Event ids derive from the recommendation id and the transition (and the content, for updates), so even a run
repeated after a crash between commit and publish cannot announce one transition under two ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, time, timedelta

import asyncpg

from finops_contracts.events import Event
from finops_contracts.recommendations import (
    RecommendationExpired,
    RecommendationIssued,
    RecommendationSuperseded,
    RecommendationUpdated,
)
from finops_recommend import analysis, findings, repository
from finops_runtime import jobs, outbox

SOURCE = "/finops/recommend"
_IDS = uuid.UUID("0b7e9a4c-3f1d-4c55-9a2e-6d8f1b2c3e4f")
_EVENTS = uuid.UUID("5d2c8e71-9b4a-4f06-8c3d-2a1e7f6b9c08")
VALIDITY = timedelta(days=30)
"""How long a recommendation stands from when it is issued or updated, unless a newer one supersedes it."""


def recommendation_id(draft: analysis.Draft) -> uuid.UUID:
    return uuid.uuid5(_IDS, f"{draft.kind.value}/{draft.target}/{draft.generation}")


def _event_id(rec_id: uuid.UUID, transition: str) -> uuid.UUID:
    return uuid.uuid5(_EVENTS, f"{rec_id}/{transition}")


def _content(draft: analysis.Draft, rec_id: uuid.UUID) -> dict[str, object]:
    """The draft's content as published, without version and expiry (which a rerun must not change)."""
    return {
        "recommendation_id": str(rec_id),
        "kind": draft.kind.value,
        "target": draft.target,
        "title": draft.title,
        "owner_team": draft.owner_team,
        "personas": [p.value for p in draft.personas],
        "estimated_monthly_savings": draft.savings.model_dump(mode="json"),
        "evidence": draft.evidence,
        "as_of": draft.as_of.isoformat(),
        "billing_account_id": draft.billing_account_id,
        "provider_name": draft.provider_name,
        "resource_id": draft.resource_id,
        "purchases": [p.model_dump(mode="json") for p in draft.purchases],
    }


def fingerprint(content: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def reconcile(conn: asyncpg.Connection, drafts: list[analysis.Draft], *, now: datetime) -> list[Event]:
    """Bring the stored recommendations to the drafts; queue each transition in the outbox; return the events."""
    opened = await repository.open_recommendations(conn)
    cooling = await repository.cooling_down(conn, now=now)
    messages: list[outbox.OutboxMessage] = []
    events: list[Event] = []

    def queue(event: Event, transition: str, rec_id: uuid.UUID) -> None:
        events.append(event)
        messages.append(outbox.message_for(event, source=SOURCE, event_id=_event_id(rec_id, transition)))

    drafted: set[tuple[str, str]] = set()
    for draft in sorted(drafts, key=lambda d: (d.kind.value, d.target)):
        rec_id = recommendation_id(draft)
        key = (draft.kind.value, draft.target)
        if key in cooling:
            continue  # rejected advice: not again before the cool-down ends
        drafted.add(key)
        content = _content(draft, rec_id)
        digest = fingerprint(content)
        current = opened.get(key)
        if current is not None and current["id"] == rec_id:
            if current["fingerprint"] == digest:
                continue
            version = current["version"] + 1
            full = {**content, "version": version, "expires_at": (now + VALIDITY).isoformat()}
            await repository.save_recommendation(conn, status="updated", fingerprint=digest, content=full)
            queue(RecommendationUpdated.model_validate(full), f"updated/{version}/{digest}", rec_id)
            continue
        if await repository.recommendation(conn, rec_id) is not None:
            continue  # superseded or expired already: a final state is final
        if current is not None:
            await repository.close_recommendation(conn, current["id"], status="superseded", superseded_by=rec_id)
            queue(
                RecommendationSuperseded(
                    recommendation_id=current["id"],
                    kind=current["kind"],
                    target=current["target"],
                    owner_team=current["owner_team"],
                    superseded_by=rec_id,
                    reason=f"a newer recommendation for {draft.target} as of {draft.as_of:%Y-%m-%d}",
                ),
                "superseded",
                current["id"],
            )
        full = {**content, "version": 1, "expires_at": (now + VALIDITY).isoformat()}
        await repository.save_recommendation(conn, status="issued", fingerprint=digest, content=full)
        queue(RecommendationIssued.model_validate(full), "issued", rec_id)
    for key, current in opened.items():
        if key not in drafted:
            reason = "the finding no longer holds in the data"
            if key in cooling:
                c = cooling[key]
                reason = f"rejected by {c['principal']}: not advised again before {c['until']:%Y-%m-%d}"
            (expired,) = await _expire(conn, current, now=now, reason=reason)
            queue(expired, "expired", current["id"])
    await outbox.add(conn, messages)
    return events


async def _expire(conn: asyncpg.Connection, current: asyncpg.Record, *, now: datetime, reason: str) -> list[Event]:
    await repository.close_recommendation(conn, current["id"], status="expired")
    return [
        RecommendationExpired(
            recommendation_id=current["id"],
            kind=current["kind"],
            target=current["target"],
            owner_team=current["owner_team"],
            expired_at=now,
            reason=reason,
        )
    ]


async def expire(
    conn: asyncpg.Connection, current: asyncpg.Record, *, now: datetime, reason: str
) -> list[outbox.OutboxMessage]:
    """Expire one open recommendation now; the outbox messages to add in the caller's transaction."""
    (event,) = await _expire(conn, current, now=now, reason=reason)
    return [outbox.message_for(event, source=SOURCE, event_id=_event_id(current["id"], "expired"))]


async def expire_due(conn: asyncpg.Connection, *, now: datetime) -> int:
    """Expire the open recommendations whose expiry has passed."""
    rows = await conn.fetch(
        """SELECT * FROM recommendation WHERE status IN ('issued', 'updated') AND expires_at <= $1
           ORDER BY id FOR UPDATE SKIP LOCKED""",
        now,
    )
    messages = []
    for row in rows:
        (event,) = await _expire(conn, row, now=now, reason="its expiry passed without a newer recommendation")
        messages.append(outbox.message_for(event, source=SOURCE, event_id=_event_id(row["id"], "expired")))
    await outbox.add(conn, messages)
    return len(rows)


async def publish_kpis(conn: asyncpg.Connection) -> int:
    """KpiMeasured for each pool (flexible and scoped), month and currency whose numbers changed since last
    published."""
    messages = []
    rows = [*await repository.pool_months(conn), *await repository.family_months(conn)]
    for event in analysis.kpis(rows):
        body = event.model_dump_json()
        digest = hashlib.sha256(body.encode()).hexdigest()
        currency = event.on_demand_equivalent.currency
        key = dict(pool=event.pool, month=event.month, currency=currency)
        if await repository.kpi_fingerprint(conn, **key) == digest:
            continue
        await repository.save_kpi(conn, **key, fingerprint=digest, content=body)
        event_id = uuid.uuid5(_EVENTS, f"kpi/{event.pool}/{event.month:%Y-%m}/{currency}/{digest}")
        messages.append(outbox.message_for(event, source=SOURCE, event_id=event_id))
    await outbox.add(conn, messages)
    return len(messages)


async def analyse(conn: asyncpg.Connection, settings: analysis.Settings, *, now: datetime | None = None) -> list[Event]:
    """One analysis of the whole model in the caller's transaction: KPIs, then every kind of recommendation."""
    await publish_kpis(conn)
    buckets, teams = await repository.pool_buckets(conn), await repository.pool_teams(conn)
    families, family_teams = await repository.family_buckets(conn), await repository.family_teams(conn)
    lines, known = await repository.commitment_lines(conn), await repository.known_commitments(conn)
    resources, last_day = await repository.resources(conn)
    team_days = [dict(r) for r in await repository.team_days(conn)]
    used: dict[str, findings.Utilization] = {}
    if last_day is not None:
        until = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=UTC)
        for rid, m in (await repository.utilization_p95(conn, until=until, days=settings.utilization_days)).items():
            used[rid] = findings.Utilization(
                cpu_p95=None if m["cpu_p95"] is None else float(m["cpu_p95"]),
                memory_p95=None if m["memory_p95"] is None else float(m["memory_p95"]),
                samples=int(m["samples"]),
            )

    def draft() -> list[analysis.Draft]:
        return [
            *analysis.commitment_plans(
                buckets, teams, settings, families=families, family_teams=family_teams, lines=lines, known=known
            ),
            *analysis.resource_findings(resources, last_day, settings, utilization=used),
            *analysis.anomalies(team_days, settings),
        ]

    # the LPs and scans are CPU work: off the event loop, so consumers and the relay keep going meanwhile
    drafts = await asyncio.to_thread(draft)
    return await reconcile(conn, drafts, now=now or datetime.now(UTC))


async def settle(conn: asyncpg.Connection, settings: analysis.Settings, *, quiet_s: float = 0.0) -> bool:
    """Run the analysis if a quiet mark is waiting, in the caller's transaction; whether it ran."""
    if await repository.take_mark(conn, quiet_s=quiet_s) is None:
        return False
    await analyse(conn, settings)
    return True


async def loop(pool: asyncpg.Pool, settings: analysis.Settings, *, idle_s: float = 0.5, quiet_s: float = 1.0) -> None:
    async def step(conn: asyncpg.Connection) -> bool:
        ran = await settle(conn, settings, quiet_s=quiet_s)
        await expire_due(conn, now=datetime.now(UTC))
        return ran

    await jobs.repeat(pool, step, what="recommendation analysis", idle_s=idle_s)
