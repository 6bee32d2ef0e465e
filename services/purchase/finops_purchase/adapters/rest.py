"""HTTP calls to a provider's REST API (Azure Resource Manager, Google Compute Engine): JSON bodies whose money
stays exact, bearer tokens, and the provider's answers turned into Refused or OutcomeUnknown."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol

import httpx

from finops_purchase.provider import IdempotencyMismatch, OutcomeUnknown, Refused, Transient


def json_text(value: Any) -> str:
    """JSON in which a Decimal is a number written exactly as it is (json.dumps would need a float)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("money never travels as a float; use Decimal")
    return json.dumps(value)


class RestApi:
    """One provider API: base URL, a bearer token source, and a timeout."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        token: Callable[[], str | None],
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """The JSON answer; None for 404 when `missing_ok`. Raises Refused for a 4xx answer, OutcomeUnknown when
        the provider may have acted but did not say (timeout, 5xx, throttling)."""
        token = self._token()
        if not token:
            raise Transient(f"no {self.provider} access token: configure one (see the purchase service README)")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json_text(body).encode()
        try:
            response = await self._client.request(method, path, params=params, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise OutcomeUnknown(f"{self.provider} did not answer {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise OutcomeUnknown(f"{self.provider} unreachable for {method} {path}: {exc!r}") from exc
        if response.status_code == 404 and missing_ok:
            return None
        text = response.text[:500]
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise OutcomeUnknown(f"{self.provider} answered {response.status_code} to {method} {path}: {text}")
        if response.status_code == 409:
            raise IdempotencyMismatch(f"{self.provider} answered 409 Conflict to {method} {path}: {text}")
        if response.status_code >= 400:
            raise Refused(f"{self.provider} refused {method} {path} ({response.status_code}): {text}")
        return response.json() if response.content else {}


def parse_time(value: Any, fallback: datetime) -> datetime:
    """A provider's ISO 8601 timestamp (Z or an offset; naive means UTC) in UTC, or `fallback` when absent."""
    if not value:
        return fallback
    at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


class RestOptions(Protocol):
    base_url: str
    timeout_s: float


class RestProvider:
    """A provider adapter that buys through a REST API (Azure, GCP): its options, its API client, closing it."""

    name: ClassVar[str]
    api_name: ClassVar[str]
    """How the provider is named in errors ("Azure", "Google Cloud")."""
    spends_money: ClassVar[bool] = True

    def __init__(
        self,
        options: RestOptions,
        *,
        token: Callable[[], str | None] = lambda: None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.options = options
        self.api = RestApi(
            provider=self.api_name,
            base_url=options.base_url,
            token=token,
            timeout_s=options.timeout_s,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.api.aclose()
