"""The sandbox provider adapter: talks to `python -m finops_purchase.sandbox` over HTTP. It spends no money, so
it buys by default."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from finops_purchase.provider import Commitment, IdempotencyMismatch, Offering, Order, OutcomeUnknown, Refused
from finops_purchase.sandbox import catalog


def _commitment(body: dict[str, Any]) -> Commitment:
    return Commitment(
        commitment_id=body["commitment_id"],
        program=body["program"],
        term_months=int(body["term_months"]),
        payment=body["payment"],
        start=datetime.fromisoformat(body["start"]),
        end=datetime.fromisoformat(body["end"]),
        commitment_per_hour=Decimal(body["commitment_per_hour"]["amount"]),
        currency=body["commitment_per_hour"]["currency"],
        upfront=Decimal(body["upfront"]["amount"]),
    )


class SandboxProvider:
    name = "sandbox"
    spends_money = False

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    def validate(self, order: Order) -> None:
        catalog.check(order.program, order.term_months, order.payment)

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise OutcomeUnknown(
                f"sandbox provider at {self.base_url} did not answer in time ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise OutcomeUnknown(f"sandbox provider at {self.base_url} unreachable: {exc!r}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise OutcomeUnknown(f"sandbox provider answered {response.status_code}: {response.text[:300]}")
        return response

    async def purchase(self, order: Order, client_token: str) -> Commitment:
        self.validate(order)
        body = {
            "client_token": client_token,
            "billing_account_id": order.billing_account_id,
            "program": order.program,
            "term_months": order.term_months,
            "payment": order.payment,
            "start": order.start.isoformat(),
            "commitment_per_hour": {"amount": format(order.commitment_per_hour, "f"), "currency": order.currency},
            "covered_usage_per_hour": format(order.covered_usage_per_hour, "f"),
        }
        response = await self._call("POST", "/v1/commitments", json=body)
        if response.status_code == 409:
            raise IdempotencyMismatch(response.json().get("error", response.text))
        if response.status_code >= 400:
            raise Refused(f"sandbox provider refused ({response.status_code}): {response.text[:500]}")
        return _commitment(response.json())

    async def find(self, client_token: str) -> Commitment | None:
        response = await self._call("GET", "/v1/commitments", params={"client_token": client_token})
        if response.status_code != 200:
            raise OutcomeUnknown(f"sandbox provider lookup answered {response.status_code}: {response.text[:300]}")
        found = response.json()["commitments"]
        return _commitment(found[0]) if found else None

    async def offerings(self) -> list[Offering]:
        response = await self._call("GET", "/v1/offerings")
        return [
            Offering(
                provider=self.name,
                program=o["program"],
                term_months=o["term_months"],
                payment=o["payment"],
                upfront_share=Decimal(o["upfront_share"]),
                description=o["description"],
                discount=None if o.get("discount") is None else Decimal(o["discount"]),
            )
            for o in response.json()["offerings"]
        ]
