"""The decision service's guard before money moves, against real Kafka and PostgreSQL: the service keeps its own
hourly usage of each pool from the cost batches (each row under the current version of its own billing account
and period), and refuses to request a purchase whose hourly commitment exceeds the pool's median hourly usage
(FINOPS_GUARD_MAX_USAGE_SHARE 1.0 x, over FINOPS_GUARD_LOOKBACK_DAYS): on a person's approval and on the
autopilot's alike. A refused decision sends nothing to purchase; it waits for a practitioner, with both figures
in the audit log and the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from finops_contracts.decisions import ApprovalRequested, PurchaseRequested
from finops_contracts.topics import DECISION, RECOMMENDATION
from finops_decision.proposals import decision_id
from tests.support.decision import decision, decision_events, feed_usage, people, plan, record, running, tranche
from tests.support.flow import scalar
from tests.support.kafka import produce
from tests.support.platform import ADMIN
from tests.support.services import wait_until

JAN_31 = datetime(2026, 1, 31, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)


def proposal(per_hour: str) -> dict:
    return {
        "recommendation_id": str(uuid.uuid4()), "kind": "commitment_plan", "title": f"commit {per_hour}/h",
        "owner_team": "payments", "estimated_monthly_savings": {"amount": "500.00", "currency": "USD"},
        "purchase": tranche(per_hour, per_hour).model_dump(mode="json"), "billing_account_id": "1111",
        "provider_name": "AWS",
    }  # fmt: skip


async def purchase_requests(database_url: str, decision_id: str) -> int:
    """Purchase requests for the decision waiting in the decision service's outbox (the relay deletes what it
    sent; the topic is checked as well)."""
    sql = """SELECT count(*) FROM decision.outbox
             WHERE headers->>'ce_type' = $1 AND convert_from(key, 'UTF8') = $2"""
    return await scalar(database_url, sql, PurchaseRequested.TYPE, decision_id)


async def requested_on_topic(bootstrap: str, topic: str, decision_id: str) -> list[PurchaseRequested]:
    events = await decision_events(bootstrap, topic, at_least=1)
    return [e for e in events if isinstance(e, PurchaseRequested) and str(e.decision_id) == decision_id]


async def audit_of(client: httpx.AsyncClient, url: str, decision_id: str, action: str) -> list[dict]:
    rows = (await client.get(f"{url}/v1/audit", params={"decision_id": decision_id}, headers=ADMIN)).json()["rows"]
    return [r for r in rows if r["action"] == action]


async def test_ten_times_the_usage_approved_by_everyone_is_not_bought_but_escalated(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    async with running(service_env) as url, httpx.AsyncClient(timeout=30) as client:
        who = await people(
            url, pat=("practitioner", []), quinn=("practitioner", []), fiona=("finance", []), bob=("business", [])
        )
        # Given a day of the pool's usage at 10.00 an hour, as the cost batches show it
        await feed_usage(service_env, "10.00", start=FEB_1)

        # When pat proposes 100.00 an hour (10 times the usage) and everyone the policy names approves
        proposed = await client.post(f"{url}/v1/decisions", headers=who["pat"], json=proposal("100.0000"))
        assert proposed.status_code == 201, proposed.text
        big = proposed.json()
        assert [r["persona"] for r in big["requirements"]] == ["finance", "business"]
        assert (await client.post(f"{url}/v1/decisions/{big['id']}/approve", headers=who["fiona"])).status_code == 200
        last = await client.post(f"{url}/v1/decisions/{big['id']}/approve", headers=who["bob"], json={})

        # Then it is not sent to purchase: it waits for a practitioner, showing both figures
        assert last.status_code == 200, last.text
        body = last.json()
        assert body["state"] == "pending_approval"
        assert [(r["persona"], r["missing"]) for r in body["requirements"]] == [
            ("finance", 0), ("business", 0), ("practitioner", 1)
        ]  # fmt: skip
        assert body["guard"]["allowed"] is False
        assert body["guard"]["commitment_per_hour"] == "100.0000"
        assert body["guard"]["observed_usage_per_hour"] == "10.00"
        assert body["guard"]["max_usage_share"] == "1" and body["guard"]["lookback_days"] == "30"
        assert (await decision(client, url, uuid.UUID(big["id"]), ADMIN))["guard"] == body["guard"]

        # And nothing for it is in the outbox or on the decision topic; the practitioner is asked
        assert await purchase_requests(database_url, big["id"]) == 0
        events = [
            e
            for e in await decision_events(bootstrap, ns + DECISION.name, at_least=3)
            if str(e.decision_id) == big["id"]
        ]
        assert not [e for e in events if isinstance(e, PurchaseRequested)]
        asked = [e for e in events if isinstance(e, ApprovalRequested)]
        assert len(asked) == 2 and [r.persona for r in asked[-1].requirements][-1] == "practitioner"
        assert asked[-1].approvers == ("quinn",)  # pat proposed it

        # And the refusal is audited with both figures, the share and the lookback
        (refusal,) = await audit_of(client, url, big["id"], "guard_refused")
        assert refusal["actor"] == "decision"
        detail = refusal["detail"]
        assert detail["commitment_per_hour"] == "100.0000" and detail["observed_usage_per_hour"] == "10.00"
        assert detail["max_usage_share"] == "1" and detail["lookback_hours"] == 720
        assert detail["path"] == "approval" and detail["escalated_to"] == "practitioner"
        assert detail["usage_statistic"] == "median hourly on-demand-equivalent usage"

        # When the practitioner approves too, the guard still refuses: it is not overridden
        again = await client.post(f"{url}/v1/decisions/{big['id']}/approve", headers=who["quinn"], json={})
        assert again.status_code == 200 and again.json()["state"] == "pending_approval", again.text
        assert await purchase_requests(database_url, big["id"]) == 0
        assert len(await audit_of(client, url, big["id"], "guard_refused")) == 2

        # When a commitment within the usage (8.00 an hour) is approved by everyone the policy names
        proposed = await client.post(f"{url}/v1/decisions", headers=who["pat"], json=proposal("8.0000"))
        small = proposed.json()
        await client.post(f"{url}/v1/decisions/{small['id']}/approve", headers=who["fiona"], json={})
        done = await client.post(f"{url}/v1/decisions/{small['id']}/approve", headers=who["bob"], json={})

        # Then it goes through to purchase, the guard's pass audited
        assert done.json()["state"] == "purchase_requested", done.text
        assert done.json()["guard"]["allowed"] is True
        sent = await wait_until(
            lambda: requested_on_topic(bootstrap, ns + DECISION.name, small["id"]), timeout=60, what="the request"
        )
        assert sent[0].purchase.commitment_per_hour.amount == Decimal("8.0000")
        # and nothing was ever published for the refused one
        assert not await requested_on_topic(bootstrap, ns + DECISION.name, big["id"])
        (passed,) = await audit_of(client, url, small["id"], "guard_passed")
        assert passed["detail"]["observed_usage_per_hour"] == "10.00"


async def test_the_autopilot_is_refused_too_and_no_usage_is_refused(service_env, database_url):
    ns, bootstrap = service_env["FINOPS_KAFKA_NAMESPACE"], service_env["KAFKA_BOOTSTRAP_SERVERS"]
    async with running(service_env) as url, httpx.AsyncClient(timeout=30) as client:
        # Given a pool using 0.10 an hour, and a plan the autopilot may approve (146.00 a month, coverage 0.03)
        await feed_usage(service_env, "0.10", start=FEB_1)
        rec = plan(tranche("0.2000", "0.3000"), savings="20.00", recent_p50="10")
        # and a plan for an account whose usage nobody observed
        unseen = plan(tranche("0.1000", "0.1500"), savings="10.00", recent_p50="10").model_copy(
            update={"billing_account_id": "9999"}
        )
        await produce(
            bootstrap, ns + RECOMMENDATION.name, [record(rec, source="/test/recommend"), record(unseen, source="/t")]
        )
        auto, blind = decision_id(rec.recommendation_id, 0), decision_id(unseen.recommendation_id, 0)

        async def waiting(d: uuid.UUID) -> dict | None:
            r = await client.get(f"{url}/v1/decisions/{d}", headers=ADMIN)
            return r.json() if r.status_code == 200 and r.json()["state"] == "pending_approval" else None

        # Then automation approved it, but the guard refused its purchase (0.20 > 0.10): it waits for a practitioner
        found = await wait_until(lambda: waiting(auto), timeout=60, what="the autopilot's decision refused")
        assert found["approvals"][0]["principal"] == "automation"
        assert found["guard"]["commitment_per_hour"] == "0.2000"
        assert found["guard"]["observed_usage_per_hour"] == "0.10"
        assert [(r["persona"], r["missing"]) for r in found["requirements"]] == [("practitioner", 1)]
        assert await purchase_requests(database_url, str(auto)) == 0
        assert not await requested_on_topic(bootstrap, ns + DECISION.name, str(auto))
        (refusal,) = await audit_of(client, url, str(auto), "guard_refused")
        assert refusal["detail"]["path"] == "autopilot"
        # And the plan of an account with no observed usage is refused, saying so
        none = await wait_until(lambda: waiting(blind), timeout=60, what="the unseen pool's decision refused")
        assert none["guard"]["observed_usage_per_hour"] is None
        assert "no usage observed" in none["guard"]["reason"]
        assert await purchase_requests(database_url, str(blind)) == 0


async def test_a_restatement_that_lowers_usage_refuses_a_later_request(service_env, database_url):
    async with running(service_env) as url, httpx.AsyncClient(timeout=30) as client:
        who = await people(url, pat=("practitioner", []), fiona=("finance", []), bob=("business", []))
        # Given January 31st and February 1st at 10.00 an hour, in two account-periods (January, February) of
        # one file: each row counts once, under its own account-period's version (not once per period of the file)
        february = await feed_usage(service_env, "10.00", start=JAN_31)
        await feed_usage(service_env, "10.00", start=FEB_1, ingest_id=february, batch_seq=1)

        async def approved_by_all(per_hour: str) -> dict:
            d = (await client.post(f"{url}/v1/decisions", headers=who["pat"], json=proposal(per_hour))).json()
            await client.post(f"{url}/v1/decisions/{d['id']}/approve", headers=who["fiona"], json={})
            return (await client.post(f"{url}/v1/decisions/{d['id']}/approve", headers=who["bob"], json={})).json()

        # Then 8.00 an hour is within the median of 10.00
        first = await approved_by_all("8.0000")
        assert first["state"] == "purchase_requested" and first["guard"]["observed_usage_per_hour"] == "10.00"
        assert first["guard"]["hours_observed"] == 48

        # When February is restated at 5.00 an hour (version 2 of that account-period only)
        restated = await feed_usage(service_env, "5.00", start=FEB_1, version=2)
        assert restated != february

        # Then the same request is refused: 24 hours at 10.00 (January, untouched) and 24 at 5.00 (February's
        # current version; version 1 no longer counts) have a median of 7.50
        later = await approved_by_all("8.0000")
        assert later["state"] == "pending_approval"
        assert later["guard"]["observed_usage_per_hour"] == "7.50" and later["guard"]["hours_observed"] == 48
        assert await purchase_requests(database_url, later["id"]) == 0
        topic = service_env["FINOPS_KAFKA_NAMESPACE"] + DECISION.name
        assert not await requested_on_topic(service_env["KAFKA_BOOTSTRAP_SERVERS"], topic, later["id"])
        # And of the first file only its February rows are gone; its January rows still count
        sql = "SELECT count(*) FROM decision.pool_usage WHERE ingest_id = $1 AND billing_period_start = $2"
        assert await scalar(database_url, sql, february, FEB_1) == 0
        assert await scalar(database_url, sql, february, datetime(2026, 1, 1, tzinfo=UTC)) == 24
