"""Handlers that keep the read models: one per event type, each applied in the inbox's transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

import asyncpg

from finops_console import costs
from finops_contracts.cloudevents import Envelope
from finops_contracts.decisions import (
    ApprovalRequested,
    CommitmentPurchased,
    DecisionApproved,
    DecisionExpired,
    DecisionProposed,
    DecisionRejected,
    PurchaseFailed,
    PurchaseRequested,
    SavingsShortfall,
    SavingsVerified,
)
from finops_contracts.events import (
    BillingPeriodSuperseded,
    BudgetAlerted,
    CostAllocated,
    CostBatchIngested,
    CostPeriodCompleted,
    CoverageMeasured,
    Event,
    IngestAccepted,
    IngestCompleted,
    IngestRejected,
    JournalExported,
    ResourceOwned,
    UnitCostReported,
)
from finops_contracts.periods import period_month
from finops_contracts.recommendations import (
    KpiMeasured,
    RecommendationExpired,
    RecommendationIssued,
    RecommendationSuperseded,
    RecommendationUpdated,
)
from finops_runtime import owners
from finops_runtime.inbox import Handler

STAGE_RANK = {
    "proposed": 0,
    "pending_approval": 1,
    "approved": 2,
    "rejected": 2,
    "expired": 2,
    "purchase_requested": 3,
    "purchased": 4,
    "failed": 4,
    "savings_verified": 5,
    "savings_shortfall": 5,
}
"""How far along the flow a state is: a decision's state never moves back, whichever topic reports first."""


async def tally(conn: asyncpg.Connection, envelope: Envelope, topic: str) -> None:
    await conn.execute(
        """INSERT INTO event_tally (topic, type, events, last_at) VALUES ($1, $2, 1, $3)
           ON CONFLICT (topic, type) DO UPDATE SET events = event_tally.events + 1,
               last_at = greatest(event_tally.last_at, EXCLUDED.last_at)""",
        topic,
        envelope.type,
        envelope.time,
    )


# --- cost and ingest ------------------------------------------------------------------------------------------


