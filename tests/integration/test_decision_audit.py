"""Who may decide, and the audit log that proves what happened, against real Kafka and PostgreSQL: an engineer
approving a finance-gated decision, or another team's change, gets 403 and the denial is in the audit log; the
owning team's engineer approves a rightsizing; a rejected decision cannot be approved (409, recorded as
refused); `python -m finops_decision.audit verify` passes, then names the row changed by an UPDATE and the row
removed by a DELETE made with the append-only trigger switched off."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import asyncpg
import httpx
import pytest

from finops_contracts.recommendations import Kind
from finops_contracts.topics import RECOMMENDATION
from finops_decision.proposals import decision_id
from tests.support.decision import decision, finding, people, plan, record, running, tranche
from tests.support.kafka import produce
from tests.support.platform import ADMIN
from tests.support.services import wait_until

COLUMNS = ("seq", "at", "actor", "action", "decision_id", "method", "path", "status", "detail", "hash")


async def verify(database_url: str) -> tuple[int, str]:
    """Run the verifier as an operator would: its own process, DATABASE_URL in its environment."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "finops_decision.audit", "verify",
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    return process.returncode, out.decode()


async def test_denials_are_audited_and_tampering_is_named(service_env, database_url):
    ns = service_env["FINOPS_KAFKA_NAMESPACE"]
    bootstrap = service_env["KAFKA_BOOTSTRAP_SERVERS"]
    # Given a 1,460 a month commitment (finance and business approve) and a rightsizing of team payments
    big = plan(tranche("2.0000", "3.0000"), savings="300.00")
    resize = finding(Kind.RIGHTSIZING, team="payments")
    commitment, change = decision_id(big.recommendation_id, 0), decision_id(resize.recommendation_id, None)

    async with running(service_env) as url:
        who = await people(
            url, erin=("engineering", ["payments"]), sam=("engineering", ["search"]), fiona=("finance", []),
            bob=("business", []),
        )  # fmt: skip
        await produce(bootstrap, ns + RECOMMENDATION.name, [record(e, source="/test/recommend") for e in (big, resize)])
        async with httpx.AsyncClient(timeout=30) as client:

            async def pending() -> bool:
                r = await client.get(f"{url}/v1/decisions", params={"state": "pending_approval"}, headers=ADMIN)
                return len(r.json()["decisions"]) == 2

            await wait_until(pending, timeout=60, what="both decisions pending")

            # When an engineer approves the finance-gated commitment, and another team's engineer the rightsizing
            gated = await client.post(f"{url}/v1/decisions/{commitment}/approve", headers=who["erin"], json={})
            foreign = await client.post(f"{url}/v1/decisions/{change}/approve", headers=who["sam"], json={})
            peek = await client.get(f"{url}/v1/decisions/{change}", headers=who["sam"])
            listed = await client.get(f"{url}/v1/decisions", headers=who["sam"])

            # Then all are refused with 403 and say why; sam's list shows nothing of team payments
            assert gated.status_code == 403 and "needs approval by finance, business" in gated.json()["error"]
            assert foreign.status_code == 403 and "team payments" in foreign.json()["error"]
            assert peek.status_code == 403
            assert listed.status_code == 200 and listed.json()["decisions"] == []

            # When the owning team's engineer approves the rightsizing
            ok = await client.post(
                f"{url}/v1/decisions/{change}/approve", headers=who["erin"], json={"comment": "do it"}
            )

            # Then it is approved, final: the team implements it, nothing is bought
            assert ok.status_code == 200 and ok.json()["state"] == "approved"
            assert ok.json()["approvals"][0]["principal"] == "erin"

            # When finance rejects the commitment, then business tries to approve it
            no = await client.post(f"{url}/v1/decisions/{commitment}/reject", headers=who["fiona"], json={})
            rejected = await client.post(
                f"{url}/v1/decisions/{commitment}/reject", headers=who["fiona"], json={"comment": "not this quarter"}
            )
            late = await client.post(f"{url}/v1/decisions/{commitment}/approve", headers=who["bob"], json={})

            # Then a rejection needs a reason; the approval after it is refused as an invalid transition
            assert no.status_code == 400 and "comment" in no.json()["error"]
            assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
            assert late.status_code == 409
            assert "is rejected; approve is refused: rejected cannot become approved" in late.json()["error"]
            assert (await decision(client, url, commitment, ADMIN))["state"] == "rejected"

    conn = await asyncpg.connect(database_url)
    try:
        # And every denial and the refused transition are in the audit log, with principal, path and status
        rows = await conn.fetch("SELECT * FROM decision.audit_log ORDER BY seq")
        requests = {(r["actor"], r["method"], r["path"], r["status"]) for r in rows if r["action"] == "request"}
        assert ("erin", "POST", f"/v1/decisions/{commitment}/approve", 403) in requests
        assert ("sam", "POST", f"/v1/decisions/{change}/approve", 403) in requests
        assert ("sam", "GET", f"/v1/decisions/{change}", 403) in requests
        assert ("bob", "POST", f"/v1/decisions/{commitment}/approve", 409) in requests
        refused = [r for r in rows if r["action"] == "refused"]
        assert [(r["actor"], r["decision_id"]) for r in refused] == [("bob", commitment)]
        assert json.loads(refused[0]["detail"])["from"] == "rejected"
        assert json.loads(refused[0]["detail"])["to"] == "approved"
        states = [r["detail"] for r in rows if r["action"] == "transition" and r["decision_id"] == commitment]
        assert any(json.loads(d)["to"] == "rejected" for d in states)

        # Then the chain verifies
        code, out = await verify(database_url)
        assert code == 0, out
        assert f"{len(rows)} rows" in out

        # And the trigger refuses changing or deleting a row
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute("UPDATE decision.audit_log SET actor = 'nobody' WHERE seq = 3")
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute("DELETE FROM decision.audit_log WHERE seq = 3")

        # When a superuser switches the trigger off and changes one row
        await conn.execute("ALTER TABLE decision.audit_log DISABLE TRIGGER audit_log_append_only")
        # (erin's denied approval made to look allowed: a row whose status really changes, whatever the polling
        # before it added to the log)
        target = next(r for r in rows if r["action"] == "request" and r["actor"] == "erin" and r["status"] == 403)
        await conn.execute("UPDATE decision.audit_log SET status = 200 WHERE seq = $1", target["seq"])

        # Then verification fails naming that row
        code, out = await verify(database_url)
        assert code == 1
        assert f"broken at row {target['seq']}:" in out and "changed" in out

        # When the row is put back, then it verifies again
        await conn.execute("UPDATE decision.audit_log SET status = $2 WHERE seq = $1", target["seq"], target["status"])
        assert (await verify(database_url))[0] == 0

        # When another row is deleted
        gone = rows[len(rows) // 2]["seq"]
        await conn.execute("DELETE FROM decision.audit_log WHERE seq = $1", gone)

        # Then verification fails naming the missing row
        code, out = await verify(database_url)
        assert code == 1
        assert f"broken at row {gone}: row {gone} is missing" in out

        # When it is put back and the newest row is deleted instead (what is left still chains)
        await conn.execute(
            """INSERT INTO decision.audit_log (seq, at, actor, action, decision_id, method, path, status, detail, hash)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            *(rows[len(rows) // 2][k] for k in COLUMNS),
        )
        assert (await verify(database_url))[0] == 0
        newest = rows[-1]["seq"]
        await conn.execute("DELETE FROM decision.audit_log WHERE seq = $1", newest)

        # Then verification fails naming it: the log ends before the chain's head
        code, out = await verify(database_url)
        assert code == 1
        assert f"broken at row {newest}: row {newest} is missing" in out
    finally:
        await conn.close()
