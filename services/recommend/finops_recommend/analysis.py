"""From the usage model to drafts of recommendations and KPIs: commitment plans per pool, rightsizing and idle
findings per resource, cost anomalies per team. Pure functions over what the repository read."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from finops_contracts.money import Money
from finops_contracts.recommendations import CommitmentPurchase, Kind, KpiMeasured, Persona
from finops_recommend import anomaly, commitments, existing, findings
from finops_recommend.prices import NO_UPFRONT, Instrument, PriceTable, Program, allowed_payments
from finops_recommend.usage import hourly, scoped_program_of
from finops_recommend.usage import pool_key as usage_pool_key

RATIO = Decimal("0.0001")
DAYS_PER_MONTH = Decimal("365.25") / 12


@dataclass(frozen=True)
class Settings:
    min_history_hours: int = 168
    """A pool needs a week of usage before a plan is worth proposing."""
    min_monthly_savings: Decimal = Decimal("1")
    max_families: int = 8
    """An account's largest instance families (by usage) planned as their own pools, at most."""
    min_family_share: float = 0.02
    """... each with at least this share of the account's flexible pool usage."""
    count_dry_run_purchases: bool = True
    """A purchase reported with dry_run (nothing was really bought) counts as held, so a platform run without real
    purchases still closes the loop; set False to plan as if dry runs had not happened."""
    rejection_cooldown_days: int = 30
    """Advice a person rejected is not given again for the same target before this many days."""
    utilization_days: int = 14
    """The metrics feed's window for the utilization p95 of rightsizing."""
    anomaly_recent_days: int = 62
    """Only incidents in the data's last two months are news. Bills come a month at a time (a billing period is
    delivered when it closes, a file may hold several, a restatement rewrites one), so the data's last day is
    usually a month end and a mid-month incident is 2 to 7 weeks old when its data first arrives: a window of a
    few days never alerted it. An incident keeps its id from run to run (kind, series and first day), so a wider
    window alerts it once, not at every run; it expires when it leaves the window."""
    anomaly_resource_children: int = 20
    """Attribution looks at a team's largest resources only."""
    planner: commitments.Settings = field(default_factory=commitments.Settings)
    payment_options: tuple[str, ...] = (NO_UPFRONT,)
    """The payment options a plan may choose (no upfront always): paying upfront is a treasury decision, so the
    partial and all upfront options are weighed only when finance allows them."""
    cost_of_capital: Decimal = Decimal("0.08")
    """Yearly cost of the money an upfront payment ties up: an upfront option's deeper discount is weighed net of
    it (prices.effective_discount). 8%: a typical corporate weighted average cost of capital."""
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
    if isinstance(value, np.generic):
        return _text(value.item())  # a numpy bool or number from the planner: as its Python value
    return value


