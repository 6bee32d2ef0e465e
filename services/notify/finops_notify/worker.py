"""Delivery: fan-out rounds over the subscribers' cursors, senders, and the retry queue.

- A **round** (at most one every `batch_linger_s`, woken when notifications are logged or a delivery ends)
  sequences the log, locks the cursors of idle subscribers (FOR UPDATE SKIP LOCKED, so instances share them),
  plans each one's next deliveries (finops_notify.fanout.plan), writes them and moves the cursors in one
  transaction, then sends what is due now. A request sent now is leased (next_attempt_at = now + lease), so a
  crash mid-send retries it when the lease ends (at least once: receivers deduplicate on the idempotency keys).
- **Senders** run each request in its own task (a slow endpoint holds one slot, never the others). Successes are
  recorded together by one writer; a failure is recorded at once: the attempt, the circuit, and either the next
  attempt (exponential backoff with equal jitter) or the dead letter with its reason, which frees the cursor.
- The **retry queue** claims due deliveries (retries, quiet-hour and rate-limit holds, digests, expired leases)
  with SKIP LOCKED; before sending it checks the endpoint's circuit and the subscriber's rate window, and waits
  without spending an attempt when either says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from finops_notify import channels, fanout, policy, queue, targets, transport
from finops_notify.vault import SecretKeyMissing, Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 32
    lease_s: float = 60.0
    poll_s: float = 1.0
    http_timeout_s: float = 10.0
    batch_max_events: int = 200
    """Events a webhook request carries at most."""
    batch_linger_s: float = 0.25
    """Rounds start at most this often, so a subscriber's next request gathers what arrived meanwhile."""
    scan_limit: int = 5000
    """Log entries one subscriber's plan reads per round."""
    max_subscribers_per_round: int = 2000
    retry: policy.Retry = policy.Retry()
    breaker: policy.Breaker = policy.Breaker()
    allowlist: frozenset[str] = frozenset()
    smtp_endpoint: str = "smtp://unconfigured:25"


@dataclass
class Job:
    """One request to send: a delivery row with what it carries."""

    id: int
    kind: str
    subscriber_id: uuid.UUID
    channel: str
    target: str
    secret: bytes | None
    endpoint: str
    attempts: int
    limit: int
    entries: list[fanout.Entry] = field(default_factory=list)
    body: str | None = None
    """A digest's composed body."""
    items: bytes | None = None
    """The webhook items joined, shared with other subscribers' requests that carry the same events."""
    types: str = ""

    @property
    def size(self) -> int:
        return len(self.entries) or 1

    def messages(self) -> list[channels.Message]:
        if self.kind == "digest":
            return [digest_message(self.id, json.loads(self.body or "{}"))]
        return [e.message() for e in self.entries]


def digest_message(delivery_id: int, body: dict[str, Any]) -> channels.Message:
    return channels.Message(
        title=body["title"],
        severity="info",
        facts=tuple(tuple(f) for f in body["facts"]),
        ce_type="finops.notify.digest.v1",
        event_id=f"digest-{delivery_id}",
        occurred_at=body["as_of"],
        data=body.get("data"),
        sections=tuple((h, tuple(lines)) for h, lines in body["sections"]),
        idempotency_key=f"digest-{delivery_id}",
    )


@dataclass
class _Read:
    """One subscriber in a round: its cursor row and what it hears of after it."""

    row: asyncpg.Record
    endpoint: str
    cursor: fanout.Cursor
    entries: list[fanout.Entry]
    upto: int
    duplicates: bool | None
    shared: tuple[int, int] | None
    """(selection, start) when its entries are a selection shared with other subscribers."""


class _Shared:
    """What requests carrying the same events share: their ids for the delivery row, items and types."""

    def __init__(self, entries: list[fanout.Entry]) -> None:
        self._entries = entries
        self.ids = "{" + ",".join(str(e.id) for e in entries) + "}"
        self._items: bytes | None = None
        self._types: str | None = None

    def items(self) -> bytes:
        if self._items is None:
            self._items = b",".join(e.item() for e in self._entries)
        return self._items

    def types(self) -> str:
        if self._types is None:
            self._types = ",".join(sorted({e.notification.ce_type for e in self._entries}))
        return self._types


