"""Notify through the real pipeline: a BudgetAlerted event in Kafka reaches, through the service's PostgreSQL
delivery queue, a signed webhook, Slack and Teams payloads on real local HTTP servers and an email on a real SMTP
server (aiosmtpd). An endpoint that fails three times then succeeds gets exactly one successful delivery with its
attempts logged; one that stays down ends in the dead-letter log with its reason; one that hangs delays nobody
else. The same news under a new ce_id is suppressed; a private-range target is refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import Message

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from finops_contracts.cloudevents import Envelope, now
from finops_contracts.events import BudgetAlerted, Event
from finops_contracts.money import Money
from finops_contracts.topics import ALLOCATION
from finops_notify import signing
from finops_notify.app import NotifySettings, create_app
from tests.support.kafka import produce
from tests.support.platform import ADMIN, ADMIN_TOKEN
from tests.support.services import free_port, serve_in_process, wait_until

SECRET_KEY = "test-notify-secret-key"


def record(event: Event, event_id: uuid.UUID | None = None) -> tuple[bytes, bytes, dict[str, str]]:
    envelope = Envelope(
        id=event_id or uuid.uuid4(),
        type=event.TYPE,
        source="/test/allocation",
        time=now(),
        subject=event.subject(),
        content_type=event.CONTENT_TYPE,
    )
    return event.key().encode(), event.encode(), envelope.to_headers()


def budget_alert(team: str, actual: str = "1200.00") -> BudgetAlerted:
    usd = lambda a: Money(amount=Decimal(a), currency="USD")  # noqa: E731
    period = datetime(2026, 10, 1, tzinfo=UTC)
    return BudgetAlerted(
        scope_kind="team", scope=team, billing_period_start=period, threshold=Decimal("0.8"), basis="actual",
        amount=usd("800.00"), budget=usd("1000.00"), actual=usd(actual), projected=usd("1550.25"), as_of=period,
    )  # fmt: skip


@dataclass
class Sink:
    """Local HTTP endpoints with behaviours: ok, flaky (fails 3 times), down, slow (waits for release)."""

    received: dict[str, list[tuple[dict[str, str], bytes]]] = field(default_factory=lambda: defaultdict(list))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    successes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    release_slow: asyncio.Event = field(default_factory=asyncio.Event)

    async def hook(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        body = await request.body()
        self.calls[name] += 1
        if name == "down" or (name == "flaky" and self.calls[name] <= 3):
            return JSONResponse({"error": "unavailable"}, status_code=503)
        if name == "slow":
            await self.release_slow.wait()
        self.received[name].append((dict(request.headers), body))
        self.successes[name] += 1
        return JSONResponse({"ok": True})


@contextlib.asynccontextmanager
async def http_sink() -> AsyncIterator[tuple[Sink, str]]:
    sink = Sink()
    app = Starlette(routes=[Route("/hooks/{name}", sink.hook, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: _started(server), timeout=10, what="the HTTP sink")
    try:
        yield sink, f"http://127.0.0.1:{port}"
    finally:
        sink.release_slow.set()
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def _started(server: uvicorn.Server) -> bool:
    return server.started


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server() -> AsyncIterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def settings_for(service_env: dict[str, str], smtp_port: int, **extra: object) -> NotifySettings:
    fields: dict[str, object] = dict(
        database_url=service_env["DATABASE_URL"],
        kafka_bootstrap_servers=service_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_namespace=service_env["FINOPS_KAFKA_NAMESPACE"],
        relay_poll_interval_s=0.2,
        admin_token=ADMIN_TOKEN,
        notify_secret_key=SECRET_KEY,
        webhook_allowlist="127.0.0.1",
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_from="finops@example.com",
        retry_base_s=0.05,
        retry_cap_s=0.2,
        delivery_max_attempts=4,
        breaker_threshold=10,
        http_timeout_s=120,
    )
    return NotifySettings(**{**fields, **extra})


async def subscribe(client: httpx.AsyncClient, url: str, **body: object) -> dict:
    response = await client.post(f"{url}/v1/subscribers", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(client: httpx.AsyncClient, url: str, subscriber: dict) -> list[dict]:
    response = await client.get(f"{url}/v1/deliveries", params={"subscriber": subscriber["id"]}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def test_budget_alert_reaches_every_channel_with_retries_dead_letters_and_no_head_of_line_blocking(
    service_env,
):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    with smtp_server() as (mailbox, smtp_port):
        async with (
            http_sink() as (sink, hooks),
            serve_in_process(create_app(settings_for(service_env, smtp_port)), free_port()) as url,
            httpx.AsyncClient(timeout=30) as client,
        ):
            finance = dict(persona="finance")
            ok = await subscribe(client, url, name="erp", channel="webhook", target=f"{hooks}/hooks/ok", **finance)
            flaky = await subscribe(client, url, name="fl", channel="webhook", target=f"{hooks}/hooks/flaky", **finance)
            down = await subscribe(client, url, name="dn", channel="webhook", target=f"{hooks}/hooks/down", **finance)
            slow = await subscribe(client, url, name="sl", channel="webhook", target=f"{hooks}/hooks/slow", **finance)
            slack = await subscribe(
                client, url, name="payments-slack", persona="engineering", teams=["payments"], channel="slack",
                target=f"{hooks}/hooks/slack",
            )  # fmt: skip
            teams = await subscribe(
                client, url, name="payments-teams", persona="engineering", teams=["payments"], channel="teams",
                target=f"{hooks}/hooks/teams",
            )  # fmt: skip
            email = await subscribe(client, url, name="cfo", channel="email", target="cfo@example.com", **finance)
            # An engineer of another team and a practitioner do not hear of this team's budget.
            other = await subscribe(
                client, url, name="search-hook", persona="engineering", teams=["search"], channel="webhook",
                target=f"{hooks}/hooks/other",
            )  # fmt: skip
            event_id = uuid.uuid4()

            await produce(bootstrap, ns + ALLOCATION.name, [record(budget_alert("payments"), event_id)])

            async def others_done() -> bool:
                done = [await deliveries(client, url, s) for s in (ok, flaky, slack, teams, email)]
                dead = await deliveries(client, url, down)
                return (
                    all(d and d[0]["status"] == "delivered" for d in done)
                    and bool(dead)
                    and dead[0]["status"] == "dead"
                )

            await wait_until(others_done, timeout=60, what="every fast subscriber served while one endpoint hangs")
            # The hanging endpoint still holds its request: nothing above waited for it.
            slow_log = await deliveries(client, url, slow)
            assert slow_log[0]["status"] == "pending" and sink.successes["slow"] == 0
            sink.release_slow.set()

            async def slow_done() -> bool:
                return (await deliveries(client, url, slow))[0]["status"] == "delivered"

            await wait_until(slow_done, timeout=60, what="the slow endpoint's delivery")

            # Signed webhook: verifies with the reference verifier; a tampered body or an old timestamp fails.
            headers, body = sink.received["ok"][0]
            secret = ok["secret"].encode()
            assert signing.verify(secret, headers, body)
            batch = json.loads(body)
            [item] = batch["events"]  # a batch of one: the signature covers the whole batch
            assert item["id"] == str(event_id) and item["idempotency_key"] == f"event-{event_id}"
            assert item["facts"]["Actual"] == "1,200.00 USD"
            assert headers["idempotency-key"] == f"delivery-{batch['delivery_id']}"
            with pytest.raises(signing.InvalidSignature):
                signing.verify(secret, headers, body.replace(b"1,200.00", b"1,100.00"))
            with pytest.raises(signing.InvalidSignature):
                signing.verify(secret, headers, body, now=int(headers["x-finops-timestamp"]) + 3600)

            # Fault: three failures then one success, every attempt logged; the dead one has its reason.
            assert sink.calls["flaky"] == 4 and sink.successes["flaky"] == 1
            flaky_log = (await deliveries(client, url, flaky))[0]
            assert [a["outcome"] for a in flaky_log["attempts"]] == ["failed", "failed", "failed", "delivered"]
            assert flaky_log["attempts"][0]["status_code"] == 503
            dead = await client.get(f"{url}/v1/dead-letters", headers=ADMIN)
            [dead_letter] = dead.json()
            assert dead_letter["subscriber_id"] == down["id"] and dead_letter["attempts"] == 4
            assert "gave up after 4 attempts" in dead_letter["reason"] and "503" in dead_letter["reason"]
            assert sink.calls["down"] == 4

            # Slack Block Kit and Teams Adaptive Card, on real HTTP servers.
            slack_body = json.loads(sink.received["slack"][0][1])
            assert "payments" in slack_body["text"] and slack_body["blocks"][0]["type"] == "header"
            assert any("1,200.00 USD" in f["text"] for f in slack_body["blocks"][1]["fields"])
            card = json.loads(sink.received["teams"][0][1])["attachments"][0]["content"]
            assert card["type"] == "AdaptiveCard"
            assert {"title": "Projected", "value": "1,550.25 USD"} in card["body"][1]["facts"]
            assert slack["target"].endswith("/…")  # the URL's path (its credential) is stored sealed, not shown

            # Email on a real SMTP server: recipients, subject and numbers.
            [(rcpt, mail)] = mailbox.messages
            assert rcpt == ["cfo@example.com"]
            assert mail["Subject"] == "[FinOps critical] Budget of team payments for 2026-10: actual cost crossed 80%"
            text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
            assert b"Actual: 1,200.00 USD" in text and b"Budget: 1,000.00 USD" in text

            assert sink.calls["other"] == 0 and await deliveries(client, url, other) == []

            # The same news under a new ce_id is suppressed, not sent again.
            await produce(bootstrap, ns + ALLOCATION.name, [record(budget_alert("payments"))])

            async def suppressed() -> bool:
                log = await deliveries(client, url, ok)
                return len(log) == 2 and log[0]["status"] == "suppressed"

            await wait_until(suppressed, timeout=60, what="the duplicate to be suppressed")
            assert sink.successes["ok"] == 1


async def test_a_private_range_webhook_target_is_refused_with_a_clear_error(service_env):
    settings = settings_for(service_env, 25, webhook_allowlist="")
    async with (
        serve_in_process(create_app(settings), free_port()) as url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        for target in ("http://10.0.0.8/hook", "http://127.0.0.1:9/hook", "http://169.254.169.254/latest"):
            response = await client.post(
                f"{url}/v1/subscribers",
                json={"name": "x", "persona": "finance", "channel": "webhook", "target": target},
                headers=ADMIN,
            )

            assert response.status_code == 400
            assert "loopback, private or reserved address" in response.json()["error"]
            assert "FINOPS_WEBHOOK_ALLOWLIST" in response.json()["error"]
        listed = await client.get(f"{url}/v1/subscribers", headers=ADMIN)
        assert listed.json() == []