def _aligned(rows: Sequence[tuple[datetime, int, Decimal]], start: datetime, hours: int) -> np.ndarray:
    """An hourly series of `hours` from `start` (days spread over their hours; missing hours are zero)."""
    series = hourly([(b, h, float(max(a, Decimal(0)))) for b, h, a in rows])
    out = np.zeros(hours)
    if series is None:
        return out
    offset = int((series.start - start).total_seconds() // 3600)
    lo, hi = max(offset, 0), min(offset + series.values.size, hours)
    if hi > lo:
        out[lo:hi] = series.values[lo - offset : hi - offset]
    return out


def _held(holdings: Sequence[existing.Holding], now: datetime, horizon: int) -> list[commitments.Tranche]:
    """Holdings as tranches in months from `now` (an unknown end: held beyond the horizon)."""
    month = timedelta(hours=commitments.HOURS_PER_MONTH)
    out = []
    for h in holdings:
        start = math.floor((h.starts_at - now) / month)
        end = horizon + 1 if h.ends_at is None else round((h.ends_at - now) / month)
        if end <= max(start, 0):
            continue
        inst = Instrument(f"held/{h.program}", end - start, min(max(h.discount, 1e-6), 1 - 1e-6))
        out.append(commitments.Tranche(inst, start, h.capacity_per_hour))
    return out


def _held_evidence(holdings: Sequence[existing.Holding]) -> list[dict[str, Any]]:
    """The account's commitments held, for the approver: what each covers, where, and until when."""
    return [
        {
            "commitment_id": h.commitment_id,
            "program": h.program,
            "pool": h.pool,
            "covered_usage_per_hour": _text(round(h.capacity_per_hour, 4)),
            "ends_at": h.ends_at.isoformat() if h.ends_at else "unknown",
            "sources": list(h.sources),
            **({"dry_run": True} if h.dry_run else {}),
        }
        for h in holdings
    ]


def commitment_plans(
    buckets: Mapping[tuple[str, str], Sequence[tuple[datetime, int, Decimal]]],
    teams: Mapping[tuple[str, str], Sequence[tuple[str, Decimal]]],
    settings: Settings,
    *,
    families: Mapping[tuple[str, str, str, str, str], Sequence[tuple[datetime, int, Decimal]]] | None = None,
    family_teams: Mapping[tuple[str, str, str, str, str], Sequence[tuple[str, Decimal]]] | None = None,
    lines: Sequence[existing.LineStats] = (),
    known: Sequence[existing.KnownCommitment] = (),
) -> list[Draft]:
    """A plan per pool and currency whose tranches to buy now save at least `min_monthly_savings` a month.

    A flexible pool (`<program>/<account>`) is planned with the commitments it holds, expiries included. When the
    account's lines name instance families, the pool is planned together with its families' pools
    (`<scoped program>/<account>/<region>/<family>`): one LP chooses between an Instance plan per family and the
    flexible plan.
    """
    families = families or {}
    family_teams = family_teams or {}
    drafts = []
    for (pool, currency), rows in sorted(buckets.items()):
        series = hourly([(b, h, float(max(a, Decimal(0)))) for b, h, a in rows])
        if series is None or series.values.size < settings.min_history_hours:
            continue
        program_name, _, account = pool.partition("/")
        program = Program(program_name)
        provider = next((k[0] for k in families if k[1] == account and k[4] == currency), None)
        scoped_program = next((scoped_program_of(k[0]) for k in families if k[1] == account), None)
        n = series.values.size
        candidates = []
        for key, frows in families.items():
            prov, acct, region, family, cur = key
            if acct != account or cur != currency or scoped_program is None:
                continue
            values = _aligned(frows, series.start, n)
            if np.count_nonzero(values) < settings.min_history_hours:
                continue
            candidates.append((float(values.sum()), key, region, family, values))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        total = float(series.values.sum())
        chosen = [c for c in candidates if total > 0 and c[0] >= settings.min_family_share * total]
        chosen = chosen[: settings.max_families]
        scoped_pools = {
            usage_pool_key(scoped_program, account, region, family): (key, values)
            for _, key, region, family, values in chosen
        }
        held = existing.holdings(
            lines, [k for k in known if k.currency in (None, currency)], now=series.end,
            planned_pools={pool, *scoped_pools}, prices=settings.prices,
            count_dry_runs=settings.count_dry_run_purchases,
        )  # fmt: skip
        by_pool: dict[str, list[existing.Holding]] = defaultdict(list)
        for h in held:
            if h.currency == currency:
                by_pool[h.pool].append(h)
        horizon = settings.planner.horizon_months
        if scoped_pools:
            plans = commitments.plan_account(
                pool,
                series.values,
                _choices(settings, program),
                [
                    commitments.ScopedPool(
                        p, values, _choices(settings, scoped_program), tuple(_held(by_pool[p], series.end,
                                                                                              horizon))
                    )
                    for p, (_, values) in scoped_pools.items()
                ],
                existing=_held(by_pool[pool], series.end, horizon),
                settings=settings.planner,
                currency=currency,
                now=series.end,
            )  # fmt: skip
        else:
            plans = [
                commitments.plan_pool(
                    pool,
                    series.values,
                    _choices(settings, program),
                    existing=_held(by_pool[pool], series.end, horizon),
                    settings=settings.planner,
                    currency=currency,
                    now=series.end,
                )  # fmt: skip
            ]
        for plan in plans:
            now = [t for t in plan.tranches if t.start_month == 0]
            if not now or plan.expected_monthly_savings.amount < settings.min_monthly_savings:
                continue
            if plan.pool in scoped_pools:
                fkey, _ = scoped_pools[plan.pool]
                shares = list(family_teams.get(fkey, []))
                plan_program, scope = scoped_program, {"region": fkey[2], "instance_family": fkey[3]}
                where = f"{fkey[3]} in {fkey[2]}, billing account {account}"
            else:
                shares = list(teams.get((pool, currency), []))
                plan_program, scope = program, {}
                where = f"billing account {account}"
            in_account = [h for p, hs in sorted(by_pool.items()) if p.split("/")[1:2] == [account] for h in hs]
            draft = _plan_draft(plan, plan_program, scope, where, account, provider, currency, series.end, shares,
                                in_account, settings)  # fmt: skip
            drafts.append(draft)
    return drafts


def _choices(settings: Settings, program: Program) -> tuple[Instrument, ...]:
    """The instruments a plan for `program` may choose: every term, in each payment option finance allows."""
    return settings.prices.choices(program, settings.payment_options, settings.cost_of_capital)


def _plan_draft(
    plan: commitments.PoolPlan,
    program: Program,
    scope: dict[str, str],
    where: str,
    account: str,
    provider: str | None,
    currency: str,
    as_of: datetime,
    shares: Sequence[tuple[str, Decimal]],
    held: Sequence[existing.Holding],
    settings: Settings,
) -> Draft:
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
        "existing_commitments": _held_evidence(held),
        "payment_options": allowed_payments(settings.payment_options),
        "cost_of_capital": _text(settings.cost_of_capital),
        **({"scope": scope} if scope else {}),
    }
    purchases = tuple(
        CommitmentPurchase(
            program=program.value,
            term_months=t.term_months,
            payment=t.payment,
            start=t.start or as_of,
            commitment_per_hour=t.commitment_per_hour,
            covered_usage_per_hour=t.covered_usage_per_hour,
            scope=scope,
        )
        for t in plan.tranches
    )
    per_hour = sum((t.commitment_per_hour.amount for t in plan.tranches if t.start_month == 0), Decimal(0))
    return Draft(
        kind=Kind.COMMITMENT_PLAN,
        target=f"pool/{plan.pool}/{currency}",
        generation=f"{as_of:%Y-%m}",
        title=f"Commit {per_hour} {currency}/h of {program.value} ({where})",
        owner_team=owner,
        personas=(Persona.PRACTITIONER, Persona.FINANCE),
        savings=plan.expected_monthly_savings,
        evidence=evidence,
        as_of=as_of,
        billing_account_id=account,
        provider_name=provider,
        purchases=purchases,
    )