_CURSORS = """
    SELECT s.*, c.position, c.start_position, c.window_start, c.window_sent
    FROM subscriber_cursor c JOIN subscriber s ON s.id = c.subscriber_id
    WHERE s.active AND c.blocking_delivery IS NULL AND c.position < $1
    ORDER BY c.position DESC LIMIT $2
    FOR UPDATE OF c SKIP LOCKED"""

_INSERT_DELIVERIES = """
    INSERT INTO delivery (id, subscriber_id, kind, endpoint, status, reason, attempts, next_attempt_at,
                          notification_ids, event_count)
    SELECT x.id, x.subscriber_id, 'event', x.endpoint, x.status, x.reason, x.attempts, x.due, x.ids::bigint[],
           cardinality(x.ids::bigint[])
    FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::timestamptz[],
                $8::text[]) AS x(id, subscriber_id, endpoint, status, reason, attempts, due, ids)"""

_MOVE_CURSORS = """
    UPDATE subscriber_cursor c SET position = x.position, blocking_delivery = x.blocking,
                                   window_start = x.window_start, window_sent = x.window_sent
    FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::int[])
         AS x(subscriber_id, position, blocking, window_start, window_sent)
    WHERE c.subscriber_id = x.subscriber_id"""

_RECORD_SUCCESSES = """
    WITH ok AS (
        SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::int[], $5::uuid[])
                 AS x(id, attempt, status_code, duration_ms, subscriber_id)
    ), logged AS (
        INSERT INTO delivery_attempt (delivery_id, attempt, outcome, status_code, duration_ms)
        SELECT id, attempt, 'delivered', status_code, duration_ms FROM ok ON CONFLICT DO NOTHING
    ), freed AS (
        UPDATE subscriber_cursor c SET blocking_delivery = NULL FROM ok
        WHERE c.subscriber_id = ok.subscriber_id AND c.blocking_delivery = ok.id
    ), closed AS (
        UPDATE circuit SET failures = 0, open_until = NULL
        WHERE endpoint = ANY($6::text[]) AND (failures <> 0 OR open_until IS NOT NULL)
    )
    UPDATE delivery d SET status = 'delivered', delivered_at = now(), reason = NULL FROM ok WHERE d.id = ok.id"""

_CLAIM = """
    WITH due AS (
        SELECT id FROM delivery WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE delivery d SET attempts = d.attempts + 1, next_attempt_at = now() + $2 * interval '1 second'
        FROM due WHERE d.id = due.id RETURNING d.*
    )
    SELECT c.id, c.kind, c.endpoint, c.attempts, c.body, c.subscriber_id, c.notification_ids, s.channel, s.target,
           s.secret, s.rate_per_minute
    FROM claimed c JOIN subscriber s ON s.id = c.subscriber_id"""

