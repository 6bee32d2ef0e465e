"""Delivery workers: claim due deliveries (SKIP LOCKED, a lease instead of a held transaction), send each in
its own task so a slow endpoint holds one slot and never delays other subscribers, and record every attempt.
Retries back off exponentially with jitter; a circuit breaker per endpoint stops hammering one that is down;
after the last attempt the delivery goes to the dead-letter log with its reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from finops_notify import channels, policy, queue, targets
from finops_notify.vault import SecretKeyMissing, Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 32
    lease_s: float = 60.0
    poll_s: float = 1.0
    http_timeout_s: float = 10.0
    retry: policy.Retry = policy.Retry()
    breaker: policy.Breaker = policy.Breaker()
    allowlist: frozenset[str] = frozenset()


def message_of(row: asyncpg.Record | dict[str, Any]) -> channels.Message:
    if row["kind"] == "digest":
        body = json.loads(row["body"])
        return channels.Message(
            title=body["title"],
            severity="info",
            facts=tuple(tuple(f) for f in body["facts"]),
            ce_type="finops.notify.digest.v1",
            event_id=f"digest-{row['id']}",
            occurred_at=body["as_of"],
            data=body.get("data"),
            sections=tuple((h, tuple(lines)) for h, lines in body["sections"]),
        )
    return channels.Message(
        title=row["title"],
        severity=row["severity"],
        facts=tuple(tuple(f) for f in json.loads(row["facts"])),
        ce_type=row["ce_type"],
        event_id=str(row["event_id"]),
        occurred_at=row["occurred_at"].isoformat(),
        data=json.loads(row["payload"]),
    )


class Deliverer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        settings: WorkerSettings,
        vault: Vault,
        smtp: channels.Smtp | None,
        rng: random.Random | None = None,
    ) -> None:
        self._pool = pool
        self._s = settings
        self._vault = vault
        self._smtp = smtp
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Deliver until cancelled; database outages are waited out."""
        async with httpx.AsyncClient(timeout=self._s.http_timeout_s, follow_redirects=False) as client:
            while True:
                try:
                    await self._listen_and_deliver(client)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("delivery loop restarting", extra={"error": repr(exc)})
                    await asyncio.sleep(self._s.poll_s)

    async def _listen_and_deliver(self, client: httpx.AsyncClient) -> None:
        conn: asyncpg.Connection = await self._pool.acquire()
        wake = lambda *_: self._wake.set()  # noqa: E731
        try:
            await conn.add_listener(queue.WAKE_WORKERS, wake)
            while True:
                self._wake.clear()
                free = self._s.concurrency - len(self._inflight)
                claimed = await self.claim(free) if free > 0 else []
                for row in claimed:
                    task = asyncio.create_task(self._deliver_in_slot(client, row))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
                if not claimed or free <= 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._s.poll_s)
        finally:
            with contextlib.suppress(Exception):
                await conn.remove_listener(queue.WAKE_WORKERS, wake)
            await self._pool.release(conn, timeout=5)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", extra={"error": repr(task.exception())})

    async def claim(self, limit: int) -> list[asyncpg.Record]:
        """Due deliveries, leased to this worker for lease_s (a crash mid-send retries them after the lease)."""
        return await self._pool.fetch(
            """WITH due AS (
                   SELECT id FROM delivery WHERE status = 'pending' AND next_attempt_at <= now()
                   ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
               ), claimed AS (
                   UPDATE delivery d SET attempts = d.attempts + 1,
                                         next_attempt_at = now() + $2 * interval '1 second'
                   FROM due WHERE d.id = due.id RETURNING d.*
               )
               SELECT c.id, c.kind, c.endpoint, c.attempts, c.body, c.subscriber_id, s.channel, s.target, s.secret,
                      s.rate_per_minute, n.event_id, n.ce_type, n.title, n.severity, n.facts, n.payload,
                      n.occurred_at
               FROM claimed c JOIN subscriber s ON s.id = c.subscriber_id
               LEFT JOIN notification n ON n.id = c.notification_id""",
            limit,
            self._s.lease_s,
        )

    async def _deliver_in_slot(self, client: httpx.AsyncClient, row: asyncpg.Record) -> None:
        async with self._slots:
            await self.deliver(client, row)

    async def deliver(self, client: httpx.AsyncClient, row: asyncpg.Record) -> None:
        now = datetime.now(UTC)
        held = await self._hold(row, now)
        if held is not None:
            await self._pool.execute(
                "UPDATE delivery SET attempts = attempts - 1, next_attempt_at = $2, reason = $3 WHERE id = $1",
                row["id"],
                held[0],
                held[1],
            )
            return
        started = time.perf_counter()
        try:
            outcome = await self._send(client, row)
        except targets.TargetRefused as exc:
            outcome = channels.Outcome(False, error=f"refused: {exc}", permanent=True)
        except SecretKeyMissing as exc:
            outcome = channels.Outcome(False, error=str(exc), permanent=True)
        await self._record(row, outcome, int((time.perf_counter() - started) * 1000))

    async def _hold(self, row: asyncpg.Record, now: datetime) -> tuple[datetime, str] | None:
        """Until when this delivery must wait without spending an attempt: an open circuit or a full rate window."""
        limit = row["rate_per_minute"] or policy.CHANNEL_RATE_PER_MINUTE[row["channel"]]
        window = policy.rate_window(now)
        # One round trip: the circuit's state and this send counted against the subscriber's minute.
        state = await self._pool.fetchrow(
            """WITH counted AS (
                   INSERT INTO rate_window (subscriber_id, window_start, sent) VALUES ($2, $3, 1)
                   ON CONFLICT (subscriber_id, window_start) DO UPDATE SET sent = rate_window.sent + 1
                   RETURNING sent
               )
               SELECT (SELECT open_until FROM circuit WHERE endpoint = $1) AS open_until,
                      (SELECT sent FROM counted) AS sent""",
            row["endpoint"],
            row["subscriber_id"],
            window,
        )
        open_until = state["open_until"]
        if open_until is not None and open_until > now:
            return open_until + timedelta(seconds=self._rng.uniform(0, 1)), f"circuit open until {open_until}"
        if state["sent"] > limit:
            later = window + timedelta(minutes=1, seconds=self._rng.uniform(0, 5))
            return later, f"rate limit of {limit} a minute reached"
        return None

    async def _send(self, client: httpx.AsyncClient, row: asyncpg.Record) -> channels.Outcome:
        message = message_of(row)
        channel = row["channel"]
        if channel == "email":
            if self._smtp is None:
                return channels.Outcome(False, error="no SMTP server configured (FINOPS_SMTP_HOST)", permanent=True)
            msg = channels.email_message(message, sender=self._smtp.sender, to=[row["target"]])
            return await channels.send_email(self._smtp, msg)
        if channel in ("slack", "teams"):
            url = self._vault.open(row["secret"]).decode()  # the webhook URL is the credential: stored sealed
            await targets.check(url, self._s.allowlist)
            build = channels.slack_body if channel == "slack" else channels.teams_body
            return await channels.post(client, url, json.dumps(build(message)).encode(), {})
        await targets.check(row["target"], self._s.allowlist)  # again at send time: DNS may have changed
        if row["secret"] is None:
            return channels.Outcome(False, error="webhook subscriber has no signing secret", permanent=True)
        return await channels.signed_post(
            client,
            row["target"],
            channels.webhook_body(message, delivery_id=row["id"]),
            secret=self._vault.open(row["secret"]),
            idempotency_key=f"delivery-{row['id']}",
            ce_type=message.ce_type,
        )

    async def _record(self, row: asyncpg.Record, outcome: channels.Outcome, duration_ms: int) -> None:
        attempt = row["attempts"]
        refused = outcome.permanent and (outcome.error or "").startswith("refused")
        if outcome.ok:
            # The common case in one statement: the attempt, the delivery and a closed circuit.
            await self._pool.execute(
                """WITH attempt AS (
                       INSERT INTO delivery_attempt (delivery_id, attempt, outcome, status_code, duration_ms)
                       VALUES ($1, $2, 'delivered', $3, $4) ON CONFLICT DO NOTHING
                   ), closed AS (
                       INSERT INTO circuit (endpoint, failures) VALUES ($5, 0)
                       ON CONFLICT (endpoint) DO UPDATE SET failures = 0, open_until = NULL
                           WHERE circuit.failures <> 0 OR circuit.open_until IS NOT NULL
                   )
                   UPDATE delivery SET status = 'delivered', delivered_at = now(), reason = NULL WHERE id = $1""",
                row["id"],
                attempt,
                outcome.status_code,
                duration_ms,
                row["endpoint"],
            )
            return
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO delivery_attempt (delivery_id, attempt, outcome, status_code, error, duration_ms)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                row["id"],
                attempt,
                "refused" if refused else "failed",
                outcome.status_code,
                outcome.error,
                duration_ms,
            )
            now = datetime.now(UTC)
            if not refused:
                failures = await conn.fetchval("SELECT failures FROM circuit WHERE endpoint = $1", row["endpoint"])
                failures, open_until = self._s.breaker.after(failures or 0, False, now)
                await conn.execute(
                    """INSERT INTO circuit (endpoint, failures, open_until) VALUES ($1, $2, $3)
                       ON CONFLICT (endpoint) DO UPDATE SET failures = $2, open_until = $3""",
                    row["endpoint"],
                    failures,
                    open_until,
                )
            if outcome.permanent or attempt >= self._s.retry.max_attempts:
                why = "permanent failure" if outcome.permanent else f"gave up after {attempt} attempts"
                reason = f"{why}: {outcome.error}"
                await conn.execute("UPDATE delivery SET status = 'dead', reason = $2 WHERE id = $1", row["id"], reason)
                await conn.execute(
                    """INSERT INTO dead_letter (delivery_id, subscriber_id, endpoint, attempts, reason)
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
                    row["id"],
                    row["subscriber_id"],
                    row["endpoint"],
                    attempt,
                    reason,
                )
                log.warning("delivery dead-lettered", extra={"delivery_id": row["id"], "endpoint": row["endpoint"]})
            else:
                delay = self._s.retry.delay(attempt, self._rng)
                await conn.execute(
                    "UPDATE delivery SET next_attempt_at = now() + $2 * interval '1 second', reason = $3 WHERE id = $1",
                    row["id"],
                    delay,
                    f"attempt {attempt} failed: {outcome.error}",
                )


async def sequencer(pool: asyncpg.Pool, *, poll_s: float = 0.2) -> None:
    """Assign stream positions to new notifications until cancelled."""
    while True:
        try:
            async with pool.acquire() as conn:
                while True:
                    if not await queue.sequence(conn):
                        await asyncio.sleep(poll_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("stream sequencer restarting", extra={"error": repr(exc)})
            await asyncio.sleep(poll_s)
