"""The weekly digest: per subscriber, the week's notifications that concern it (delivered or digest-only),
summed into the period's numbers: budget alerts, recommendations and their savings, commitment KPIs, completed
billing periods. One digest per subscriber and week, whatever runs twice."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from finops_notify import queue, routing

log = logging.getLogger(__name__)


def _sum(amounts: dict[str, Decimal]) -> str:
    return ", ".join(f"{v:,.2f} {c}" for c, v in sorted(amounts.items())) or "none"


def compose(week_start: date, notes: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """The digest body from (ce_type, title, payload) of the week's notifications."""
    budget_lines: list[str] = []
    rec_count = 0
    savings: dict[str, Decimal] = defaultdict(Decimal)
    kpi_lines: list[str] = []
    period_lines: list[str] = []
    other: list[str] = []
    for ce_type, title, p in notes:
        kind = ce_type.split(".")[2] if ce_type.count(".") >= 3 else ce_type
        if kind == "budget_alerted":
            budget_lines.append(f"{title}: actual {routing.money(p['actual'])} of {routing.money(p['budget'])}")
        elif kind == "issued":
            rec_count += 1
            s = p["estimated_monthly_savings"]
            savings[s["currency"]] += Decimal(s["amount"])
        elif kind == "kpi_measured":
            kpi_lines.append(
                f"{p['pool']} {str(p['month'])[:7]}: savings {routing.money(p['savings'])}, "
                f"ESR {Decimal(p['effective_savings_rate']) * 100:.1f}%, coverage {Decimal(p['coverage']) * 100:.1f}%"
            )
        elif kind == "period_completed":
            totals = ", ".join(f"{Decimal(t['billed_cost']):,.2f} {t['currency']}" for t in p["totals"])
            period = routing.period_name(p["billing_period_start"])
            period_lines.append(f"{p['billing_account_id']} {period}: billed {totals}")
        elif kind != "updated":
            other.append(title)
    sections = [
        (h, lines)
        for h, lines in (
            ("Budget alerts", budget_lines),
            ("Commitment KPIs", kpi_lines),
            ("Completed billing periods", period_lines),
            ("Other notifications", other[:20]),
        )
        if lines
    ]
    return {
        "title": f"Your FinOps week of {week_start.isoformat()}",
        "as_of": datetime.now(UTC).isoformat(),
        "facts": [
            ["Week", f"{week_start.isoformat()} to {(week_start + timedelta(days=6)).isoformat()}"],
            ["Budget alerts", str(len(budget_lines))],
            ["New recommendations", str(rec_count)],
            ["Potential monthly savings", _sum(savings)],
        ],
        "sections": sections,
    }


def week_of(now: datetime) -> date:
    """The Monday starting the last complete week before `now`."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=today.weekday() + 7)


async def run(pool: asyncpg.Pool, *, now: datetime, smtp_endpoint: str, week_start: date | None = None) -> int:
    """Queue the digest of the week starting `week_start` (default: the last complete week) for every subscriber
    that takes one; returns how many were queued."""
    week_start = week_start or week_of(now)
    start = datetime.combine(week_start, time(), tzinfo=UTC)
    end = start + timedelta(days=7)
    queued = 0
    async with pool.acquire() as conn:
        subscribers = [s for s in await queue.active_subscribers(conn) if s.extra["digest"]]
        rows = await conn.fetch(
            """SELECT ce_type, title, severity, personas, teams, cost_centers, approvers, dedup_key, immediate, payload
               FROM notification WHERE occurred_at >= $1 AND occurred_at < $2 ORDER BY id""",
            start,
            end,
        )
        notes = [
            (
                routing.Notification(
                    ce_type=r["ce_type"],
                    title=r["title"],
                    severity=r["severity"],
                    personas=tuple(r["personas"]),
                    teams=tuple(r["teams"]),
                    cost_centers=tuple(r["cost_centers"]),
                    approvers=tuple(r["approvers"]),
                    dedup_key=r["dedup_key"],
                    immediate=r["immediate"],
                ),  # fmt: skip
                json.loads(r["payload"]),
            )
            for r in rows
        ]
        for s in subscribers:
            mine = [(n.ce_type, n.title, p) for n, p in notes if routing.matches(s, n)]
            if not mine:
                continue
            async with conn.transaction():
                first = await conn.fetchval(
                    """INSERT INTO digest_run (subscriber_id, week_start) VALUES ($1, $2)
                       ON CONFLICT DO NOTHING RETURNING true""",
                    uuid.UUID(s.id),
                    week_start,
                )
                if not first:
                    continue
                delivery_id = await conn.fetchval(
                    """INSERT INTO delivery (subscriber_id, kind, endpoint, status, body)
                       VALUES ($1, 'digest', $2, 'pending', $3::jsonb) RETURNING id""",
                    uuid.UUID(s.id),
                    queue.endpoint_of(s.channel, s.extra.get("endpoint"), smtp_endpoint),
                    json.dumps(compose(week_start, mine)),
                )
                await conn.execute(
                    "UPDATE digest_run SET delivery_id = $3 WHERE subscriber_id = $1 AND week_start = $2",
                    uuid.UUID(s.id),
                    week_start,
                    delivery_id,
                )
                await conn.execute("SELECT pg_notify($1, '')", queue.WAKE_WORKERS)
                queued += 1
    return queued


async def loop(pool: asyncpg.Pool, *, weekday: int, hour: int, smtp_endpoint: str, poll_s: float = 300) -> None:
    """Queue each week's digests once the configured weekday and hour (UTC) have come."""
    while True:
        now = datetime.now(UTC)
        try:
            if now.weekday() >= weekday and (now.weekday() > weekday or now.hour >= hour):
                await run(pool, now=now, smtp_endpoint=smtp_endpoint)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("digest run failed; retrying later", extra={"error": repr(exc)})
        await asyncio.sleep(poll_s)
