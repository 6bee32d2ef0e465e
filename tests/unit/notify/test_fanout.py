"""The fan-out plan for one subscriber: a webhook request carries up to its batch size and the cursor stops
before the rest; Slack gets one message at a time; quiet hours hold non-critical events in their own deliveries
while critical ones go now; the rate limit holds the excess for the next minute in one blocking delivery; the
same news is suppressed for a subscriber that heard the original, not for one subscribed after it. Subscribers
sharing a filter share one selection of the log, except while an approval request names people."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, time, timedelta

from finops_notify import fanout, queue, routing

NOW = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)


def row(seq: int, *, team: str = "payments", severity: str = "warning", duplicate_of: int | None = None,
        approvers: tuple[str, ...] = (), immediate: bool = True) -> dict:  # fmt: skip
    return {
        "id": 1000 + seq,
        "stream_seq": seq,
        "event_id": uuid.UUID(int=seq),
        "ce_type": "finops.allocation.budget_alerted.v1",
        "severity": severity,
        "personas": ["finance", "engineering"],
        "teams": [team],
        "cost_centers": [],
        "approvers": list(approvers),
        "title": f"alert {seq}",
        "facts": json.dumps([["Seq", str(seq)]]),
        "payload": json.dumps({"seq": seq}),
        "dedup_key": f"budget/{team}/{seq}",
        "immediate": immediate,
        "occurred_at": NOW,
        "duplicate_of": duplicate_of,
    }


def entry(seq: int, **kw) -> fanout.Entry:
    return fanout.Entry(row(seq, **kw))


def subscriber(channel: str = "webhook", **extra) -> routing.Subscriber:
    row = {"timezone": "UTC", "quiet_start": None, "quiet_end": None, "rate_per_minute": None, **extra}
    return routing.Subscriber(
        id=str(uuid.uuid4()), name=extra.get("name", "erp"), persona=extra.get("persona", "finance"),
        channel=channel, target="https://example.com/hook", teams=frozenset(extra.get("teams", ())), extra=row,
    )  # fmt: skip


def cursor(s: routing.Subscriber, position: int = 0, **kw) -> fanout.Cursor:
    return fanout.Cursor(subscriber=s, position=position, start_position=kw.pop("start_position", 0), **kw)


def plan(c: fanout.Cursor, log: list[fanout.Entry], max_events: int = 3, **kw) -> fanout.Plan:
    heard = fanout.matching(c.subscriber, [e for e in log if e.seq > c.position])
    return fanout.plan(c, heard, log[-1].seq, originals=kw.pop("originals", {}), now=NOW, max_events=max_events,
                       rng=random.Random(1), **kw)  # fmt: skip


def test_a_webhook_request_carries_up_to_its_batch_size_and_the_cursor_stops_before_the_rest():
    log = [entry(i) for i in range(1, 6)]

    p = plan(cursor(subscriber(), window_start=NOW.replace(second=0), window_sent=4), log)

    [batch] = p.batches
    assert [e.seq for e in batch.entries] == [1, 2, 3]
    assert batch.now and batch.blocking and batch.status == "pending"
    assert p.position == 3  # 4 and 5 wait for the next request
    assert p.window_sent == 7


def test_what_the_subscriber_does_not_hear_moves_its_cursor_without_a_delivery():
    log = [entry(1, team="search"), entry(2, immediate=False), entry(3, team="search")]
    engineer = subscriber(persona="engineering", teams={"payments"})

    p = plan(cursor(engineer), log)

    assert p.batches == [] and p.position == 3


def test_slack_gets_one_message_per_request():
    p = plan(cursor(subscriber("slack")), [entry(1), entry(2)])

    [batch] = p.batches
    assert [e.seq for e in batch.entries] == [1] and p.position == 1


def test_quiet_hours_hold_non_critical_events_apart_and_let_critical_ones_through():
    quiet = subscriber(quiet_start=time(11), quiet_end=time(14))
    log = [entry(1), entry(2, severity="critical"), entry(3), entry(4)]

    p = plan(cursor(quiet), log, max_events=2)

    held = [b for b in p.batches if b.reason and b.reason.startswith("quiet hours until")]
    assert [[e.seq for e in b.entries] for b in held] == [[1, 3], [4]]
    assert all(b.due == NOW.replace(hour=14, minute=0, second=0) and not b.blocking for b in held)
    [now] = [b for b in p.batches if b.now]
    assert [e.seq for e in now.entries] == [2] and p.position == 4


def test_the_rate_limit_sends_what_fits_then_holds_the_excess_for_the_next_minute():
    limited = subscriber(rate_per_minute=2)
    minute = NOW.replace(second=0)
    log = [entry(i) for i in range(1, 6)]

    first = plan(cursor(limited, window_start=minute, window_sent=1), log)
    second = plan(cursor(limited, position=first.position, window_start=minute, window_sent=2), log)

    assert [[e.seq for e in b.entries] for b in first.batches] == [[1]] and first.position == 1
    [held] = second.batches
    assert [e.seq for e in held.entries] == [2, 3]  # no more than a minute's worth
    assert held.blocking and not held.now and held.reason == "rate limit of 2 a minute reached"
    assert minute + timedelta(minutes=1) <= held.due <= minute + timedelta(minutes=1, seconds=5)
    assert second.position == 3


def test_the_same_news_is_suppressed_for_a_subscriber_that_heard_the_original_only():
    original = entry(1)
    log = [entry(2), entry(3, duplicate_of=original.id)]
    originals = {original.id: original}

    heard_it = plan(cursor(subscriber(), position=1, start_position=0), log, originals=originals)
    newcomer = plan(cursor(subscriber(), position=1, start_position=1), log, originals=originals)

    suppressed = [b for b in heard_it.batches if b.status == "suppressed"]
    assert [[e.seq for e in b.entries] for b in suppressed] == [[3]]
    assert "duplicate of an earlier notification" in suppressed[0].reason
    assert [[e.seq for e in b.entries] for b in heard_it.batches if b.now] == [[2]]
    assert [[e.seq for e in b.entries] for b in newcomer.batches] == [[2, 3]]


def test_subscribers_sharing_a_filter_share_a_selection_unless_an_approval_names_people():
    a, b = subscriber(name="a"), subscriber(name="b")
    plain = fanout.Selector([entry(1), entry(2, team="search")])
    personal = fanout.Selector([entry(1), entry(2, approvers=("b",))])

    assert plain.of(a) is plain.of(b)
    assert [e.seq for e in plain.of(a).after(1)[1]] == [2]
    assert personal.of(a) is not personal.of(b)


def test_endpoints_name_the_url_by_a_digest_and_email_by_the_smtp_server():
    slack = queue.endpoint_for("slack", "https://hooks.slack.com/services/T000/B000/secret")

    assert slack is not None and slack.startswith("https://hooks.slack.com#") and "secret" not in slack
    assert slack != queue.endpoint_for("slack", "https://hooks.slack.com/services/T000/B000/other")
    assert queue.endpoint_of("email", None, "smtp://mail:25") == "smtp://mail:25"
    assert queue.endpoint_of("slack", slack, "smtp://mail:25") == slack


class FakeConnection:
    """Serves the log's SELECT from a list, counting the reads."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.reads = 0

    async def fetch(self, sql: str, after: int, upto: int) -> list[dict]:
        self.reads += 1
        return [r for r in self.rows if after < r["stream_seq"] <= upto]


async def test_the_log_reads_each_entry_once_and_holds_no_more_than_it_keeps():
    conn = FakeConnection([row(i) for i in range(1, 11)])
    log = fanout.Log(keep=4)

    await log.cover(conn, 0, 5)  # read 1: (0, 5]
    await log.cover(conn, 2, 10)  # read 2: only (5, 10]; 1 and 2 go, 3..10 stay as the round needs them
    kept = log.holds(2) and not log.holds(1)
    older = await log.between(conn, 0, 2)  # read 3: no longer held, from the database
    await log.cover(conn, 8, 10)  # every cursor is past 8: the oldest go, down to `keep`
    forgotten = not log.holds(2)
    await log.cover(conn, 2, 10)  # read 4: a cursor that was busy needs (2, 6] again, and only that

    assert conn.reads == 4 and kept and forgotten
    assert [e.seq for e in older] == [1, 2]
    assert [e.seq for e in log.window(2, 10)] == [3, 4, 5, 6, 7, 8, 9, 10]
