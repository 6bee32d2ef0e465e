"""The approval policy as data, against real Kafka and PostgreSQL: automation approves a small commitment under
the default policy's autopilot rule (and says so) but not one whose coverage it cannot check; a practitioner
PUTs a new policy version that later decisions record; a delegate approves on the delegator's behalf, the
delegator then counts once; a person who proposed through the API never approves, even by delegation; a grown
commitment resets its approvals; a superseded recommendation expires its decision; a decision nobody approves is
reminded, escalated to the practitioner and expires."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from finops_contracts.decisions import ApprovalRequested, DecisionApproved, DecisionExpired, PurchaseRequested
from finops_contracts.recommendations import Kind, RecommendationSuperseded, RecommendationUpdated
from finops_contracts.topics import DECISION, RECOMMENDATION
from finops_decision.proposals import decision_id
from tests.support.decision import (
    decision,
    decision_events,
    feed_usage,
    finding,
    people,
    plan,
    record,
    running,
    tranche,
)
from tests.support.kafka import produce
from tests.support.platform import ADMIN
from tests.support.services import wait_until

TWO_FINANCE = """
savings_tolerance: "0.8"
rules:
  - name: commitments-two-finance
    priority: 1
    match: {kinds: [commitment_plan]}
    requirements: [{persona: finance, quorum: 2}]
  - name: team-change
    priority: 2
    match: {kinds: [rightsizing, idle]}
    requirements: [engineering]
"""

HURRIED = """
rules:
  - name: commitment
    match: {kinds: [commitment_plan]}
    requirements: [finance, business]
  - name: hurried-change
    match: {kinds: [rightsizing, idle]}
    requirements: [engineering]
    remind_every: PT1S
    escalate_after_reminders: 2
    expires_after: PT5S
