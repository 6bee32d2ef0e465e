"""Fan-out by cursor: each subscriber reads the notification log (stream_seq, commit order) from its cursor, and
what it matches becomes deliveries, one request each. Nothing is written per (event, subscriber): a round writes
one row per request and moves the cursors.

`plan` decides, for one subscriber and the log entries after its cursor, as a pure function:
- which entries it hears (routing.matches), and which it already heard as the same news (a duplicate of an
  original it matched and was subscribed for): those are logged as one `suppressed` delivery;
- quiet hours: non-critical entries go into held deliveries due when the quiet hours end; critical ones go now;
- the per-minute rate limit: entries beyond it go into one held delivery due in the next minute;
- batching: a webhook request carries up to `max_events` entries; Slack, Teams and email one message each.
A round asks routing.matches once per distinct subscriber filter and entry (Selector), not per subscriber.
The delivery sent now, or held by the rate limit, blocks the cursor until it is delivered or dead-lettered, so
a subscriber's retries never let later events overtake, and one subscriber's failures delay nobody else.
"""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from finops_notify import channels, policy, routing

LOG_COLUMNS = """id, stream_seq, event_id, ce_type, severity, personas, teams, cost_centers, approvers, title,
                 facts, payload, dedup_key, immediate, occurred_at, duplicate_of"""


class Entry:
    """One notification of the log, decoded once per process and shared by every subscriber's batch."""

    __slots__ = ("id", "seq", "event_id", "notification", "duplicate_of", "occurred_at", "_facts", "_payload", "_item")

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.id: int = row["id"]
        self.seq: int | None = row["stream_seq"]
        self.event_id = str(row["event_id"])
        self.notification = routing.Notification(
            ce_type=row["ce_type"],
            title=row["title"],
            severity=row["severity"],
            personas=tuple(row["personas"]),
            teams=tuple(row["teams"]),
            cost_centers=tuple(row["cost_centers"]),
            approvers=tuple(row["approvers"]),
            dedup_key=row["dedup_key"],
            immediate=row["immediate"],
        )
        self.duplicate_of: int | None = row["duplicate_of"]
        self.occurred_at: str = row["occurred_at"].isoformat()
        self._facts: str = row["facts"]
        self._payload: str = row["payload"]
        self._item: bytes | None = None

    def message(self) -> channels.Message:
        n = self.notification
        return channels.Message(
            title=n.title,
            severity=n.severity,
            facts=tuple(tuple(f) for f in json.loads(self._facts)),
            ce_type=n.ce_type,
            event_id=self.event_id,
            occurred_at=self.occurred_at,
            data=json.loads(self._payload),
            data_json=self._payload,
            idempotency_key=f"event-{self.event_id}",
        )

    def item(self) -> bytes:
        """This entry as a webhook batch item, encoded once."""
        if self._item is None:
            self._item = channels.webhook_item(self.message())
        return self._item


@dataclass(frozen=True)
class Cursor:
    """A subscriber and where it is in the log."""

    subscriber: routing.Subscriber
    position: int
    start_position: int
    window_start: datetime | None = None
    window_sent: int = 0

    @property
    def limit(self) -> int:
        return self.subscriber.extra.get("rate_per_minute") or policy.CHANNEL_RATE_PER_MINUTE[self.subscriber.channel]


@dataclass
class Batch:
    entries: list[Entry]
    status: str
    """pending or suppressed."""
    due: datetime
    reason: str | None = None
    blocking: bool = False
    now: bool = False
    """Sent right away by the process that formed it."""
    prefix: bool = False
    """Its entries are the first ones of those the plan was given."""


@dataclass
class Plan:
    position: int
    batches: list[Batch] = field(default_factory=list)
    window_start: datetime | None = None
    window_sent: int = 0


def heard(c: Cursor, original: Entry | None) -> bool:
    """Whether the subscriber heard (or will hear) the original of a duplicate: it matches it and was subscribed
    before it was logged. An original not yet sequenced will come after the subscriber's start."""
    if original is None:
        return False
    subscribed_before = original.seq is None or original.seq > c.start_position
    return subscribed_before and routing.matches(c.subscriber, original.notification)


