"""The simulated company: its organisation, its bills (streamed, never whole in memory) and its truth."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path

from finops_simulate import findings, layouts
from finops_simulate.charges import Charge, cover, coverable, fees, usage
from finops_simulate.commitments import DISCOUNTS, PROGRAMS, Q6, Commitment
from finops_simulate.config import SimConfig
from finops_simulate.org import (
    ANOMALY_FACTOR,
    CENTRAL_CC,
    COST_CENTERS,
    UNALLOCATED,
    BillingAccount,
    Organisation,
    build,
)
from finops_simulate.periods import Period, add_months, period
from finops_simulate.truth import (
    POOL,
    ZERO,
    Accumulator,
    apportion,
    round_to_cents,
    s,
    weighted_quantile,
)

RATIO = Decimal("0.0001")
LOOKBACK_HOURS = 720
"""The last 30 days of a pool: what a commitment plan made at the end of the history rests on."""
CENT6 = Decimal("0.000001")
RUN_RATE_DAYS = 7
ONE, RATIO_ZERO = Decimal("1.0000"), Decimal("0.0000")
PLACES = 6  # every simulated amount has exactly 6 decimal places
ALIASES = {
    "team": ["team", "owner-team", "owner_team", "ownerteam", "squad"],
    "cost_center": ["cost_center", "cost-center", "costcenter", "cost center", "cc"],
    "product": ["product", "application", "app"],
    "environment": ["environment", "env", "stage"],
}


@dataclass(frozen=True)
class BillFile:
    path: Path
    provider: str
    layout: str
    accounts: tuple[str, ...]
    periods: tuple[str, ...]  # BillingPeriodStart of each period in the file
    restatement: bool = False
    lines: int = 0


@dataclass(frozen=True)
class _Plan:
    name: str
    provider: str
    layout: str
    account: BillingAccount
    periods: tuple[Period, ...]
    restatement: bool


@dataclass
class Company:
    cfg: SimConfig = field(default_factory=SimConfig)
    purchases: tuple[Commitment, ...] = ()

    def __post_init__(self) -> None:
        self.org: Organisation = build(self.cfg, self._resources_per_account())
        self._truth: dict | None = None
        layouts.CURRENCY[0] = self.cfg.currency
        self.commitments: tuple[Commitment, ...] = (*self._existing(), *self.purchases)

    def with_purchase(self, commitment: Commitment) -> Company:
        """The same company having bought `commitment`: the bills from its start on reflect it."""
        if not any(
            b.id == commitment.billing_account and b.provider == commitment.provider for b in self.org.billing_accounts
        ):
            raise ValueError(f"no {commitment.provider} billing account {commitment.billing_account}")
        return Company(self.cfg, (*self.purchases, commitment))

    def _existing(self) -> list[Commitment]:
        """The plan the company already holds: one compute savings plan on the AWS billing account with a
        management account (else the last AWS one), bought 8 months before the first simulated month for 12
        months (so it expires in period 4), committing 0.6 x the account's EC2 base on-demand rate x (1 - d); an
        Azure savings plan on the first Azure billing account, bought 2 months before for 36 months (active
        throughout), committing 0.5 x its VMs' base rate x (1 - d)."""
        if not self.cfg.commitments:
            return []
        plans = []
        aws = [b for b in self.org.billing_accounts if b.provider == "aws"]
        if aws:
            ba = next((b for b in aws if any(s.central for s in b.sub_accounts)), aws[-1])
            hourly = (_compute_base(ba) * Decimal("0.6") * (1 - DISCOUNTS[PROGRAMS["aws"]])).quantize(Decimal("0.001"))
            if hourly > 0:
                plans.append(Commitment("aws", ba.id, hourly, add_months(self.cfg.first_month, -8).isoformat(), 12))
        azure = [b for b in self.org.billing_accounts if b.provider == "azure"]
        if azure:
            ba = azure[0]
            d = DISCOUNTS[PROGRAMS["azure"]]
            hourly = (_compute_base(ba) * Decimal("0.5") * (1 - d)).quantize(Decimal("0.001"))
            if hourly > 0:
                plans.append(Commitment("azure", ba.id, hourly, add_months(self.cfg.first_month, -2).isoformat(), 36))
        return plans

    def fee_account(self, ba: BillingAccount):
        return next((s for s in ba.sub_accounts if s.central), ba.sub_accounts[0])

    # -- shape ---------------------------------------------------------------------------------------------------
    def _resources_per_account(self) -> int:
        if self.cfg.lines is None:
            return self.cfg.resources_per_account
        rows = round(30.44 * self.cfg.months) * (24 if self.cfg.granularity == "hourly" else 1)
        return max(1, round(self.cfg.lines / (self.cfg.accounts * rows)) - 1)

    def periods(self, provider: str) -> list[Period]:
        return [period(self.cfg.first_month, i, provider) for i in range(self.cfg.months)]

    @property
    def restatement(self) -> tuple[BillingAccount, Period] | None:
        """The restated account-period: the first billing account, three periods before the last (the first
        when there are fewer). Its last sub account's usage is re-rated at 0.9 x the list price."""
        if not self.cfg.restate:
            return None
        ba = self.org.billing_accounts[0]
        return ba, self.periods(ba.provider)[max(0, self.cfg.months - 3)]

    def charges(
        self, ba: BillingAccount, p: Period, *, restated: bool = False, style: str = "focus"
    ) -> Iterator[Charge]:
        """One account-period's charges, resource by resource, then the commitments' own rows, as the bill
        `style` shows them (focus, cur, azure-actual, azure-amortized: see commitments.py)."""
        hourly = self.cfg.granularity == "hourly"
        rerated = ba.sub_accounts[-1] if restated else None
        plans = [c for c in self.commitments if c.billing_account == ba.id and c.begins < p.end and c.ends > p.start]
        left: dict[tuple[int, datetime], Decimal] = {}
        for sub in ba.sub_accounts:
            for resource in sub.resources:
                for charge in usage(
                    resource,
                    p,
                    seed=self.cfg.seed,
                    first=self.cfg.first_month,
                    hourly=hourly,
                    restated=sub is rerated,
                ):
                    if plans and coverable(charge):
                        self._apply(plans, charge, left, style)
                    yield charge
        if not plans:
            return
        fee_sub = self.fee_account(ba)
        for _, start, end in p.days():
            for slot_start, slot_end in p.hours(start, end) if hourly else ((start, end),):
                for i, plan in enumerate(plans):
                    if not plan.active(slot_start):
                        continue
                    total = plan.hourly * _hours(slot_start, slot_end)
                    unused = left.get((i, slot_start), total)
                    yield from fees(
                        ba, fee_sub, p, slot_start, slot_end, plan.id, total, unused, style=style, kind=plan.kind
                    )

    @staticmethod
    def _apply(plans: list[Commitment], charge: Charge, left: dict, style: str) -> None:
        for i, plan in enumerate(plans):
            if not plan.active(charge.start):
                continue
            key = (i, charge.start)
            remaining = left.get(key)
            if remaining is None:
                remaining = plan.hourly * _hours(charge.start, charge.end)
            cost = plan.rate(charge.list_cost)
            if cost <= remaining:
                left[key] = remaining - cost
                cover(charge, plan.id, cost, style, plan.kind)
                return
            left[key] = remaining

    def _plans(self) -> list[_Plan]:
        plans = []
        numbers: dict[str, int] = {}
        for ba in self.org.billing_accounts:
            numbers[ba.provider] = numbers.get(ba.provider, 0) + 1
            lay = self.cfg.layout_of(ba.provider)
            name = f"{ba.provider}-{lay}-{numbers[ba.provider]}"
            plans.append(_Plan(name, ba.provider, lay, ba, tuple(self.periods(ba.provider)), False))
        restated = self.restatement
        if restated is not None:
            ba, p = restated
            first = next(pl for pl in plans if pl.account is ba)
            plans.append(_Plan(f"{first.name}-{p.label}-restated", ba.provider, first.layout, ba, (p,), True))
        return plans

    # -- writing -------------------------------------------------------------------------------------------------
    def write(self, out_dir: Path) -> list[BillFile]:
        """Write every bill file, truth.json, rules.yaml and manifest.json under out_dir; the files in the order
        they are to be ingested (the restatement last)."""
        out = Path(out_dir)
        (out / "bills").mkdir(parents=True, exist_ok=True)
        acc = Accumulator(self.cfg.months)
        files = []
        suffix = ".csv.gz" if self.cfg.gzip else ".csv"
        for plan in self._plans():
            lay = layouts.layout(plan.layout, day_first=self.cfg.day_first)
            path = out / "bills" / f"{plan.name}{suffix}"
            n = 0
            with _open(path, self.cfg.gzip) as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(lay.header)
                row = lay.row
                for p in plan.periods:
                    for charge in self.charges(plan.account, p, restated=plan.restatement, style=_style(plan.layout)):
                        acc.add(charge, "restated" if plan.restatement else "original")
                        writer.writerow(row(charge))
                        n += 1
            files.append(
                BillFile(
                    path,
                    plan.provider,
                    plan.layout,
                    (plan.account.id,),
                    tuple(p.key for p in plan.periods),
                    plan.restatement,
                    n,
                )
            )
        self._truth = self._assemble(acc)
        (out / "truth.json").write_text(json.dumps(self._truth, indent=1) + "\n")
        (out / "rules.yaml").write_text(self.rules_yaml())
        findings.write_metrics(out / "metrics.csv", self.cfg)
        findings.write_utilization(out / "utilization.csv", self.org, self.cfg)
        manifest = [
            {
                **asdict(f),
                "path": str(f.path.relative_to(out)),
                "accounts": list(f.accounts),
                "periods": list(f.periods),
            }
            for f in files
        ]
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        return files

    def truth(self) -> dict:
        """The same dict as truth.json (computed without writing when the company was not written)."""
        if self._truth is None:
            acc = Accumulator(self.cfg.months)
            for plan in self._plans():
                for p in plan.periods:
                    for charge in self.charges(plan.account, p, restated=plan.restatement, style=_style(plan.layout)):
                        acc.add(charge, "restated" if plan.restatement else "original")
            self._truth = self._assemble(acc)
        return self._truth

    # -- rules -----------------------------------------------------------------------------------------------------
    def rules_yaml(self) -> str:
        """The allocation rule set (the allocation service's YAML schema): the network pool split in proportion
        to each cost center's direct cost, one rule per single-owner sub account, tags for the shared ones."""
        q = json.dumps
        lines = [
            "# Generated by finops simulate: the rule set the truth's chargeback is computed under.",
            "lowercase_values: true",
            "tag_aliases:",
            # OCI's defined tags come namespaced (tags/Finance.team): the namespace's keys are aliases too.
            *(f"  {k}: {q([*v, *(f'Finance.{a}' for a in v)])}" for k, v in ALIASES.items()),
            "pools:",
            f"  - name: {POOL}",
            "    method: proportional",
            "    by: cost_center",
            "rules:",
            "  - name: network-is-shared",
            "    priority: 10",
            "    match:",
            "      - {field: service_category, op: eq, value: Networking}",
            "    assign: {team: shared, product: shared-network, environment: shared}",
            f"    pool: {POOL}",
        ]
        for sub in self.org.sub_accounts:
            if sub.owner is None:
                continue
            lines += [
                f"  - name: {q('sub-account-' + sub.id)}",
                "    priority: 100",
                "    match:",
                f"      - {{field: sub_account_id, op: eq, value: {q(sub.id)}}}",
                "    assign:",
                f"      cost_center: {q(sub.owner.id)}",
                f"      team: {q(sub.owner.team)}",
                f"      product: {q(sub.owner.product)}",
                f"      environment: {q(sub.environment)}",
            ]
        return "\n".join(lines) + "\n"

    # -- truth -----------------------------------------------------------------------------------------------------
    def _assemble(self, acc: Accumulator) -> dict:
        restated = self.restatement
        restated_key = None if restated is None else (restated[0].id, restated[1].key)

        def current(ba: str, pk: str) -> str:
            return "restated" if (ba, pk) == restated_key else "original"

        billing = []
        for (ba, pk, version), (billed, effective, list_cost, n) in sorted(acc.billing.items()):
            billing.append(
                {
                    "provider": acc.providers[ba],
                    "billing_account_id": ba,
                    "billing_period_start": pk,
                    "version": version,
                    "current": version == current(ba, pk),
                    "billed_cost": s(billed),
                    "effective_cost": s(effective),
                    "list_cost": s(list_cost),
                    "lines": n,
                }
            )
        chargeback, allocation = self._chargeback(acc, current)
        commitments = self._commitment_truth(acc, current)
        planted = self._findings(acc, current)
        unit_economics = self._unit_economics(acc, current)
        truth = {
            "simulator": "finops_simulate 1",
            "config": {k: v for k, v in asdict(self.cfg).items()},
            "currency": self.cfg.currency,
            "definitions": DEFINITIONS,
            "organisation": self._organisation(),
            "billing_totals": billing,
            "restatement": None
            if restated is None
            else {
                "billing_account_id": restated[0].id,
                "billing_period_start": restated[1].key,
                "sub_account_id": restated[0].sub_accounts[-1].id,
                "rate_factor": "0.9",
                "original": _pick(billing, restated_key, "original"),
                "restated": _pick(billing, restated_key, "restated"),
                "current": "restated",
            },
            "chargeback": chargeback,
            "allocation": allocation,
            "commitments": commitments,
            "findings": planted,
            "unit_economics": unit_economics,
        }
        suffix = ".csv.gz" if self.cfg.gzip else ".csv"
        truth["files"] = []
        for plan in self._plans():
            version = "restated" if plan.restatement else "original"
            keys = {(plan.account.id, p.key, version) for p in plan.periods}
            truth["files"].append(
                {
                    "path": f"bills/{plan.name}{suffix}",
                    "provider": plan.provider,
                    "layout": plan.layout,
                    "restatement": plan.restatement,
                    "accounts": [plan.account.id],
                    "periods": [p.key for p in plan.periods],
                    "lines": sum(n for k, (_, _, _, n) in acc.billing.items() if k in keys),
                }
            )
        return json.loads(json.dumps(truth))

    def _chargeback(self, acc: Accumulator, current) -> tuple[list[dict], dict]:
        direct: dict[str, dict[str, list]] = {}
        pools: dict[str, dict[str, list]] = {}
        for (ba, pk, version, cc), amounts in acc.direct.items():
            if version == current(ba, pk):
                d = direct.setdefault(pk, {}).setdefault(cc, [ZERO, ZERO])
                d[0] += amounts[0]
                d[1] += amounts[1]
        for (ba, pk, version), amounts in acc.pool.items():
            if version == current(ba, pk):
                pools.setdefault(pk, {})[ba] = amounts
        out = []
        total_all = allocated_all = ZERO
        for pk in sorted(set(direct) | set(pools)):
            d = direct.get(pk, {})
            weights = {cc: v[1] for cc, v in d.items() if cc != UNALLOCATED and v[1] > 0}
            exact_e = {cc: v[1] for cc, v in d.items()}
            exact_b = {cc: v[0] for cc, v in d.items()}
            shared_e: dict[str, Decimal] = {}
            for _, (billed, effective) in sorted(pools.get(pk, {}).items()):
                if not weights:
                    exact_e[UNALLOCATED] = exact_e.get(UNALLOCATED, ZERO) + effective
                    exact_b[UNALLOCATED] = exact_b.get(UNALLOCATED, ZERO) + billed
                    continue
                for cc, share in apportion(effective, weights, PLACES).items():
                    exact_e[cc] = exact_e.get(cc, ZERO) + share
                    shared_e[cc] = shared_e.get(cc, ZERO) + share
                for cc, share in apportion(billed, weights, PLACES).items():
                    exact_b[cc] = exact_b.get(cc, ZERO) + share
            rounded_e, rounded_b = round_to_cents(exact_e), round_to_cents(exact_b)
            period_total = sum(exact_e.values(), ZERO)
            allocated = sum((v for cc, v in exact_e.items() if cc != UNALLOCATED), ZERO)
            total_all += period_total
            allocated_all += allocated
            out.append(
                {
                    "billing_period_start": pk,
                    "effective_cost": s(period_total),
                    "pool_effective_cost": s(sum((v[1] for v in pools.get(pk, {}).values()), ZERO)),
                    "cost_centers": {
                        cc: {
                            "effective_cost": s(rounded_e[cc]),
                            "effective_cost_exact": s(exact_e[cc]),
                            "billed_cost": s(rounded_b[cc]),
                            "billed_cost_exact": s(exact_b[cc]),
                            "direct_effective_cost": s(d.get(cc, [ZERO, ZERO])[1]),
                            "shared_effective_cost": s(shared_e.get(cc, ZERO)),
                        }
                        for cc in sorted(exact_e)
                    },
                }
            )
        share = (allocated_all / total_all).quantize(Decimal("0.0001")) if total_all else Decimal(0)
        allocation = {
            "effective_cost": s(total_all),
            "allocated_effective_cost": s(allocated_all),
            "unallocated_effective_cost": s(total_all - allocated_all),
            "allocated_share": s(share),
        }
        return out, allocation

    def _commitment_truth(self, acc: Accumulator, current) -> dict:
        pools = []
        for ba in self.org.billing_accounts:
            if ba.provider not in PROGRAMS:
                continue
            program = PROGRAMS[ba.provider]
            timed = [
                (start, v[0] / v[1], v[1])
                for (account, version, start), v in acc.slots.items()
                if account == ba.id and version == current(account, v[2])
            ]
            if not timed:
                continue
            hourly = [(value.quantize(Q6, ROUND_HALF_EVEN), hours) for _, value, hours in timed]
            d = DISCOUNTS[program]
            quantiles = {f"p{q}": s(weighted_quantile(hourly, Fraction(q, 100))) for q in range(10, 100, 10)}
            quantiles[f"d={d}"] = s(weighted_quantile(hourly, Fraction(d)))
            # the window a plan made at the end of the history rests on: its last LOOKBACK_HOURS hours
            end = max(start + timedelta(hours=hours) for start, _, hours in timed)
            recent = [
                (value.quantize(Q6, ROUND_HALF_EVEN), hours)
                for start, value, hours in timed
                if start >= end - timedelta(hours=LOOKBACK_HOURS)
            ]
            lookback = {f"p{q}": s(weighted_quantile(recent, Fraction(q, 100))) for q in range(1, 100)}
            lookback[f"d={d}"] = s(weighted_quantile(recent, Fraction(d)))
            months = []
            for p in self.periods(ba.provider):
                ode, covered, on_demand, commitment, unused = acc.kpi.get(
                    (ba.id, p.key, current(ba.id, p.key)), [ZERO] * 5
                )
                actual = on_demand + commitment
                months.append(
                    {
                        "billing_period_start": p.key,
                        "on_demand_equivalent": s(ode),
                        "covered": s(covered),
                        "on_demand_cost": s(on_demand),
                        "commitment_cost": s(commitment),
                        "unused": s(unused),
                        "actual_cost": s(actual),
                        "savings": s(ode - actual),
                        "effective_savings_rate": _ratio(ode - actual, ode, RATIO_ZERO),
                        "coverage": _ratio(covered, ode, RATIO_ZERO),
                        "utilization": _ratio(commitment - unused, commitment, ONE),
                    }
                )
            pools.append(
                {
                    "provider": ba.provider,
                    "billing_account_id": ba.id,
                    "program": program,
                    "discount": s(d),
                    "usage": "compute (AWS EC2, Azure VMs) usage of the billing account's sub accounts, at on-demand "
                    "(list) cost",
                    "hours": sum(h for _, h in hourly),
                    "hourly_on_demand_quantiles": quantiles,
                    "lookback_hours": LOOKBACK_HOURS,
                    "lookback_end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "lookback_hourly_on_demand_quantiles": lookback,
                    "months": months,
                }
            )
        plans = []
        for c in self.commitments:
            rows = []
            for p in self.periods(c.provider):
                got = acc.plans.get((c.id, p.key, current(c.billing_account, p.key)))
                if got is None:
                    continue
                covered_list, covered_effective, fee, unused = got
                rows.append(
                    {
                        "billing_period_start": p.key,
                        "commitment_cost": s(fee),
                        "used": s(fee - unused),
                        "unused": s(unused),
                        "covered_on_demand_cost": s(covered_list),
                        "covered_effective_cost": s(covered_effective),
                        "realized_savings": s(covered_list - fee),
                        "utilization": _ratio(fee - unused, fee, ONE),
                    }
                )
            plans.append(
                {
                    "id": c.id,
                    "provider": c.provider,
                    "billing_account_id": c.billing_account,
                    "program": c.program,
                    "hourly": s(c.hourly),
                    "discount": s(c.discount),
                    "term_months": c.term_months,
                    "start": c.start,
                    "end": c.ends.date().isoformat(),
                    "purchased_in_run": c in self.purchases,
                    "months": rows,
                }
            )
        return {"pools": pools, "plans": plans}

    def _findings(self, acc: Accumulator, current) -> dict:
        stats = _feed_stats(self.org, self.cfg)
        last = self.cfg.months - 1
        out: dict = {"anomaly": None, "idle": [], "overprovisioned": []}
        for r in self.org.resources:
            if r.planted is None:
                continue
            ba, sub = r.sub_account.billing_account, r.sub_account
            where = {
                "resource_id": r.id,
                "provider": r.provider,
                "billing_account_id": ba.id,
                "sub_account_id": sub.id,
                "service_name": r.service.name,
                "service_category": r.service.category,
                "team": r.cost_center.team,
                "cost_center": r.cost_center.id,
            }
            if r.planted == "anomaly":
                version = current(ba.id, self.periods(r.provider)[last - 1 if last else 0].key)
                actual = acc.anomaly.get(version + "/actual", ZERO)
                baseline = acc.anomaly.get(version + "/baseline", ZERO)
                out["anomaly"] = {
                    **where,
                    "day": r.anomaly_day.isoformat(),
                    "charge_period_start": _iso(acc.anomaly.get(version + "/day")),
                    "expected_effective_cost": s(baseline),
                    "effective_cost": s(actual),
                    "cost_delta": s(actual - baseline),
                    "factor": s(ANOMALY_FACTOR),
                    "root_cause": "runaway autoscaling: six times the instances for one day",
                }
                continue
            version = current(ba.id, self.periods(r.provider)[last].key)
            days = sorted((d, v) for (rid, ver, d), v in acc.planted.items() if rid == r.id and ver == version)
            recent = days[-RUN_RATE_DAYS:]
            mean = sum((v for _, v in recent), ZERO) / len(recent) if recent else ZERO
            rate = mean * Decimal("365.25") / 12
            entry = {
                **where,
                "last_day": recent[-1][0].isoformat() if recent else None,
                "daily_effective_cost": [s(v) for _, v in recent],
                "monthly_run_rate": s(rate.quantize(CENT6, ROUND_HALF_EVEN)),
                "monthly_run_rate_cents": s(rate.quantize(Decimal("0.01"), ROUND_HALF_EVEN)),
                "cpu_p95": s(stats[r.id]["cpu_p95"]),
                "memory_p95": s(stats[r.id]["memory_p95"]),
                "utilization_samples": stats[r.id]["samples"],
            }
            out[r.planted].append(entry)
        return out

    def _unit_economics(self, acc: Accumulator, current) -> list[dict]:
        cost_all: dict[tuple[str, str], Decimal] = {}
        cost_utc: dict[tuple[str, str], Decimal] = {}
        for (ba, pk, version, product), v in acc.products.items():
            if version != current(ba, pk):
                continue
            month = pk[:7]
            cost_all[(product, month)] = cost_all.get((product, month), ZERO) + v
            if pk.endswith("-01T00:00:00Z"):
                cost_utc[(product, month)] = cost_utc.get((product, month), ZERO) + v
        rows = []
        for product, month, metric, units in findings.metrics(self.cfg):
            c_all = cost_all.get((product, month), ZERO)
            c_utc = cost_utc.get((product, month), ZERO)
            rows.append(
                {
                    "product": product,
                    "period": month,
                    "metric": metric,
                    "units": units,
                    "effective_cost": s(c_all),
                    "unit_cost": s((c_all / units).quantize(CENT6, ROUND_HALF_EVEN)),
                    "effective_cost_utc_periods": s(c_utc),
                    "unit_cost_utc_periods": s((c_utc / units).quantize(CENT6, ROUND_HALF_EVEN)),
                }
            )
        return rows

    def _organisation(self) -> dict:
        return {
            "cost_centers": [{"id": c.id, "team": c.team, "product": c.product} for c in (*COST_CENTERS, CENTRAL_CC)],
            "billing_accounts": [
                {
                    "provider": ba.provider,
                    "id": ba.id,
                    "name": ba.name,
                    "sub_accounts": [
                        {
                            "id": sub.id,
                            "name": sub.name,
                            "environment": sub.environment,
                            "cost_center": sub.owner.id if sub.owner else None,
                            "shared": sub.owner is None,
                            "resources": [
                                {
                                    "id": r.id,
                                    "service": r.service.key,
                                    "service_category": r.service.category,
                                    "pattern": r.pattern,
                                    "cost_center": r.cost_center.id,
                                    "tag_flaw": r.flaw,
                                    "tags": r.tags,
                                    "allocated_to": None if r.service.category == "Networking" else r.allocated_to,
                                    "stops_after_period": r.stops_after,
                                }
                                for r in sub.resources
                            ],
                        }
                        for sub in ba.sub_accounts
                    ],
                }
                for ba in self.org.billing_accounts
            ],
        }


