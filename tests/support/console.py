"""The platform's events as the demo produces them, for the console's tests: a bill ingested and restated, its
allocation, coverage, budgets, unit costs and journal, recommendations through their lifecycle with KPIs, and
decisions through every state with their purchases and verifications. Events carry explicit times (a timeline
of days), so lead times are known; the scenario's fields and `cost_by` say what the console must show."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from finops_contracts.cloudevents import Envelope
from finops_contracts.decisions import (
    Approval,
    ApprovalRequested,
    CommitmentPurchased,
    DecisionApproved,
    DecisionExpired,
    DecisionProposed,
    DecisionRejected,
    DecisionState,
    PurchaseFailed,
    PurchaseRequested,
    Requirement,
    SavingsShortfall,
    SavingsVerified,
)
from finops_contracts.events import (
    BudgetAlerted,
    BusinessMetricReported,
    CostAllocated,
    CostBatchIngested,
    CostLine,
    CostPeriodCompleted,
    Coverage,
    CoverageMeasured,
    CurrencyTotal,
    Event,
    IngestAccepted,
    IngestCompleted,
    IngestRejected,
    JournalExported,
    OwnerCost,
    RejectionDetail,
    ResourceOwned,
    UnitCostReported,
)
from finops_contracts.money import Money
from finops_contracts.recommendations import (
    CommitmentPurchase,
    Kind,
    KpiMeasured,
    Persona,
    RecommendationExpired,
    RecommendationIssued,
    RecommendationSuperseded,
    RecommendationUpdated,
)
from tests.support.kafka import produce

START = datetime(2026, 9, 1, tzinfo=UTC)
PERIOD = datetime(2026, 9, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)  # an open recommendation, whenever the test runs
NEXT = datetime(2026, 10, 1, tzinfo=UTC)
ACCOUNTS = ("111122223333", "444455556666")
TEAMS = ("checkout", "search", "data")
COST_CENTERS = {"checkout": "CC-100", "search": "CC-200", "data": "CC-300"}
PRODUCTS = {"checkout": "shop", "search": "shop", "data": "analytics"}
RULED = {"data-0": ("platform", "CC-900")}
"""Resources an allocation rule gives to another team than their tag names (and the rule's cost center)."""


def published_owner(line: CostLine) -> tuple[str, str]:
    """(team, cost center) of a line as the console must show it: the owner allocation publishes for its resource
    (ResourceOwned: a rule's, else the team tag, a cost center only when a rule gives one), else unallocated."""
    if not line.resource_id:
        return "unallocated", "unallocated"
    if line.resource_id in RULED:
        return RULED[line.resource_id]
    return line.tags.get("team", "unallocated"), "unallocated"


SERVICES = ("Amazon EC2", "Amazon S3", "Amazon RDS")


@dataclass
class Record:
    topic: str
    key: bytes
    headers: dict[str, str]
    payload: bytes


@dataclass
class Scenario:
    records: list[Record] = field(default_factory=list)
    lines: list[CostLine] = field(default_factory=list)
    """The cost lines that count (the newest version of each period)."""
    decisions: dict[str, uuid.UUID] = field(default_factory=dict)
    recommendations: dict[str, uuid.UUID] = field(default_factory=dict)
    savings: dict[str, Decimal] = field(default_factory=dict)
    """Estimated monthly savings of each decision by name."""
    realized: dict[str, Decimal] = field(default_factory=dict)
    recommended_total: Decimal = Decimal(0)
    cost_change_total: Decimal = Decimal(0)
    poison: int = 0

    def add(self, event: Event, at: datetime, *, source: str) -> uuid.UUID:
        event_id = uuid.uuid4()
        envelope = Envelope(
            id=event_id,
            type=event.TYPE,
            source=source,
            time=at,
            subject=event.subject(),
            content_type=event.CONTENT_TYPE,
        )
        self.records.append(Record(event.TOPIC.name, event.key().encode(), envelope.to_headers(), event.encode()))
        return event_id

    async def publish(self, bootstrap: str, namespace: str) -> None:
        by_topic: dict[str, list[tuple[bytes | None, bytes, dict[str, str]]]] = defaultdict(list)
        for r in self.records:
            by_topic[namespace + r.topic].append((r.key, r.payload, r.headers))
        for topic, records in by_topic.items():
            await produce(bootstrap, topic, records)

    # what the console must show, computed from the events' own lines

    def cost_by(self, *dimensions: str) -> dict[tuple[str, ...], tuple[Decimal, Decimal, int]]:
        totals: dict[tuple[str, ...], list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
        for line in self.lines:
            (team, cost_center), product = published_owner(line), line.tags.get("product", "unallocated")
            values = {
                "team": team,
                "cost_center": cost_center,
                "product": product,
                "service": line.service_name or "(none)",
                "provider": line.provider_name,
                "billing_account": line.billing_account_id,
                "period": f"{line.billing_period_start:%Y-%m}",
                "currency": line.billing_currency,
            }
            t = totals[tuple(values[d] for d in dimensions)]
            t[0] += line.billed_cost
            t[1] += line.effective_cost
            t[2] += 1
        return {k: (v[0], v[1], v[2]) for k, v in totals.items()}


def _lines(account: str, period: datetime, *, scale: Decimal) -> list[CostLine]:
    end = (period + timedelta(days=32)).replace(day=1)
    lines = []
    for day in range(10):
        start = period + timedelta(days=day)
        for i, team in enumerate(TEAMS):
            for j, service in enumerate(SERVICES):
                cost = (Decimal(10 + i * 7 + j * 3) + Decimal(day) / 4 + Decimal("0.37")) * scale
                tags = {"team": team, "cost_center": COST_CENTERS[team], "product": PRODUCTS[team]}
                lines.append(
                    CostLine(
                        billing_account_id=account,
                        billing_period_start=period,
                        billing_period_end=end,
                        charge_period_start=start,
                        charge_period_end=start + timedelta(days=1),
                        charge_category="Usage",
                        billing_currency="USD",
                        billed_cost=cost,
                        effective_cost=(cost * Decimal("0.9")).quantize(Decimal("0.0001")),
                        provider_name="AWS",
                        service_name=service,
                        resource_id=f"{team}-{j}",
                        tags=tags,
                    )
                )
        lines.append(
            CostLine(
                billing_account_id=account,
                billing_period_start=period,
                billing_period_end=end,
                charge_period_start=start,
                charge_period_end=start + timedelta(days=1),
                charge_category="Usage",
                billing_currency="USD",
                billed_cost=Decimal("1.05"),
                effective_cost=Decimal("1.05"),
                provider_name="AWS",
                service_name="AWS Support",
            )
        )
    return lines


def _ingest(s: Scenario, lines: list[CostLine], *, version: int, at: datetime, file_name: str) -> uuid.UUID:
    ingest_id = uuid.uuid4()
    src = "/finops/ingest"
    s.add(
        IngestAccepted(ingest_id=ingest_id, file_name=file_name, sha256="0" * 64, format="focus", size_bytes=4096),
        at,
        source=src,
    )
    by_period: dict[tuple[str, datetime], list[CostLine]] = defaultdict(list)
    for line in lines:
        by_period[(line.billing_account_id, line.billing_period_start)].append(line)
    seq = 0
    totals_all: list[CurrencyTotal] = []
    for (account, period), group in sorted(by_period.items()):
        batches = [group[i : i + 40] for i in range(0, len(group), 40)]
        for batch in batches:
            event = CostBatchIngested.of_lines(
                batch, ingest_id=ingest_id, batch_seq=seq, billing_account_id=account, billing_period_start=period
            )
            batch_id = s.add(event, at, source=src)
            seq += 1
            owners: dict[str, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
            for line in batch:
                owner = line.tags.get("team", "unallocated")
                owners[owner][0] += line.billed_cost
                owners[owner][1] += line.effective_cost
                owners[owner][2] += 1
            s.add(
                CostAllocated(
                    source_event_id=batch_id,
                    ingest_id=ingest_id,
                    billing_account_id=account,
                    billing_period_start=period,
                    allocations=tuple(
                        OwnerCost(owner=o, currency="USD", billed_cost=v[0], effective_cost=v[1], line_count=v[2])
                        for o, v in sorted(owners.items())
                    ),
                ),
                at + timedelta(minutes=1),
                source="/finops/allocation",
            )
        resources = sorted({ln.resource_id for ln in group if ln.resource_id})
        for resource in resources:
            team, cost_center = published_owner(next(ln for ln in group if ln.resource_id == resource))
            s.add(
                ResourceOwned(
                    billing_account_id=account, resource_id=resource, billing_period_start=period, owner_team=team,
                    cost_center=None if cost_center == "unallocated" else cost_center, run=version, ruleset_version=1,
                    decided_by="rule:by-resource" if resource in RULED else "tag:team",
                ),
                at + timedelta(minutes=2),
                source="/finops/allocation",
            )  # fmt: skip
        total = CurrencyTotal(
            currency="USD",
            billed_cost=sum((ln.billed_cost for ln in group), Decimal(0)),
            effective_cost=sum((ln.effective_cost for ln in group), Decimal(0)),
            line_count=len(group),
        )
        totals_all.append(total)
        s.add(
            CostPeriodCompleted(
                ingest_id=ingest_id,
                provider_name="AWS",
                billing_account_id=account,
                billing_period_start=period,
                version=version,
                batch_count=len(batches),
                line_count=len(group),
                totals=(total,),
            ),
            at,
            source=src,
        )
    s.add(
        IngestCompleted(
            ingest_id=ingest_id,
            file_name=file_name,
            sha256="1" * 64,
            row_count=len(lines),
            batch_count=seq,
            totals=(
                CurrencyTotal(
                    currency="USD",
                    billed_cost=sum((t.billed_cost for t in totals_all), Decimal(0)),
                    effective_cost=sum((t.effective_cost for t in totals_all), Decimal(0)),
                    line_count=len(lines),
                ),
            ),
        ),
        at + timedelta(seconds=30),
        source=src,
    )
    return ingest_id


def _money(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def build() -> Scenario:
    s = Scenario()
    # A first bill of both accounts, then a restatement of the first account's period (version 2 replaces it).
    first = [ln for a in ACCOUNTS for ln in _lines(a, PERIOD, scale=Decimal(1))]
    _ingest(s, first, version=1, at=START + timedelta(days=2), file_name="focus-2026-09.csv")
    restated = _lines(ACCOUNTS[0], PERIOD, scale=Decimal("1.1"))
    _ingest(s, restated, version=2, at=START + timedelta(days=3), file_name="focus-2026-09-restated.csv")
    s.lines = restated + [ln for ln in first if ln.billing_account_id == ACCOUNTS[1]]
    s.add(
        IngestRejected(
            ingest_id=uuid.uuid4(),
            file_name="broken.csv",
            sha256="2" * 64,
            errors=(RejectionDetail(row=3, column="BilledCost", value="abc", rule="decimal", hint="send a number"),),
        ),
        START + timedelta(days=3, hours=1),
        source="/finops/ingest",
    )
    at = START + timedelta(days=4)
    s.add(
        CoverageMeasured(
            billing_period_start=PERIOD,
            ruleset_version=1,
            items=tuple(
                Coverage(
                    scope_kind="team",
                    scope=t,
                    total=_money("1000.00"),
                    tagged_share=Decimal("0.95"),
                    allocated_share=Decimal("0.90") - Decimal(i) / 10,
                )
                for i, t in enumerate(TEAMS)
            ),
        ),
        at,
        source="/finops/allocation",
    )
    for team, budget in (("checkout", "900.00"), ("search", "2000.00")):
        s.add(
            BudgetAlerted(
                scope_kind="team",
                scope=team,
                billing_period_start=PERIOD,
                threshold=Decimal("0.8"),
                basis="forecast",
                amount=_money(budget),
                budget=_money(budget),
                actual=_money("700.00"),
                projected=_money("1250.00"),
                as_of=at,
            ),
            at,
            source="/finops/allocation",
        )
    s.add(
        UnitCostReported(
            product="shop",
            billing_period_start=PERIOD,
            metric="orders",
            units=Decimal(12000),
            cost=_money("2400.00"),
            unit_cost=_money("0.20"),
        ),
        at,
        source="/finops/allocation",
    )
    s.add(
        BusinessMetricReported(product="shop", period="2026-09", metric="orders", units=Decimal(12000)),
        at,
        source="/erp",
    )
    s.add(
        JournalExported(
            billing_period_start=PERIOD,
            journal_id=uuid.uuid4(),
            entity="ACME Corp",
            closed_by="fiona",
            line_count=6,
            debits=(_money("2400.00"),),
            csv_url="/v1/journals/2026-09.csv",
            json_url="/v1/journals/2026-09.json",
        ),
        at,
        source="/finops/allocation",
    )
    # Recommendations: seven that decisions follow, one updated, one superseded, one expired; the KPIs.
    rec_at = START + timedelta(days=5)
    plans = {
        "verified": ("checkout", Kind.COMMITMENT_PLAN, "320.00"),
        "shortfall": ("search", Kind.COMMITMENT_PLAN, "150.00"),
        "failed": ("data", Kind.COMMITMENT_PLAN, "75.50"),
        "rightsized": ("checkout", Kind.RIGHTSIZING, "42.25"),
        "rejected": ("search", Kind.IDLE, "12.00"),
        "expired": ("data", Kind.RIGHTSIZING, "30.00"),
        "pending": ("checkout", Kind.ANOMALY, "0.00"),
    }
    for name, (team, kind, amount) in plans.items():
        rid = uuid.uuid4()
        s.recommendations[name] = rid
        s.add(
            _issued(rid, team, kind, amount, rec_at, title=f"{kind.value.replace('_', ' ')} for {team} ({name})"),
            rec_at,
            source="/finops/recommend",
        )
        if kind is Kind.ANOMALY:
            s.cost_change_total += Decimal(amount)
        else:
            s.recommended_total += Decimal(amount)  # every one is taken up by a decision: open whatever its expiry
    # One more recommendation: issued, updated with new numbers, superseded by a newer one; one that expires.
    old, new, lapsed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    s.add(
        _issued(old, "search", Kind.IDLE, "5.00", rec_at, title="idle volume (old)"), rec_at, source="/finops/recommend"
    )
    s.add(
        RecommendationUpdated(
            **{
                **_issued(old, "search", Kind.IDLE, "6.00", rec_at, title="idle volume (old)").model_dump(),
                "version": 2,
            }
        ),
        rec_at + timedelta(hours=1),
        source="/finops/recommend",
    )
    s.add(
        _issued(new, "search", Kind.IDLE, "7.00", rec_at, title="idle volume", expires_at=FAR_FUTURE),
        rec_at + timedelta(hours=2),
        source="/finops/recommend",
    )
    s.add(
        RecommendationSuperseded(
            recommendation_id=old,
            kind=Kind.IDLE,
            target="vol-1",
            owner_team="search",
            superseded_by=new,
            reason="newer data",
        ),
        rec_at + timedelta(hours=2),
        source="/finops/recommend",
    )
    s.add(
        _issued(lapsed, "data", Kind.ANOMALY, "3.00", rec_at, title="anomaly that passed"),
        rec_at,
        source="/finops/recommend",
    )
    s.add(
        RecommendationExpired(
            recommendation_id=lapsed,
            kind=Kind.ANOMALY,
            target="vol-1",
            owner_team="data",
            expired_at=rec_at + timedelta(days=1),
            reason="the finding no longer holds",
        ),
        rec_at + timedelta(days=1),
        source="/finops/recommend",
    )
    # One that passed its expiry with no decision and no expired event yet: no longer on offer.
    stale = uuid.uuid4()
    s.add(
        _issued(stale, "data", Kind.RIGHTSIZING, "4.00", rec_at, title="rightsizing that lapsed"),
        rec_at,
        source="/finops/recommend",
    )
    s.recommended_total += Decimal("7.00")  # not the superseded 6.00, the expired anomaly's 3.00, nor the lapsed 4.00
    s.add(
        KpiMeasured(
            pool="aws_compute_savings_plan/111122223333",
            provider_name="AWS",
            billing_account_id=ACCOUNTS[0],
            month=PERIOD,
            on_demand_equivalent=_money("10000.00"),
            actual_cost=_money("8000.00"),
            savings=_money("2000.00"),
            effective_savings_rate=Decimal("0.2"),
            coverage=Decimal("0.6"),
            utilization=Decimal("0.97"),
            unused_commitment_cost=_money("40.00"),
        ),
        rec_at,
        source="/finops/recommend",
    )
    # A scoped pool within that account: its usage is also in the flexible pool's, so no total counts it again.
    s.add(
        KpiMeasured(
            pool="aws_ec2_instance_savings_plan/111122223333/us-east-1/m5",
            provider_name="AWS",
            billing_account_id=ACCOUNTS[0],
            month=PERIOD,
            on_demand_equivalent=_money("4000.00"),
            actual_cost=_money("2400.00"),
            savings=_money("1600.00"),
            effective_savings_rate=Decimal("0.4"),
            coverage=Decimal("0.9"),
            utilization=Decimal("0.5"),
            unused_commitment_cost=_money("600.00"),
            scope={"region": "us-east-1", "instance_family": "m5"},
        ),
        rec_at,
        source="/finops/recommend",
    )
    # Decisions through every state. Approved one day after the recommendation, purchased half a day later,
    # verified thirty days later.
    for name, (team, kind, amount) in plans.items():
        _decide(s, name, team, kind, amount, rec_at)
    # A record no consumer can read: the console sends it to the dead-letter topic.
    s.records.append(
        Record(
            "finops.decision.v1",
            b"broken",
            Envelope(id=uuid.uuid4(), type=DecisionProposed.TYPE, source="/somewhere", time=rec_at).to_headers(),
            json.dumps({"decision_id": "not-a-uuid"}).encode(),
        )
    )
    s.poison = 1
    return s


def _issued(
    rid: uuid.UUID, team: str, kind: Kind, amount: str, at: datetime, *, title: str, expires_at: datetime | None = None
) -> RecommendationIssued:
    return RecommendationIssued(
        recommendation_id=rid,
        kind=kind,
        target="vol-1" if kind in (Kind.IDLE, Kind.ANOMALY) else f"pool/{team}",
        title=title,
        owner_team=team,
        personas=(Persona.ENGINEERING, Persona.FINANCE),
        estimated_monthly_savings=_money(amount),
        expires_at=expires_at or at + timedelta(days=30),
        as_of=at,
        billing_account_id=ACCOUNTS[0],
        provider_name="AWS",
    )


def _decide(s: Scenario, name: str, team: str, kind: Kind, amount: str, rec_at: datetime) -> None:
    did = uuid.uuid4()
    s.decisions[name] = did
    s.savings[name] = Decimal(amount)
    common = dict(decision_id=did, recommendation_id=s.recommendations[name], kind=kind, owner_team=team)
    src = "/finops/decision"
    tranche = CommitmentPurchase(
        program="aws_compute_savings_plan",
        term_months=12,
        payment="no_upfront",
        start=NEXT,
        commitment_per_hour=_money("1.50"),
        covered_usage_per_hour=Decimal("2.10"),
    )
    t = rec_at + timedelta(hours=1)
    s.add(
        DecisionProposed(
            **common,
            state=DecisionState.PROPOSED,
            title=f"{kind.value.replace('_', ' ')} for {team} ({name})",
            proposer="recommend",
            estimated_monthly_savings=_money(amount),
            monthly_commitment=_money("1095.00") if kind is Kind.COMMITMENT_PLAN else None,
            term_months=12 if kind is Kind.COMMITMENT_PLAN else None,
            policy_version=1,
            billing_account_id=ACCOUNTS[0],
            provider_name="AWS",
            purchase=tranche if kind is Kind.COMMITMENT_PLAN else None,
        ),
        t,
        source=src,
    )
    s.add(
        ApprovalRequested(
            **common,
            state=DecisionState.PENDING_APPROVAL,
            title=f"{kind.value.replace('_', ' ')} for {team} ({name})",
            requirements=(Requirement(persona=Persona.FINANCE), Requirement(persona=Persona.ENGINEERING, team=team)),
            policy_version=1,
            policy_rule="commitments-over-1000",
            due_at=t + timedelta(days=3),
            estimated_monthly_savings=_money(amount),
        ),
        t + timedelta(minutes=1),
        source=src,
    )
    if name == "pending":
        return
    if name == "rejected":
        s.add(
            DecisionRejected(
                **common,
                state=DecisionState.REJECTED,
                principal="fiona",
                persona=Persona.FINANCE,
                comment="not this quarter",
                at=rec_at + timedelta(days=1),
            ),
            rec_at + timedelta(days=1),
            source=src,
        )
        return
    if name == "expired":
        s.add(
            DecisionExpired(
                **common,
                state=DecisionState.EXPIRED,
                reason="approvals did not arrive in time",
                at=rec_at + timedelta(days=3),
            ),
            rec_at + timedelta(days=3),
            source=src,
        )
        return
    approved_at = rec_at + timedelta(days=1)
    s.add(
        DecisionApproved(
            **common,
            state=DecisionState.APPROVED,
            approvals=(
                Approval(principal="fiona", persona=Persona.FINANCE, at=approved_at),
                Approval(principal=f"erin@{team}", persona=Persona.ENGINEERING, at=approved_at),
            ),
            policy_version=1,
            policy_rule="commitments-over-1000",
            waited_seconds=Decimal(86400 - 3600),
        ),
        approved_at,
        source=src,
    )
    if kind is not Kind.COMMITMENT_PLAN:
        return
    s.add(
        PurchaseRequested(
            **common,
            state=DecisionState.PURCHASE_REQUESTED,
            client_token=str(did),
            provider_name="AWS",
            billing_account_id=ACCOUNTS[0],
            purchase=tranche,
            estimated_monthly_savings=_money(amount),
        ),
        approved_at + timedelta(minutes=5),
        source=src,
    )
    purchased_at = approved_at + timedelta(hours=12)
    purchase = dict(decision_id=did, client_token=str(did), provider_name="AWS", dry_run=True)
    if name == "failed":
        s.add(
            PurchaseFailed(**purchase, reason="the provider refused: limit exceeded", attempts=3),
            purchased_at,
            source="/finops/purchase",
        )
        return
    commitment = f"arn:aws:savingsplans::{ACCOUNTS[0]}:savingsplan/{did}"
    s.add(
        CommitmentPurchased(
            **purchase,
            commitment_id=commitment,
            program="aws_compute_savings_plan",
            term_months=12,
            payment="no_upfront",
            start=NEXT,
            end=NEXT + timedelta(days=365),
            commitment_per_hour=_money("1.50"),
            upfront=_money("0.00"),
        ),
        purchased_at,
        source="/finops/purchase",
    )
    realized = Decimal(amount) * (Decimal("1.02") if name == "verified" else Decimal("0.40"))
    s.realized[name] = realized
    verification = dict(
        **common,
        commitment_id=commitment,
        window_start=NEXT,
        window_end=NEXT + timedelta(days=30),
        estimated_savings=_money(amount),
        realized_savings=Money(amount=realized, currency="USD"),
        realization=(realized / Decimal(amount)).quantize(Decimal("0.0001")),
        lines_matched=720,
    )
    verified_at = purchased_at + timedelta(days=30)
    if name == "verified":
        s.add(SavingsVerified(**verification, state=DecisionState.SAVINGS_VERIFIED), verified_at, source=src)
    else:
        s.add(
            SavingsShortfall(**verification, state=DecisionState.SAVINGS_SHORTFALL, reason="usage fell"),
            verified_at,
            source=src,
        )
