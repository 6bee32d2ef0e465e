"""The delivery queue in PostgreSQL: the consumer turns a routed notification into one delivery row per
matching subscriber inside its own transaction; nothing is sent there."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from finops_contracts.cloudevents import Envelope
from finops_notify import policy, routing

WAKE_WORKERS = "notify_delivery"
WAKE_STREAM = "notify_stream"
DEDUP_WINDOW_S = 7 * 24 * 3600


def endpoint_of(channel: str, target: str, smtp_endpoint: str) -> str:
    """What a circuit breaker guards: the URL's origin and path for HTTP channels, the SMTP server for email."""
    if channel == "email":
        return smtp_endpoint
    parts = urlsplit(target)
    # The path of a Slack or Teams webhook URL is its credential: only a digest of it names the endpoint.
    return f"{parts.scheme}://{parts.netloc}#{hashlib.sha256(target.encode()).hexdigest()[:16]}"


def subscriber_from(row: asyncpg.Record) -> routing.Subscriber:
    return routing.Subscriber(
        id=str(row["id"]),
        name=row["name"],
        persona=row["persona"],
        channel=row["channel"],
        target=row["target"],
        teams=frozenset(row["teams"]),
        cost_centers=frozenset(row["cost_centers"]),
        event_types=frozenset(row["event_types"]),
        min_severity=row["min_severity"],
        extra=dict(row),
    )


async def active_subscribers(conn: asyncpg.Connection) -> list[routing.Subscriber]:
    rows = await conn.fetch("SELECT * FROM subscriber WHERE active ORDER BY created_at")
    return [subscriber_from(r) for r in rows]


async def add_notification(
    conn: asyncpg.Connection, envelope: Envelope, n: routing.Notification, payload: dict[str, Any]
) -> int | None:
    """Record the notification once per ce_id; its id, or None when it was already recorded."""
    return await conn.fetchval(
        """INSERT INTO notification (event_id, ce_type, subject, severity, personas, teams, cost_centers, approvers,
                                     title, facts, payload, dedup_key, immediate, occurred_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13, $14)
           ON CONFLICT (event_id) DO NOTHING RETURNING id""",
        envelope.id,
        envelope.type,
        envelope.subject,
        n.severity,
        list(n.personas),
        list(n.teams),
        list(n.cost_centers),
        list(n.approvers),
        n.title,
        json.dumps([list(f) for f in n.facts]),
        json.dumps(payload),
        n.dedup_key,
        n.immediate,
        envelope.time,
    )


async def enqueue(
    conn: asyncpg.Connection,
    notification_id: int,
    n: routing.Notification,
    subscribers: list[routing.Subscriber],
    *,
    smtp_endpoint: str,
    now: datetime | None = None,
) -> int:
    """One delivery per matching subscriber: suppressed when the subscriber already heard the same news within
    the window, held until the end of its quiet hours unless critical. Returns how many will be sent."""
    now = now or datetime.now(UTC)
    matched = [s for s in subscribers if routing.matches(s, n)]
    if not matched:
        return 0
    # One statement for every subscriber: at 100 subscribers an event, round trips are what costs.
    first = {
        r["subscriber_id"]
        for r in await conn.fetch(
            """INSERT INTO sent_key (subscriber_id, dedup_key) SELECT unnest($1::uuid[]), $2
               ON CONFLICT (subscriber_id, dedup_key) DO UPDATE SET first_at = now()
                   WHERE sent_key.first_at < now() - $3 * interval '1 second'
               RETURNING subscriber_id""",
            [uuid.UUID(s.id) for s in matched],
            n.dedup_key,
            DEDUP_WINDOW_S,
        )
    }
    rows = []
    for s in matched:
        status, reason, due = "pending", None, now
        if uuid.UUID(s.id) not in first:
            status, reason = "suppressed", f"duplicate of an earlier notification ({n.dedup_key})"
        elif n.severity != "critical":
            held = policy.quiet_until(now, s.extra.get("quiet_start"), s.extra.get("quiet_end"), s.extra["timezone"])
            if held is not None:
                due, reason = held, f"quiet hours until {held.isoformat()}"
        rows.append(
            (notification_id, uuid.UUID(s.id), endpoint_of(s.channel, s.target, smtp_endpoint), status, reason, due)
        )
    await conn.execute(
        """INSERT INTO delivery (notification_id, subscriber_id, endpoint, status, reason, next_attempt_at)
           SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])""",
        *(list(col) for col in zip(*rows, strict=True)),
    )
    await conn.execute("SELECT pg_notify($1, '')", WAKE_WORKERS)
    return sum(1 for r in rows if r[3] == "pending")


async def sequence(conn: asyncpg.Connection, limit: int = 5000) -> int:
    """Give committed notifications their stream position, in id order, under a lock held by one caller at a time,
    so positions become visible in increasing order."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('finops.notify.sequencer'))"):
            return 0
        result = await conn.execute(
            """UPDATE notification n SET stream_seq = nextval('notification_stream_seq')
               FROM (SELECT id FROM notification WHERE stream_seq IS NULL ORDER BY id LIMIT $1 FOR UPDATE) todo
               WHERE n.id = todo.id""",
            limit,
        )
        count = int(result.split()[-1])
        if count:
            await conn.execute("SELECT pg_notify($1, '')", WAKE_STREAM)
        return count
