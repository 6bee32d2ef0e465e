"""The purchase ledger in SQL: one row per decision (the intent, then its one final state), the calls made to
providers, and the final events queued in the outbox in the same transaction as the state they announce."""

from __future__ import annotations

import uuid
from datetime import UTC
from decimal import Decimal
from typing import Any

import asyncpg

from finops_contracts.decisions import CommitmentPurchased, PurchaseFailed, PurchaseRequested
from finops_contracts.money import Money
from finops_purchase.provider import Commitment, Order
from finops_runtime import outbox

SOURCE = "finops/purchase"
_EVENT_IDS = uuid.UUID("0b5c3f0e-2a57-4d55-8a8e-7c1b3f3b9a10")
IN_FLIGHT, PURCHASED, FAILED = "in_flight", "purchased", "failed"
STATES = (IN_FLIGHT, PURCHASED, FAILED)


async def record_intent(
    conn: asyncpg.Connection, event: PurchaseRequested, order: Order, *, adapter: str, dry_run: bool
) -> bool:
    """Insert the intent row for a decision; False when the decision already has one."""
    inserted = await conn.fetchval(
        """INSERT INTO purchase (decision_id, client_token, recommendation_id, owner_team, provider_name,
               billing_account_id, adapter, dry_run, program, term_months, payment, start_at, commitment_per_hour,
               currency, covered_usage_per_hour, fingerprint)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
           ON CONFLICT (decision_id) DO NOTHING RETURNING true""",
        event.decision_id,
        event.client_token,
        event.recommendation_id,
        event.owner_team,
        event.provider_name,
        event.billing_account_id,
        adapter,
        dry_run,
        order.program,
        order.term_months,
        order.payment,
        order.start,
        order.commitment_per_hour,
        order.currency,
        order.covered_usage_per_hour,
        order.fingerprint(),
    )
    return bool(inserted)


