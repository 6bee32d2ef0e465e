"""The notify HTTP API: subscribers, the delivery log and dead letters, digests on demand, and the server-sent
event stream that resumes from Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from finops_notify import digest, policy, queue, routing, targets
from finops_notify.vault import SecretKeyMissing, Vault, new_secret
from finops_runtime.access import Denied, Role, authenticate
from finops_runtime.app import ServiceRuntime

if TYPE_CHECKING:
    from finops_notify.app import NotifySettings

MANAGERS = frozenset({Role.PRACTITIONER, Role.ADMIN})
LOG_READERS = frozenset({Role.PRACTITIONER, Role.ADMIN, Role.AUTOMATION})
EVERYONE = frozenset(Role)
CHANNELS = ("email", "slack", "teams", "webhook")


def problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _clock(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


def _subscriber_view(r: Any) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "name": r["name"],
        "persona": r["persona"],
        "channel": r["channel"],
        "target": r["target"],
        "teams": r["teams"],
        "cost_centers": r["cost_centers"],
        "event_types": r["event_types"],
        "min_severity": r["min_severity"],
        "quiet_hours": (
            {"start": r["quiet_start"].isoformat(), "end": r["quiet_end"].isoformat(), "timezone": r["timezone"]}
            if r["quiet_start"]
            else None
        ),
        "rate_per_minute": r["rate_per_minute"] or policy.CHANNEL_RATE_PER_MINUTE[r["channel"]],
        "digest": r["digest"],
        "active": r["active"],
    }


def add_routes(runtime: ServiceRuntime, *, settings: NotifySettings, vault: Vault) -> None:
    allowlist = settings.allowlist()

    async def subscribers(request: Request) -> Response:
        """POST a subscriber (practitioner, admin); GET the list. A webhook's signing secret is returned once."""
        async with runtime.pool.acquire() as conn:
            try:
                await authenticate(conn, request, allowed=MANAGERS)
            except Denied as denied:
                return denied.response()
            if request.method == "GET":
                rows = await conn.fetch("SELECT * FROM subscriber ORDER BY created_at")
                return JSONResponse([_subscriber_view(r) for r in rows])
            if request.method != "POST":
                return problem(405, "use GET or POST")
            try:
                body = await request.json()
                channel = str(body["channel"])
                target = str(body["target"])
                persona = Role(body["persona"]).value
                if channel not in CHANNELS:
                    raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
                severity = str(body.get("min_severity", "info"))
                policy.severity_rank(severity)
                quiet = body.get("quiet_hours") or {}
                zone = str(quiet.get("timezone", "UTC"))
                ZoneInfo(zone)
                rate = body.get("rate_per_minute")
                if rate is not None and int(rate) <= 0:
                    raise ValueError("rate_per_minute must be positive")
            except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
                return problem(
                    400,
                    "send {name, persona, channel: email|slack|teams|webhook, target, teams?, cost_centers?, "
                    "event_types?, min_severity?, quiet_hours?: {start, end, timezone}, rate_per_minute?, digest?}: "
                    f"{exc}",
                )
            secret_shown: str | None = None
            sealed: bytes | None = None
            endpoint = queue.endpoint_for(channel, target)
            try:
                if channel == "email":
                    if "@" not in target:
                        return problem(400, f"email target {target!r} is not an address")
                else:
                    await targets.check(target, allowlist)
                    if channel == "webhook":
                        secret_shown = str(body.get("secret") or new_secret())
                        sealed = vault.seal(secret_shown.encode())
                    else:
                        sealed = vault.seal(target.encode())
                        parts = urlsplit(target)
                        target = f"{parts.scheme}://{parts.netloc}/…"  # the URL's path is its credential
            except targets.TargetRefused as exc:
                return problem(400, f"webhook target refused: {exc}")
            except SecretKeyMissing as exc:
                return problem(503, str(exc))
            subscriber_id = uuid.uuid4()
            async with conn.transaction():
                row = await conn.fetchrow(
                    """INSERT INTO subscriber (id, name, persona, teams, cost_centers, event_types, min_severity,
                                               channel, target, secret, quiet_start, quiet_end, timezone,
                                               rate_per_minute, digest, endpoint)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING *""",
                    subscriber_id,
                    str(body["name"]),
                    persona,
                    [str(t) for t in body.get("teams", [])],
                    [str(c) for c in body.get("cost_centers", [])],
                    [str(t) for t in body.get("event_types", [])],
                    severity,
                    channel,
                    target,
                    sealed,
                    _clock(quiet.get("start")),
                    _clock(quiet.get("end")),
                    zone,
                    int(rate) if rate is not None else None,
                    bool(body.get("digest", True)),
                    endpoint,
                )
                # It hears what is logged from now on.
                await conn.execute(
                    """INSERT INTO subscriber_cursor (subscriber_id, position, start_position)
                       SELECT $1, h, h FROM (SELECT coalesce(max(stream_seq), 0) AS h FROM notification) head""",
                    subscriber_id,
                )
        view = _subscriber_view(row)
        if secret_shown is not None:
            view["secret"] = secret_shown
        return JSONResponse(view, status_code=201)

    async def deliveries(request: Request) -> Response:
        """GET ?subscriber=&status=&event_id=&limit=: the delivery log, newest first: each request with the events
        it carried and every attempt."""
        q = request.query_params
        async with runtime.pool.acquire() as conn:
            try:
                await authenticate(conn, request, allowed=LOG_READERS)
                subscriber = uuid.UUID(q["subscriber"]) if "subscriber" in q else None
                event_id = uuid.UUID(q["event_id"]) if "event_id" in q else None
                limit = min(int(q.get("limit", "100")), 1000)
            except Denied as denied:
                return denied.response()
            except ValueError as exc:
                return problem(400, f"subscriber and event_id are UUIDs, limit a number: {exc}")
            rows = await conn.fetch(
                """SELECT d.*,
                          coalesce((SELECT json_agg(json_build_object('event_id', n.event_id, 'ce_type', n.ce_type,
                                                                      'title', n.title) ORDER BY n.stream_seq)
                                    FROM notification n WHERE n.id = ANY(d.notification_ids)), '[]') AS events,
                          coalesce((SELECT json_agg(json_build_object('attempt', a.attempt, 'at', a.at,
                                   'outcome', a.outcome, 'status_code', a.status_code, 'error', a.error,
                                   'duration_ms', a.duration_ms) ORDER BY a.attempt)
                                    FROM delivery_attempt a WHERE a.delivery_id = d.id), '[]') AS attempt_log
                   FROM delivery d
                   WHERE ($1::uuid IS NULL OR d.subscriber_id = $1) AND ($2::text IS NULL OR d.status = $2)
                     AND ($3::uuid IS NULL
                          OR d.notification_ids @> (SELECT array_agg(id) FROM notification WHERE event_id = $3))
                   ORDER BY d.id DESC LIMIT $4""",
                subscriber,
                q.get("status"),
                event_id,
                limit,
            )

        def view(r: Any) -> dict[str, Any]:
            events = json.loads(r["events"])
            first = events[0] if events else {}
            return {
                "id": r["id"],
                "subscriber_id": str(r["subscriber_id"]),
                "kind": r["kind"],
                # The first event it carries (the only one but for webhook batches); `events` lists them all.
                "event_id": first.get("event_id"),
                "ce_type": first.get("ce_type"),
                "title": first.get("title"),
                "events": events,
                "event_count": r["event_count"],
                "endpoint": r["endpoint"],
                "status": r["status"],
                "reason": r["reason"],
                "attempts": json.loads(r["attempt_log"]),
                "created_at": r["created_at"].isoformat(),
                "delivered_at": _iso(r["delivered_at"]),
            }

        return JSONResponse([view(r) for r in rows])

    async def dead_letters(request: Request) -> Response:
        """GET: deliveries that gave up, with their reason."""
        async with runtime.pool.acquire() as conn:
            try:
                await authenticate(conn, request, allowed=LOG_READERS)
            except Denied as denied:
                return denied.response()
            rows = await conn.fetch("SELECT * FROM dead_letter ORDER BY at DESC LIMIT 1000")
        return JSONResponse([{k: _iso(v) if k != "subscriber_id" else str(v) for k, v in r.items()} for r in rows])

    async def digests(request: Request) -> Response:
        """POST ?week=YYYY-MM-DD (admin, practitioner): queue the weekly digests now (default: the last full week)."""
        if request.method != "POST":
            return problem(405, "use POST")
        async with runtime.pool.acquire() as conn:
            try:
                await authenticate(conn, request, allowed=MANAGERS)
            except Denied as denied:
                return denied.response()
        try:
            week = date.fromisoformat(request.query_params["week"]) if "week" in request.query_params else None
        except ValueError:
            return problem(400, "week is the Monday starting it, YYYY-MM-DD")
        queued = await digest.run(
            runtime.pool, now=datetime.now(UTC), week_start=week, smtp_endpoint=settings.smtp_endpoint()
        )
        return JSONResponse({"queued": queued})

    async def stream(request: Request) -> Response:
        """GET ?types=a,b.*&team=&min_severity=: notifications as server-sent events; each carries its `id`, and a
        reconnect with `Last-Event-ID` (or ?last_event_id=) resumes right after it. Engineers see their teams'."""
        q = request.query_params
        async with runtime.pool.acquire() as conn:
            try:
                who = await authenticate(conn, request, allowed=EVERYONE)
                last = int(request.headers.get("last-event-id") or q.get("last_event_id") or 0)
                floor = policy.severity_rank(q.get("min_severity", "info"))
            except Denied as denied:
                return denied.response()
            except ValueError as exc:
                return problem(400, f"Last-Event-ID is a number and min_severity info|warning|critical: {exc}")
        types = frozenset(t for t in q.get("types", "").split(",") if t)
        teams = {t for t in q.get("team", "").split(",") if t}
        if who.role is Role.ENGINEERING:
            teams = (teams & who.teams) if teams else set(who.teams)

        def wanted(r: Any) -> bool:
            return (
                routing.type_selected(r["ce_type"], types)
                and policy.severity_rank(r["severity"]) >= floor
                and (not teams and who.role is not Role.ENGINEERING or bool(teams & set(r["teams"])))
            )

        async def events():
            nonlocal last
            idle = 0.0
            while True:
                rows = await runtime.pool.fetch(
                    """SELECT stream_seq, event_id, ce_type, subject, severity, title, teams, facts, payload,
                              occurred_at
                       FROM notification WHERE stream_seq > $1 ORDER BY stream_seq LIMIT 500""",
                    last,
                )
                for r in rows:
                    last = r["stream_seq"]
                    if not wanted(r):
                        continue
                    data = {
                        "id": str(r["event_id"]),
                        "type": r["ce_type"],
                        "subject": r["subject"],
                        "severity": r["severity"],
                        "title": r["title"],
                        "teams": r["teams"],
                        "facts": dict(json.loads(r["facts"])),
                        "data": json.loads(r["payload"]),
                        "time": r["occurred_at"].isoformat(),
                    }
                    yield f"id: {r['stream_seq']}\nevent: {r['ce_type']}\ndata: {json.dumps(data)}\n\n"
                if rows:
                    idle = 0.0
                    continue
                idle += settings.stream_poll_s
                if idle >= 15:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(settings.stream_poll_s)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
        )

    runtime.route("/v1/subscribers", subscribers)
    runtime.route("/v1/deliveries", deliveries)
    runtime.route("/v1/dead-letters", dead_letters)
    runtime.route("/v1/digests", digests)
    runtime.route("/v1/stream", stream)
