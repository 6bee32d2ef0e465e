"""Single sign-on with OpenID Connect: JWT bearer tokens for the APIs, the authorization code flow for the console.

Why this module exists: people should sign in with the company's identity provider (Keycloak, Entra ID, Okta...)
rather than hold long-lived platform tokens, and the platform must map what the provider says about them (groups,
app roles, custom claims) onto its own roles and scopes by configuration, never by code.

All JOSE work (JWS signature checks, JWK parsing, registered-claim validation) is done by joserfc; this module
only fetches the provider's discovery document and JWKS over HTTP, caches them, and maps claims. Keys are
refreshed when a token names a key id the cache does not hold (the provider rotated its keys) and, because some
providers reuse a key id for a new key, when a cached key does not verify; both refreshes are throttled, so
forged tokens cannot make the service hammer the provider."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    InvalidTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from finops_runtime import access
from finops_runtime.access import Denied, Role

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
"""The only algorithms a verifier may be configured to accept: public-key signatures. HS* would let anyone who
knows the provider's public key (everyone) forge tokens; `none` is no signature at all."""

_COMPACT_JWS = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class OidcSettings(BaseSettings):
    """FINOPS_OIDC_*: OpenID Connect is off unless FINOPS_OIDC_ISSUER is set."""

    model_config = SettingsConfigDict(env_prefix="FINOPS_OIDC_", extra="ignore")

    issuer: str | None = None
    """FINOPS_OIDC_ISSUER: the provider's issuer URL exactly as its tokens' `iss` (https, or http on loopback)."""
    audience: str | None = None
    """FINOPS_OIDC_AUDIENCE: the `aud` API tokens must carry (default: the client id)."""
    client_id: str | None = None
    """FINOPS_OIDC_CLIENT_ID: the console's client at the provider; also the audience of its ID tokens."""
    client_secret: SecretStr | None = None
    """FINOPS_OIDC_CLIENT_SECRET: the console client's secret (confidential client); prefer the _FILE form."""
    client_secret_file: Path | None = None
    """FINOPS_OIDC_CLIENT_SECRET_FILE: a file holding the client secret (a mounted secret)."""
    redirect_url: str | None = None
    """FINOPS_OIDC_REDIRECT_URL: the console's callback as registered at the provider, e.g.
    https://console.example.com/signin/oidc/callback (default: derived from the request's own URL)."""
    scopes: str = "openid profile email"
    """FINOPS_OIDC_SCOPES: scopes the console asks for (space separated; must include openid)."""
    algorithms: str = "RS256,ES256,PS256"
    """FINOPS_OIDC_ALGORITHMS: the signature algorithms accepted (comma separated; asymmetric only)."""
    role_claim: str = "roles"
    """FINOPS_OIDC_ROLE_CLAIM: the claim (dotted path, e.g. realm_access.roles) whose values name roles."""
    role_map: dict[str, Role] = {}
    """FINOPS_OIDC_ROLE_MAP: JSON object from a claim value to a platform role, e.g.
    {"finops-finance": "finance", "eng": "engineering"}. Its order is the precedence: when a person carries
    several mapped values, the first entry that matches gives the role."""
    teams_claim: str | None = "teams"
    """FINOPS_OIDC_TEAMS_CLAIM: the claim listing the engineering teams a person may see."""
    teams_prefix: str = ""
    """FINOPS_OIDC_TEAMS_PREFIX: when set, only values starting with it count, with it removed (for a groups
    claim that carries roles and teams together, e.g. "team:")."""
    products_claim: str | None = "products"
    """FINOPS_OIDC_PRODUCTS_CLAIM: the claim listing the products a business person may see."""
    products_prefix: str = ""
    """FINOPS_OIDC_PRODUCTS_PREFIX: like FINOPS_OIDC_TEAMS_PREFIX, for products."""
    accounts_claim: str | None = "billing_accounts"
    """FINOPS_OIDC_ACCOUNTS_CLAIM: the claim listing the billing accounts an automation or finance principal
    may write (ingest)."""
    accounts_prefix: str = ""
    """FINOPS_OIDC_ACCOUNTS_PREFIX: like FINOPS_OIDC_TEAMS_PREFIX, for billing accounts."""
    leeway_s: int = 30
    """FINOPS_OIDC_LEEWAY_S: clock skew tolerated on exp and nbf."""
    jwks_cache_s: float = 300.0
    """FINOPS_OIDC_JWKS_CACHE_S: how long the discovery document and JWKS are used before being fetched again."""
    jwks_min_refresh_s: float = 10.0
    """FINOPS_OIDC_JWKS_MIN_REFRESH_S: at most one forced JWKS refresh (unknown key id, failed signature) per this."""
    http_timeout_s: float = 5.0
    """FINOPS_OIDC_HTTP_TIMEOUT_S: timeout of each request to the provider."""

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    @property
    def api_audience(self) -> str:
        return self.audience or self.client_id or ""

    @property
    def allowed_algorithms(self) -> list[str]:
        return [a.strip() for a in self.algorithms.split(",") if a.strip()]

    @field_validator("issuer")
    @classmethod
    def _issuer_is_https(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
            raise ValueError(f"FINOPS_OIDC_ISSUER must be an https URL (http only on loopback), got {value!r}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> OidcSettings:
        if not self.issuer:
            return self
        bad = [a for a in self.allowed_algorithms if a not in ASYMMETRIC]
        if bad or not self.allowed_algorithms:
            raise ValueError(
                f"FINOPS_OIDC_ALGORITHMS may list only asymmetric algorithms ({', '.join(sorted(ASYMMETRIC))}); "
                f"refused: {', '.join(bad) or 'an empty list'}"
            )
        if not self.api_audience:
            raise ValueError("set FINOPS_OIDC_AUDIENCE (or FINOPS_OIDC_CLIENT_ID): tokens for any audience are refused")
        if self.client_secret and self.client_secret_file:
            raise ValueError("set FINOPS_OIDC_CLIENT_SECRET or FINOPS_OIDC_CLIENT_SECRET_FILE, not both")
        return self

    def secret(self) -> str | None:
        """The console client's secret, read from its file at each use so a rotated secret file is picked up."""
        if self.client_secret_file is not None:
            return self.client_secret_file.read_text().strip()
        return self.client_secret.get_secret_value() if self.client_secret else None


@dataclass(frozen=True)
class Identity:
    """What a verified token says about its holder, after the claim mapping."""

    id: str
    """Stable and unique: f"oidc:{iss}#{sub}" (a display name or e-mail can change or be reused)."""
    name: str
    role: Role
    roles: frozenset[Role]
    teams: frozenset[str] = field(default_factory=frozenset)
    products: frozenset[str] = field(default_factory=frozenset)
    accounts: frozenset[str] = field(default_factory=frozenset)

    def principal(self) -> access.Principal:
        """An access.Principal, passing the fields the Principal of this build has (id and accounts come with
        the perimeter rewrite; older builds have name, role, teams and products)."""
        known = {f.name for f in dataclasses.fields(access.Principal)}
        values: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "roles": self.roles,
            "teams": self.teams,
            "products": self.products,
            "accounts": self.accounts,
        }
        return access.Principal(**{k: v for k, v in values.items() if k in known})


def looks_like_jwt(token: str) -> bool:
    """A compact JWS: three base64url parts, the first a JSON object (base64 of '{"' starts with 'eyJ')."""
    return _COMPACT_JWS.fullmatch(token) is not None


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (realm_access.roles); None when any step is missing."""
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return value


def _strings(value: Any) -> list[str]:
    """A claim as a list of strings: a string (space separated, as `scope` is), a list, or nothing."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


def _prefixed(values: Iterable[str], prefix: str) -> frozenset[str]:
    if not prefix:
        return frozenset(values)
    return frozenset(v[len(prefix) :] for v in values if v.startswith(prefix) and len(v) > len(prefix))


def map_claims(settings: OidcSettings, claims: Mapping[str, Any]) -> Identity:
    """The platform identity for verified claims; Denied(403) when no configured value gives a role."""
    values = _strings(claim(claims, settings.role_claim))
    roles = [role for key, role in settings.role_map.items() if key in values]
    if not roles:
        raise Denied(
            403,
            f"signed in, but claim {settings.role_claim!r} ({', '.join(values) or 'absent'}) maps to no platform "
            "role; ask an admin to add you to a mapped group (FINOPS_OIDC_ROLE_MAP)",
        )
    name = next(
        (str(claims[k]) for k in ("name", "preferred_username", "email") if isinstance(claims.get(k), str)),
        str(claims["sub"]),
    )

    def scoped(path: str | None, prefix: str) -> frozenset[str]:
        return _prefixed(_strings(claim(claims, path)), prefix) if path else frozenset()

    return Identity(
        id=f"oidc:{claims['iss']}#{claims['sub']}",
        name=name,
        role=roles[0],
        roles=frozenset(roles),
        teams=scoped(settings.teams_claim, settings.teams_prefix),
        products=scoped(settings.products_claim, settings.products_prefix),
        accounts=scoped(settings.accounts_claim, settings.accounts_prefix),
    )


class OidcVerifier:
    """Verifies the provider's JWTs (access tokens for the APIs, ID tokens for the console) and maps their claims.

    Pluggable into access.authenticate: `await verifier.principal(bearer)` returns an access.Principal or raises
    access.Denied (401 for a token that is not valid, 403 for a valid one that maps to no role, 503 when the
    provider cannot be reached to fetch its keys)."""

    def __init__(self, settings: OidcSettings) -> None:
        if not settings.enabled:
            raise ValueError("OIDC is not configured: set FINOPS_OIDC_ISSUER")
        self.settings = settings
        self.issuer: str = settings.issuer or ""
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._refreshing: asyncio.Task[KeySet] | None = None
        self._failed_at = -float("inf")
        self._failure = ""
        self.jwks_fetches = 0
        """How many times the JWKS was fetched (observable, for operators and tests)."""

    async def principal(self, bearer: str) -> access.Principal:
        """The caller of an API request carrying `Authorization: Bearer <bearer>`."""
        claims = await self.verify(bearer, audience=self.settings.api_audience)
        return map_claims(self.settings, claims).principal()

    async def identity(self, token: str, *, audience: str, nonce: str | None = None) -> Identity:
        return map_claims(self.settings, await self.verify(token, audience=audience, nonce=nonce))

    async def verify(self, token: str, *, audience: str, nonce: str | None = None) -> dict[str, Any]:
        """The claims of a token signed by the provider with an allowed algorithm, for `audience`, within its
        validity window (and carrying `nonce` when given); Denied(401) naming what is wrong otherwise."""
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, UnicodeError) as exc:
            raise Denied(401, "the bearer token is not a well-formed JWT") from exc
        alg = header.get("alg")
        allowed = self.settings.allowed_algorithms
        if alg not in allowed:
            raise Denied(401, f"token algorithm {alg!r} is not accepted; accepted: {', '.join(allowed)}")
        kid = header.get("kid")
        keys = await self._keyset()
        try:
            decoded = self._decode(token, keys)
        except (InvalidKeyIdError, BadSignatureError):
            # A key id we do not hold, or a key that no longer verifies: the provider may have rotated its keys.
            keys = await self._keyset(force=True)
            try:
                decoded = self._decode(token, keys)
            except InvalidKeyIdError as exc:
                reason = f"no key with kid {kid!r} in the provider's JWKS; the token was not signed by it"
                raise Denied(401, reason) from exc
            except BadSignatureError as exc:
                raise Denied(401, "the token's signature does not verify with the provider's keys") from exc
        self._validate(decoded.claims, audience=audience, nonce=nonce)
        return dict(decoded.claims)

    def _decode(self, token: str, keys: KeySet) -> jwt.Token:
        try:
            return jwt.decode(token, keys, algorithms=self.settings.allowed_algorithms)
        except (InvalidKeyIdError, BadSignatureError):
            raise
        except (JoseError, ValueError) as exc:
            raise Denied(401, f"the bearer token was refused: {exc}") from exc

    def _validate(self, claims: Mapping[str, Any], *, audience: str, nonce: str | None) -> None:
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": audience},
            "sub": {"essential": True},
            "exp": {"essential": True},
        }
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        registry = jwt.JWTClaimsRegistry(leeway=self.settings.leeway_s, **options)
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise Denied(401, "the token has expired; get a new one from the identity provider") from exc
        except MissingClaimError as exc:
            raise Denied(401, f"the token lacks a required claim: {exc.description}") from exc
        except InvalidClaimError as exc:
            raise Denied(401, self._claim_reason(exc.claim, claims, audience)) from exc
        except InvalidTokenError as exc:
            raise Denied(401, "the token is not valid yet (nbf/iat in the future); check the clocks") from exc
        except JoseError as exc:
            raise Denied(401, f"the token was refused: {exc}") from exc
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Denied(401, "the token's sub claim is empty")

    def _claim_reason(self, name: str, claims: Mapping[str, Any], audience: str) -> str:
        if name == "iss":
            return f"the token was issued by {claims.get('iss')!r}, not by the configured issuer {self.issuer!r}"
        if name == "aud":
            return f"the token is for audience {claims.get('aud')!r}, not for {audience!r}"
        if name == "nonce":
            return "the ID token's nonce does not match this sign-in; start again"
        return f"the token's {name!r} claim is not valid"

    # -------------------------------------------------------------------- provider documents

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached); its issuer must be the configured one (OIDC Discovery 4.3)."""
        now = time.monotonic()
        if self._metadata is None or now - self._metadata_at > self.settings.jwks_cache_s:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = await self._get_json(url)
            if document.get("issuer") != self.issuer:
                raise Denied(
                    503,
                    f"the provider's discovery document names issuer {document.get('issuer')!r}, "
                    f"not {self.issuer!r}; fix FINOPS_OIDC_ISSUER",
                )
            self._metadata, self._metadata_at = document, now
        return self._metadata

    async def _keyset(self, *, force: bool = False) -> KeySet:
        """The provider's keys: cached; fetched again when stale or forced, at most once per
        jwks_min_refresh_s; while the provider cannot be reached the last keys stay in use (a provider outage
        does not lock everyone out), and with no keys at all the failure is answered without asking again."""
        now = time.monotonic()
        recently_failed = now - self._failed_at < self.settings.jwks_min_refresh_s
        if self._keys is not None:
            age = now - self._keys_at
            if (age <= self.settings.jwks_cache_s and not force) or age < self.settings.jwks_min_refresh_s:
                return self._keys
            if recently_failed:
                return self._keys
        elif recently_failed:
            raise Denied(503, self._failure)
        loop = asyncio.get_running_loop()
        task = self._refreshing
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._refreshing = loop.create_task(self._fetch_keys())
        try:
            return await asyncio.shield(task)
        except Denied as failure:
            self._failed_at, self._failure = time.monotonic(), str(failure)
            if self._keys is not None:
                return self._keys
            raise

    async def _fetch_keys(self) -> KeySet:
        metadata = await self.metadata()
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise Denied(503, "the provider's discovery document has no jwks_uri")
        document = await self._get_json(jwks_uri)
        try:
            signing = [k for k in document.get("keys", []) if k.get("use", "sig") == "sig"]
            keys = KeySet.import_key_set({"keys": signing})
        except (JoseError, ValueError, TypeError) as exc:
            raise Denied(503, f"the provider's JWKS at {jwks_uri} could not be read: {exc}") from exc
        self.jwks_fetches += 1
        self._keys, self._keys_at = keys, time.monotonic()
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.settings.http_timeout_s) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Denied(503, f"the identity provider cannot be reached at {url}; try again shortly") from exc
        if not isinstance(document, dict):
            raise Denied(503, f"the identity provider answered {url} with something that is not a JSON object")
        return document


# ------------------------------------------------------------------------ the console's code flow


@dataclass(frozen=True)
class Login:
    """One pending sign-in: what the browser is sent to the provider with, and what the callback must match."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    url: str
    """The provider's authorization endpoint with every parameter (code flow, S256 PKCE, state, nonce)."""