def resource_findings(
    resources: Sequence[findings.Resource],
    last_day: date | None,
    settings: Settings,
    *,
    utilization: Mapping[str, findings.Utilization] | None = None,
) -> list[Draft]:
    """Idle and rightsizing findings per resource, owned by the resource's team; `utilization` is the metrics
    feed's p95 per resource id (over-provisioned instances)."""
    if last_day is None:
        return []
    as_of = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=UTC)
    drafts = []
    found = findings.judge(resources, last_day=last_day, utilization_p95=utilization, settings=settings.findings)
    for f in found:
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


ANOMALY_DIMENSIONS = ("team", "service", "account")
"""The daily series judged for anomalies, in the order an incident seen in several is alerted: a team's incident
names its owner, so it is the alert, and the service and account series it explains are its evidence."""
SAME_INCIDENT_SHARE = 0.5
"""Two overlapping incidents are one when either series made at least this share of the other's change."""


@dataclass
class _Found:
    dimension: str
    key: str
    currency: str
    incident: anomaly.Incident
    also: list[_Found] = field(default_factory=list)

    def explains(self, other: _Found) -> bool:
        """Whether the two are one incident: same currency, overlapping days, and one series is most of the
        other's change (a team's spike is its service's and its account's too)."""
        if self.currency != other.currency:
            return False
        a, b = self.incident, other.incident
        if a.end < b.start or b.end < a.start:
            return False
        return any(
            c.dimension == y.dimension and c.key == y.key and c.share >= SAME_INCIDENT_SHARE
            for x, y in ((self, other), (other, self))
            for c in x.incident.contributors
        )


