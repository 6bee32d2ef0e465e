"""The decision service's SQL: decisions, approvals, transitions, delegations, policy versions and savings
matches. Functions take the caller's connection; the caller owns the transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from finops_contracts.decisions import DecisionState, Requirement
from finops_contracts.money import Money
from finops_contracts.recommendations import CommitmentPurchase, Kind, Persona
from finops_decision import approvals, audit, policy
from finops_decision.approvals import Delegation, Given
from finops_decision.policy import Policy, Rule


@dataclass
class Decision:
    """A decision as stored; services change it and `save` writes it back."""

    id: uuid.UUID
    recommendation_id: uuid.UUID
    tranche: int | None
    kind: Kind
    owner_team: str
    title: str
    proposer: str
    state: DecisionState
    currency: str
    estimated_monthly_savings: Decimal
    monthly_commitment: Decimal | None
    term_months: int | None
    risk: str
    coverage: Decimal | None
    billing_account_id: str | None
    provider_name: str | None
    purchase: CommitmentPurchase | None
    recommendation_version: int
    recommendation_expires_at: datetime | None
    policy_version: int
    policy_rule: str
    rule: Rule
    savings_tolerance: Decimal
    requirements: tuple[Requirement, ...]
    proposed_at: datetime
    updated_at: datetime
    shown_commitment: Decimal | None = None
    round: int = 0
    reminders: int = 0
    next_reminder_at: datetime | None = None
    due_at: datetime | None = None
    approved_at: datetime | None = None
    automatic: bool = False
    commitment_id: str | None = None
    commitment_start: datetime | None = None
    outcome: dict[str, Any] | None = None
    guard: dict[str, Any] | None = None
    """The guard's last finding on the purchase request: both figures, the share and the lookback."""
    lookback_hours: int | None = None
    """The plan's own lookback, when the recommendation carried one."""
    seq: int | None = None
    approvals: list[Given] = field(default_factory=list)
    """The approvals of the current round, when loaded."""

    def money(self, amount: Decimal) -> Money:
        return Money(amount=amount, currency=self.currency)

    def case(self) -> approvals.Case:
        return approvals.Case(
            proposer=self.proposer,
            owner_team=self.owner_team,
            requirements=self.requirements,
            approvals=tuple(self.approvals),
            approval_validity=self.rule.approval_validity,
        )

    def event_fields(self) -> dict[str, Any]:
        return dict(
            decision_id=self.id,
            recommendation_id=self.recommendation_id,
            kind=self.kind,
            owner_team=self.owner_team,
            state=self.state,
        )


_COLUMNS = (
    "id, seq, recommendation_id, tranche, kind, owner_team, title, proposer, state, currency, "
    "estimated_monthly_savings, monthly_commitment, shown_commitment, term_months, risk, coverage, "
    "billing_account_id, provider_name, purchase, recommendation_version, recommendation_expires_at, "
    "policy_version, policy_rule, rule, savings_tolerance, requirements, round, reminders, next_reminder_at, "
    "due_at, proposed_at, updated_at, approved_at, automatic, commitment_id, commitment_start, outcome, guard, "
    "lookback_hours"
)


def _decision(r: asyncpg.Record) -> Decision:
    return Decision(
        id=r["id"],
        seq=r["seq"],
        recommendation_id=r["recommendation_id"],
        tranche=r["tranche"],
        kind=Kind(r["kind"]),
        owner_team=r["owner_team"],
        title=r["title"],
        proposer=r["proposer"],
        state=DecisionState(r["state"]),
        currency=r["currency"].strip(),
        estimated_monthly_savings=r["estimated_monthly_savings"],
        monthly_commitment=r["monthly_commitment"],
        shown_commitment=r["shown_commitment"],
        term_months=r["term_months"],
        risk=r["risk"],
        coverage=r["coverage"],
        billing_account_id=r["billing_account_id"],
        provider_name=r["provider_name"],
        purchase=CommitmentPurchase.model_validate_json(r["purchase"]) if r["purchase"] else None,
        recommendation_version=r["recommendation_version"],
        recommendation_expires_at=r["recommendation_expires_at"],
        policy_version=r["policy_version"],
        policy_rule=r["policy_rule"],
        rule=Rule.model_validate_json(r["rule"]),
        savings_tolerance=r["savings_tolerance"],
        requirements=tuple(Requirement.model_validate(x) for x in json.loads(r["requirements"])),
        round=r["round"],
        reminders=r["reminders"],
        next_reminder_at=r["next_reminder_at"],
        due_at=r["due_at"],
        proposed_at=r["proposed_at"],
        updated_at=r["updated_at"],
        approved_at=r["approved_at"],
        automatic=r["automatic"],
        commitment_id=r["commitment_id"],
        commitment_start=r["commitment_start"],
        outcome=json.loads(r["outcome"]) if r["outcome"] else None,
        guard=json.loads(r["guard"]) if r["guard"] else None,
        lookback_hours=r["lookback_hours"],
    )


