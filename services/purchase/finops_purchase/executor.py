"""The executor: buys each in-flight decision through its adapter, exactly once in effect.

For one decision at a time (a PostgreSQL advisory lock, released by the database if the process dies):
1. When an earlier call may have reached the provider (attempts > 0), ask the provider what the token bought
   (`find`): bought -> record it; nothing, and attempts are used up -> PurchaseFailed.
2. Count the attempt and commit, then call `purchase` with the decision id as client token.
3. In one transaction: the result in the ledger and the final event in the outbox.
A timeout or server error is retried with backoff and the same token; a refusal is final. Restarting the
service resumes every in-flight row the same way, so a crash at any point neither loses nor doubles a purchase.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass

import asyncpg
from prometheus_client import Counter

from finops_purchase import ledger
from finops_purchase.adapters import Registry
from finops_purchase.provider import ProviderError, Refused
from finops_runtime.chaos import fault_point

log = logging.getLogger(__name__)

WAKE_CHANNEL = "purchase_work"
_LOCK_SPACE = 0x70757263  # advisory lock key space for purchases ("purc")

PROVIDER_CALLS = Counter(
    "finops_purchase_provider_calls_total", "Calls to provider adapters, by outcome.", ["adapter", "call", "outcome"]
)
SETTLED = Counter(
    "finops_purchase_settled_total", "Decisions that reached a final state.", ["adapter", "state", "dry_run"]
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0

    def delay(self, attempt: int) -> float:
        """Capped exponential backoff with jitter, so instances retrying together spread out."""
        return min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1)) * random.uniform(0.5, 1.0)


class Executor:
    def __init__(
        self,
        pool: asyncpg.Pool,
        registry: Registry,
        *,
        retry: RetryPolicy,
        instance: str,
        concurrency: int = 4,
        poll_s: float = 1.0,
    ) -> None:
        self._pool = pool
        self._registry = registry
        self._retry = retry
        self._instance = instance
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._held_elsewhere: dict[uuid.UUID, float] = {}
        self._wake = asyncio.Event()

    def wake(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Work through due in-flight decisions until cancelled: at start (the reconciliation after a restart),
        when a new intent is committed (LISTEN), and every `poll_s`."""
        listener: asyncpg.Connection | None = None
        try:
            while True:
                try:
                    if listener is None or listener.is_closed():
                        listener = await self._listen()
                    await self._dispatch()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("purchase executor pass failed; retrying")
                    if listener is not None:
                        await self._unlisten(listener)
                    listener = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)
                self._wake.clear()
        finally:
            for task in self._running.values():
                task.cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)
            if listener is not None:
                await self._unlisten(listener)

    async def _listen(self) -> asyncpg.Connection:
        # A pool connection kept for the executor's life, as the outbox relay keeps one: it only listens.
        listener = await self._pool.acquire()
        await listener.add_listener(WAKE_CHANNEL, self.wake)
        return listener

    async def _unlisten(self, listener: asyncpg.Connection) -> None:
        try:
            await listener.remove_listener(WAKE_CHANNEL, self.wake)
            await self._pool.release(listener, timeout=5)
        except Exception:
            listener.terminate()

    async def _dispatch(self) -> None:
        now = time.monotonic()
        self._held_elsewhere = {k: t for k, t in self._held_elsewhere.items() if t > now}
        free = self._concurrency - len(self._running)
        if free <= 0:
            return
        async with self._pool.acquire() as conn:
            ids = await ledger.due(conn, limit=free, skip=[*self._running, *self._held_elsewhere])
        for decision_id in ids:
            task = asyncio.create_task(self._work(decision_id), name=f"purchase-{decision_id}")
            self._running[decision_id] = task
            task.add_done_callback(lambda t, d=decision_id: self._done(d, t))

    def _done(self, decision_id: uuid.UUID, task: asyncio.Task[None]) -> None:
        self._running.pop(decision_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("purchase work failed", exc_info=task.exception(), extra={"decision_id": str(decision_id)})
        self._wake.set()

    async def _work(self, decision_id: uuid.UUID) -> None:
        async with self._pool.acquire() as conn:
            key = str(decision_id)
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_SPACE, key):
                self._held_elsewhere[decision_id] = time.monotonic() + self._poll_s
                return
            try:
                await self.attempt(conn, decision_id)
            finally:
                try:
                    await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_SPACE, key)
                except BaseException:
                    conn.terminate()  # a pooled connection must never keep the lock
                    raise

    async def attempt(self, conn: asyncpg.Connection, decision_id: uuid.UUID) -> None:
        """One step for one decision, holding its lock."""
        row = await ledger.get(conn, decision_id)
        if row is None or row["state"] != ledger.IN_FLIGHT:
            return
        adapter = row["adapter"]
        try:
            provider = self._registry.get(adapter)
        except Refused as exc:
            await ledger.postpone(conn, decision_id, delay_s=self._retry.cap_s, error=str(exc))
            return
        order = ledger.order_of(row)
        token = row["client_token"]

        if row["attempts"] > 0:
            call_id = await ledger.begin_call(
                conn, decision_id, call="find", attempt=row["attempts"], instance=self._instance
            )
            try:
                found = await provider.find(token)
            except ProviderError as exc:
                PROVIDER_CALLS.labels(adapter, "find", "error").inc()
                await ledger.finish_call(conn, call_id, outcome="error", detail=str(exc))
                await ledger.postpone(
                    conn, decision_id, delay_s=self._retry.delay(row["attempts"]), error=f"reconciling: {exc}"
                )
                return
            PROVIDER_CALLS.labels(adapter, "find", "found" if found else "none").inc()
            if found is not None:
                async with conn.transaction():
                    await ledger.finish_call(conn, call_id, outcome="found", detail=found.commitment_id)
                    await self._settled(
                        await ledger.settle_purchased(conn, decision_id, found, reconciled=True, order=order)
                    )
                log.info(
                    "purchase reconciled", extra={"decision_id": str(decision_id), "commitment_id": found.commitment_id}
                )
                return
            await ledger.finish_call(conn, call_id, outcome="none")
            if row["attempts"] >= self._retry.max_attempts:
                reason = (
                    f"{row['attempts']} attempts failed or timed out (last: {row['last_error']}); the {adapter} "
                    f"provider confirms nothing was bought for client token {token}"
                )
                async with conn.transaction():
                    await self._settled(await ledger.settle_failed(conn, decision_id, reason=reason))
                return

        attempt = await ledger.start_attempt(conn, decision_id)
        call_id = await ledger.begin_call(conn, decision_id, call="purchase", attempt=attempt, instance=self._instance)
        fault_point("purchase.before_provider_call")
        try:
            commitment = await provider.purchase(order, token)
        except Refused as exc:
            PROVIDER_CALLS.labels(adapter, "purchase", "refused").inc()
            async with conn.transaction():
                await ledger.finish_call(conn, call_id, outcome="refused", detail=str(exc))
                await self._settled(await ledger.settle_failed(conn, decision_id, reason=f"{adapter} refused: {exc}"))
            return
        except ProviderError as exc:
            PROVIDER_CALLS.labels(adapter, "purchase", "unknown").inc()
            await ledger.finish_call(conn, call_id, outcome="unknown", detail=str(exc))
            await ledger.postpone(conn, decision_id, delay_s=self._retry.delay(attempt), error=str(exc))
            log.warning(
                "purchase outcome unknown; will reconcile", extra={"decision_id": str(decision_id), "error": str(exc)}
            )
            return
        PROVIDER_CALLS.labels(adapter, "purchase", "bought").inc()
        fault_point("purchase.after_provider_call")
        async with conn.transaction():
            await ledger.finish_call(conn, call_id, outcome="bought", detail=commitment.commitment_id)
            await self._settled(
                await ledger.settle_purchased(conn, decision_id, commitment, reconciled=False, order=order)
            )
        fault_point("purchase.after_settle")

    @staticmethod
    async def _settled(row: asyncpg.Record | None) -> None:
        if row is not None:
            SETTLED.labels(row["adapter"], row["state"], str(row["dry_run"]).lower()).inc()