def anomalies(rows: Sequence[Mapping[str, Any]], settings: Settings) -> list[Draft]:
    """Upward cost anomalies of the daily cost of each team, service and billing account, each attributed to the
    other two dimensions and to resources. An incident seen in several series (a team's spike moves its service
    and its account too) is one alert: the team's when a team explains it, with the others as evidence."""
    if not rows:
        return []
    first = min(r["day"] for r in rows)
    last = max(r["day"] for r in rows)
    n = (last - first).days + 1
    Key = tuple[str, str, str]
    series: dict[Key, np.ndarray] = defaultdict(lambda: np.zeros(n))
    children: dict[Key, dict[str, dict[str, np.ndarray]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: np.zeros(n)))
    )
    resource_totals: dict[Key, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        i, cost = (r["day"] - first).days, float(r["cost"])
        names = {"team": r["team"], "service": r["service_name"] or "(none)", "account": r["billing_account_id"]}
        for dimension in ANOMALY_DIMENSIONS:
            key = (dimension, names[dimension], r["currency"])
            series[key][i] += cost
            for other in ANOMALY_DIMENSIONS:
                if other != dimension:
                    children[key][other][names[other]][i] += cost
            if r["resource_id"]:
                children[key]["resource"][r["resource_id"]][i] += cost
                resource_totals[key][r["resource_id"]] += cost
    as_of = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
    recent = last - timedelta(days=settings.anomaly_recent_days - 1)
    found: list[_Found] = []
    for key, costs in sorted(series.items(), key=lambda kv: (ANOMALY_DIMENSIONS.index(kv[0][0]), kv[0][1:])):
        dimension, name, currency = key
        days = anomaly.detect(list(costs), first, settings.anomaly)
        incidents = [
            i
            for i in anomaly.group(days, series=name, currency=currency, settings=settings.anomaly)
            if i.direction == "up" and i.end >= recent
        ]
        if not incidents:
            continue
        kids = children[key]
        top = sorted(resource_totals[key].items(), key=lambda kv: -kv[1])
        kids["resource"] = {k: kids["resource"][k] for k, _ in top[: settings.anomaly_resource_children]}
        lists = {d: {k: list(v) for k, v in c.items()} for d, c in kids.items()}
        for incident in incidents:
            incident = anomaly.attribute(incident, lists, first, currency=currency, settings=settings.anomaly)
            found.append(_Found(dimension, name, currency, incident))
    alerts: list[_Found] = []
    for f in found:  # teams first, then services, then accounts
        same = next((a for a in alerts if a.explains(f) or any(x.explains(f) for x in a.also)), None)
        if same is None:
            alerts.append(f)
        else:
            same.also.append(f)
    return [_anomaly_draft(a, as_of) for a in alerts]


def _anomaly_draft(found: _Found, as_of: datetime) -> Draft:
    incident, currency = found.incident, found.currency
    per_day = incident.change.amount / incident.days
    top_cause = incident.top
    if found.dimension == "team":
        owner = found.key
    else:
        teams = [c for c in incident.contributors if c.dimension == "team"]
        owner = max(teams, key=lambda c: c.share).key if teams else "unallocated"
    return Draft(
        kind=Kind.ANOMALY,
        target=f"anomaly/{found.dimension}/{found.key}/{currency}/{incident.start.isoformat()}",
        generation="",
        title=f"Cost of {found.dimension} {found.key} up {incident.change.amount} {currency} since {incident.start}"
        + (f", mostly {top_cause.dimension} {top_cause.key}" if top_cause else ""),
        owner_team=owner,
        personas=(Persona.ENGINEERING, Persona.PRACTITIONER),
        savings=Money(amount=(per_day * DAYS_PER_MONTH).quantize(Decimal("0.01")), currency=currency),
        evidence={
            "series": {"dimension": found.dimension, "key": found.key},
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
                {"dimension": c.dimension, "key": c.key, "change": _text(c.change.amount), "share": _text(c.share)}
                for c in incident.contributors
            ],
            "also_seen_in": [
                {
                    "dimension": x.dimension,
                    "key": x.key,
                    "start": x.incident.start.isoformat(),
                    "change": _text(x.incident.change.amount),
                }
                for x in found.also
            ],  # fmt: skip
        },
        as_of=as_of,
    )


def kpis(rows: Sequence[Mapping[str, Any]]) -> list[KpiMeasured]:
    """Per pool, provider, month and currency: ESR, coverage, utilization and waste. Rows of a scoped pool (with
    `family` and `region_id`) carry them as the event's scope. A pool-month whose commitments show only their
    billed fees (an actual-cost bill) counts the fees as the commitments' cost and has no utilization."""
    out = []
    for r in rows:
        currency = r["currency"]
        ode, covered = r["on_demand_equivalent"], r["covered"]
        commitment, unused, on_demand = r["commitment_cost"], r["unused"], r["on_demand_cost"]
        fee = r.get("commitment_fee") or Decimal(0)
        # an actual-cost bill: the commitments' fees are billed, nothing of them is amortized over the usage they
        # cover, so the fees are what the commitments cost, and their utilization is not in the bill
        not_amortized = commitment == 0 and fee > 0
        if not_amortized:
            commitment = fee
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
                utilization=None if not_amortized else ratio(commitment - unused, commitment, Decimal(1)),
                unused_commitment_cost=Money(amount=unused, currency=currency),
                scope={"region": r["region_id"], "instance_family": r["family"]} if r.get("family") else {},
            )
        )
    return out