def _values(d: Decision) -> tuple[Any, ...]:
    return (
        d.id,
        d.recommendation_id,
        d.tranche,
        d.kind.value,
        d.owner_team,
        d.title,
        d.proposer,
        d.state.value,
        d.currency,
        d.estimated_monthly_savings,
        d.monthly_commitment,
        d.shown_commitment,
        d.term_months,
        d.risk,
        d.coverage,
        d.billing_account_id,
        d.provider_name,
        d.purchase.model_dump_json() if d.purchase else None,
        d.recommendation_version,
        d.recommendation_expires_at,
        d.policy_version,
        d.policy_rule,
        d.rule.model_dump_json(),
        d.savings_tolerance,
        json.dumps([r.model_dump(mode="json") for r in d.requirements]),
        d.round,
        d.reminders,
        d.next_reminder_at,
        d.due_at,
        d.proposed_at,
        d.updated_at,
        d.approved_at,
        d.automatic,
        d.commitment_id,
        d.commitment_start,
        json.dumps(d.outcome) if d.outcome is not None else None,
        json.dumps(d.guard) if d.guard is not None else None,
        d.lookback_hours,
    )


_WRITABLE = [c.strip() for c in _COLUMNS.split(",") if c.strip() not in ("seq",)]


async def insert(conn: asyncpg.Connection, d: Decision) -> bool:
    """Insert a new decision; False when one with its id exists already (a redelivery)."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(_WRITABLE) + 1))
    seq = await conn.fetchval(
        f"INSERT INTO decision ({', '.join(_WRITABLE)}) VALUES ({placeholders}) ON CONFLICT (id) DO NOTHING "
        "RETURNING seq",
        *_values(d),
    )
    d.seq = seq
    return seq is not None


async def save(conn: asyncpg.Connection, d: Decision) -> None:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(_WRITABLE, start=1) if c != "id")
    await conn.execute(f"UPDATE decision SET {sets} WHERE id = $1", *_values(d))


async def load(conn: asyncpg.Connection, decision_id: uuid.UUID, *, lock: bool = False) -> Decision | None:
    r = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM decision WHERE id = $1" + (" FOR UPDATE" if lock else ""), decision_id
    )
    if r is None:
        return None
    d = _decision(r)
    d.approvals = await approvals_of(conn, d.id, d.round)
    return d


async def of_recommendation(conn: asyncpg.Connection, recommendation_id: uuid.UUID) -> list[Decision]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM decision WHERE recommendation_id = $1 ORDER BY seq FOR UPDATE", recommendation_id
    )
    return [_decision(r) for r in rows]


async def by_commitment(conn: asyncpg.Connection, commitment_id: str) -> Decision | None:
    r = await conn.fetchrow(f"SELECT {_COLUMNS} FROM decision WHERE commitment_id = $1 FOR UPDATE", commitment_id)
    return _decision(r) if r else None


async def due(conn: asyncpg.Connection, now: datetime) -> Decision | None:
    """One waiting decision whose expiry or reminder is due, locked (others skip it)."""
    r = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM decision
            WHERE (state IN ('proposed', 'pending_approval') AND due_at <= $1)
               OR (state = 'pending_approval' AND next_reminder_at <= $1)
            ORDER BY least(due_at, next_reminder_at) LIMIT 1 FOR UPDATE SKIP LOCKED""",
        now,
    )
    if r is None:
        return None
    d = _decision(r)
    d.approvals = await approvals_of(conn, d.id, d.round)
    return d