def _s256(verifier: str) -> str:
    """The PKCE S256 code challenge (RFC 7636 4.2): base64url(SHA-256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def same_state(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


class CodeFlow:
    """The OpenID Connect authorization code flow with PKCE, state and nonce, for the console's sign-in."""

    def __init__(self, verifier: OidcVerifier) -> None:
        settings = verifier.settings
        if not settings.client_id:
            raise ValueError("the console's sign-in needs FINOPS_OIDC_CLIENT_ID")
        self.verifier = verifier
        self.settings = settings
        self.client_id: str = settings.client_id

    async def start(self, redirect_uri: str) -> Login:
        metadata = await self.verifier.metadata()
        state, nonce, code_verifier = (secrets.token_urlsafe(32) for _ in range(3))
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.settings.scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": _s256(code_verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = metadata["authorization_endpoint"]
        url = f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
        return Login(state, nonce, code_verifier, redirect_uri, url)

    async def finish(self, *, code: str, code_verifier: str, redirect_uri: str, nonce: str) -> Identity:
        """Exchange the code at the token endpoint and verify the ID token (issuer, audience = client id, nonce,
        expiry, signature); Denied(401) naming the problem otherwise."""
        metadata = await self.verifier.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": self.client_id,
        }
        secret = self.settings.secret()
        auth = httpx.BasicAuth(self.client_id, secret) if secret else None
        try:
            async with httpx.AsyncClient(timeout=self.settings.http_timeout_s) as client:
                response = await client.post(metadata["token_endpoint"], data=form, auth=auth)
        except httpx.HTTPError as exc:
            raise Denied(503, "the identity provider's token endpoint cannot be reached; try again shortly") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or "id_token" not in body:
            reason = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
            raise Denied(401, f"the identity provider refused the sign-in code: {reason or response.status_code}")
        id_token = str(body["id_token"])
        claims = await self.verifier.verify(id_token, audience=self.client_id, nonce=nonce)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            # OIDC Core 3.1.3.7: an ID token for several audiences must name this client as its authorized party.
            raise Denied(401, f"the ID token is for several audiences and its azp is not {self.client_id!r}")
        return map_claims(self.settings, claims)
