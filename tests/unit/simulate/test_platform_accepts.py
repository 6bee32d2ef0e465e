"""Every layout the simulator writes is accepted by the platform's own readers with the truth's totals, and its
rules.yaml is a valid allocation rule set that gives each resource the cost center the truth says. (The test may
import the platform; the simulator never does.)"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

import pytest

from finops_allocation.rules import RuleSet, assign
from finops_ingest.bills import detect, read_bill
from finops_ingest.export import export_focus
from finops_simulate import Company
from tests.unit.simulate.conftest import SMALL_ALL

CASES = {
    "native": SMALL_ALL,
    "focus": replace(SMALL_ALL, layouts={p: "focus" for p in SMALL_ALL.providers}),
    "amortized-legacy-hourly-gzip": replace(
        SMALL_ALL,
        layouts={"azure": "azure-amortized", "aws": "aws-cur-legacy"},
        granularity="hourly",
        months=1,
        gzip=True,
    ),
}


def _read(path, columns):
    for table in read_bill(path):
        yield from zip(*(table.column(c).to_pylist() for c in columns), strict=True)


@pytest.mark.parametrize("name", list(CASES))
def test_ingest_reads_every_layout_with_the_truths_totals(tmp_path, name):
    company = Company(CASES[name])
    files = company.write(tmp_path)
    truth = company.truth()
    expected = {(b["billing_account_id"], b["billing_period_start"], b["version"]): b for b in truth["billing_totals"]}
    for f in files:
        assert detect(f.path) == f.layout
        got = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
        for account, start, billed, effective in _read(
            f.path, ("BillingAccountId", "BillingPeriodStart", "BilledCost", "EffectiveCost")
        ):
            t = got[(account, start)]
            t[0] += Decimal(billed)
            t[1] += Decimal(effective)
            t[2] += 1
        version = "restated" if f.restatement else "original"
        assert set(got) == {(a, p) for a in f.accounts for p in f.periods}
        for (account, start), amounts in got.items():
            b = expected[(account, start, version)]
            assert amounts == [Decimal(b["billed_cost"]), Decimal(b["effective_cost"]), b["lines"]], f.path
        report = export_focus(f.path, tmp_path / f"{f.path.name}.focus.csv")
        assert report.rows == f.lines
        (_, _), (billed, effective, _) = next(iter(report.totals.items()))
        assert billed == sum(Decimal(expected[(a, p, version)]["billed_cost"]) for a in f.accounts for p in f.periods)


def test_rules_yaml_gives_each_resource_the_truths_cost_center(tmp_path):
    company = Company(replace(SMALL_ALL, accounts=12))
    files = company.write(tmp_path)
    ruleset = RuleSet.from_yaml((tmp_path / "rules.yaml").read_text())
    truth_of = {
        r["id"]: r
        for b in company.truth()["organisation"]["billing_accounts"]
        for s in b["sub_accounts"]
        for r in s["resources"]
    }
    commitment_ids = {c.id for c in company.commitments}
    assert commitment_ids
    seen = set()
    for f in files:
        columns = (
            "ResourceId",
            "SubAccountId",
            "BillingAccountId",
            "ProviderName",
            "ServiceName",
            "ServiceCategory",
            "ChargeCategory",
            "PricingCategory",
            "CommitmentDiscountStatus",
            "RegionId",
            "Tags",
            "CommitmentDiscountId",
        )
        for rid, sub, account, provider, service, category, charge, pricing, status, region, tags, commitment in _read(
            f.path, columns
        ):
            if rid in seen:
                continue
            if rid not in truth_of:  # a commitment's own row (fee, unused): the management account's
                assert commitment in commitment_ids, (rid, commitment)
                continue
            seen.add(rid)
            facet = {
                "billing_account_id": account,
                "sub_account_id": sub,
                "provider_name": provider,
                "service_name": service,
                "service_category": category,
                "region_id": region,
                "charge_category": charge,
                "pricing_category": pricing,
                "commitment_discount_status": status,
            }
            a = assign(facet, json.loads(tags) if tags else {}, ruleset)
            want = truth_of[rid]
            if want["service_category"] == "Networking":
                assert a.pool == "network", rid
            else:
                assert a.pool is None and a.cost_center == want["allocated_to"], (rid, want["tag_flaw"], tags)
    assert seen == set(truth_of)
    flaws = {truth_of[r]["tag_flaw"] for r in seen if truth_of[r]["allocated_to"] == "unallocated"}
    assert flaws == {"missing", "cost-centre"}


@pytest.mark.parametrize(
    "cfg",
    [replace(SMALL_ALL, accounts=12), replace(SMALL_ALL, granularity="hourly", months=1, layouts={"aws": "focus"})],
    ids=["daily-native", "hourly-focus"],
)
def test_allocation_run_over_the_ingested_lines_gives_the_truths_chargeback(tmp_path, cfg):
    """The allocation service's own run (chargeback.run) over what ingest reads gives, per period and cost
    center, the truth's exact chargeback: the truth and the platform agree on the rules' meaning."""
    from finops_allocation.chargeback import Fact, run
    from finops_allocation.rules import FACET_FIELDS

    company = Company(cfg)
    files = company.write(tmp_path)
    ruleset = RuleSet.from_yaml((tmp_path / "rules.yaml").read_text())
    restated = {(a, p) for f in files if f.restatement for a in f.accounts for p in f.periods}
    columns = ("BillingPeriodStart", "BillingAccountId", "SubAccountId", "ProviderName", "ServiceName",
               "ServiceCategory", "RegionId", "ChargeCategory", "PricingCategory", "CommitmentDiscountStatus",
               "Tags", "BilledCost", "EffectiveCost")  # fmt: skip
    grouped: dict[tuple, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for f in files:
        for period, account, *facet, tags, billed, effective in _read(f.path, columns):
            if (account, period) in restated and not f.restatement:
                continue  # superseded by the restatement
            g = grouped[(period, account, tuple(facet), tags or "{}")]
            g[0] += Decimal(billed)
            g[1] += Decimal(effective)
            g[2] += 1
    by_period: dict[str, list] = defaultdict(list)
    for (period, account, facet, tags), (billed, effective, n) in grouped.items():
        dims = dict(zip(FACET_FIELDS, (account, *facet), strict=True))
        by_period[period].append(Fact(account, "USD", dims, json.loads(tags), billed, effective, n))
    truth = {p["billing_period_start"]: p for p in company.truth()["chargeback"]}
    assert set(by_period) == set(truth)
    for period, facts in by_period.items():
        got: dict[str, Decimal] = defaultdict(Decimal)
        got_billed: dict[str, Decimal] = defaultdict(Decimal)
        for line in run(facts, ruleset):
            got[line.cost_center] += line.effective_cost
            got_billed[line.cost_center] += line.billed_cost
        want = {cc: Decimal(v["effective_cost_exact"]) for cc, v in truth[period]["cost_centers"].items()}
        assert dict(got) == want, period
        billed = {cc: Decimal(v["billed_cost_exact"]) for cc, v in truth[period]["cost_centers"].items()}
        assert dict(got_billed) == billed, period
