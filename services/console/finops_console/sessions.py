"""Who is calling: an API token (Authorization: Bearer) or a dashboard session. Signing in with a token creates
a server-side session; the browser holds only its random id, in an HttpOnly, SameSite=Strict cookie, and the
database only the id's SHA-256. Signing out deletes the session."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import asyncpg
from starlette.requests import Request

from finops_runtime.access import Denied, Principal, Role, authenticate, token_hash

COOKIE = "finops_session"


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


async def principal(conn: asyncpg.Connection, request: Request, *, allowed: frozenset[Role]) -> Principal:
    """The caller by bearer token, else by session cookie; Denied (401/403) otherwise."""
    if request.headers.get("authorization") or not request.cookies.get(COOKIE):
        return await authenticate(conn, request, allowed=allowed)
    row = await conn.fetchrow(
        """SELECT t.name, t.role, t.teams, t.products FROM session s JOIN api_token t USING (token_hash)
           WHERE s.session_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL""",
        _hash(request.cookies[COOKIE]),
    )
    if row is None:
        raise Denied(401, "your session has ended; sign in again at /signin")
    who = Principal(row["name"], Role(row["role"]), frozenset(row["teams"]), frozenset(row["products"]))
    if who.role not in allowed:
        raise Denied(403, f"role {who.role} may not do this; needs one of {', '.join(sorted(allowed))}")
    return who


async def sign_in(conn: asyncpg.Connection, token: str, *, lifetime: timedelta) -> tuple[str, Principal] | None:
    """A new session for a valid token: (session id, principal); None when the token is unknown or revoked."""
    row = await conn.fetchrow(
        "SELECT token_hash, name, role, teams, products FROM api_token WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash(token.strip()),
    )
    if row is None:
        return None
    session_id = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO session (session_hash, token_hash, expires_at) VALUES ($1, $2, now() + $3::interval)",
        _hash(session_id),
        row["token_hash"],
        lifetime,
    )
    await conn.execute("DELETE FROM session WHERE expires_at < now()")
    return session_id, Principal(row["name"], Role(row["role"]), frozenset(row["teams"]), frozenset(row["products"]))


async def sign_out(conn: asyncpg.Connection, session_id: str | None) -> None:
    if session_id:
        await conn.execute("DELETE FROM session WHERE session_hash = $1", _hash(session_id))