async def on_cost_batch(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Stage a batch's daily facts (COPY), once per batch whatever its ce_id."""
    assert isinstance(event, CostBatchIngested)
    period = period_month(event.billing_period_start)
    first = await costs.claim_batch(
        conn,
        ingest_id=event.ingest_id,
        batch_seq=event.batch_seq,
        billing_account_id=event.billing_account_id,
        period=period,
        line_count=event.line_count,
    )
    if first:
        facts = costs.day_facts(event.frame)
        await costs.stage(
            conn,
            costs.stage_records(
                facts, ingest_id=event.ingest_id, billing_account_id=event.billing_account_id, period=period
            ),
        )


async def on_period_completed(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, CostPeriodCompleted)
    await costs.complete(conn, event, at=envelope.time)


async def _ingest(conn: asyncpg.Connection, ingest_id: object, at: datetime, **fields: object) -> None:
    names = list(fields)
    assignments = ", ".join(f"{n} = coalesce(EXCLUDED.{n}, ingest_run.{n})" for n in names if n != "status")
    await conn.execute(
        f"""INSERT INTO ingest_run (ingest_id, {", ".join(names)}, updated_at)
            VALUES ($1, {", ".join(f"${i + 2}" for i in range(len(names)))}, ${len(names) + 2})
            ON CONFLICT (ingest_id) DO UPDATE SET {assignments},
                status = CASE WHEN ingest_run.status IN ('rejected', 'superseded') THEN ingest_run.status
                              WHEN ingest_run.status = 'completed' AND EXCLUDED.status = 'accepted'
                                  THEN ingest_run.status
                              ELSE EXCLUDED.status END,
                updated_at = greatest(ingest_run.updated_at, EXCLUDED.updated_at)""",
        ingest_id,
        *fields.values(),
        at,
    )


def _totals(totals: object) -> str:
    return json.dumps([t.model_dump(mode="json") for t in totals])  # type: ignore[attr-defined]


async def on_ingest_accepted(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, IngestAccepted)
    await _ingest(
        conn,
        event.ingest_id,
        envelope.time,
        file_name=event.file_name,
        format=event.format,
        size_bytes=event.size_bytes,
        status="accepted",
        warnings=json.dumps(event.warnings),
        accepted_at=envelope.time,
    )


async def on_ingest_completed(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, IngestCompleted)
    await _ingest(
        conn,
        event.ingest_id,
        envelope.time,
        file_name=event.file_name,
        status="completed",
        row_count=event.row_count,
        batch_count=event.batch_count,
        totals=_totals(event.totals),
        finished_at=envelope.time,
    )


async def on_ingest_rejected(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, IngestRejected)
    await _ingest(
        conn,
        event.ingest_id,
        envelope.time,
        file_name=event.file_name,
        status="rejected",
        errors=json.dumps([e.model_dump(mode="json") for e in event.errors]),
        finished_at=envelope.time,
    )


async def on_period_superseded(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, BillingPeriodSuperseded)
    await _ingest(conn, event.superseded_ingest_id, envelope.time, status="superseded")


# --- allocation -----------------------------------------------------------------------------------------------


async def on_cost_allocated(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, CostAllocated)
    records = [
        (
            event.source_event_id,
            event.ingest_id,
            event.billing_account_id,
            period_month(event.billing_period_start),
            a.owner,
            a.currency,
            a.billed_cost,
            a.effective_cost,
            a.line_count,
        )
        for a in event.allocations
    ]
    await conn.executemany(
        """INSERT INTO allocation (source_event_id, ingest_id, billing_account_id, period, owner, currency,
                                   billed_cost, effective_cost, line_count)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
        records,
    )


async def on_journal_exported(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, JournalExported)
    await conn.execute(
        """INSERT INTO journal (journal_id, period, entity, closed_by, line_count, debits, csv_url, json_url,
                                exported_at)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9) ON CONFLICT (journal_id) DO NOTHING""",
        event.journal_id,
        period_month(event.billing_period_start),
        event.entity,
        event.closed_by,
        event.line_count,
        json.dumps([d.model_dump(mode="json") for d in event.debits]),
        event.csv_url,
        event.json_url,
        envelope.time,
    )


async def on_budget_alerted(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, BudgetAlerted)
    await conn.execute(
        """INSERT INTO budget_alert (scope_kind, scope, period, threshold, basis, currency, amount, budget, actual,
                                     projected, as_of)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (scope_kind, scope, period, threshold, basis) DO UPDATE SET amount = EXCLUDED.amount,
               budget = EXCLUDED.budget, actual = EXCLUDED.actual, projected = EXCLUDED.projected,
               currency = EXCLUDED.currency, as_of = EXCLUDED.as_of
           WHERE budget_alert.as_of <= EXCLUDED.as_of""",
        event.scope_kind,
        event.scope,
        period_month(event.billing_period_start),
        event.threshold,
        event.basis,
        event.budget.currency,
        event.amount.amount,
        event.budget.amount,
        event.actual.amount,
        event.projected.amount,
        event.as_of,
    )


async def on_coverage_measured(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, CoverageMeasured)
    await conn.executemany(
        """INSERT INTO coverage (period, scope_kind, scope, ruleset_version, currency, total, tagged_share,
                                 allocated_share, measured_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (period, scope_kind, scope) DO UPDATE SET ruleset_version = EXCLUDED.ruleset_version,
               currency = EXCLUDED.currency, total = EXCLUDED.total, tagged_share = EXCLUDED.tagged_share,
               allocated_share = EXCLUDED.allocated_share, measured_at = EXCLUDED.measured_at
           WHERE coverage.measured_at <= EXCLUDED.measured_at""",
        [
            (
                period_month(event.billing_period_start),
                item.scope_kind,
                item.scope,
                event.ruleset_version,
                item.total.currency,
                item.total.amount,
                item.tagged_share,
                item.allocated_share,
                envelope.time,
            )
            for item in event.items
        ],
    )


async def on_unit_cost(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, UnitCostReported)
    await conn.execute(
        """INSERT INTO unit_cost (product, period, metric, units, currency, cost, unit_cost, reported_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (product, period, metric) DO UPDATE SET units = EXCLUDED.units, currency = EXCLUDED.currency,
               cost = EXCLUDED.cost, unit_cost = EXCLUDED.unit_cost, reported_at = EXCLUDED.reported_at
           WHERE unit_cost.reported_at <= EXCLUDED.reported_at""",
        event.product,
        period_month(event.billing_period_start),
        event.metric,
        event.units,
        event.cost.currency,
        event.cost.amount,
        event.unit_cost.amount,
        envelope.time,
    )


# --- recommendations ------------------------------------------------------------------------------------------


async def on_recommendation(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Issued or updated: the recommendation's current content (a lower version never overwrites a higher)."""
    assert isinstance(event, RecommendationIssued | RecommendationUpdated)
    await conn.execute(
        """INSERT INTO recommendation (recommendation_id, kind, target, title, owner_team, personas, currency,
                estimated_monthly_savings, status, version, billing_account_id, provider, resource_id, expires_at,
                issued_at, updated_at, content)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16::jsonb)
           ON CONFLICT (recommendation_id) DO UPDATE SET kind = EXCLUDED.kind, target = EXCLUDED.target,
               title = EXCLUDED.title, owner_team = EXCLUDED.owner_team, personas = EXCLUDED.personas,
               currency = EXCLUDED.currency, estimated_monthly_savings = EXCLUDED.estimated_monthly_savings,
               status = CASE WHEN recommendation.status IN ('superseded', 'expired') THEN recommendation.status
                             ELSE EXCLUDED.status END,
               version = EXCLUDED.version, billing_account_id = EXCLUDED.billing_account_id,
               provider = EXCLUDED.provider, resource_id = EXCLUDED.resource_id, expires_at = EXCLUDED.expires_at,
               issued_at = least(recommendation.issued_at, EXCLUDED.issued_at),
               updated_at = greatest(recommendation.updated_at, EXCLUDED.updated_at), content = EXCLUDED.content
           WHERE recommendation.version <= EXCLUDED.version""",
        event.recommendation_id,
        event.kind.value,
        event.target,
        event.title,
        event.owner_team,
        [p.value for p in event.personas],
        event.estimated_monthly_savings.currency,
        event.estimated_monthly_savings.amount,
        "issued" if isinstance(event, RecommendationIssued) else "updated",
        event.version,
        event.billing_account_id,
        event.provider_name,
        event.resource_id,
        event.expires_at,
        envelope.time,
        event.model_dump_json(),
    )


async def on_recommendation_closed(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Superseded or expired: final, whatever arrives after."""
    assert isinstance(event, RecommendationSuperseded | RecommendationExpired)
    status = "superseded" if isinstance(event, RecommendationSuperseded) else "expired"
    superseded_by = event.superseded_by if isinstance(event, RecommendationSuperseded) else None
    await conn.execute(
        """INSERT INTO recommendation (recommendation_id, kind, target, owner_team, status, updated_at,
                                       superseded_by, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (recommendation_id) DO UPDATE SET status = EXCLUDED.status,
               updated_at = greatest(recommendation.updated_at, EXCLUDED.updated_at),
               superseded_by = EXCLUDED.superseded_by, reason = EXCLUDED.reason""",
        event.recommendation_id,
        event.kind.value,
        event.target,
        event.owner_team,
        status,
        envelope.time,
        superseded_by,
        event.reason,
    )


async def on_kpi(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, KpiMeasured)
    await conn.execute(
        """INSERT INTO kpi (pool, provider, billing_account_id, month, currency, on_demand_equivalent, actual_cost,
                            savings, effective_savings_rate, coverage, utilization, unused_commitment_cost,
                            measured_at, scope)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)
           ON CONFLICT (pool, provider, billing_account_id, month) DO UPDATE SET currency = EXCLUDED.currency,
               on_demand_equivalent = EXCLUDED.on_demand_equivalent, actual_cost = EXCLUDED.actual_cost,
               savings = EXCLUDED.savings, effective_savings_rate = EXCLUDED.effective_savings_rate,
               coverage = EXCLUDED.coverage, utilization = EXCLUDED.utilization,
               unused_commitment_cost = EXCLUDED.unused_commitment_cost, measured_at = EXCLUDED.measured_at,
               scope = EXCLUDED.scope
           WHERE kpi.measured_at <= EXCLUDED.measured_at""",
        event.pool,
        event.provider_name,
        event.billing_account_id,
        event.month.date(),
        event.actual_cost.currency,
        event.on_demand_equivalent.amount,
        event.actual_cost.amount,
        event.savings.amount,
        event.effective_savings_rate,
        event.coverage,
        event.utilization,
        event.unused_commitment_cost.amount,
        envelope.time,
        json.dumps(event.scope, sort_keys=True),
    )


# --- decisions and purchases ----------------------------------------------------------------------------------

_STAGE_COLUMN = {
    DecisionProposed: "proposed_at",
    ApprovalRequested: "approval_requested_at",
    DecisionApproved: "approved_at",
    DecisionRejected: "rejected_at",
    DecisionExpired: "expired_at",
    PurchaseRequested: "purchase_requested_at",
    SavingsVerified: "verified_at",
    SavingsShortfall: "shortfall_at",
    CommitmentPurchased: "purchased_at",
    PurchaseFailed: "failed_at",
}


def _describe(event: Event) -> tuple[str | None, str]:
    """Who acted (when the event says), and one line for the audit trail."""
    if isinstance(event, DecisionProposed):
        return event.proposer, f"proposed by {event.proposer}: {event.title}"
    if isinstance(event, ApprovalRequested):
        needed = ", ".join(
            f"{r.quorum} {r.persona.value}" + (f" of {r.team}" if r.team else "") for r in event.requirements
        )
        again = f" (reminder {event.reminder})" if event.reminder else ""
        return None, f"approval requested from {needed or 'nobody'} under rule {event.policy_rule}{again}"
    if isinstance(event, DecisionApproved):
        who = ", ".join(a.principal + (f" for {a.on_behalf_of}" if a.on_behalf_of else "") for a in event.approvals)
        how = "automatically" if event.automatic else "by " + (who or "nobody")
        return (who or None), f"approved {how} under rule {event.policy_rule}"
    if isinstance(event, DecisionRejected):
        return event.principal, f"rejected by {event.principal}: {event.comment}"
    if isinstance(event, DecisionExpired):
        return None, f"expired: {event.reason}"
    if isinstance(event, PurchaseRequested):
        p = event.purchase
        return None, (
            f"purchase requested: {p.program} {p.term_months} months {p.payment}, "
            f"{p.commitment_per_hour.amount} {p.commitment_per_hour.currency}/hour"
        )
    if isinstance(event, SavingsVerified | SavingsShortfall):
        verdict = "savings verified" if isinstance(event, SavingsVerified) else f"savings shortfall ({event.reason})"
        return None, (
            f"{verdict}: realized {event.realized_savings.amount} of {event.estimated_savings.amount} "
            f"{event.realized_savings.currency} estimated over {event.lines_matched} lines"
        )
    if isinstance(event, CommitmentPurchased):
        dry = " (dry run)" if event.dry_run else ""
        return None, f"commitment {event.commitment_id} purchased from {event.provider_name}{dry}"
    if isinstance(event, PurchaseFailed):
        return None, f"purchase failed after {event.attempts} attempt(s): {event.reason}"
    return None, type(event).__name__


async def _history(conn: asyncpg.Connection, envelope: Envelope, event: Event, decision_id: object, state: str) -> None:
    actor, summary = _describe(event)
    await conn.execute(
        """INSERT INTO decision_event (event_id, decision_id, type, state, at, actor, summary, payload)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) ON CONFLICT (event_id) DO NOTHING""",
        envelope.id,
        decision_id,
        envelope.type,
        state,
        envelope.time,
        actor,
        summary,
        event.model_dump_json(),
    )


async def _advance(
    conn: asyncpg.Connection, decision_id: object, state: str, at: datetime, stage: str, fields: Mapping[str, object]
) -> None:
    """Upsert the decision: its fields, the time it reached `stage`, and its state unless it is further on."""
    names = list(fields)
    values = list(fields.values())
    keep = ", ".join(f"{n} = coalesce(EXCLUDED.{n}, decision.{n})" for n in names)
    await conn.execute(
        f"""INSERT INTO decision (decision_id, state, {stage}, updated_at{"".join(", " + n for n in names)})
            VALUES ($1, $2, $3, $3{"".join(f", ${i + 4}" for i in range(len(names)))})
            ON CONFLICT (decision_id) DO UPDATE SET
                state = CASE WHEN {_rank_sql("decision.state")} > {_rank_sql("EXCLUDED.state")}
                             THEN decision.state ELSE EXCLUDED.state END,
                {stage} = coalesce(decision.{stage}, EXCLUDED.{stage}),
                updated_at = greatest(decision.updated_at, EXCLUDED.updated_at){", " + keep if keep else ""}""",
        decision_id,
        state,
        at,
        *values,
    )


def _rank_sql(expr: str) -> str:
    cases = " ".join(f"WHEN '{s}' THEN {r}" for s, r in STAGE_RANK.items())
    return f"(CASE {expr} {cases} ELSE -1 END)"


async def on_decision(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """Any decision event: its state, the time of its stage, what it tells of the decision, and its history."""
    fields: dict[str, object] = {
        "recommendation_id": event.recommendation_id,  # type: ignore[attr-defined]
        "kind": event.kind.value,  # type: ignore[attr-defined]
        "owner_team": event.owner_team,  # type: ignore[attr-defined]
    }
    if isinstance(event, DecisionProposed):
        fields.update(
            title=event.title,
            proposer=event.proposer,
            currency=event.estimated_monthly_savings.currency,
            estimated_monthly_savings=event.estimated_monthly_savings.amount,
            monthly_commitment=event.monthly_commitment.amount if event.monthly_commitment else None,
            term_months=event.term_months,
            risk=event.risk,
            provider=event.provider_name,
            billing_account_id=event.billing_account_id,
        )
    elif isinstance(event, ApprovalRequested):
        fields.update(
            title=event.title,
            currency=event.estimated_monthly_savings.currency,
            estimated_monthly_savings=event.estimated_monthly_savings.amount,
        )
    elif isinstance(event, PurchaseRequested):
        fields.update(provider=event.provider_name, billing_account_id=event.billing_account_id)
    elif isinstance(event, SavingsVerified | SavingsShortfall):
        fields.update(
            commitment_id=event.commitment_id,
            realized_savings=event.realized_savings.amount,
            estimated_window_savings=event.estimated_savings.amount,
            realization=event.realization,
        )
    state = event.state.value  # type: ignore[attr-defined]
    at = event.at if isinstance(event, DecisionRejected | DecisionExpired) else envelope.time
    await _advance(conn, event.decision_id, state, at, _STAGE_COLUMN[type(event)], fields)  # type: ignore[attr-defined]
    await _history(conn, envelope, event, event.decision_id, state)  # type: ignore[attr-defined]


async def on_purchase(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """A purchase result: the decision is purchased (or failed) unless it is already further on."""
    assert isinstance(event, CommitmentPurchased | PurchaseFailed)
    state = "purchased" if isinstance(event, CommitmentPurchased) else "failed"
    fields: dict[str, object] = {"provider": event.provider_name}
    if isinstance(event, CommitmentPurchased):
        fields["commitment_id"] = event.commitment_id
    await _advance(conn, event.decision_id, state, envelope.time, _STAGE_COLUMN[type(event)], fields)
    await _history(conn, envelope, event, event.decision_id, state)


async def on_resource_owned(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
    """The owner allocation published for a resource: costs read through cost_day / cost_month show it."""
    assert isinstance(event, ResourceOwned)
    await owners.keep(conn, event)


def handlers(topic_types: Mapping[str, type[Event]]) -> dict[str, Handler]:
    """The handler of each event type of one topic (every type of it the contracts define)."""
    by_type: dict[type[Event], Handler] = {
        CostBatchIngested: on_cost_batch,
        CostPeriodCompleted: on_period_completed,
        IngestAccepted: on_ingest_accepted,
        IngestCompleted: on_ingest_completed,
        IngestRejected: on_ingest_rejected,
        BillingPeriodSuperseded: on_period_superseded,
        CostAllocated: on_cost_allocated,
        JournalExported: on_journal_exported,
        BudgetAlerted: on_budget_alerted,
        CoverageMeasured: on_coverage_measured,
        UnitCostReported: on_unit_cost,
        ResourceOwned: on_resource_owned,
        RecommendationIssued: on_recommendation,
        RecommendationUpdated: on_recommendation,
        RecommendationSuperseded: on_recommendation_closed,
        RecommendationExpired: on_recommendation_closed,
        KpiMeasured: on_kpi,
        CommitmentPurchased: on_purchase,
        PurchaseFailed: on_purchase,
        **{cls: on_decision for cls in _STAGE_COLUMN if cls not in (CommitmentPurchased, PurchaseFailed)},
    }
    result: dict[str, Handler] = {}
    for type_name, model in topic_types.items():
        handler = by_type.get(model)
        if handler is not None:
            result[type_name] = _tallied(handler, model.TOPIC.name)
    return result


def _tallied(handler: Handler, topic: str) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        await handler(conn, envelope, event)
        await tally(conn, envelope, topic)

    handle.__name__ = handler.__name__
    return handle


def tally_only(topic: str) -> Handler:
    """Count an event the console keeps no read model of (business metrics reach it as unit costs)."""

    async def count(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        await tally(conn, envelope, topic)

    return count
