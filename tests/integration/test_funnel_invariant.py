"""The funnel's "recommended" money is the savings on offer, whatever the recommendations: a property test
(hypothesis) of the console's funnel query on real PostgreSQL. Only open savings recommendations count: not an
anomaly (a cost change), nothing superseded or expired, nothing past its expiry that no decision took up.
Anomalies are counted apart. The expected figures are computed here in Python, not by the console's SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import finops_console
from finops_console import queries
from finops_runtime.db import migrate, runtime_migrations, service_migrations

KINDS = ("commitment_plan", "rightsizing", "idle", "anomaly")
STATUSES = ("issued", "updated", "superseded", "expired")

recommendations = st.lists(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(KINDS),
            "status": st.sampled_from(STATUSES),
            "expires_in_days": st.integers(min_value=-60, max_value=60),
            "decided": st.booleans(),
            "cents": st.integers(min_value=0, max_value=10_000_000),
            "team": st.sampled_from(["checkout", "search"]),
        }
    ),
    max_size=25,
)


def expected(recs: list[dict], team: str | None = None) -> tuple[int, Decimal, int, Decimal]:
    open_ = [
        r
        for r in recs
        if r["status"] in ("issued", "updated")
        and (r["expires_in_days"] > 0 or r["decided"])
        and (team is None or r["team"] == team)
    ]
    savings = [r for r in open_ if r["kind"] != "anomaly"]
    changes = [r for r in open_ if r["kind"] == "anomaly"]
    money = sum((Decimal(r["cents"]) / 100 for r in savings), Decimal(0))
    change = sum((Decimal(r["cents"]) / 100 for r in changes), Decimal(0))
    return len(savings), money, len(changes), change


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs=recommendations)
async def test_recommended_money_counts_only_open_savings_recommendations(database_url, recs):
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(
            conn,
            schema="console",
            migrations=[
                *runtime_migrations(),
                *service_migrations(Path(finops_console.__file__).parent / "migrations"),
            ],
        )
        await conn.execute("SET search_path TO console")
        await conn.execute("TRUNCATE recommendation, decision")
        now = datetime.now(UTC)
        for r in recs:
            rid = uuid.uuid4()
            await conn.execute(
                """INSERT INTO recommendation (recommendation_id, kind, target, owner_team, currency,
                       estimated_monthly_savings, status, expires_at, issued_at, updated_at)
                   VALUES ($1, $2, 'x', $3, 'USD', $4, $5, $6, $7, $7)""",
                rid,
                r["kind"],
                r["team"],
                Decimal(r["cents"]) / 100,
                r["status"],
                now + timedelta(days=r["expires_in_days"]),
                now - timedelta(days=90),
            )
            if r["decided"]:
                await conn.execute(
                    """INSERT INTO decision (decision_id, recommendation_id, kind, owner_team, state, currency,
                           estimated_monthly_savings, updated_at)
                       VALUES ($1, $2, $3, $4, 'pending_approval', 'USD', $5, $6)""",
                    uuid.uuid4(),
                    rid,
                    r["kind"],
                    r["team"],
                    Decimal(r["cents"]) / 100,
                    now,
                )

        for team in (None, "checkout"):
            # When the funnel is read, for everyone and in one team's scope
            funnel = await queries.funnel(conn, scope=None if team is None else {"team": {team}}, kinds=None)

            # Then "recommended" is the open savings recommendations' count and money, and anomalies stand apart
            count, money, changes, change = expected(recs, team)
            [stage] = [s for s in funnel["stages"] if s["stage"] == "recommended"]
            assert stage["count"] == count
            assert sum((Decimal(a["amount"]) for a in stage["amounts"]), Decimal(0)) == money
            assert funnel["cost_changes"]["count"] == changes
            assert sum((Decimal(a["amount"]) for a in funnel["cost_changes"]["amounts"]), Decimal(0)) == change
    finally:
        await conn.close()