def matching(s: routing.Subscriber, entries: Sequence[Entry]) -> list[Entry]:
    """The entries subscriber `s` hears of: immediate notifications it matches, in log order."""
    return [e for e in entries if e.notification.immediate and routing.matches(s, e.notification)]


class Selection:
    """What one subscriber filter matches in a range of the log, computed once for every subscriber sharing it."""

    __slots__ = ("entries", "seqs", "duplicates", "key")

    def __init__(self, entries: list[Entry], key: int) -> None:
        self.entries = entries
        self.seqs = [e.seq for e in entries]
        self.duplicates = [i for i, e in enumerate(entries) if e.duplicate_of is not None]
        """Indexes of the entries that repeat earlier news."""
        self.key = key

    def after(self, position: int) -> tuple[int, list[Entry]]:
        """(index, entries) of what comes after `position`."""
        start = bisect.bisect_right(self.seqs, position)
        return start, self.entries[start:]

    def duplicate_within(self, start: int, count: int) -> bool:
        """Whether entries[start:start + count] hold a duplicate."""
        i = bisect.bisect_left(self.duplicates, start)
        return i < len(self.duplicates) and self.duplicates[i] < start + count

    def duplicate_entries(self) -> list[Entry]:
        return [self.entries[i] for i in self.duplicates]


class Selector:
    """Per round, the Selection of each distinct subscriber filter over the entries held in memory: a round would
    otherwise ask routing.matches for every (subscriber, entry) pair, and subscribers share filters."""

    def __init__(self, window: list[Entry]) -> None:
        self._window = window
        self._selections: dict[tuple[Any, ...], Selection] = {}
        # An approval request names people: while one is in the window, the subscriber's name is part of its filter.
        self._personal = any(e.notification.approvers for e in window)

    def of(self, s: routing.Subscriber) -> Selection:
        kind: tuple[Any, ...] = (s.persona, s.teams, s.cost_centers, s.event_types, s.min_severity)
        if self._personal:
            kind += (s.name, s.id)
        selection = self._selections.get(kind)
        if selection is None:
            selection = self._selections[kind] = Selection(matching(s, self._window), len(self._selections))
        return selection


def plan(
    c: Cursor,
    entries: Sequence[Entry],
    upto: int,
    *,
    originals: Mapping[int, Entry],
    now: datetime,
    max_events: int,
    rng: random.Random | None = None,
    duplicates: bool | None = None,
) -> Plan:
    """What subscriber `c` gets from `entries`: what it hears of (`matching`) after its cursor, in log order, the
    log having been read up to `upto`. `duplicates`: whether the first `max_events` entries hold a duplicate
    (computed when not given)."""
    s = c.subscriber
    cap = max_events if s.channel == "webhook" else 1
    limit = c.limit
    window = policy.rate_window(now)
    sent = c.window_sent if c.window_start == window else 0
    quiet_end = policy.quiet_until(now, s.extra.get("quiet_start"), s.extra.get("quiet_end"), s.extra["timezone"])
    if duplicates is None:
        duplicates = any(e.duplicate_of is not None for e in entries[:cap])
    if quiet_end is None and not duplicates and limit - sent >= min(cap, len(entries)):
        # The common case, without a loop: no quiet hours, no duplicate, room in the rate window.
        result = Plan(position=upto, window_start=c.window_start, window_sent=c.window_sent)
        if len(entries) > cap:
            result.position = max(c.position, entries[cap].seq - 1)  # type: ignore[operator]
        if entries:
            send = list(entries[:cap])
            result.batches.append(Batch(send, "pending", now, blocking=True, now=True, prefix=True))
            result.window_start, result.window_sent = window, sent + len(send)
        return result
    send: list[Entry] = []
    over_limit: list[Entry] = []
    quiet: list[list[Entry]] = []
    suppressed: list[Entry] = []
    position = upto
    for e in entries:
        n = e.notification
        if e.duplicate_of is not None and heard(c, originals.get(e.duplicate_of)):
            suppressed.append(e)
            continue
        if quiet_end is not None and n.severity != "critical":
            if not quiet or len(quiet[-1]) >= min(cap, limit):
                quiet.append([])
            quiet[-1].append(e)
            continue
        if over_limit:
            if len(over_limit) < min(cap, limit):
                over_limit.append(e)
                continue
        elif sent + len(send) < limit:
            if len(send) < cap:
                send.append(e)
                continue
        elif not send:
            over_limit.append(e)
            continue
        position = e.seq - 1  # this one waits for the next round: the cursor stops just before it
        break
    result = Plan(position=max(position, c.position), window_start=c.window_start, window_sent=c.window_sent)
    if suppressed:
        keys = ", ".join(dict.fromkeys(e.notification.dedup_key for e in suppressed[:3]))
        result.batches.append(Batch(suppressed, "suppressed", now, f"duplicate of an earlier notification ({keys})"))
    for held in quiet:
        result.batches.append(Batch(held, "pending", quiet_end, f"quiet hours until {quiet_end.isoformat()}"))
    if send:
        result.batches.append(Batch(send, "pending", now, blocking=True, now=True))
        result.window_start, result.window_sent = window, sent + len(send)
    if over_limit:
        later = window + timedelta(minutes=1, seconds=(rng or random).uniform(0, 5))
        result.batches.append(
            Batch(over_limit, "pending", later, f"rate limit of {limit} a minute reached", blocking=True)
        )
    return result


