"""From the usage model to drafts of recommendations and KPIs: commitment plans per pool, rightsizing and idle
findings per resource, cost anomalies per team. Pure functions over what the repository read."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from finops_contracts.money import Money
from finops_contracts.recommendations import CommitmentPurchase, Kind, KpiMeasured, Persona
from finops_recommend import anomaly, commitments, findings
from finops_recommend.prices import NO_UPFRONT, PriceTable, Program
from finops_recommend.usage import hourly

RATIO = Decimal("0.0001")
DAYS_PER_MONTH = Decimal("365.25") / 12


@dataclass(frozen=True)
class Settings:
    min_history_hours: int = 168
    """A pool needs a week of usage before a plan is worth proposing."""
    min_monthly_savings: Decimal = Decimal("1")
    anomaly_recent_days: int = 7
    """Only incidents that were still going on in the last days of the data are news."""
    anomaly_resource_children: int = 20
    """Attribution looks at a team's largest resources only."""
    planner: commitments.Settings = field(default_factory=commitments.Settings)
    findings: findings.Settings = field(default_factory=findings.Settings)
    anomaly: anomaly.Settings = field(default_factory=anomaly.Settings)
    prices: PriceTable = field(default_factory=PriceTable)


@dataclass(frozen=True)
class Draft:
    """A recommendation as a run computes it, before the lifecycle gives it an id and a version."""

    kind: Kind
    target: str
    generation: str
    """With kind and target, what makes the recommendation's id: a new generation supersedes the previous one."""
    title: str
    owner_team: str
    personas: tuple[Persona, ...]
    savings: Money
    evidence: dict[str, Any]
    as_of: datetime
    billing_account_id: str | None = None
    provider_name: str | None = None
    resource_id: str | None = None
    purchases: tuple[CommitmentPurchase, ...] = ()


def _text(value: object) -> object:
    """Evidence numbers as decimal strings: floats never travel in events."""
    if isinstance(value, float):
        return format(Decimal(repr(value)).quantize(RATIO, rounding=ROUND_HALF_EVEN), "f")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return {str(k): _text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    return value


def commitment_plans(
    buckets: Mapping[tuple[str, str], Sequence[tuple[datetime, int, Decimal]]],
    teams: Mapping[tuple[str, str], Sequence[tuple[str, Decimal]]],
    settings: Settings,
) -> list[Draft]:
    """A plan per pool and currency whose tranches to buy now save at least `min_monthly_savings` a month."""
    drafts = []
    for (pool, currency), rows in sorted(buckets.items()):
        series = hourly([(b, h, float(max(a, Decimal(0)))) for b, h, a in rows])
        if series is None or series.values.size < settings.min_history_hours:
            continue
        program_name, _, account = pool.partition("/")
        program = Program(program_name)
        instruments = settings.prices.instruments(program)
        plan = commitments.plan_pool(
            pool, series.values, instruments, settings=settings.planner, currency=currency, now=series.end
        )
        now = [t for t in plan.tranches if t.start_month == 0]
        if not now or plan.expected_monthly_savings.amount < settings.min_monthly_savings:
            continue
        shares = teams.get((pool, currency), [])
        total = sum((u for _, u in shares), Decimal(0))
        owner = shares[0][0] if shares else "unallocated"
        evidence = {
            **_text(dataclasses.asdict(plan.evidence)),
            "program": program.value,
            "break_even_month": plan.break_even_month,
            "horizon_months": plan.horizon_months,
            "expected_savings": _text(plan.expected_savings.amount),
            "projected_esr": _text(plan.projected_esr),
            "projected_coverage": _text(plan.projected_coverage),
            "projected_utilization": _text(plan.projected_utilization),
            "projected_unused_commitment_cost": _text(plan.projected_unused_commitment_cost.amount),
            "team_shares": {t: _text((u / total).quantize(RATIO)) for t, u in shares} if total else {},
        }
        purchases = tuple(
            CommitmentPurchase(
                program=program.value,
                term_months=t.term_months,
                payment=NO_UPFRONT,
                start=t.start or series.end,
                commitment_per_hour=t.commitment_per_hour,
                covered_usage_per_hour=t.covered_usage_per_hour,
            )
            for t in plan.tranches
        )
        per_hour = sum((t.commitment_per_hour.amount for t in now), Decimal(0))
        drafts.append(
            Draft(
                kind=Kind.COMMITMENT_PLAN,
                target=f"pool/{pool}/{currency}",
                generation=f"{series.end:%Y-%m}",
                title=f"Commit {per_hour} {currency}/h of {program.value} in billing account {account}",
                owner_team=owner,
                personas=(Persona.PRACTITIONER, Persona.FINANCE),
                savings=plan.expected_monthly_savings,
                evidence=evidence,
                as_of=series.end,
                billing_account_id=account,
                purchases=purchases,
            )
        )
    return drafts


def resource_findings(resources: Sequence[findings.Resource], last_day: date | None, settings: Settings) -> list[Draft]:
    if last_day is None:
        return []
    as_of = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=UTC)
    drafts = []
    for f in findings.judge(resources, last_day=last_day, settings=settings.findings):
        r = f.resource
        what = f.rule.replace("_", " ")
        drafts.append(
            Draft(
                kind=f.kind,
                target=f.target,
                generation=f"{as_of:%Y-%m}",
                title=f"{r.service_name or r.service_category} resource {r.resource_id}: {what}",
                owner_team=r.team,
                personas=(Persona.ENGINEERING,),
                savings=f.monthly_savings,
                evidence={"rule": f.rule, **_text(f.evidence)},
                as_of=as_of,
                billing_account_id=r.billing_account_id,
                provider_name=r.provider_name,
                resource_id=r.resource_id,
            )
        )
    return drafts


