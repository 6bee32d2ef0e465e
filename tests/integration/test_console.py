"""The console through real Kafka and PostgreSQL: the platform's events (a bill and its restatement, allocation,
KPIs, recommendations, decisions through every state, purchases, verifications) published to the test's topics
become read models whose API answers match the events to the cent, in each persona's scope, page by page."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import httpx
import pytest

from finops_console.app import ConsoleSettings, create_app
from tests.support import console
from tests.support.kafka import count_records, delete_topics
from tests.support.platform import ADMIN, ADMIN_TOKEN
from tests.support.services import free_port, serve_in_process, wait_until


@pytest.fixture(scope="module")
async def fed_console(endpoints):
    """One console in this process, with a database and Kafka namespace of its own, that has read every event of
    the scenario; the tests only read it (or add tokens and sessions of their own)."""
    test_id = uuid.uuid4().hex[:10]
    name, namespace = f"t_{test_id}", f"t{test_id}."
    admin = await asyncpg.connect(endpoints.database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    database_url = f"{endpoints.database_url.rpartition('/')[0]}/{name}"
    settings = ConsoleSettings(
        database_url=database_url,
        kafka_bootstrap_servers=endpoints.kafka,
        kafka_namespace=namespace,
        admin_token=ADMIN_TOKEN,
        relay_poll_interval_s=0.2,
        pipeline_sample_s=0.5,
    )
    scenario = console.build()
    try:
        async with serve_in_process(create_app(settings), free_port()) as url:
            await scenario.publish(endpoints.kafka, namespace)
            conn = await asyncpg.connect(database_url)
            try:

                async def settled() -> bool:
                    final = await conn.fetchval(
                        "SELECT count(*) FROM console.decision WHERE state NOT IN ('proposed', 'purchase_requested')"
                    )
                    versions = await conn.fetchval("SELECT count(*) FROM console.cost_version WHERE version = 2")
                    tallied = await conn.fetchval("SELECT coalesce(sum(events), 0) FROM console.event_tally")
                    return final == len(scenario.decisions) and versions == 1 and tallied == len(scenario.records) - 1

                await wait_until(settled, timeout=90, what="the console to read every event of the scenario")
                yield url, scenario, conn, namespace
            finally:
                await conn.close()
    finally:
        await delete_topics(endpoints.kafka, prefix=namespace)
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def token_for(client: httpx.AsyncClient, url: str, **body: object) -> dict[str, str]:
    response = await client.post(f"{url}/v1/tokens", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def all_pages(client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: str) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        response = await client.get(url, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_costs_match_the_newest_version_of_each_period_to_the_cent(fed_console):
    # Given the console has read a bill and a restatement of one account's period
    url, scenario, _, _ = fed_console

    async with httpx.AsyncClient() as client:
        # When costs are read by team and period, and by service, a page of two at a time
        by_team = await all_pages(client, f"{url}/v1/costs", ADMIN, group_by="team,period", limit="2")
        by_service = await all_pages(client, f"{url}/v1/costs", ADMIN, group_by="service", limit="2")

    # Then every group equals the sum of the lines that count, to the cent, and nothing repeats across pages
    expected_team = scenario.cost_by("team", "period", "currency")
    # The team is the owner allocation published (ResourceOwned): a rule gives resource data-0 to platform though
    # its tag says data, so platform has cost; the untagged, resource-less support line is unallocated.
    assert {t for t, _, _ in expected_team} == {"checkout", "search", "data", "platform", "unallocated"}
    assert {(r["team"], r["period"], r["currency"]): r for r in by_team}.keys() == expected_team.keys()
    assert len(by_team) == len(expected_team)
    for r in by_team:
        billed, effective, lines = expected_team[(r["team"], r["period"], r["currency"])]
        assert (Decimal(r["billed_cost"]), Decimal(r["effective_cost"]), r["line_count"]) == (billed, effective, lines)
    expected_service = scenario.cost_by("service", "currency")
    assert {(r["service"], r["currency"]): Decimal(r["effective_cost"]) for r in by_service} == {
        k: v[1] for k, v in expected_service.items()
    }


async def test_restated_period_replaces_the_older_version(fed_console):
    # Given version 1 of both accounts' period and version 2 of the first account's
    url, scenario, conn, _ = fed_console

    # When the console's counted facts of the first account are read
    counted = await conn.fetchval(
        "SELECT sum(billed_cost) FROM console.cost_month WHERE billing_account_id = $1", console.ACCOUNTS[0]
    )

    # Then they are version 2's alone, and no staged rows are left behind
    assert counted == sum(ln.billed_cost for ln in scenario.lines if ln.billing_account_id == console.ACCOUNTS[0])
    assert await conn.fetchval("SELECT count(*) FROM console.cost_stage") == 0


async def test_allocations_count_only_the_current_version(fed_console):
    # Given allocations of every batch of both versions
    url, scenario, _, _ = fed_console

    async with httpx.AsyncClient() as client:
        # When allocations are read
        rows = await all_pages(client, f"{url}/v1/allocations", ADMIN, limit="3")

    # Then each owner's total per account is its lines' total in the version that counts
    totals: dict[tuple[str, str], Decimal] = {}
    for line in scenario.lines:
        key = (line.billing_account_id, line.tags.get("team", "unallocated"))
        totals[key] = totals.get(key, Decimal(0)) + line.effective_cost
    assert {(r["billing_account"], r["owner"]): Decimal(r["effective_cost"]) for r in rows} == totals


async def test_funnel_counts_money_and_lead_times(fed_console):
    # Given decisions through every state
    url, scenario, _, _ = fed_console

    async with httpx.AsyncClient() as client:
        # When the funnel is read
        funnel = (await client.get(f"{url}/v1/funnel", headers=ADMIN)).json()

    # Then each stage counts the decisions that reached it, with their money, and the lead times are the medians
    stages = {s["stage"]: s for s in funnel["stages"]}
    approved = ("verified", "shortfall", "failed", "rightsized")
    # "recommended" is the savings on offer: six taken up by decisions and one open, not the anomalies, the
    # superseded one, the expired one or the one past its expiry that no decision took up
    assert stages["recommended"]["count"] == 7
    assert Decimal(stages["recommended"]["amounts"][0]["amount"]) == scenario.recommended_total == Decimal("636.75")
    assert stages["approved"]["count"] == 4
    assert Decimal(stages["approved"]["amounts"][0]["amount"]) == sum(scenario.savings[n] for n in approved)
    assert stages["purchased"]["count"] == 2
    assert (
        Decimal(stages["purchased"]["amounts"][0]["amount"])
        == scenario.savings["verified"] + scenario.savings["shortfall"]
    )
    assert stages["savings_verified"]["count"] == 1
    assert Decimal(stages["savings_verified"]["amounts"][0]["amount"]) == scenario.realized["verified"]
    assert funnel["lead_times_seconds"] == {
        "recommended_to_approved": 86400.0,
        "approved_to_purchased": 43200.0,
        "purchased_to_verified": 30 * 86400.0,
    }
    assert funnel["outcomes"] == {"pending": 1, "rejected": 1, "expired": 1, "failed": 1, "shortfall": 1}
    # and the open anomaly is a cost change apart, never added to the savings
    assert funnel["cost_changes"]["count"] == 1
    assert [Decimal(a["amount"]) for a in funnel["cost_changes"]["amounts"]] == [scenario.cost_change_total]
    assert "not savings" in funnel["cost_changes"]["label"]


async def test_decision_history_is_the_audit_trail_in_order(fed_console):
    # Given the verified commitment went proposed -> requested -> approved -> purchase requested -> bought -> verified
    url, scenario, _, _ = fed_console

    async with httpx.AsyncClient() as client:
        # When it is opened
        response = await client.get(f"{url}/v1/decisions/{scenario.decisions['verified']}", headers=ADMIN)

    # Then its history lists each step in order, with who approved
    assert response.status_code == 200
    detail = response.json()
    assert [e["state"] for e in detail["history"]] == [
        "proposed",
        "pending_approval",
        "approved",
        "purchase_requested",
        "purchased",
        "savings_verified",
    ]
    assert detail["history"][2]["actor"] == "fiona, erin@checkout"
    assert detail["state"] == "savings_verified"
    assert detail["commitment_id"].endswith(str(scenario.decisions["verified"]))
    assert detail["recommendation"]["recommendation_id"] == str(scenario.recommendations["verified"])


async def test_engineering_sees_only_its_team(fed_console):
    # Given an engineer of team checkout
    url, scenario, _, _ = fed_console
    async with httpx.AsyncClient() as client:
        engineer = await token_for(client, url, name="erin", role="engineering", teams=["checkout"])

        # When the engineer reads costs, decisions, recommendations, the funnel and another team's decision
        costs = await all_pages(client, f"{url}/v1/costs", engineer, group_by="team")
        decisions = await all_pages(client, f"{url}/v1/decisions", engineer)
        recommendations = await all_pages(client, f"{url}/v1/recommendations", engineer)
        funnel = (await client.get(f"{url}/v1/funnel", headers=engineer)).json()
        other = await client.get(f"{url}/v1/decisions/{scenario.decisions['shortfall']}", headers=engineer)
        pipeline = await client.get(f"{url}/v1/pipeline", headers=engineer)

    # Then only checkout's rows come back, and another team's decision is not found
    assert {r["team"] for r in costs} == {"checkout"}
    assert {d["owner_team"] for d in decisions} == {"checkout"}
    assert len(decisions) == 3
    assert {r["owner_team"] for r in recommendations} == {"checkout"}
    assert {s["stage"]: s["count"] for s in funnel["stages"]} == {
        "recommended": 2,
        "approved": 2,
        "purchased": 1,
        "savings_verified": 1,
    }
    assert other.status_code == 404
    assert pipeline.status_code == 403


async def test_pipeline_shows_rates_lag_dead_letters_and_ingest_runs(fed_console):
    # Given the scenario, whose last decision record is unreadable
    url, scenario, _, _ = fed_console
    bootstrap_dlq = f"{url}/v1/pipeline"

    async with httpx.AsyncClient() as client:

        async def sampled():
            body = (await client.get(bootstrap_dlq, headers=ADMIN)).json()
            decision = next(t for t in body["topics"] if t["topic"] == "finops.decision.v1")
            return body if decision["dead_letters"] == scenario.poison and body["groups"] else None

        # When the pipeline health is read after the sampler has seen the dead letter
        body = await wait_until(sampled, timeout=30, what="the dead letter and the console group in the samples")

    # Then the topics' event counts, the console group's lag and the ingest runs are there
    cost = next(t for t in body["topics"] if t["topic"] == "finops.cost.v1")
    assert cost["events"] == sum(1 for r in scenario.records if r.topic == "finops.cost.v1")
    assert "console" in {g["group"] for g in body["groups"]}
    statuses = sorted(r["status"] for r in body["ingest_runs"])
    assert statuses == ["completed", "completed", "rejected"]
    assert {c["type"] for c in body["consumed"]} >= {
        "finops.decision.savings_verified.v1",
        "finops.cost.batch_ingested.v2",
    }


async def test_dead_lettered_record_reaches_the_dlq_topic(fed_console, endpoints):
    # Given the unreadable decision record
    url, scenario, _, namespace = fed_console

    # When the dead-letter topic is counted
    async def dead() -> int:
        return await count_records(endpoints.kafka, f"{namespace}finops.decision.v1.dlq")

    # Then the console's outbox put it there
    assert await wait_until(dead, timeout=30, what="the dead letter") == scenario.poison


async def test_kpis_and_journals(fed_console):
    # Given KPIs, coverage, budgets, unit costs and a journal of 2026-09
    url, scenario, _, _ = fed_console

    async with httpx.AsyncClient() as client:
        # When the KPIs and journals are read
        kpis = (await client.get(f"{url}/v1/kpis", headers=ADMIN)).json()
        journals = (await client.get(f"{url}/v1/journals", headers=ADMIN)).json()

    # Then they carry the events' numbers
    assert kpis["period"] == "2026-09"
    # (totals over the account's flexible pool only: its scoped m5 pool is listed, not counted twice)
    assert kpis["commitments"]["totals"][0]["effective_savings_rate"] == "0.2000"
    assert kpis["commitments"]["totals"][0]["on_demand_equivalent"] == "10000.00"
    assert kpis["commitments"]["utilization"].startswith("0.97")
    assert {p["pool"].split("/")[0]: p["scope"] for p in kpis["commitments"]["pools"]} == {
        "aws_compute_savings_plan": {},
        "aws_ec2_instance_savings_plan": {"region": "us-east-1", "instance_family": "m5"},
    }
    assert {c["scope"]: c["allocated_share"] for c in kpis["coverage"]} == {
        "checkout": "0.90",
        "search": "0.80",
        "data": "0.70",
    }
    assert {b["scope"]: b["forecast"] for b in kpis["budgets"]} == {"checkout": "1250.00", "search": "1250.00"}
    assert kpis["unit_costs"][0]["unit_cost"] == {"amount": "0.20", "currency": "USD"}
    assert kpis["savings"] == [
        {
            "currency": "USD",
            "decisions": 2,
            "realized": str(scenario.realized["verified"] + scenario.realized["shortfall"]),
            "estimated": str(scenario.savings["verified"] + scenario.savings["shortfall"]),
        }
    ]
    assert journals[0]["entity"] == "ACME Corp"


async def test_bad_queries_say_what_to_send(fed_console):
    # Given the console
    url, _, _, _ = fed_console

    async with httpx.AsyncClient() as client:
        # When queries are wrong
        cases = {
            "group_by=colour": "group_by 'colour' is not a dimension",
            "limit=0": "limit must be from 1 to 1000",
            "period_from=2026-13": "period_from must be a month as YYYY-MM",
            "cursor=garbage": "cursor is not one this API issued",
            "sort=random": "sort must be key or cost",
        }
        answers = {q: await client.get(f"{url}/v1/costs?{q}", headers=ADMIN) for q in cases}
        no_token = await client.get(f"{url}/v1/costs")
        bad_id = await client.get(f"{url}/v1/decisions/not-a-uuid", headers=ADMIN)

    # Then each is a 400 naming the parameter and what to do; no token is a 401
    for query, text in cases.items():
        assert answers[query].status_code == 400, query
        assert text in answers[query].json()["error"], answers[query].json()
    assert no_token.status_code == 401
    assert bad_id.status_code == 400 and "not a UUID" in bad_id.json()["error"]


async def test_sign_in_sets_a_strict_http_only_session_and_sign_out_ends_it(fed_console):
    # Given a finance token
    url, _, conn, _ = fed_console
    async with httpx.AsyncClient(base_url=url) as client:
        finance = await token_for(client, url, name="fiona", role="finance")
        token = finance["Authorization"].removeprefix("Bearer ")

        # When the person signs in with it, reads the API with the cookie, then signs out
        wrong = await client.post("/signin", data={"token": "fo_wrong"})
        signed = await client.post("/signin", data={"token": token})
        cookie = signed.headers["set-cookie"]
        me = await client.get("/v1/me")
        page = await client.get("/")
        out = await client.post("/signout")
        after = await client.get("/v1/me")

    # Then the cookie is HttpOnly and SameSite=Strict, holds no token, and is useless once signed out
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    assert signed.status_code == 303
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert token not in cookie
    assert me.json()["role"] == "finance"
    assert page.status_code == 200 and "FinOps console" in page.text
    assert out.status_code == 303
    assert after.status_code == 401
    assert await conn.fetchval("SELECT count(*) FROM console.session") == 0


async def test_documents(fed_console):
    # Given the console
    url, _, _, _ = fed_console

    async with httpx.AsyncClient() as client:
        # When its documents are read
        openapi = (await client.get(f"{url}/openapi.json")).json()
        asyncapi = (await client.get(f"{url}/asyncapi.json")).json()

    # Then the OpenAPI document lists the query API and the AsyncAPI one every topic and decision event
    assert {"/v1/costs", "/v1/allocations", "/v1/recommendations", "/v1/decisions"} <= openapi["paths"].keys()
    assert {
        "finops.cost.v1",
        "finops.ingest.v1",
        "finops.allocation.v1",
        "finops.recommendation.v1",
        "finops.decision.v1",
        "finops.purchase.v1",
    } <= asyncapi["channels"].keys()
    assert {"DecisionApproved", "CommitmentPurchased", "SavingsVerified"} <= asyncapi["components"]["messages"].keys()