async def anything_due(conn: asyncpg.Connection, now: datetime) -> bool:
    return await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM decision WHERE state IN ('proposed', 'pending_approval') AND due_at <= $1)
               OR EXISTS (SELECT 1 FROM decision WHERE state = 'pending_approval' AND next_reminder_at <= $1)""",
        now,
    )


async def listing(
    conn: asyncpg.Connection,
    *,
    states: Sequence[str] = (),
    kind: str | None = None,
    teams: Sequence[str] | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[Decision]:
    """Newest first; `teams` None for every team."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM decision
            WHERE (cardinality($1::text[]) = 0 OR state = ANY($1::text[]))
              AND ($2::text IS NULL OR kind = $2)
              AND ($3::text[] IS NULL OR owner_team = ANY($3::text[]))
              AND ($4::bigint IS NULL OR seq < $4)
            ORDER BY seq DESC LIMIT $5""",
        list(states),
        kind,
        list(teams) if teams is not None else None,
        before_seq,
        limit,
    )
    out = [_decision(r) for r in rows]
    await _attach_approvals(conn, out)
    return out


async def _attach_approvals(conn: asyncpg.Connection, decisions: list[Decision]) -> None:
    if not decisions:
        return
    rows = await conn.fetch(
        """SELECT a.* FROM approval a JOIN unnest($1::uuid[], $2::int[]) AS d(id, round)
           ON a.decision_id = d.id AND a.round = d.round ORDER BY a.id""",
        [d.id for d in decisions],
        [d.round for d in decisions],
    )
    by_id = {d.id: d for d in decisions}
    for r in rows:
        by_id[r["decision_id"]].approvals.append(_given(r))


def _given(r: asyncpg.Record) -> Given:
    return Given(
        principal=r["principal"],
        persona=Persona(r["persona"]) if r["persona"] else None,
        at=r["at"],
        on_behalf_of=r["on_behalf_of"],
        comment=r["comment"],
        rule=r["rule"],
    )


async def approvals_of(conn: asyncpg.Connection, decision_id: uuid.UUID, round_: int) -> list[Given]:
    rows = await conn.fetch(
        "SELECT * FROM approval WHERE decision_id = $1 AND round = $2 ORDER BY id", decision_id, round_
    )
    return [_given(r) for r in rows]


async def add_approval(conn: asyncpg.Connection, d: Decision, g: Given) -> None:
    await conn.execute(
        """INSERT INTO approval (decision_id, round, principal, persona, on_behalf_of, comment, rule, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        d.id,
        d.round,
        g.principal,
        g.persona.value if g.persona else None,
        g.on_behalf_of,
        g.comment,
        g.rule,
        g.at,
    )
    d.approvals.append(g)


