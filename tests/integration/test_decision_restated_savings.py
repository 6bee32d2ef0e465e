"""Verified savings re-judged when their billing period is restated, against real Kafka and PostgreSQL: a batch
is not judged before its file's account-period is complete (CostPeriodCompleted); the verdict is computed from
the current version only, and a restatement (a newer version of the same account-period) judges it again, moves
it to the other verdict, audits the figures before and after and publishes the new verdict."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx

from finops_contracts.decisions import SavingsShortfall, SavingsVerified
from finops_contracts.events import CostBatchIngested, CostLine
from finops_contracts.topics import COST, DECISION, PURCHASE, RECOMMENDATION
from finops_decision.proposals import decision_id
from tests.support.decision import (
    AS_OF,
    decision,
    decision_events,
    feed_usage,
    people,
    period_completed,
    plan,
    purchased,
    record,
    running,
    tranche,
)
from tests.support.flow import scalar
from tests.support.kafka import produce
from tests.support.platform import ADMIN
from tests.support.services import wait_until


def day_of_lines(listed: str, unused: str | None = None) -> list[CostLine]:
    """24 hourly lines of March 1st covered by sp-x (effective 2.00, list `listed`), and `unused` of it unused."""
    common = dict(
        billing_account_id="1111", billing_period_start=AS_OF, billing_period_end=AS_OF + timedelta(days=31),
        billing_currency="USD", provider_name="AWS", charge_category="Usage", commitment_discount_id="sp-x",
    )  # fmt: skip
    lines = []
    for h in range(24):
        hour = dict(charge_period_start=AS_OF + timedelta(hours=h), charge_period_end=AS_OF + timedelta(hours=h + 1))
        lines.append(
            CostLine(**common, **hour, billed_cost=Decimal(0), effective_cost=Decimal("2.00"),
                     list_cost=Decimal(listed), commitment_discount_status="Used")
        )  # fmt: skip
        if unused:
            lines.append(
                CostLine(**common, **hour, billed_cost=Decimal(0), effective_cost=Decimal(unused),
                         list_cost=Decimal(0), commitment_discount_status="Unused")
            )  # fmt: skip
    return lines


def file_of(lines: list[CostLine], ingest_id: uuid.UUID) -> CostBatchIngested:
    return CostBatchIngested.of_lines(
        lines, ingest_id=ingest_id, batch_seq=0, billing_account_id="1111", billing_period_start=AS_OF
    )


async def test_a_restated_period_judges_verified_savings_again_to_the_cent(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    rec = plan(tranche("2.0000", "3.0000"), savings="600.00", recent_p50="10")
    first = decision_id(rec.recommendation_id, 0)
    async with running(service_env, verify_min_hours=Decimal(24)) as url, httpx.AsyncClient(timeout=30) as client:
        who = await people(url, fiona=("finance", []), bob=("business", []))
        await feed_usage(service_env, "10.00")
        await produce(bootstrap, ns + RECOMMENDATION.name, [record(rec, source="/test/recommend")])

        async def state(wanted: str) -> bool:
            r = await client.get(f"{url}/v1/decisions/{first}", headers=ADMIN)
            return r.status_code == 200 and r.json()["state"] == wanted

        await wait_until(lambda: state("pending_approval"), timeout=60, what="the decision pending")
        for name in ("fiona", "bob"):
            r = await client.post(f"{url}/v1/decisions/{first}/approve", headers=who[name], json={})
            assert r.status_code == 200, r.text
        assert r.json()["state"] == "purchase_requested"
        await produce(
            bootstrap, ns + PURCHASE.name, [record(purchased(first, "sp-x", "2.0000", start=AS_OF), source="/t")]
        )
        await wait_until(lambda: state("purchased"), timeout=60, what="purchased")

        # When version 1 of March arrives: 24 hours each saving 3.00 - 2.00, but its file not complete yet
        v1 = uuid.uuid4()
        lines = day_of_lines("3.00")
        await produce(bootstrap, ns + COST.name, [record(file_of(lines, v1), source="/test/ingest")])

        async def matched() -> bool:
            sql = "SELECT count(*) FROM decision.savings_match WHERE ingest_id = $1"
            return bool(await scalar(database_url, sql, v1))

        await wait_until(matched, timeout=60, what="version 1's lines matched")
        # Then nothing is judged on an incomplete file
        assert (await decision(client, url, first, ADMIN))["state"] == "purchased"

        # When the file's account-period completes
        await produce(bootstrap, ns + COST.name, [record(period_completed(lines, ingest_id=v1), source="/test/ingest")])
        await wait_until(lambda: state("savings_verified"), timeout=60, what="verified")
        # Then 24 x 1.00 = 24.00 realized against 600.00 x 24 / 730 = 19.73 estimated
        body = await decision(client, url, first, ADMIN)
        assert body["outcome"]["verification"]["realized"] == "24.00"
        assert body["outcome"]["verification"]["estimated"] == "19.73"

        # When March is restated (version 2): list 2.50 (saving 0.50 an hour) and 0.10 an hour unused
        v2 = uuid.uuid4()
        restated = day_of_lines("2.50", unused="0.10")
        await produce(
            bootstrap, ns + COST.name,
            [record(file_of(restated, v2), source="/test/ingest"),
             record(period_completed(restated, ingest_id=v2, version=2), source="/test/ingest")],
        )  # fmt: skip
        await wait_until(lambda: state("savings_shortfall"), timeout=60, what="judged again")

        # Then the verdict is the current version's: 24 x 0.50 - 24 x 0.10 = 9.60, 48.66% of 19.73
        body = await decision(client, url, first, ADMIN)
        assert body["outcome"]["verification"]["realized"] == "9.60"
        assert body["outcome"]["verification"]["realization"] == "0.4866"
        assert body["outcome"]["verification"]["lines"] == 48
        events = await decision_events(bootstrap, ns + DECISION.name, at_least=6)
        (verified,) = [e for e in events if isinstance(e, SavingsVerified) and e.decision_id == first]
        (short,) = [e for e in events if isinstance(e, SavingsShortfall) and e.decision_id == first]
        assert verified.realized_savings.amount == Decimal("24.00")
        assert short.realized_savings.amount == Decimal("9.60") and short.estimated_savings.amount == Decimal("19.73")
        assert short.state == "savings_shortfall"
        # And the change is audited with the figures before and after and the version that restated them
        rows = (await client.get(f"{url}/v1/audit", params={"decision_id": str(first)}, headers=ADMIN)).json()["rows"]
        (rejudged,) = [r for r in rows if r["action"] == "savings_rejudged"]
        assert rejudged["detail"]["before"]["realized"] == "24.00"
        assert rejudged["detail"]["after"]["realized"] == "9.60"
        assert rejudged["detail"]["restated"]["version"] == 2
        assert rejudged["detail"]["restated"]["ingest_id"] == str(v2)
        history = (await client.get(f"{url}/v1/decisions/{first}/history", headers=ADMIN)).json()
        assert [t["to_state"] for t in history["transitions"]][-2:] == ["savings_verified", "savings_shortfall"]
        # And version 1's matches no longer count (they are gone)
        assert await scalar(database_url, "SELECT count(*) FROM decision.savings_match WHERE ingest_id = $1", v1) == 0
