"""Who is calling: an API token (Authorization: Bearer) or a dashboard session. Signing in with a token, or with
the identity provider (OpenID Connect), creates a server-side session; the browser holds only its random id, in
an HttpOnly, SameSite=Strict cookie, and the database only the id's SHA-256. Signing out deletes the session."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import asyncpg
from starlette.requests import Request

from finops_runtime.access import Denied, Principal, Role, authenticate, token_hash
from finops_runtime.oidc import Identity, Login

COOKIE = "finops_session"
LOGIN_COOKIE = "finops_oidc_login"
"""Binds a pending single sign-on to the browser that started it (SameSite=Lax: the provider's redirect back is a
cross-site navigation, which a Strict cookie would not survive)."""
LOGIN_LIFETIME = timedelta(minutes=10)


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
    who = (
        Principal(row["name"], Role(row["role"]), frozenset(row["teams"]), frozenset(row["products"]))
        if row is not None
        else await _oidc_principal(conn, request.cookies[COOKIE])
    )
    if who is None:
        raise Denied(401, "your session has ended; sign in again at /signin")
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
        await conn.execute("DELETE FROM oidc_session WHERE session_hash = $1", _hash(session_id))


async def _oidc_principal(conn: asyncpg.Connection, session_id: str) -> Principal | None:
    row = await conn.fetchrow(
        """SELECT principal_id, name, role, teams, products, accounts FROM oidc_session
           WHERE session_hash = $1 AND expires_at > now()""",
        _hash(session_id),
    )
    if row is None:
        return None
    role = Role(row["role"])
    return Identity(
        id=row["principal_id"],
        name=row["name"],
        role=role,
        roles=frozenset({role}),
        teams=frozenset(row["teams"]),
        products=frozenset(row["products"]),
        accounts=frozenset(row["accounts"]),
    ).principal()


async def begin_oidc(conn: asyncpg.Connection, login: Login) -> str:
    """Remember a pending sign-in; returns the login id for the browser's LOGIN_COOKIE."""
    login_id = secrets.token_urlsafe(32)
    await conn.execute("DELETE FROM oidc_login WHERE expires_at < now()")
    await conn.execute(
        """INSERT INTO oidc_login (login_hash, state, nonce, code_verifier, redirect_uri, expires_at)
           VALUES ($1, $2, $3, $4, $5, now() + $6::interval)""",
        _hash(login_id),
        login.state,
        login.nonce,
        login.code_verifier,
        login.redirect_uri,
        LOGIN_LIFETIME,
    )
    return login_id


async def take_oidc_login(conn: asyncpg.Connection, login_id: str | None) -> asyncpg.Record | None:
    """The pending sign-in of this browser, deleted as it is read (a code and its state are good once)."""
    if not login_id:
        return None
    return await conn.fetchrow(
        """DELETE FROM oidc_login WHERE login_hash = $1 AND expires_at > now()
           RETURNING state, nonce, code_verifier, redirect_uri""",
        _hash(login_id),
    )


async def open_oidc_session(conn: asyncpg.Connection, identity: Identity, *, lifetime: timedelta) -> str:
    """A new dashboard session for an identity the provider proved; returns its id for the COOKIE."""
    session_id = secrets.token_urlsafe(32)
    await conn.execute(
        """INSERT INTO oidc_session (session_hash, principal_id, name, role, teams, products, accounts, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8::interval)""",
        _hash(session_id),
        identity.id,
        identity.name,
        identity.role.value,
        sorted(identity.teams),
        sorted(identity.products),
        sorted(identity.accounts),
        lifetime,
    )
    await conn.execute("DELETE FROM oidc_session WHERE expires_at < now()")
    return session_id
