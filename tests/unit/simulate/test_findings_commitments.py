"""Commitments, a purchase made during the run, planted findings, the feeds and unit economics."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date
from decimal import Decimal
from statistics import median

import pytest

from finops_simulate import Company, SimConfig
from finops_simulate.commitments import Commitment
from tests.unit.simulate.conftest import SMALL_ALL
from tests.unit.simulate.reread import totals

D = Decimal


def _pool(truth, account):
    return next(p for p in truth["commitments"]["pools"] if p["billing_account_id"] == account)


def test_existing_plan_covers_usage_leaves_some_unused_and_expires(default_company):
    company = default_company[0]
    truth = company.truth()
    (plan,) = [p for p in truth["commitments"]["plans"] if not p["purchased_in_run"] and p["provider"] == "aws"]
    assert plan["end"] == "2026-03-01"  # period 4 of a run from 2025-11
    assert [m["billing_period_start"][:7] for m in plan["months"]] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    for m in plan["months"]:
        assert D(m["unused"]) > 0 and D(m["used"]) > 0
        assert D(m["used"]) == D(m["covered_effective_cost"])
        assert D("0.9") < D(m["utilization"]) < D(1)
        assert D(m["realized_savings"]) == D(m["covered_on_demand_cost"]) - D(m["commitment_cost"])
    pool = _pool(truth, plan["billing_account_id"])
    for m in pool["months"]:
        ode, covered = D(m["on_demand_equivalent"]), D(m["covered"])
        assert D(m["savings"]) == ode - D(m["actual_cost"])
        if D(m["commitment_cost"]):
            assert D("0.5") < D(m["coverage"]) < D("0.7") and D(m["effective_savings_rate"]) > 0
        else:
            assert covered == 0 and D(m["effective_savings_rate"]) == 0 and D(m["utilization"]) == 1
    (azure,) = [p for p in truth["commitments"]["plans"] if p["provider"] == "azure"]
    assert azure["program"] == "azure_savings_plan" and len(azure["months"]) == 13
    assert all(D("0.8") < D(m["utilization"]) <= 1 and D(m["realized_savings"]) > 0 for m in azure["months"])
    assert any(D(m["unused"]) > 0 for m in azure["months"])


def test_pool_quantiles_are_monotone_and_the_d_quantile_lies_between(default_company):
    for pool in default_company[0].truth()["commitments"]["pools"]:
        q = pool["hourly_on_demand_quantiles"]
        values = [D(q[f"p{n}"]) for n in range(10, 100, 10)]
        assert values == sorted(values) and values[0] > 0
        assert D(q["p20"]) <= D(q[f"d={pool['discount']}"]) <= D(q["p30"])
        assert pool["hours"] == 395 * 24  # 13 months of hours from 2025-11-01


def test_a_purchase_changes_later_bills_with_realized_savings_and_unused(tmp_path):
    base = Company(SimConfig(seed=11, accounts=8, providers=("aws", "azure"), months=6))
    (aws,) = [b for b in base.org.billing_accounts if b.provider == "aws"]
    hourly = D(_pool(base.truth(), aws.id)["hourly_on_demand_quantiles"]["p30"]) * D("0.72")
    # bought after the existing plan expired (2026-03-01), for the last two months of the run
    bought = base.with_purchase(Commitment("aws", aws.id, hourly.quantize(D("0.001")), "2026-03-01", 12))
    files = bought.write(tmp_path)
    truth = bought.truth()
    (plan,) = [p for p in truth["commitments"]["plans"] if p["purchased_in_run"]]
    assert [m["billing_period_start"][:7] for m in plan["months"]] == ["2026-03", "2026-04"]
    for month in plan["months"]:
        assert D(month["realized_savings"]) > 0 and D(month["unused"]) > 0
        assert D("0.5") < D(month["utilization"]) < D(1)
    before = {
        (b["billing_account_id"], b["billing_period_start"], b["version"]): b for b in base.truth()["billing_totals"]
    }
    after = {(b["billing_account_id"], b["billing_period_start"], b["version"]): b for b in truth["billing_totals"]}
    for key, b in after.items():
        changed = b["effective_cost"] != before[key]["effective_cost"]
        assert changed == (key[0] == aws.id and key[1] >= "2026-03-01T00:00:00Z")
    march = ("2026-03-01T00:00:00Z", "original")
    assert D(after[(aws.id, *march)]["effective_cost"]) < D(before[(aws.id, *march)]["effective_cost"])
    f = next(f for f in files if aws.id in f.accounts and not f.restatement)
    assert totals(f.path, f.layout)[(aws.id, march[0])][1] == D(after[(aws.id, *march)]["effective_cost"])
    with pytest.raises(ValueError, match="billing account"):
        base.with_purchase(Commitment("aws", "000000000000", D(1), "2026-01-01"))


def test_exactly_one_anomaly_whose_delta_is_in_the_bill(default_company):
    company, files, out = default_company
    a = company.truth()["findings"]["anomaly"]
    assert D(a["cost_delta"]) == D(a["effective_cost"]) - D(a["expected_effective_cost"]) > 0
    assert D(a["effective_cost"]) == D(a["expected_effective_cost"]) * 6
    planted = [r for r in company.org.resources if r.planted == "anomaly"]
    assert len(planted) == 1 and planted[0].id == a["resource_id"]
    f = next(f for f in files if a["billing_account_id"] in f.accounts and not f.restatement)
    day_cost = D(0)
    with open(f.path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("ResourceId") == a["resource_id"] and row["Date"] == date.fromisoformat(a["day"]).strftime(
                "%m/%d/%Y"
            ):
                day_cost += D(row["CostInBillingCurrency"])
    assert day_cost == D(a["effective_cost"])


def test_idle_resources_are_the_only_steady_tiny_ones_and_overprovisioned_have_low_cpu(default_company):
    company, _, out = default_company
    f = company.truth()["findings"]
    assert len(f["idle"]) == 2 and len(f["overprovisioned"]) == 2
    idle = {i["resource_id"] for i in f["idle"]}
    for i in f["idle"]:
        days = [D(v) for v in i["daily_effective_cost"]]
        assert len(days) == 7 and max(days) <= 5 and len(set(days)) == 1
        assert D(i["monthly_run_rate"]) == (days[0] * D("365.25") / 12).quantize(D("0.000001"))
        assert D(i["cpu_p95"]) < D("0.05")
    for o in f["overprovisioned"]:
        assert D(o["cpu_p95"]) < D("0.40") and D(o["memory_p95"]) < D("0.40") and o["utilization_samples"] >= 24
        assert D(o["monthly_run_rate"]) > 100
    # no other resource has a steady tiny cost over the last 7 days
    from finops_simulate.charges import usage

    last = company.cfg.months - 1
    for r in company.org.resources:
        if r.id in idle or (r.stops_after is not None and r.stops_after < last):
            continue
        p = company.periods(r.provider)[last]
        days = [c.effective for c in usage(r, p, seed=7, first=company.cfg.first_month, hourly=False)][-7:]
        mid = median(days)
        steady = all(abs(d - mid) <= mid * D("0.05") for d in days)
        assert not (steady and max(days) <= 5), r.id
    # the feed: ordinary compute is busy, planted resources are not
    p95 = {}
    with open(out / "utilization.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        p95.setdefault(row["resource_id"], []).append(D(row["cpu_utilization"]))
    planted = idle | {o["resource_id"] for o in f["overprovisioned"]}
    assert planted <= set(p95) and len(p95) > len(planted)
    for rid, values in p95.items():
        values.sort()
        high = values[-(-95 * len(values) // 100) - 1]
        assert (high < D("0.40")) == (rid in planted), rid
    first = min(row["timestamp"] for row in rows)
    assert first == "2026-11-17T00:00:00Z"  # the last 14 days of the run


def test_metrics_and_unit_costs(default_company):
    company, _, out = default_company
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 * 13
    ue = company.truth()["unit_economics"]
    assert [(u["product"], u["period"], u["metric"], str(u["units"])) for u in ue] == [
        (r["product"], r["period"], r["metric"], r["units"]) for r in rows
    ]
    for u in ue:
        assert D(u["effective_cost"]) > D(u["effective_cost_utc_periods"]) > 0
        assert D(u["unit_cost"]) == (D(u["effective_cost"]) / u["units"]).quantize(D("0.000001"))


def test_commitment_refuses_what_is_not_simulated():
    with pytest.raises(ValueError, match="simulated"):
        Commitment("gcp", "1", D(1), "2026-01-01")
    with pytest.raises(ValueError, match="simulated"):
        Commitment("azure", "1", D(1), "2026-01-01", program="aws_reserved_instance")
    with pytest.raises(ValueError, match="first"):
        Commitment("aws", "1", D(1), "2026-01-02")
    assert replace(SMALL_ALL, commitments=False) and not Company(replace(SMALL_ALL, commitments=False)).commitments


@pytest.mark.parametrize("layout", ["aws-cur2", "aws-cur-legacy", "focus"])
def test_a_reserved_instance_purchase_is_billed_as_discounted_usage_and_ri_fees(tmp_path, layout):
    from finops_ingest.bills import read_bill

    cfg = SimConfig(seed=5, accounts=8, providers=("aws", "gcp"), months=6, layouts={"aws": layout}, restate=False)
    base = Company(cfg)
    (aws,) = [b for b in base.org.billing_accounts if b.provider == "aws"]
    hourly = D(_pool(base.truth(), aws.id)["hourly_on_demand_quantiles"]["p20"]) * D("0.64")
    ri = Commitment("aws", aws.id, hourly.quantize(D("0.001")), "2026-03-01", 12, program="aws_reserved_instance")
    bought = base.with_purchase(ri)
    files = bought.write(tmp_path)
    truth = bought.truth()
    (plan,) = [p for p in truth["commitments"]["plans"] if p["purchased_in_run"]]
    assert plan["program"] == "aws_reserved_instance" and plan["id"].startswith("arn:aws:ec2:")
    assert [m["billing_period_start"][:7] for m in plan["months"]] == ["2026-03", "2026-04"]
    for m in plan["months"]:
        assert D(m["realized_savings"]) > 0 and D(m["used"]) > 0
    expected = {(b["billing_account_id"], b["billing_period_start"]): b for b in truth["billing_totals"]}
    (f,) = [f for f in files if f.provider == "aws"]
    got = totals(f.path, f.layout)
    kinds = set()
    ingested = {}
    for table in read_bill(f.path):
        cols = ("BillingPeriodStart", "EffectiveCost", "CommitmentDiscountType", "CommitmentDiscountStatus")
        for start, effective, kind, status in zip(*(table.column(c).to_pylist() for c in cols), strict=True):
            ingested[start] = ingested.get(start, D(0)) + D(effective)
            if kind:
                kinds.add((kind, status))
    for (account, start), (billed, effective, _n) in got.items():
        assert (D(expected[(account, start)]["billed_cost"]), D(expected[(account, start)]["effective_cost"])) == (
            billed,
            effective,
        )
        assert ingested[start] == effective
    assert ("Reserved Instance", "Used") in kinds
