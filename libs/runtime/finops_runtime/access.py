"""Who may call an endpoint, and which slice of the data they see.

Roles follow the FinOps personas: finance sees everything and closes periods; engineering sees the cost of its
own teams; business sees its own products; the practitioner sees everything and maintains rules; automation is
a service account; admin issues tokens. A token is a random secret shown once; only its SHA-256 is stored.
The first admin token comes from FINOPS_ADMIN_TOKEN (stored hashed at start-up)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

SEE_ALL = frozenset({"finance", "practitioner", "admin"})


class Role(StrEnum):
    ENGINEERING = "engineering"
    FINANCE = "finance"
    BUSINESS = "business"
    PRACTITIONER = "practitioner"
    AUTOMATION = "automation"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    teams: frozenset[str] = field(default_factory=frozenset)
    products: frozenset[str] = field(default_factory=frozenset)

    def scope(self) -> dict[str, set[str]] | None:
        """The dimensions this principal may see, or None for everything."""
        if self.role in SEE_ALL:
            return None
        if self.role is Role.ENGINEERING:
            return {"team": set(self.teams)}
        if self.role is Role.BUSINESS:
            return {"product": set(self.products)}
        return {}


class Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> JSONResponse:
        return JSONResponse({"error": str(self)}, status_code=self.status)


class BearerVerifier(Protocol):
    """Verifies bearer tokens that are not platform tokens (OIDC JWTs): a Principal, or Denied."""

    async def principal(self, bearer: str) -> Principal: ...


_bearer_verifiers: list[BearerVerifier] = []
"""The verifiers of the runtimes started in this process, newest last (one in production; tests run several)."""


def add_bearer_verifier(verifier: BearerVerifier) -> None:
    """Send JWT-shaped bearer tokens to `verifier` (a runtime adds its OIDC verifier when it starts)."""
    _bearer_verifiers.append(verifier)


def remove_bearer_verifier(verifier: BearerVerifier) -> None:
    """Undo add_bearer_verifier (a runtime removes its verifier when it stops)."""
    if verifier in _bearer_verifiers:
        _bearer_verifiers.remove(verifier)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def ensure_admin(conn: asyncpg.Connection, token: str | None) -> None:
    if token:
        await conn.execute(
            """INSERT INTO api_token (token_hash, name, role) VALUES ($1, 'bootstrap-admin', 'admin')
               ON CONFLICT (token_hash) DO NOTHING""",
            token_hash(token),
        )


async def issue(conn: asyncpg.Connection, *, name: str, role: Role, teams: list[str], products: list[str]) -> str:
    """A new token for `role`; the secret is returned once and never stored."""
    token = "fo_" + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_token (token_hash, name, role, teams, products) VALUES ($1, $2, $3, $4, $5)",
        token_hash(token),
        name,
        role.value,
        teams,
        products,
    )
    return token


async def authenticate(
    conn: asyncpg.Connection, request: Request, *, allowed: frozenset[Role] | set[Role]
) -> Principal:
    """The caller of `request`, if its bearer token is known and its role is one of `allowed`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Denied(401, "send Authorization: Bearer <token>")
    from finops_runtime.oidc import looks_like_jwt  # oidc imports this module

    if _bearer_verifiers and looks_like_jwt(token.strip()):
        principal = await _bearer_verifiers[-1].principal(token.strip())
        if principal.role not in allowed:
            raise Denied(403, f"role {principal.role} may not do this; needs one of {', '.join(sorted(allowed))}")
        return principal
    row = await conn.fetchrow(
        "SELECT name, role, teams, products FROM api_token WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash(token.strip()),
    )
    if row is None:
        raise Denied(401, "unknown or revoked token")
    principal = Principal(row["name"], Role(row["role"]), frozenset(row["teams"]), frozenset(row["products"]))
    if principal.role not in allowed:
        raise Denied(403, f"role {principal.role} may not do this; needs one of {', '.join(sorted(allowed))}")
    return principal
