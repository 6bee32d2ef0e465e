"""The notification log in PostgreSQL: the consumer records each routed event once, inside its own transaction,
marks a repeat of the same news as a duplicate of the original, and sends nothing. The sequencer then gives
committed notifications their log position (stream_seq), which the SSE stream and the subscribers' cursors
(finops_notify.fanout) read in order."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from finops_contracts.cloudevents import Envelope
from finops_notify import routing

WAKE_WORKERS = "notify_delivery"
WAKE_STREAM = "notify_stream"
WAKE_LOGGED = "notify_logged"
DEDUP_WINDOW_S = 7 * 24 * 3600


def endpoint_for(channel: str, url: str) -> str | None:
    """What a circuit breaker guards, from the real URL: its origin and a digest of the whole URL (the path of a
    Slack or Teams webhook URL is its credential, so only a digest of it names the endpoint). None for email."""
    if channel == "email":
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}#{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def endpoint_of(channel: str, endpoint: str | None, smtp_endpoint: str) -> str:
    """The breaker's endpoint of a subscriber: its stored endpoint, or the SMTP server for email."""
    return smtp_endpoint if channel == "email" or not endpoint else endpoint


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
    """Record the notification once per ce_id; its id, or None when it was already recorded. A notification that
    repeats news already logged within the window (same dedup key) records which one it repeats."""
    # One round trip in the common case: the row, its news entry and the wake-up of the fan-out.
    row = await conn.fetchrow(
        """WITH logged AS (
               INSERT INTO notification (event_id, ce_type, subject, severity, personas, teams, cost_centers,
                                         approvers, title, facts, payload, dedup_key, immediate, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13, $14)
               ON CONFLICT (event_id) DO NOTHING RETURNING id
           ), first AS (
               INSERT INTO news (dedup_key, notification_id) SELECT $12, id FROM logged WHERE $13
               ON CONFLICT (dedup_key) DO UPDATE SET notification_id = excluded.notification_id, first_at = now()
                   WHERE news.first_at < now() - $15 * interval '1 second'
               RETURNING notification_id
           )
           SELECT (SELECT id FROM logged) AS id, (SELECT notification_id FROM first) AS first,
                  pg_notify($16, '') AS woke""",
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
        DEDUP_WINDOW_S,
        WAKE_LOGGED,
    )
    notification_id = row["id"]
    if notification_id is None or not n.immediate or row["first"] is not None:
        return notification_id
    # The same news was logged within the window (this statement sees it committed, even if it raced).
    original = await conn.fetchval("SELECT notification_id FROM news WHERE dedup_key = $1", n.dedup_key)
    if original is not None and original != notification_id:
        await conn.execute("UPDATE notification SET duplicate_of = $2 WHERE id = $1", notification_id, original)
    return notification_id


async def head(conn: asyncpg.Connection) -> int:
    """The last log position committed."""
    return await conn.fetchval("SELECT coalesce(max(stream_seq), 0) FROM notification")


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