class Log:
    """Recent log entries in memory, read once per process whatever the number of subscribers."""

    def __init__(self, keep: int = 10_000) -> None:
        self._keep = keep
        """Entries held at most, unless a round needs more (a minute of the benchmark's rate)."""
        self._seqs: list[int] = []
        self._entries: list[Entry] = []
        self._lo = 1
        """Every entry with self._lo <= seq <= self._hi is held."""
        self._hi = 0

    async def _fetch(self, conn: asyncpg.Connection, after: int, upto: int) -> list[Entry]:
        rows = await conn.fetch(
            f"SELECT {LOG_COLUMNS} FROM notification WHERE stream_seq > $1 AND stream_seq <= $2 ORDER BY stream_seq",
            after,
            upto,
        )
        return [Entry(r) for r in rows]

    async def cover(self, conn: asyncpg.Connection, after: int, upto: int) -> None:
        """Hold every entry in (after, upto], reading only what is not held yet."""
        if self._hi < self._lo or after > self._hi:
            entries = await self._fetch(conn, after, upto)
            self._seqs = [e.seq for e in entries]  # type: ignore[misc]
            self._entries = entries
            self._lo, self._hi = after + 1, upto
        else:
            if after + 1 < self._lo:  # a subscriber that was busy for a while needs older entries again
                older = await self._fetch(conn, after, self._lo - 1)
                self._seqs[:0] = [e.seq for e in older]  # type: ignore[misc]
                self._entries[:0] = older
                self._lo = after + 1
            if upto > self._hi:
                newer = await self._fetch(conn, self._hi, upto)
                self._seqs.extend(e.seq for e in newer)  # type: ignore[misc]
                self._entries.extend(newer)
                self._hi = upto
        # Hold no more than `keep`, oldest out first, but never what this round needs.
        drop = min(len(self._seqs) - self._keep, bisect.bisect_right(self._seqs, after))
        if drop > 0:
            self._lo = self._seqs[drop - 1] + 1
            del self._seqs[:drop], self._entries[:drop]

    def window(self, after: int, upto: int) -> list[Entry]:
        """The entries held in (after, upto] (cover it first)."""
        return self._entries[bisect.bisect_right(self._seqs, after) : bisect.bisect_right(self._seqs, upto)]

    def holds(self, after: int) -> bool:
        return self._lo - 1 <= after <= self._hi

    async def between(self, conn: asyncpg.Connection, after: int, upto: int) -> list[Entry]:
        """Entries in (after, upto], from memory when held, else from the database."""
        if self.holds(after) and upto <= self._hi:
            return self._entries[bisect.bisect_right(self._seqs, after) : bisect.bisect_right(self._seqs, upto)]
        return await self._fetch(conn, after, upto)

    async def by_id(self, conn: asyncpg.Connection, ids: Sequence[int]) -> dict[int, Entry]:
        rows = await conn.fetch(f"SELECT {LOG_COLUMNS} FROM notification WHERE id = ANY($1::bigint[])", list(ids))
        return {r["id"]: Entry(r) for r in rows}
