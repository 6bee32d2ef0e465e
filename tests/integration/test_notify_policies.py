"""Quiet hours, per-channel rate limits and the weekly digest, through Kafka and PostgreSQL: a subscriber in its
quiet hours gets a warning later but a critical alert now; a subscriber limited to one message a minute gets the
second one held; the weekly digest emails finance the week's numbers over real SMTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from finops_contracts.events import CostPeriodCompleted, CurrencyTotal
from finops_contracts.money import Money
from finops_contracts.recommendations import Kind, Persona, RecommendationIssued
from finops_contracts.topics import ALLOCATION, COST, RECOMMENDATION
from finops_notify.app import create_app
from tests.integration.test_notify import (
    budget_alert,
    deliveries,
    http_sink,
    record,
    settings_for,
    smtp_server,
    subscribe,
)
from tests.support.kafka import produce
from tests.support.platform import ADMIN
from tests.support.services import free_port, serve_in_process, wait_until


def plan(savings: str) -> RecommendationIssued:
    t = datetime.now(UTC)
    return RecommendationIssued(
        recommendation_id=uuid.uuid4(), kind=Kind.COMMITMENT_PLAN, target="aws_compute_savings_plan/1",
        title="Buy a compute savings plan", owner_team="payments", personas=(Persona.FINANCE, Persona.PRACTITIONER),
        estimated_monthly_savings=Money(amount=Decimal(savings), currency="USD"), expires_at=t, as_of=t,
    )  # fmt: skip


async def test_quiet_hours_hold_warnings_not_critical_alerts_and_rate_limits_hold_the_excess(service_env):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    now = datetime.now(UTC)
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:00"), "end": (now + timedelta(hours=2)).strftime("%H:00"),
             "timezone": "UTC"}  # fmt: skip
    async with (
        http_sink() as (sink, hooks),
        serve_in_process(create_app(settings_for(service_env, 25)), free_port()) as url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        night = await subscribe(client, url, name="night", persona="engineering", teams=["payments"],
                                channel="webhook", target=f"{hooks}/hooks/night", quiet_hours=quiet)  # fmt: skip
        limited = await subscribe(client, url, name="limited", persona="engineering", teams=["search"],
                                  channel="webhook", target=f"{hooks}/hooks/limited", rate_per_minute=1)  # fmt: skip

        # Both limited sends must fall in one rate-limit minute.
        await asyncio.sleep(max(0, datetime.now(UTC).second - 40) and 61 - datetime.now(UTC).second)
        await produce(
            bootstrap,
            ns + ALLOCATION.name,
            [
                record(budget_alert("payments", actual="900.00")),  # a warning: held by quiet hours
                # over budget, so critical: goes now
                record(budget_alert("payments", actual="1300.00").model_copy(update={"threshold": Decimal("1")})),
                record(budget_alert("search", actual="1200.00")),
            ],
        )
        # Two distinct alerts for search within one minute (different thresholds are different news).
        second = budget_alert("search", actual="1250.00").model_copy(update={"threshold": Decimal("1")})
        await produce(bootstrap, ns + ALLOCATION.name, [record(second)])

        async def settled() -> bool:
            n, lim = await deliveries(client, url, night), await deliveries(client, url, limited)
            # The second of the limited ones is held once a worker has claimed it and found the minute full.
            held_by_rate = any((d["reason"] or "").startswith("rate limit") for d in lim)
            return len(n) == 2 and held_by_rate and sink.successes["night"] == 1 and sink.successes["limited"] == 1

        await wait_until(settled, timeout=60, what="two deliveries each, one sent each")
        night_log = {d["title"]: d for d in await deliveries(client, url, night)}
        held = [d for d in night_log.values() if d["status"] == "pending"]
        assert len(held) == 1 and held[0]["reason"].startswith("quiet hours until")
        assert held[0]["attempts"] == []
        sent_body = sink.received["night"][0][1]
        assert b"1,300.00 USD" in sent_body  # the critical one
        limited_log = await deliveries(client, url, limited)
        assert sorted(d["status"] for d in limited_log) == ["delivered", "pending"]
        assert any((d["reason"] or "").startswith("rate limit of 1 a minute") for d in limited_log)


async def test_the_weekly_digest_emails_finance_the_weeks_numbers(service_env):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    with smtp_server() as (mailbox, smtp_port):
        async with (
            serve_in_process(create_app(settings_for(service_env, smtp_port)), free_port()) as url,
            httpx.AsyncClient(timeout=30) as client,
        ):
            await subscribe(client, url, name="controller", persona="finance", channel="email",
                            target="controller@example.com", event_types=["finops.cost.*"])  # fmt: skip
            period = datetime(2026, 10, 1, tzinfo=UTC)
            completed = CostPeriodCompleted(
                ingest_id=uuid.uuid4(), provider_name="AWS", billing_account_id="111122223333",
                billing_period_start=period, version=1, batch_count=1, line_count=3,
                totals=(CurrencyTotal(currency="USD", billed_cost=Decimal("12345.67"),
                                      effective_cost=Decimal("12000.00"), line_count=3),),
            )  # fmt: skip
            cfo = await subscribe(client, url, name="cfo", persona="finance", channel="email",
                                  target="cfo@example.com")  # fmt: skip
            await produce(bootstrap, ns + COST.name, [record(completed)])
            await produce(bootstrap, ns + RECOMMENDATION.name, [record(plan("100.10")), record(plan("20.05"))])
            await produce(bootstrap, ns + ALLOCATION.name, [record(budget_alert("payments"))])

            async def immediate_sent() -> bool:
                return sum(1 for r, _ in mailbox.messages if r == ["cfo@example.com"]) == 3  # two plans and the alert

            await wait_until(immediate_sent, timeout=60, what="the immediate emails")
            monday = datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())

            response = await client.post(f"{url}/v1/digests", params={"week": monday.isoformat()}, headers=ADMIN)
            again = await client.post(f"{url}/v1/digests", params={"week": monday.isoformat()}, headers=ADMIN)

            assert response.json() == {"queued": 2} and again.json() == {"queued": 0}

            async def digests() -> list:
                weekly = "[FinOps info] Your FinOps week"
                return [(r, m) for r, m in mailbox.messages if m["Subject"].startswith(weekly)]

            found = await wait_until(lambda: _two(digests), timeout=60, what="the digests")
            by_rcpt = {r[0]: m for r, m in found}
            text = by_rcpt["cfo@example.com"].get_body(("plain",)).get_content()
            assert "New recommendations: 2" in text
            assert "Potential monthly savings: 120.15 USD" in text
            assert "Budget alerts: 1" in text
            assert "111122223333 2026-10: billed 12,345.67 USD" in text
            controller = by_rcpt["controller@example.com"].get_body(("plain",)).get_content()
            assert "12,345.67 USD" in controller and "New recommendations: 0" in controller
            assert cfo["digest"] is True


async def _two(digests) -> list | None:
    found = await digests()
    return found if len(found) == 2 else None
