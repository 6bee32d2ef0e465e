"""The whole loop, every service as its own process over real Kafka and PostgreSQL: a month of on-demand compute
is ingested; recommend turns it into a commitment plan; decision asks the personas its policy names; two people
(finance and business, plus the practitioner if the policy wants one) approve over HTTP; purchase buys the
tranche from the sandbox provider exactly once; the next bill shows the commitment in use (CommitmentDiscountId);
and the decision reaches savings_verified with the realized amount computed here, to the cent, from the file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx

from tests.support.loop_bills import VERIFY_HOURS, october, september
from tests.support.platform import ADMIN
from tests.support.services import wait_until


async def upload(client: httpx.AsyncClient, ingest_url: str, path: Path) -> None:
    response = await client.post(f"{ingest_url}/v1/ingest", params={"name": path.name}, content=path.read_bytes())
    assert response.status_code == 201, response.text


async def person(client: httpx.AsyncClient, url: str, name: str, role: str, teams: list[str]) -> dict[str, str]:
    response = await client.post(f"{url}/v1/tokens", headers=ADMIN, json={"name": name, "role": role, "teams": teams})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_cost_to_recommendation_to_approval_to_purchase_to_verified_savings(spawn, tmp_path):
    # Given every service of the loop as a process, and the sandbox provider with its own ledger
    sandbox = spawn("finops_purchase.sandbox", name="sandbox")
    await sandbox.start()
    ingest = spawn("finops_ingest", name="ingest")
    allocation = spawn("finops_allocation", name="allocation")  # owners: allocation alone publishes them
    recommend = spawn("finops_recommend", name="recommend", env={"FINOPS_ANALYSIS_QUIET_S": "0.5"})
    decision = spawn(
        "finops_decision",
        name="decision",
        env={"FINOPS_VERIFY_MIN_HOURS": str(VERIFY_HOURS), "FINOPS_DECISION_TICK_S": "0.5"},
    )
    purchase = spawn("finops_purchase", name="purchase", env={"FINOPS_SANDBOX_URL": sandbox.url})
    for service in (ingest, allocation, recommend, decision, purchase):
        await service.start()

    async with httpx.AsyncClient(timeout=60) as client:
        # When a month of on-demand compute is ingested
        await upload(client, ingest.url, september(tmp_path / "september.csv"))

        # Then recommend plans a commitment and decision waits for the personas its policy names
        pending: list[dict] = []

        async def waiting() -> bool:
            response = await client.get(f"{decision.url}/v1/decisions", headers=ADMIN)
            assert response.status_code == 200, response.text
            pending[:] = [d for d in response.json()["decisions"] if d["state"] == "pending_approval"]
            return bool(pending)

        await wait_until(waiting, timeout=120, what="a commitment decision pending approval")
        assert len(pending) == 1, pending
        [pending_decision] = pending
        decision_id = pending_decision["id"]
        assert pending_decision["kind"] == "commitment_plan"

        # and its owner is the team allocation published for the servers (it may follow the first version)
        async def owned() -> bool:
            body = (await client.get(f"{decision.url}/v1/decisions/{decision_id}", headers=ADMIN)).json()
            return body["owner_team"] == "payments"

        await wait_until(owned, timeout=120, what="the decision to carry the owner allocation published")
        detail = (await client.get(f"{decision.url}/v1/decisions/{decision_id}", headers=ADMIN)).json()
        required = {r["persona"] for r in detail["requirements"]}
        assert {"finance", "business"} <= required, detail["requirements"]

        # When finance and business (and the practitioner, if the term needs one) approve over HTTP
        approvers = {"finance": "fiona", "business": "bo", "practitioner": "pat"}
        for persona in sorted(required):
            headers = await person(client, decision.url, approvers[persona], persona, [])
            response = await client.post(
                f"{decision.url}/v1/decisions/{decision_id}/approve",
                headers=headers,
                json={"comment": f"{persona} agrees"},
            )
            assert response.status_code == 200, response.text

        # Then the sandbox provider sells exactly one commitment, under the decision id as client token
        bought: dict = {}

        async def purchased() -> bool:
            body = (await client.get(f"{decision.url}/v1/decisions/{decision_id}", headers=ADMIN)).json()
            bought.update(body)
            return body["state"] == "purchased"

        await wait_until(purchased, timeout=90, what="the decision to reach purchased")
        ledger = (await client.get(f"{sandbox.url}/v1/commitments")).json()["commitments"]
        assert [c["client_token"] for c in ledger] == [decision_id]
        commitment_id = ledger[0]["commitment_id"]
        assert bought["commitment_id"] == commitment_id

        # When the next bill shows the commitment in use
        tranche = detail["purchase"]
        per_hour = Decimal(tranche["commitment_per_hour"]["amount"])
        covered = Decimal(tranche["covered_usage_per_hour"])
        bill, realized = october(
            tmp_path / "october.csv", commitment_id=commitment_id, per_hour=per_hour, covered=covered
        )
        await upload(client, ingest.url, bill)

        # Then the decision reaches savings_verified, with the realized amount the bill shows
        final: dict = {}

        async def verified() -> bool:
            body = (await client.get(f"{decision.url}/v1/decisions/{decision_id}", headers=ADMIN)).json()
            final.update(body)
            return body["state"] in {"savings_verified", "savings_shortfall"}

        await wait_until(verified, timeout=90, what="savings verified against the bill")
        assert final["state"] == "savings_verified", final
        verification = final["outcome"]["verification"]
        assert Decimal(verification["realized"]) == realized
        assert realized > 0
        history = (await client.get(f"{decision.url}/v1/decisions/{decision_id}/history", headers=ADMIN)).json()
        states = [t["to_state"] for t in history["transitions"]]
        assert states[-4:] == ["approved", "purchase_requested", "purchased", "savings_verified"], states
        assert history["decision"]["id"] == decision_id