async def get(conn: asyncpg.Connection, decision_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM purchase WHERE decision_id = $1", decision_id)


async def note_delivery(conn: asyncpg.Connection, decision_id: uuid.UUID) -> None:
    await conn.execute("UPDATE purchase SET deliveries = deliveries + 1 WHERE decision_id = $1", decision_id)


def order_of(row: asyncpg.Record) -> Order:
    return Order(
        decision_id=str(row["decision_id"]),
        provider_name=row["provider_name"],
        billing_account_id=row["billing_account_id"],
        program=row["program"],
        term_months=row["term_months"],
        payment=row["payment"],
        start=row["start_at"].astimezone(UTC),
        commitment_per_hour=row["commitment_per_hour"],
        currency=row["currency"],
        covered_usage_per_hour=row["covered_usage_per_hour"],
    )


async def due(conn: asyncpg.Connection, *, limit: int, skip: list[uuid.UUID]) -> list[uuid.UUID]:
    """In-flight decisions whose next attempt is due, oldest first."""
    rows = await conn.fetch(
        """SELECT decision_id FROM purchase
           WHERE state = 'in_flight' AND next_attempt_at <= now() AND NOT decision_id = ANY($2::uuid[])
           ORDER BY next_attempt_at LIMIT $1""",
        limit,
        skip,
    )
    return [r["decision_id"] for r in rows]


async def start_attempt(conn: asyncpg.Connection, decision_id: uuid.UUID) -> int:
    """Count one more purchase call; committed before the call is made."""
    return await conn.fetchval(
        "UPDATE purchase SET attempts = attempts + 1 WHERE decision_id = $1 RETURNING attempts", decision_id
    )


async def begin_call(
    conn: asyncpg.Connection, decision_id: uuid.UUID, *, call: str, attempt: int, instance: str
) -> int:
    return await conn.fetchval(
        "INSERT INTO provider_call (decision_id, call, attempt, instance) VALUES ($1, $2, $3, $4) RETURNING id",
        decision_id,
        call,
        attempt,
        instance,
    )


async def finish_call(conn: asyncpg.Connection, call_id: int, *, outcome: str, detail: str | None = None) -> None:
    await conn.execute(
        "UPDATE provider_call SET finished_at = now(), outcome = $2, detail = $3 WHERE id = $1",
        call_id,
        outcome,
        None if detail is None else detail[:2000],
    )


async def postpone(conn: asyncpg.Connection, decision_id: uuid.UUID, *, delay_s: float, error: str) -> None:
    await conn.execute(
        """UPDATE purchase SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
           WHERE decision_id = $1 AND state = 'in_flight'""",
        decision_id,
        delay_s,
        error[:2000],
    )


async def settle_purchased(
    conn: asyncpg.Connection, decision_id: uuid.UUID, commitment: Commitment, *, reconciled: bool, order: Order
) -> asyncpg.Record | None:
    """Record what was bought and queue CommitmentPurchased, in the caller's transaction; None when the
    decision was already settled."""
    row = await conn.fetchrow(
        """UPDATE purchase SET state = 'purchased', commitment_id = $2, commitment_start = $3, commitment_end = $4,
               commitment_amount = $5, upfront = $6, reconciled = $7, settled_at = now(), last_error = NULL
           WHERE decision_id = $1 AND state = 'in_flight' RETURNING *""",
        decision_id,
        commitment.commitment_id,
        commitment.start,
        commitment.end,
        order.commitment_per_hour if commitment.commitment_per_hour is None else commitment.commitment_per_hour,
        order.upfront if commitment.upfront is None else commitment.upfront,
        reconciled,
    )
    if row is not None:
        await announce(conn, row)
    return row


async def settle_failed(conn: asyncpg.Connection, decision_id: uuid.UUID, *, reason: str) -> asyncpg.Record | None:
    """Record that nothing was bought and queue PurchaseFailed, in the caller's transaction."""
    row = await conn.fetchrow(
        """UPDATE purchase SET state = 'failed', failure_reason = $2, settled_at = now()
           WHERE decision_id = $1 AND state = 'in_flight' RETURNING *""",
        decision_id,
        reason[:2000],
    )
    if row is not None:
        await announce(conn, row)
    return row


def final_event(row: asyncpg.Record) -> CommitmentPurchased | PurchaseFailed:
    common: dict[str, Any] = dict(
        decision_id=row["decision_id"],
        client_token=row["client_token"],
        provider_name=row["provider_name"],
        dry_run=row["dry_run"],
        attempts=max(1, row["attempts"]),
    )
    if row["state"] == FAILED:
        return PurchaseFailed(**common, reason=row["failure_reason"])
    currency = row["currency"]
    return CommitmentPurchased(
        **common,
        commitment_id=row["commitment_id"],
        program=row["program"],
        term_months=row["term_months"],
        payment=row["payment"],
        start=row["commitment_start"],
        end=row["commitment_end"],
        commitment_per_hour=Money(amount=row["commitment_amount"], currency=currency),
        upfront=Money(amount=row["upfront"] if row["upfront"] is not None else Decimal(0), currency=currency),
    )


async def announce(conn: asyncpg.Connection, row: asyncpg.Record, *, again_for: uuid.UUID | None = None) -> None:
    """Queue the decision's final event. The first announcement has one ce_id whatever happens; an answer to a
    repeated request gets its own, derived from that request's ce_id."""
    name = f"{row['decision_id']}/final" if again_for is None else f"{row['decision_id']}/again/{again_for}"
    event = final_event(row)
    await outbox.add(conn, [outbox.message_for(event, source=SOURCE, event_id=uuid.uuid5(_EVENT_IDS, name))])


async def list_purchases(conn: asyncpg.Connection, *, state: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM purchase WHERE ($1::text IS NULL OR state = $1)
           ORDER BY requested_at DESC, decision_id LIMIT $2""",
        state,
        limit,
    )


async def calls(conn: asyncpg.Connection, decision_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM provider_call WHERE decision_id = $1 ORDER BY id", decision_id)


def as_json(row: asyncpg.Record) -> dict[str, Any]:
    def money(amount: Decimal | None) -> dict[str, str] | None:
        return None if amount is None else {"amount": format(amount, "f"), "currency": row["currency"]}

    def at(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "decision_id": str(row["decision_id"]),
        "client_token": row["client_token"],
        "recommendation_id": str(row["recommendation_id"]),
        "owner_team": row["owner_team"],
        "provider_name": row["provider_name"],
        "billing_account_id": row["billing_account_id"],
        "adapter": row["adapter"],
        "dry_run": row["dry_run"],
        "program": row["program"],
        "term_months": row["term_months"],
        "payment": row["payment"],
        "start": at(row["start_at"]),
        "commitment_per_hour": money(row["commitment_per_hour"]),
        "state": row["state"],
        "attempts": row["attempts"],
        "deliveries": row["deliveries"],
        "next_attempt_at": at(row["next_attempt_at"]) if row["state"] == IN_FLIGHT else None,
        "last_error": row["last_error"],
        "commitment_id": row["commitment_id"],
        "commitment_start": at(row["commitment_start"]),
        "commitment_end": at(row["commitment_end"]),
        "commitment_amount": money(row["commitment_amount"]),
        "upfront": money(row["upfront"]),
        "reconciled": row["reconciled"],
        "failure_reason": row["failure_reason"],
        "requested_at": at(row["requested_at"]),
        "settled_at": at(row["settled_at"]),
    }