async def add_transitions(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """(decision_id, from_state, to_state, actor, reason, at) rows."""
    if rows:
        await conn.executemany(
            """INSERT INTO transition (decision_id, from_state, to_state, actor, reason, at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            rows,
        )


async def history(conn: asyncpg.Connection, decision_id: uuid.UUID) -> dict[str, list[asyncpg.Record]]:
    return {
        "transitions": await conn.fetch("SELECT * FROM transition WHERE decision_id = $1 ORDER BY id", decision_id),
        "approvals": await conn.fetch("SELECT * FROM approval WHERE decision_id = $1 ORDER BY id", decision_id),
        "audit": await conn.fetch(
            "SELECT seq, at, actor, action, method, path, status, detail FROM audit_log WHERE decision_id = $1 "
            "ORDER BY seq",
            decision_id,
        ),
    }


async def delegations_to(conn: asyncpg.Connection, delegate: str, now: datetime) -> list[Delegation]:
    rows = await conn.fetch(
        "SELECT * FROM delegation WHERE delegate = $1 AND valid_until > $2 ORDER BY created_at", delegate, now
    )
    return [_delegation(r) for r in rows]


async def approvers_for(conn: asyncpg.Connection, requirements: Sequence[Requirement], now: datetime) -> list[str]:
    """The people who can fill these requirements: holders of a token of the persona (engineering of the
    requirement's team), and delegates of the persona now. ApprovalRequested names them, so notify can reach them."""
    people = await conn.fetch(
        "SELECT name, role, teams FROM api_token WHERE revoked_at IS NULL AND role = ANY($1::text[])",
        [r.persona.value for r in requirements],
    )
    delegates = await conn.fetch(
        "SELECT delegate, persona, teams FROM delegation WHERE persona = ANY($1::text[]) AND valid_until > $2",
        [r.persona.value for r in requirements],
        now,
    )
    names = set()
    for r in requirements:
        for who, persona, teams in [*people, *delegates]:
            if persona == r.persona.value and (r.team is None or r.team in teams):
                names.add(who)
    return sorted(names)


def _delegation(r: asyncpg.Record) -> Delegation:
    return Delegation(
        delegator=r["delegator"],
        persona=Persona(r["persona"]),
        delegate=r["delegate"],
        valid_until=r["valid_until"],
        teams=frozenset(r["teams"]),
    )


async def add_delegation(conn: asyncpg.Connection, d: Delegation, *, now: datetime) -> uuid.UUID:
    delegation_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO delegation (id, delegator, persona, teams, delegate, valid_until, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        delegation_id,
        d.delegator,
        d.persona.value,
        sorted(d.teams),
        d.delegate,
        d.valid_until,
        now,
    )
    return delegation_id


async def delegations_by(conn: asyncpg.Connection, name: str, now: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM delegation WHERE (delegator = $1 OR delegate = $1) AND valid_until > $2 ORDER BY created_at",
        name,
        now,
    )


async def current_policy(conn: asyncpg.Connection) -> tuple[int, Policy]:
    """The policy in force; the default one becomes version 1 the first time it is asked for."""
    r = await conn.fetchrow("SELECT version, document FROM policy_version ORDER BY version DESC LIMIT 1")
    if r is not None:
        return r["version"], Policy.model_validate_json(r["document"])
    await audit.lock(conn)  # a writer takes the audit lock before anything another writer could wait on
    source = policy.default_source()
    default = policy.parse(source)
    await conn.execute(
        """INSERT INTO policy_version (version, document, source, created_by) VALUES (1, $1, $2, 'default')
           ON CONFLICT (version) DO NOTHING""",
        json.dumps(policy.document(default)),
        source,
    )
    return await current_policy(conn)


async def policy_at(conn: asyncpg.Connection, version: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM policy_version WHERE version = $1", version)


async def add_policy(conn: asyncpg.Connection, p: Policy, *, source: str, by: str) -> int:
    await current_policy(conn)  # version 1 is the default, so the first PUT makes version 2
    return await conn.fetchval(
        """INSERT INTO policy_version (version, document, source, created_by)
           SELECT coalesce(max(version), 0) + 1, $1, $2, $3 FROM policy_version RETURNING version""",
        json.dumps(policy.document(p)),
        source,
        by,
    )


async def purchased_commitments(conn: asyncpg.Connection) -> dict[str, str]:
    """Commitment id -> currency of the decisions whose savings are verified from the bill (judged already or
    not: a verdict is judged again as versions of its periods complete)."""
    rows = await conn.fetch(
        "SELECT commitment_id, currency FROM decision "
        "WHERE state IN ('purchased', 'savings_verified', 'savings_shortfall')"
    )
    return {r["commitment_id"]: r["currency"].strip() for r in rows if r["commitment_id"]}


async def add_match(
    conn: asyncpg.Connection,
    decision_id: uuid.UUID,
    *,
    ingest_id: uuid.UUID,
    batch_seq: int,
    billing_account_id: str,
    billing_period_start: datetime,
    lines: int,
    covered_savings: Decimal,
    unused_cost: Decimal,
    window_start: datetime,
    window_end: datetime,
) -> bool:
    """Record one batch's lines of a commitment, once, under its ingest: only the current (completed) version of
    its billing account and period counts (see `matched`)."""
    status = await conn.execute(
        """INSERT INTO savings_match (decision_id, ingest_id, batch_seq, billing_account_id, billing_period_start,
               lines, covered_savings, unused_cost, window_start, window_end)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING""",
        decision_id,
        ingest_id,
        batch_seq,
        billing_account_id,
        billing_period_start,
        lines,
        covered_savings,
        unused_cost,
        window_start,
        window_end,
    )
    return status.endswith(" 1")


async def matched(conn: asyncpg.Connection, decision_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(
        """SELECT coalesce(sum(lines), 0) AS lines, coalesce(sum(covered_savings), 0) AS covered_savings,
                  coalesce(sum(unused_cost), 0) AS unused_cost, min(window_start) AS window_start,
                  max(window_end) AS window_end
           FROM savings_match m
           JOIN period_version v ON v.ingest_id = m.ingest_id AND v.billing_account_id = m.billing_account_id
                                AND v.billing_period_start = m.billing_period_start
           WHERE m.decision_id = $1""",
        decision_id,
    )


async def matched_in(
    conn: asyncpg.Connection, *, billing_account_id: str, period: datetime, ingest_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """The decisions with lines matched in these versions of one account-period."""
    rows = await conn.fetch(
        """SELECT DISTINCT decision_id FROM savings_match
           WHERE billing_account_id = $1 AND billing_period_start = $2 AND ingest_id = ANY($3::uuid[])
           ORDER BY decision_id""",
        billing_account_id,
        period,
        list(ingest_ids),
    )
    return [r["decision_id"] for r in rows]


async def drop_match_version(
    conn: asyncpg.Connection, *, ingest_id: uuid.UUID, billing_account_id: str, period: datetime
) -> None:
    await conn.execute(
        "DELETE FROM savings_match WHERE ingest_id = $1 AND billing_account_id = $2 AND billing_period_start = $3",
        ingest_id,
        billing_account_id,
        period,
    )


async def lock(conn: asyncpg.Connection, decision_id: uuid.UUID) -> Decision | None:
    return await load(conn, decision_id, lock=True)


# --------------------------------------------------------------------------------- pool usage (the guard)


async def claim_usage_batch(conn: asyncpg.Connection, ingest_id: uuid.UUID, batch_seq: int) -> bool:
    """Record a batch as in the usage model; False when it already was (a redelivery under another ce_id)."""
    return (
        await conn.fetchval(
            "INSERT INTO usage_batch (ingest_id, batch_seq) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
            ingest_id,
            batch_seq,
        )
        is not None
    )


async def add_pool_usage(
    conn: asyncpg.Connection, ingest_id: uuid.UUID, rows: dict[tuple[str, datetime, str, datetime, str], Decimal]
) -> None:
    """Add a batch's hourly usage ((account, period, pool, hour, currency) -> amount) under its ingest."""
    if rows:
        await conn.executemany(
            """INSERT INTO pool_usage (ingest_id, billing_account_id, billing_period_start, pool, hour, currency,
                   on_demand_equivalent)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (ingest_id, billing_account_id, billing_period_start, pool, hour, currency)
               DO UPDATE SET on_demand_equivalent = pool_usage.on_demand_equivalent + EXCLUDED.on_demand_equivalent""",
            [(ingest_id, *key, amount) for key, amount in rows.items()],
        )


async def current_period_version(
    conn: asyncpg.Connection, billing_account_id: str, period: datetime
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT ingest_id, version, completed_at FROM period_version
           WHERE billing_account_id = $1 AND billing_period_start = $2 FOR UPDATE""",
        billing_account_id,
        period,
    )


async def make_period_current(
    conn: asyncpg.Connection,
    *,
    billing_account_id: str,
    period: datetime,
    ingest_id: uuid.UUID,
    version: int,
    now: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO period_version (billing_account_id, billing_period_start, ingest_id, version, completed_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (billing_account_id, billing_period_start) DO UPDATE
           SET ingest_id = EXCLUDED.ingest_id, version = EXCLUDED.version, completed_at = EXCLUDED.completed_at""",
        billing_account_id,
        period,
        ingest_id,
        version,
        now,
    )


async def drop_usage_version(
    conn: asyncpg.Connection, *, ingest_id: uuid.UUID, billing_account_id: str, period: datetime
) -> None:
    """Forget one version of one account-period's usage; the same file's other accounts and periods keep theirs."""
    await conn.execute(
        "DELETE FROM pool_usage WHERE ingest_id = $1 AND billing_account_id = $2 AND billing_period_start = $3",
        ingest_id,
        billing_account_id,
        period,
    )


async def pool_hours(
    conn: asyncpg.Connection, *, billing_account_id: str, pool: str, currency: str
) -> dict[datetime, Decimal]:
    """The pool's on-demand-equivalent usage per hour, each row under the current version of its own billing
    account and period only."""
    rows = await conn.fetch(
        """SELECT u.hour, sum(u.on_demand_equivalent) AS amount FROM pool_usage u
           JOIN period_version v ON v.ingest_id = u.ingest_id AND v.billing_account_id = u.billing_account_id
                                AND v.billing_period_start = u.billing_period_start
           WHERE u.billing_account_id = $1 AND u.pool = $2 AND u.currency = $3
           GROUP BY u.hour""",
        billing_account_id,
        pool,
        currency,
    )
    return {r["hour"]: r["amount"] for r in rows}