def _iso(moment) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _feed_stats(org, cfg) -> dict:
    """The feed's p95s, computed by writing it to a scratch buffer-less pass (same numbers as utilization.csv)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return findings.write_utilization(Path(tmp) / "u.csv", org, cfg)


def _ratio(a: Decimal, b: Decimal, default: Decimal) -> str:
    return s((a / b).quantize(RATIO, ROUND_HALF_EVEN) if b else default)


def _style(layout: str) -> str:
    return "cur" if layout.startswith("aws-cur") else layout if layout.startswith("azure") else "focus"


def _compute_base(ba: BillingAccount) -> Decimal:
    """The on-demand cost per hour of a billing account's compute resources at factor 1."""
    rates = (r.units * r.service.per_hour * r.service.price for s in ba.sub_accounts for r in s.resources
             if r.service.key == "compute")  # fmt: skip
    return sum(rates, ZERO)


def _hours(start: datetime, end: datetime) -> Decimal:
    return Decimal(int((end - start).total_seconds()) // 3600)


def _pick(billing: list[dict], key, version: str) -> dict | None:
    return next(
        (b for b in billing if (b["billing_account_id"], b["billing_period_start"]) == key and b["version"] == version),
        None,
    )


def _open(path: Path, compress: bool):
    if not compress:
        return path.open("w", newline="", encoding="utf-8")
    raw = path.open("wb")
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
    return _Closing(io.TextIOWrapper(gz, encoding="utf-8", newline=""), gz, raw)


class _Closing:
    def __init__(self, text, *closers) -> None:
        self.text, self.closers = text, closers

    def __enter__(self):
        return self.text

    def __exit__(self, *exc) -> None:
        self.text.close()
        for c in self.closers:
            c.close()


DEFINITIONS = {
    "money": "Amounts are exact decimal strings in the billing currency; every simulated charge has 6 decimal places.",
    "billing_totals": (
        "Per (billing account, BillingPeriodStart, version): the sums of BilledCost, EffectiveCost and ListCost of "
        "that version's rows and their count. version 'original' is in the account's main file, 'restated' in the "
        "restatement file; current=true marks the version that must be in force once every file is ingested in "
        "manifest order."
    ),
    "billing_period_start": (
        "FOCUS BillingPeriodStart as ingest derives it: the UTC month start for AWS, Azure and OCI, Pacific "
        "midnight of the invoice month for GCP (07:00Z in DST, 08:00Z otherwise)."
    ),
    "chargeback": (
        "Per BillingPeriodStart (one allocation run) under rules.yaml, current versions only. direct[cc] = "
        "EffectiveCost of the period's non-Networking charges the rules give cc: a single-owner sub account's "
        "cost goes to its owner; in a shared sub account a resource goes to its cost_center tag after the aliases "
        "and lower-casing of rules.yaml, else 'unallocated'. The Networking cost of each billing account is the "
        "pool 'network', split over the cost centers (not 'unallocated') with positive direct EffectiveCost in "
        "that period, in proportion to that direct cost over all billing accounts of the period, by the largest "
        "remainder method at 6 decimal places (ties by cost center name), each billing account's pool apart. "
        "effective_cost_exact = direct + shares (6 places). effective_cost = effective_cost_exact rounded to the "
        "cent by the largest remainder method so that the period's cost centers sum to the period's total "
        "rounded half even to the cent. BilledCost is split with the same weights (the direct EffectiveCost)."
    ),
    "allocation": (
        "allocated_share = EffectiveCost landing on a real cost center (direct or shared) / all EffectiveCost, "
        "current versions, all periods, to 4 places."
    ),
    "commitments.pools": (
        "Per AWS and Azure billing account (program aws_compute_savings_plan, d 0.28; azure_savings_plan, d 0.25): "
        "the hourly on-demand equivalent of its compute (EC2, VM) usage (list cost of covered compute charges, "
        "EffectiveCost - the contracted price - of uncovered ones, per charge interval / the interval's hours, to 6 "
        "places half even; a daily row stands for each of its hours) over all simulated periods; its pN quantiles "
        "and its d-quantile are numpy's inverted_cdf (the smallest value whose share of hours reaches N/100 or d). "
        "Per month: on_demand_equivalent = the same sum over the month; covered = list cost of covered compute "
        "usage; on_demand_cost = EffectiveCost of uncovered compute usage; commitment_cost = the plans' commitment "
        "(hourly x hours); unused = the unused commitment; actual_cost = on_demand_cost + commitment_cost; savings "
        "= on_demand_equivalent - actual_cost; effective_savings_rate = savings / on_demand_equivalent; coverage = "
        "covered / on_demand_equivalent (0 when nothing to cover); "
        "utilization = (commitment_cost - unused) / commitment_cost (1 when no commitment); ratios to 4 places half "
        "even (FinOps Foundation definitions). "
        "lookback_hourly_on_demand_quantiles: p1 to p99 and the d-quantile over the pool's last lookback_hours "
        "hours (to lookback_end), the window a commitment plan made at the end of the history rests on; a plan "
        "with discount d covers at most its p(ceil(100 d))."
    ),
    "commitments.plans": (
        "Per plan and month: commitment_cost = hourly x hours active; used = the discounted cost of the usage it "
        "covered; unused = commitment_cost - used; realized_savings = covered_on_demand_cost - commitment_cost "
        "(what the covered usage would have cost on demand, less what the plan cost, unused part included). "
        "The figures are the plan's own whatever the bill's view (Azure actual cost shows covered usage at 0). "
        "Coverage is first fit: each compute charge (but the planted resources'), in resource order, "
        "is covered whole when (1 - d) x its list cost fits in what is left of the interval's commitment."
    ),
    "findings.anomaly": (
        "The one planted anomaly: the resource's usage x factor on `day` (local date of its provider's day; "
        "charge_period_start is its first charge's start). expected_effective_cost = what the day would have cost "
        "without it; cost_delta = effective_cost - expected_effective_cost."
    ),
    "findings.idle_overprovisioned": (
        "Planted idle resources (one unit, no noise: the same tiny daily cost) and over-provisioned ones (low CPU "
        "and memory in utilization.csv). daily_effective_cost: the resource's EffectiveCost per UTC day of "
        "ChargePeriodStart over its last 7 days with cost; monthly_run_rate = their mean x 365.25 / 12 (6 places "
        "and to the cent, half even). cpu_p95 / memory_p95: inverted-CDF 95th percentile of its feed samples."
    ),
    "unit_economics": (
        "Per product and month: effective_cost = EffectiveCost the rules give the product (direct lines; the "
        "network pool's shared lines carry product shared-network) over every provider's period of that invoice "
        "month, current versions; unit_cost = effective_cost / units to 6 places half even. The *_utc_periods "
        "figures count only periods starting at the month's UTC midnight (AWS, Azure, OCI: not GCP's Pacific "
        "periods)."
    ),
    "restatement": (
        "The restated account-period is reissued whole in its own file: the same rows, but the usage of one sub "
        "account re-rated at 0.9 x the list unit price (ListCost unchanged)."
    ),
}