def anomalies(rows: Sequence[Mapping[str, Any]], settings: Settings) -> list[Draft]:
    """Upward cost anomalies of each team's daily cost, attributed to services, accounts and resources."""
    if not rows:
        return []
    first = min(r["day"] for r in rows)
    last = max(r["day"] for r in rows)
    n = (last - first).days + 1
    series: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros(n))
    children: dict[tuple[str, str], dict[str, dict[str, np.ndarray]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: np.zeros(n)))
    )
    resource_totals: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        key, i, cost = (r["team"], r["currency"]), (r["day"] - first).days, float(r["cost"])
        series[key][i] += cost
        children[key]["service"][r["service_name"] or "(none)"][i] += cost
        children[key]["account"][r["billing_account_id"]][i] += cost
        if r["resource_id"]:
            children[key]["resource"][r["resource_id"]][i] += cost
            resource_totals[key][r["resource_id"]] += cost
    as_of = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
    recent = last - timedelta(days=settings.anomaly_recent_days - 1)
    drafts = []
    for (team, currency), costs in sorted(series.items()):
        kids = children[(team, currency)]
        top = sorted(resource_totals[(team, currency)].items(), key=lambda kv: -kv[1])
        kids["resource"] = {k: kids["resource"][k] for k, _ in top[: settings.anomaly_resource_children]}
        days = anomaly.detect(list(costs), first, settings.anomaly)
        for incident in anomaly.group(days, series=team, currency=currency, settings=settings.anomaly):
            if incident.direction != "up" or incident.end < recent:
                continue
            incident = anomaly.attribute(
                incident, {d: {k: list(v) for k, v in c.items()} for d, c in kids.items()}, first,
                currency=currency, settings=settings.anomaly,
            )  # fmt: skip
            per_day = incident.change.amount / incident.days
            top_cause = incident.top
            drafts.append(
                Draft(
                    kind=Kind.ANOMALY,
                    target=f"anomaly/team/{team}/{currency}/{incident.start.isoformat()}",
                    generation="",
                    title=f"Cost of team {team} up {incident.change.amount} {currency} since {incident.start}"
                    + (f", mostly {top_cause.dimension} {top_cause.key}" if top_cause else ""),
                    owner_team=team,
                    personas=(Persona.ENGINEERING, Persona.PRACTITIONER),
                    savings=Money(amount=(per_day * DAYS_PER_MONTH).quantize(Decimal("0.01")), currency=currency),
                    evidence={
                        "start": incident.start.isoformat(),
                        "end": incident.end.isoformat(),
                        "peak": incident.peak.isoformat(),
                        "days": incident.days,
                        "severity": incident.severity.value,
                        "observed": _text(incident.observed.amount),
                        "expected": _text(incident.expected.amount),
                        "change": _text(incident.change.amount),
                        "max_z": _text(incident.max_z),
                        "contributors": [
                            {
                                "dimension": c.dimension,
                                "key": c.key,
                                "change": _text(c.change.amount),
                                "share": _text(c.share),
                            }
                            for c in incident.contributors
                        ],  # fmt: skip
                    },
                    as_of=as_of,
                )
            )
    return drafts


def kpis(rows: Sequence[Mapping[str, Any]]) -> list[KpiMeasured]:
    """Per pool, provider, month and currency: ESR, coverage, utilization and waste."""
    out = []
    for r in rows:
        currency = r["currency"]
        ode, covered = r["on_demand_equivalent"], r["covered"]
        commitment, unused, on_demand = r["commitment_cost"], r["unused"], r["on_demand_cost"]
        actual = on_demand + commitment
        savings = ode - actual

        def ratio(a: Decimal, b: Decimal, default: Decimal) -> Decimal:
            return (a / b).quantize(RATIO, rounding=ROUND_HALF_EVEN) if b else default

        out.append(
            KpiMeasured(
                pool=r["pool"],
                provider_name=r["provider_name"],
                billing_account_id=r["billing_account_id"],
                month=r["month"],
                on_demand_equivalent=Money(amount=ode, currency=currency),
                actual_cost=Money(amount=actual, currency=currency),
                savings=Money(amount=savings, currency=currency),
                effective_savings_rate=ratio(savings, ode, Decimal(0)),
                coverage=ratio(covered, ode, Decimal(0)),
                utilization=ratio(commitment - unused, commitment, Decimal(1)),
                unused_commitment_cost=Money(amount=unused, currency=currency),
            )
        )
    return out
