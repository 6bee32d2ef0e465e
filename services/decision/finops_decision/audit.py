"""The append-only audit log: every request to the API (method, path, principal, status) and every state
change, each row hash-chained to the one before it.

hash(row n) = sha256(hash(row n-1) || canonical JSON of row n), with 32 zero bytes before row 1. A trigger
refuses UPDATE, DELETE and TRUNCATE; the chain catches what the trigger cannot (someone who switched it off).
The chain's head (the newest row's number and hash, table audit_head) is written with every append, so deleting
the newest rows is caught too: the log then ends before its head.

    python -m finops_decision.audit verify      # DATABASE_URL; exit 1 naming the first bad row

Writers append under one transaction-scoped advisory lock, so sequence numbers and the chain follow commit
order. Every transaction that changes a decision takes that lock before it locks the decision's row, so the
two locks are always taken in the same order.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import asyncpg

GENESIS = bytes(32)
LOCK = "finops.decision.audit"


def _plain(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, uuid.UUID | Enum):
        return str(value.value if isinstance(value, Enum) else value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


@dataclass(frozen=True)
class Entry:
    """One thing to record."""

    actor: str
    action: str
    """request | transition | refused | approval | policy | delegation | ..."""
    decision_id: uuid.UUID | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    method: str | None = None
    path: str | None = None
    status: int | None = None


def row_bytes(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    decision_id: uuid.UUID | None,
    method: str | None,
    path: str | None,
    status: int | None,
    detail: str,
) -> bytes:
    """The canonical JSON of one row, as hashed."""
    return canonical_json(
        {
            "seq": seq,
            "at": at.astimezone(UTC).isoformat(),
            "actor": actor,
            "action": action,
            "decision_id": str(decision_id) if decision_id else None,
            "method": method,
            "path": path,
            "status": status,
            "detail": detail,
        }
    ).encode()


def chain(previous: bytes, row: bytes) -> bytes:
    return hashlib.sha256(previous + row).digest()


async def lock(conn: asyncpg.Connection) -> None:
    """Take the audit lock until the transaction ends (again in the same transaction is free)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", LOCK)


async def append(conn: asyncpg.Connection, entries: Sequence[Entry]) -> None:
    """Append `entries` in the caller's transaction."""
    if not entries:
        return
    await lock(conn)
    last = await conn.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, previous = (last["seq"], bytes(last["hash"])) if last else (0, GENESIS)
    at = datetime.now(UTC)
    rows = []
    for e in entries:
        seq += 1
        detail = canonical_json(dict(e.detail))
        fields = dict(
            seq=seq, at=at, actor=e.actor, action=e.action, decision_id=e.decision_id,
            method=e.method, path=e.path, status=e.status, detail=detail,
        )  # fmt: skip
        previous = chain(previous, row_bytes(**fields))
        rows.append((*fields.values(), previous))
    await conn.executemany(
        """INSERT INTO audit_log (seq, at, actor, action, decision_id, method, path, status, detail, hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        rows,
    )
    await conn.execute(
        """INSERT INTO audit_head (one, seq, hash) VALUES (true, $1, $2)
           ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash""",
        seq,
        previous,
    )


@dataclass(frozen=True)
class Report:
    ok: bool
    rows: int
    last_seq: int
    bad_seq: int | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit log verified: {self.rows} rows, sequence 1 to {self.last_seq}, chain intact"
        return f"audit log broken at row {self.bad_seq}: {self.problem}"


class Walk:
    """Follows the chain row by row, in sequence order; stops at the first row deleted or changed."""

    def __init__(self) -> None:
        self.previous = GENESIS
        self.expected = 1
        self.broken: Report | None = None

    def feed(self, r: Mapping[str, Any]) -> bool:
        """Check the next row; False once the chain is broken."""
        if self.broken is not None:
            return False
        seq, done = r["seq"], self.expected - 1
        if seq != self.expected:
            gap = f"rows {self.expected} to {seq - 1} are" if seq - 1 > self.expected else f"row {self.expected} is"
            problem = f"{gap} missing: the log goes from row {done} to row {seq} (deleted)"
            self.broken = Report(False, done, done, self.expected, problem)
            return False
        body = row_bytes(
            seq=seq, at=r["at"], actor=r["actor"], action=r["action"], decision_id=r["decision_id"],
            method=r["method"], path=r["path"], status=r["status"], detail=r["detail"],
        )  # fmt: skip
        digest = chain(self.previous, body)
        if digest != bytes(r["hash"]):
            problem = "its content does not match its hash: it was changed after it was written"
            self.broken = Report(False, done, done, seq, problem)
            return False
        self.previous = digest
        self.expected += 1
        return True

    def report(self) -> Report:
        return self.broken or Report(True, self.expected - 1, self.expected - 1)

    def end(self, head: Mapping[str, Any] | None) -> Report:
        """The report once every row is walked, checked against the chain's recorded head."""
        if self.broken is not None or head is None:
            return self.report()
        last = self.expected - 1
        if head["seq"] > last:
            gap = f"rows {last + 1} to {head['seq']} are" if head["seq"] > last + 1 else f"row {last + 1} is"
            problem = f"{gap} missing: the log ends at row {last} but its head is row {head['seq']} (deleted)"
            return Report(False, last, last, last + 1, problem)
        if head["seq"] == last and bytes(head["hash"]) != self.previous:
            return Report(False, last, last, last, "it does not end the chain its head recorded: it was replaced")
        return self.report()


def check(rows: Iterable[Mapping[str, Any]]) -> Report:
    walk = Walk()
    for r in rows:
        if not walk.feed(r):
            break
    return walk.report()


async def verify(conn: asyncpg.Connection, *, schema: str = "decision") -> Report:
    """Walk the whole log with a server-side cursor (any length, little memory)."""
    walk = Walk()
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        async for r in conn.cursor(
            f"SELECT seq, at, actor, action, decision_id, method, path, status, detail, hash FROM {schema}.audit_log "
            "ORDER BY seq",
            prefetch=2000,
        ):
            if not walk.feed(r):
                break
        head = await conn.fetchrow(f"SELECT seq, hash FROM {schema}.audit_head")
    return walk.end(head)


async def _verify_url(url: str, schema: str) -> Report:
    conn = await asyncpg.connect(url)
    try:
        return await verify(conn, schema=schema)
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finops_decision.audit", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check the hash chain of the audit log (DATABASE_URL)")
    v.add_argument("--schema", default="decision", help="the decision service's schema (default: decision)")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL") or os.environ.get("FINOPS_DATABASE_URL")
    if not url:
        print("set DATABASE_URL to the decision service's database", file=sys.stderr)
        return 2
    report = asyncio.run(_verify_url(url, args.schema))
    print(report, file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