_HOLD = """
    WITH open AS (
        SELECT open_until FROM circuit WHERE endpoint = $1 AND open_until > now()
    ), counted AS (
        UPDATE subscriber_cursor
        SET window_sent = CASE WHEN window_start = $3 THEN window_sent + $4 ELSE $4 END, window_start = $3
        WHERE subscriber_id = $2 AND NOT EXISTS (SELECT 1 FROM open)
          AND (window_start IS DISTINCT FROM $3 OR window_sent = 0 OR window_sent + $4 <= $5)
        RETURNING window_sent
    )
    SELECT (SELECT open_until FROM open) AS open_until, EXISTS (SELECT 1 FROM counted) AS counted,
           EXISTS (SELECT 1 FROM subscriber_cursor WHERE subscriber_id = $2) AS has_cursor"""


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
        self._log = fanout.Log()
        self._secrets: dict[bytes, bytes] = {}
        self._round_wake = asyncio.Event()
        self._claim_wake = asyncio.Event()
        self._flush_wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._claimed: set[asyncio.Task[None]] = set()
        self._succeeded: list[tuple[Job, channels.Outcome, int]] = []
        self._flushing = asyncio.Lock()
        self._client = transport.HttpClient(timeout_s=settings.http_timeout_s, allowlist=settings.allowlist)

    async def run(self) -> None:
        """Fan out, send, retry and record until cancelled; database outages are waited out."""
        loops = [self._listen(), self._rounds(), self._retries(), self._recorder()]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in list(self._inflight):
                task.cancel()
            await self._client.aclose()

    async def _forever(self, what: str, step) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(f"{what} restarting", extra={"error": repr(exc)})
                await asyncio.sleep(self._s.poll_s)

    # -- wake-ups ---------------------------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Hold one connection listening for logged notifications, sequenced ones and queued deliveries."""

        def on_notify(_conn: object, _pid: int, channel: str, _payload: str) -> None:
            (self._claim_wake if channel == queue.WAKE_WORKERS else self._round_wake).set()

        async def step() -> None:
            conn: asyncpg.Connection = await self._pool.acquire()
            try:
                for channel in (queue.WAKE_LOGGED, queue.WAKE_STREAM, queue.WAKE_WORKERS):
                    await conn.add_listener(channel, on_notify)
                while not conn.is_closed():
                    await asyncio.sleep(5)
                    await conn.execute("SELECT 1")
            finally:
                with contextlib.suppress(Exception):
                    for channel in (queue.WAKE_LOGGED, queue.WAKE_STREAM, queue.WAKE_WORKERS):
                        await conn.remove_listener(channel, on_notify)
                with contextlib.suppress(Exception):
                    await self._pool.release(conn, timeout=5)

        await self._forever("notify listener", step)

    async def _wait(self, event: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), self._s.poll_s)
        event.clear()

    # -- fan-out rounds ---------------------------------------------------------------------------------------

    async def _rounds(self) -> None:
        async def step() -> None:
            while True:
                await self._wait(self._round_wake)
                started = time.monotonic()
                await self.fan_out()
                await asyncio.sleep(max(0.0, self._s.batch_linger_s - (time.monotonic() - started)))

        await self._forever("fan-out", step)

    async def fan_out(self, now: datetime | None = None) -> int:
        """One round: sequence the log, plan every idle subscriber's next deliveries, write them and move the
        cursors in one transaction, then send what is due now. Returns how many requests it started."""
        s = self._s
        await self._flush()  # free the cursors of what was delivered since the last round
        async with self._pool.acquire() as conn:
            await queue.sequence(conn)
            head = await queue.head(conn)
            now = now or datetime.now(UTC)
            async with conn.transaction():
                rows = await conn.fetch(_CURSORS, head, s.max_subscribers_per_round)
                if not rows:
                    return 0
                circuits = await conn.fetch("SELECT endpoint FROM circuit WHERE open_until > now()")
                open_endpoints = {r["endpoint"] for r in circuits}
                near = [r["position"] for r in rows if r["position"] >= head - s.scan_limit]
                base = min(near, default=head)
                selector = None
                if near:
                    await self._log.cover(conn, base, head)
                    selector = fanout.Selector(self._log.window(base, head))
                reads: list[_Read] = []
                selections: dict[int, fanout.Selection] = {}
                for r in rows:
                    endpoint = queue.endpoint_of(r["channel"], r["endpoint"], s.smtp_endpoint)
                    if endpoint in open_endpoints:
                        continue  # the endpoint rests: its subscribers wait, without spending attempts
                    subscriber = queue.subscriber_from(r)
                    cursor = fanout.Cursor(
                        subscriber=subscriber,
                        position=r["position"],
                        start_position=r["start_position"],
                        window_start=r["window_start"],
                        window_sent=r["window_sent"],
                    )
                    if selector is not None and r["position"] >= base:
                        selection = selector.of(subscriber)
                        selections[selection.key] = selection
                        start, entries = selection.after(r["position"])
                        cap = s.batch_max_events if r["channel"] == "webhook" else 1
                        duplicates = selection.duplicate_within(start, cap)
                        reads.append(_Read(r, endpoint, cursor, entries, head, duplicates, (selection.key, start)))
                    else:  # far behind: read its own range from the database
                        upto = min(head, r["position"] + s.scan_limit)
                        entries = fanout.matching(subscriber, await self._log.between(conn, r["position"], upto))
                        reads.append(_Read(r, endpoint, cursor, entries, upto, None, None))
                wanted = {e.duplicate_of for sel in selections.values() for e in sel.duplicate_entries()}
                wanted |= {e.duplicate_of for x in reads if x.shared is None for e in x.entries if e.duplicate_of}
                originals = await self._log.by_id(conn, sorted(i for i in wanted if i)) if wanted else {}
                planned = [
                    (x, fanout.plan(x.cursor, x.entries, x.upto, originals=originals, now=now,
                                    max_events=s.batch_max_events, rng=self._rng, duplicates=x.duplicates))
                    for x in reads
                ]  # fmt: skip
                count = sum(len(p.batches) for _, p in planned)
                ids = iter(
                    sorted(
                        row[0]
                        for row in await conn.fetch(
                            "SELECT nextval(pg_get_serial_sequence('delivery', 'id')) FROM generate_series(1, $1)",
                            count,
                        )
                    )
                )
                deliveries: list[tuple[Any, ...]] = []
                moves: list[tuple[Any, ...]] = []
                jobs: list[Job] = []
                # Subscribers with the same filter get the same events: describe them once.
                shared: dict[tuple[int, ...], _Shared] = {}
                lease = now + timedelta(seconds=s.lease_s)
                for x, p in planned:
                    r = x.row
                    blocking = None
                    for batch in p.batches:
                        delivery_id = next(ids)
                        key = (*x.shared, len(batch.entries)) if batch.prefix and x.shared else None
                        same = shared.get(key) if key else None
                        if same is None:
                            same = _Shared(batch.entries)
                            if key:
                                shared[key] = same
                        deliveries.append(
                            (delivery_id, r["id"], x.endpoint, batch.status, batch.reason, 1 if batch.now else 0,
                             lease if batch.now else batch.due, same.ids)
                        )  # fmt: skip
                        if batch.blocking:
                            blocking = delivery_id
                        if batch.now:
                            job = self._job(r, x.endpoint, delivery_id, 1, batch.entries)
                            if job.channel == "webhook":
                                job.items, job.types = same.items(), same.types()
                            jobs.append(job)
                    moves.append((r["id"], p.position, blocking, p.window_start, p.window_sent))
                if deliveries:
                    await conn.execute(_INSERT_DELIVERIES, *(list(col) for col in zip(*deliveries, strict=True)))
                if moves:
                    await conn.execute(_MOVE_CURSORS, *(list(col) for col in zip(*moves, strict=True)))
        for job in jobs:
            self._spawn(job, claimed=False)
        return len(jobs)

    def _job(
        self, r: asyncpg.Record, endpoint: str, delivery_id: int, attempts: int, entries: list[fanout.Entry]
    ) -> Job:
        return Job(
            id=delivery_id,
            kind="event",
            subscriber_id=r["id"],
            channel=r["channel"],
            target=r["target"],
            secret=r["secret"],
            endpoint=endpoint,
            attempts=attempts,
            limit=r["rate_per_minute"] or policy.CHANNEL_RATE_PER_MINUTE[r["channel"]],
            entries=entries,
        )

    # -- the retry queue --------------------------------------------------------------------------------------

    async def _retries(self) -> None:
        async def step() -> None:
            while True:
                free = self._s.concurrency - len(self._claimed)
                claimed = await self.claim(free) if free > 0 else []
                for job in claimed:
                    self._spawn(job, claimed=True)
                if len(claimed) < free or free <= 0:
                    await self._wait(self._claim_wake)

        await self._forever("retry queue", step)

    async def claim(self, limit: int) -> list[Job]:
        """Due deliveries, leased to this process for lease_s (a crash mid-send retries them after the lease)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, limit, self._s.lease_s)
            ids = sorted({i for r in rows for i in r["notification_ids"]})
            entries = await self._log.by_id(conn, ids) if ids else {}
        jobs = []
        for r in rows:
            carried = [entries[i] for i in r["notification_ids"] if i in entries]
            carried.sort(key=lambda e: (e.seq is None, e.seq, e.id))
            jobs.append(
                Job(
                    id=r["id"],
                    kind=r["kind"],
                    subscriber_id=r["subscriber_id"],
                    channel=r["channel"],
                    target=r["target"],
                    secret=r["secret"],
                    endpoint=r["endpoint"],
                    attempts=r["attempts"],
                    limit=r["rate_per_minute"] or policy.CHANNEL_RATE_PER_MINUTE[r["channel"]],
                    entries=carried,
                    body=r["body"],
                )
            )
        return jobs

    async def _hold(self, job: Job, now: datetime) -> tuple[datetime, str] | None:
        """Until when a claimed delivery must wait without spending an attempt: an open circuit or a full rate
        window (the first request of a minute always goes)."""
        window = policy.rate_window(now)
        state = await self._pool.fetchrow(_HOLD, job.endpoint, job.subscriber_id, window, job.size, job.limit)
        if state["open_until"] is not None:
            until = state["open_until"]
            return until + timedelta(seconds=self._rng.uniform(0, 1)), f"circuit open until {until}"
        if not state["counted"] and state["has_cursor"]:
            later = window + timedelta(minutes=1, seconds=self._rng.uniform(0, 5))
            return later, f"rate limit of {job.limit} a minute reached"
        return None

    # -- sending ----------------------------------------------------------------------------------------------

    def _spawn(self, job: Job, *, claimed: bool) -> None:
        task = asyncio.create_task(self._deliver(job, claimed=claimed), name=f"notify-delivery-{job.id}")
        self._inflight.add(task)
        if claimed:
            self._claimed.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if task in self._claimed:
            self._claimed.discard(task)
            self._claim_wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", extra={"error": repr(task.exception())})

    async def _deliver(self, job: Job, *, claimed: bool) -> None:
        async with self._slots:
            if claimed:
                held = await self._hold(job, datetime.now(UTC))
                if held is not None:
                    await self._pool.execute(
                        "UPDATE delivery SET attempts = attempts - 1, next_attempt_at = $2, reason = $3 WHERE id = $1",
                        job.id,
                        *held,
                    )
                    return
            started = time.perf_counter()
            try:
                outcome = await self._send(job)
            except targets.TargetRefused as exc:
                outcome = channels.Outcome(False, error=f"refused: {exc}", permanent=True)
            except SecretKeyMissing as exc:
                outcome = channels.Outcome(False, error=str(exc), permanent=True)
            duration_ms = int((time.perf_counter() - started) * 1000)
        if outcome.ok:
            self._succeeded.append((job, outcome, duration_ms))
            self._flush_wake.set()
        else:
            await self._record_failure(job, outcome, duration_ms)

    def _open(self, sealed: bytes | None) -> bytes:
        if sealed is None:
            raise SecretKeyMissing("webhook subscriber has no signing secret")
        opened = self._secrets.get(sealed)
        if opened is None:
            opened = self._secrets[sealed] = self._vault.open(sealed)
        return opened

    async def _send(self, job: Job) -> channels.Outcome:
        channel = job.channel
        if channel == "webhook":
            if job.items is None:
                items = [channels.webhook_item(m) for m in job.messages()]
                job.items = b",".join(items)
                job.types = ",".join(sorted({m.ce_type for m in job.messages()}))
            return await channels.signed_post(
                self._client,
                job.target,
                channels.webhook_body(job.id, job.items),
                secret=self._open(job.secret),
                idempotency_key=f"delivery-{job.id}",
                headers={"X-Finops-Event-Count": str(job.size), "X-Finops-Event-Type": job.types},
            )
        outcome = channels.Outcome(True, 200)
        for message in job.messages():  # one message each: batches of other channels hold one event
            if channel == "email":
                if self._smtp is None:
                    return channels.Outcome(False, error="no SMTP server configured (FINOPS_SMTP_HOST)", permanent=True)
                email = channels.email_message(message, sender=self._smtp.sender, to=[job.target])
                outcome = await channels.send_email(self._smtp, email)
            else:
                url = self._open(job.secret).decode()  # the webhook URL is the credential: stored sealed
                build = channels.slack_body if channel == "slack" else channels.teams_body
                outcome = await channels.post(self._client, url, json.dumps(build(message)).encode(), {})
            if not outcome.ok:
                return outcome
        return outcome

    # -- recording --------------------------------------------------------------------------------------------

    async def _recorder(self) -> None:
        """Record successes together: one statement for every request that succeeded since the last one."""

        async def step() -> None:
            while True:
                if not self._succeeded:
                    await self._wait(self._flush_wake)
                    continue
                await self._flush()
                self._round_wake.set()

        await self._forever("delivery recorder", step)

    async def _flush(self) -> None:
        async with self._flushing:
            done, self._succeeded = self._succeeded, []
            if not done:
                return
            try:
                await self.record_successes(done)
            except BaseException:
                self._succeeded[:0] = done
                raise

    async def record_successes(self, done: Sequence[tuple[Job, channels.Outcome, int]]) -> None:
        await self._pool.execute(
            _RECORD_SUCCESSES,
            [j.id for j, _, _ in done],
            [j.attempts for j, _, _ in done],
            [o.status_code for _, o, _ in done],
            [ms for _, _, ms in done],
            [j.subscriber_id for j, _, _ in done],
            sorted({j.endpoint for j, _, _ in done}),
        )

    async def _record_failure(self, job: Job, outcome: channels.Outcome, duration_ms: int) -> None:
        attempt = job.attempts
        refused = outcome.permanent and (outcome.error or "").startswith("refused")
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO delivery_attempt (delivery_id, attempt, outcome, status_code, error, duration_ms)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                job.id,
                attempt,
                "refused" if refused else "failed",
                outcome.status_code,
                outcome.error,
                duration_ms,
            )
            now = datetime.now(UTC)
            if not refused:
                failures = await conn.fetchval("SELECT failures FROM circuit WHERE endpoint = $1", job.endpoint)
                failures, open_until = self._s.breaker.after(failures or 0, False, now)
                await conn.execute(
                    """INSERT INTO circuit (endpoint, failures, open_until) VALUES ($1, $2, $3)
                       ON CONFLICT (endpoint) DO UPDATE SET failures = $2, open_until = $3""",
                    job.endpoint,
                    failures,
                    open_until,
                )
            if outcome.permanent or attempt >= self._s.retry.max_attempts:
                why = "permanent failure" if outcome.permanent else f"gave up after {attempt} attempts"
                reason = f"{why}: {outcome.error}"
                await conn.execute("UPDATE delivery SET status = 'dead', reason = $2 WHERE id = $1", job.id, reason)
                await conn.execute(
                    """INSERT INTO dead_letter (delivery_id, subscriber_id, endpoint, attempts, reason)
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
                    job.id,
                    job.subscriber_id,
                    job.endpoint,
                    attempt,
                    reason,
                )
                # The cursor moves on past what died.
                await conn.execute(
                    "UPDATE subscriber_cursor SET blocking_delivery = NULL WHERE subscriber_id = $1 "
                    "AND blocking_delivery = $2",
                    job.subscriber_id,
                    job.id,
                )
                log.warning("delivery dead-lettered", extra={"delivery_id": job.id, "endpoint": job.endpoint})
                self._round_wake.set()
            else:
                delay = self._s.retry.delay(attempt, self._rng)
                await conn.execute(
                    "UPDATE delivery SET next_attempt_at = now() + $2 * interval '1 second', reason = $3 WHERE id = $1",
                    job.id,
                    delay,
                    f"attempt {attempt} failed: {outcome.error}",
                )