"""


async def state_of(client: httpx.AsyncClient, url: str, d: uuid.UUID, state: str) -> dict | None:
    r = await client.get(f"{url}/v1/decisions/{d}", headers=ADMIN)
    return r.json() if r.status_code == 200 and r.json()["state"] == state else None


async def test_autopilot_policy_versions_delegation_and_the_proposer(service_env):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    # Given two small plans (146 a month): one whose pool usage is known (coverage 0.03), one without evidence
    small = plan(tranche("0.2000", "0.3000"), savings="40.00", recent_p50="10")
    unknown = plan(tranche("0.2000", "0.3000"), savings="40.00")
    auto, asked = decision_id(small.recommendation_id, 0), decision_id(unknown.recommendation_id, 0)

    async with running(service_env) as url, httpx.AsyncClient(timeout=30) as client:
        who = await people(
            url, pat=("practitioner", []), erin=("engineering", ["payments"]), fiona=("finance", []),
            dan=("finance", []),
        )  # fmt: skip
        await feed_usage(service_env, "10.00")  # the pool's usage the guard checks the purchases against
        await produce(bootstrap, ns + RECOMMENDATION.name, [record(e, source="/t") for e in (small, unknown)])

        # Then automation approves the first under the default policy's autopilot rule, and requests its purchase
        done = await wait_until(lambda: state_of(client, url, auto, "purchase_requested"), timeout=60, what="autopilot")
        assert done["automatic"] and done["policy"]["rule"] == "commitment-autopilot"
        events = await decision_events(bootstrap, ns + DECISION.name, at_least=5)
        (approved,) = [e for e in events if isinstance(e, DecisionApproved)]
        assert approved.decision_id == auto and approved.automatic
        assert approved.policy_rule == "commitment-autopilot" and approved.policy_version == 1
        assert approved.approvals[0].principal == "automation" and approved.approvals[0].rule == "commitment-autopilot"
        assert "coverage 0.0300 within 0.8" in approved.approvals[0].comment
        assert [e.client_token for e in events if isinstance(e, PurchaseRequested)] == [str(auto)]
        # And the one whose coverage cannot be checked waits for the rule's practitioner
        waiting = await wait_until(lambda: state_of(client, url, asked, "pending_approval"), timeout=30, what="asked")
        assert [r["persona"] for r in waiting["requirements"]] == ["practitioner"]

        # When an engineer, then a practitioner with a broken rule, then a practitioner with a good one PUT a policy
        engineer = await client.put(f"{url}/v1/policy", headers=who["erin"], content=TWO_FINANCE)
        broken = await client.put(
            f"{url}/v1/policy", headers=who["pat"], content=TWO_FINANCE.replace("quorum: 2", "quorum: 0")
        )
        put = await client.put(
            f"{url}/v1/policy", headers={**who["pat"], "Content-Type": "application/yaml"}, content=TWO_FINANCE
        )

        # Then only the last is version 2; version 1 is still there
        assert engineer.status_code == 403
        assert broken.status_code == 422 and "rule commitments-two-finance: requirements.0.quorum" in broken.text
        assert put.status_code == 201 and put.json()["version"] == 2
        current = (await client.get(f"{url}/v1/policy", headers=who["erin"])).json()
        assert current["version"] == 2 and current["rules"][0]["requirements"][0]["quorum"] == 2
        first = (await client.get(f"{url}/v1/policy", params={"version": "1"}, headers=who["erin"])).json()
        assert first["version"] == 1 and not first["current"]

        # When a 400 a month commitment arrives under version 2, and fiona delegates her approvals to pat
        mid = plan(tranche("0.5500", "0.8000"), savings="90.00", recent_p50="1")
        middle = decision_id(mid.recommendation_id, 0)
        await produce(bootstrap, ns + RECOMMENDATION.name, [record(mid, source="/t")])
        pending = await wait_until(lambda: state_of(client, url, middle, "pending_approval"), timeout=60, what="mid")
        until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        delegated = await client.post(
            f"{url}/v1/delegations", headers=who["fiona"], json={"delegate": "pat", "until": until}
        )

        # Then it records policy version 2, and two finance approvals are needed
        assert pending["policy"]["version"] == 2 and pending["policy"]["rule"] == "commitments-two-finance"
        assert pending["requirements"] == [{"persona": "finance", "quorum": 2, "team": None, "missing": 2}]
        assert delegated.status_code == 201 and delegated.json()["persona"] == "finance"

        # When pat approves (as fiona's delegate), then fiona herself, then dan
        by_pat = await client.post(f"{url}/v1/decisions/{middle}/approve", headers=who["pat"], json={})
        by_fiona = await client.post(f"{url}/v1/decisions/{middle}/approve", headers=who["fiona"], json={})
        by_dan = await client.post(f"{url}/v1/decisions/{middle}/approve", headers=who["dan"], json={})

        # Then pat's approval is fiona's, fiona counts once, and dan's completes the quorum
        assert by_pat.status_code == 200, by_pat.text
        assert by_pat.json()["approvals"][0] | {"at": None} == {
            "principal": "pat", "persona": "finance", "on_behalf_of": "fiona", "comment": "", "rule": None,
            "at": None, "counts": True,
        }  # fmt: skip
        assert by_pat.json()["requirements"][0]["missing"] == 1
        assert by_fiona.status_code == 409 and "one person counts once" in by_fiona.json()["error"]
        assert by_dan.status_code == 200 and by_dan.json()["state"] == "purchase_requested"

        # When pat proposes a commitment through the API, then tries to approve it with fiona's delegation
        proposal = {
            "recommendation_id": str(uuid.uuid4()), "kind": "commitment_plan", "title": "pat's own idea",
            "owner_team": "payments", "estimated_monthly_savings": {"amount": "50.00", "currency": "USD"},
            "purchase": tranche("0.5000", "0.7000").model_dump(mode="json"),
        }  # fmt: skip
        proposed = await client.post(f"{url}/v1/decisions", headers=who["pat"], json=proposal)
        assert proposed.status_code == 201, proposed.text
        own = proposed.json()
        refused = await client.post(f"{url}/v1/decisions/{own['id']}/approve", headers=who["pat"], json={})

        # Then the proposal is pat's, and pat may not approve it
        assert own["proposer"] == "pat" and own["state"] == "pending_approval"
        assert refused.status_code == 403 and "proposer never approves" in refused.json()["error"]
        assert own["id"] not in {
            d["id"] for d in (await client.get(f"{url}/v1/decisions/waiting", headers=who["pat"])).json()["decisions"]
        }


async def test_updates_supersession_reminders_and_expiry(service_env):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = ns + RECOMMENDATION.name
    # Given a policy whose team changes are reminded every second, escalated after 2 reminders, expired after 5 s
    growing = plan(tranche("2.0000", "3.0000"), savings="300.00")
    replaced = plan(tranche("2.0000", "3.0000"), savings="300.00")
    idle = finding(Kind.IDLE, team="search")
    grown, gone, quiet = (
        decision_id(growing.recommendation_id, 0), decision_id(replaced.recommendation_id, 0),
        decision_id(idle.recommendation_id, None),
    )  # fmt: skip

    async with running(service_env) as url, httpx.AsyncClient(timeout=30) as client:
        who = await people(url, fiona=("finance", []))
        await feed_usage(service_env, "10.00")  # the pool's usage the guard checks the purchases against
        assert (await client.put(f"{url}/v1/policy", headers=ADMIN, content=HURRIED)).status_code == 201
        await produce(bootstrap, topic, [record(e, source="/t") for e in (growing, replaced, idle)])
        await wait_until(lambda: state_of(client, url, grown, "pending_approval"), timeout=60, what="pending")
        approve = await client.post(f"{url}/v1/decisions/{grown}/approve", headers=who["fiona"], json={})
        assert approve.status_code == 200 and approve.json()["requirements"][0]["missing"] == 0

        # When the plan is updated with a larger commitment (2.50/h: 1,825 a month), and the other superseded
        bigger = RecommendationUpdated(
            **growing.model_dump(exclude={"purchases", "version"}), version=2, purchases=(tranche("2.5000", "3.6000"),)
        )
        successor = uuid.uuid4()
        superseded = RecommendationSuperseded(
            recommendation_id=replaced.recommendation_id, kind=Kind.COMMITMENT_PLAN, target=replaced.target,
            owner_team="payments", superseded_by=successor, reason="newer data",
        )  # fmt: skip
        await produce(bootstrap, topic, [record(bigger, source="/t"), record(superseded, source="/t")])

        # Then fiona's approval no longer counts: a new round asks again with the new amount
        reset = await wait_until(
            lambda: _round(client, url, grown, 1), timeout=60, what="the grown decision's approvals reset"
        )
        assert reset["state"] == "pending_approval" and reset["approvals"] == []
        assert reset["monthly_commitment"] == {"amount": "1825.0000", "currency": "USD"}
        assert [r["missing"] for r in reset["requirements"]] == [1, 1]
        # And the superseded one expired, naming its successor
        expired = await wait_until(lambda: state_of(client, url, gone, "expired"), timeout=60, what="superseded")
        assert expired["state"] == "expired"

        # Then the idle finding nobody approves is reminded, escalated to the practitioner, and expires
        final = await wait_until(lambda: state_of(client, url, quiet, "expired"), timeout=60, what="idle expired")
        assert [r["persona"] for r in final["requirements"]] == ["engineering", "practitioner"]
        events = await decision_events(bootstrap, ns + DECISION.name, at_least=12)
        reminders = [e.reminder for e in events if isinstance(e, ApprovalRequested) and e.decision_id == quiet]
        assert reminders[:3] == [0, 1, 2]
        escalated = [
            e for e in events if isinstance(e, ApprovalRequested) and e.decision_id == quiet and e.reminder == 2
        ]
        assert [r.persona for r in escalated[0].requirements] == ["engineering", "practitioner"]
        asks = [e for e in events if isinstance(e, ApprovalRequested) and e.decision_id == grown]
        assert [a.monthly_commitment.amount for a in asks][-1] == 1825
        reasons = {e.decision_id: e.reason for e in events if isinstance(e, DecisionExpired)}
        assert str(successor) in reasons[gone]
        assert reasons[quiet].startswith("approvals did not arrive by")


async def _round(client: httpx.AsyncClient, url: str, d: uuid.UUID, n: int) -> dict | None:
    found = await decision(client, url, d, ADMIN)
    return found if found["round"] == n else None
