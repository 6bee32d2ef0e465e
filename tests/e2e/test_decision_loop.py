"""The whole loop, every service as its own process over real Kafka and PostgreSQL: a month of on-demand compute
is ingested; recommend turns it into a commitment plan; decision asks the personas its policy names; two people
(finance and business, plus the practitioner if the policy wants one) approve over HTTP; purchase buys the
tranche from the sandbox provider exactly once; the next bill shows the commitment in use (CommitmentDiscountId);
and the decision reaches savings_verified with the realized amount computed here, to the cent, from the file."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from tests.support.platform import ADMIN
from tests.support.services import wait_until

ACCOUNT = "444455556666"
COLUMNS = [
    "BillingAccountId", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "BillingCurrency", "BilledCost", "EffectiveCost", "ListCost", "ProviderName", "ServiceName",
    "ServiceCategory", "RegionId", "ResourceId", "SkuId", "PricingCategory", "SubAccountId", "CommitmentDiscountId",
    "CommitmentDiscountCategory", "CommitmentDiscountStatus", "Tags",
]  # fmt: skip
SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
VERIFY_HOURS = 48


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def on_demand(hour: datetime) -> Decimal:
    """The web fleet's hourly on-demand cost: 6.00 at night, up to 8.30 in the evening."""
    return Decimal("6.00") + Decimal(hour.hour) / 10


def line(hour: datetime, period: datetime, **cost: str) -> dict[str, str]:
    end = (period + timedelta(days=32)).replace(day=1)
    return {
        "BillingAccountId": ACCOUNT, "BillingPeriodStart": iso(period), "BillingPeriodEnd": iso(end),
        "ChargePeriodStart": iso(hour), "ChargePeriodEnd": iso(hour + timedelta(hours=1)), "ChargeCategory": "Usage",
        "BillingCurrency": "USD", "ProviderName": "AWS", "ServiceName": "Amazon EC2", "ServiceCategory": "Compute",
        "RegionId": "us-east-1", "ResourceId": "i-0web", "SkuId": "BoxUsage:m5.large", "SubAccountId": "web-prod",
        "PricingCategory": "Standard", "CommitmentDiscountId": "", "CommitmentDiscountCategory": "",
        "CommitmentDiscountStatus": "", "Tags": '{"team": "payments"}', **cost,
    }  # fmt: skip


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def september(path: Path) -> Path:
    """A month of on-demand usage: what recommend plans a commitment from."""
    rows, hour = [], SEPTEMBER
    while hour < OCTOBER:
        cost = str(on_demand(hour))
        rows.append(line(hour, SEPTEMBER, BilledCost=cost, EffectiveCost=cost, ListCost=cost))
        hour += timedelta(hours=1)
    return write(path, rows)


def october(path: Path, *, commitment_id: str, per_hour: Decimal, covered: Decimal) -> tuple[Path, Decimal]:
    """The first hours of the next month, the commitment in use. Each hour it covers up to `covered` of on-demand
    usage (ListCost) at its amortized rate (EffectiveCost); an hour that uses less leaves the rest of its hourly
    commitment as an Unused line; usage above it stays on demand. Returns the file and the savings it shows, summed
    from the rows as written: ListCost - EffectiveCost of the covered lines, less the unused commitment."""
    rows, realized = [], Decimal(0)
    rate = per_hour / covered
    for h in range(VERIFY_HOURS + 24):
        hour = OCTOBER + timedelta(hours=h)
        usage = on_demand(hour)
        used = min(usage, covered)
        effective = (used * rate).quantize(Decimal("0.0000000001"))
        unused = per_hour - effective
        commitment = dict(
            PricingCategory="Committed", CommitmentDiscountId=commitment_id, CommitmentDiscountCategory="Spend"
        )
        rows.append(
            line(
                hour,
                OCTOBER,
                BilledCost="0",
                EffectiveCost=str(effective),
                ListCost=str(used),
                CommitmentDiscountStatus="Used",
                **commitment,
            )  # fmt: skip
        )
        realized += used - effective
        if unused:
            rows.append(
                line(
                    hour,
                    OCTOBER,
                    BilledCost="0",
                    EffectiveCost=str(unused),
                    ListCost="0",
                    CommitmentDiscountStatus="Unused",
                    ResourceId=commitment_id,
                    **commitment,
                )  # fmt: skip
            )
            realized -= unused
        if usage > used:
            rest = str(usage - used)
            rows.append(line(hour, OCTOBER, BilledCost=rest, EffectiveCost=rest, ListCost=rest, ResourceId="i-0od"))
    return write(path, rows), realized


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
    recommend = spawn("finops_recommend", name="recommend", env={"FINOPS_ANALYSIS_QUIET_S": "0.5"})
    decision = spawn(
        "finops_decision",
        name="decision",
        env={"FINOPS_VERIFY_MIN_HOURS": str(VERIFY_HOURS), "FINOPS_DECISION_TICK_S": "0.5"},
    )
    purchase = spawn("finops_purchase", name="purchase", env={"FINOPS_SANDBOX_URL": sandbox.url})
    for service in (ingest, recommend, decision, purchase):
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
        assert pending_decision["owner_team"] == "payments"
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
