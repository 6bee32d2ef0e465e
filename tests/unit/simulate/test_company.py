"""The simulated company: determinism, its truth against an independent re-read of its files, chargeback
conservation, allocation coverage, restatement and GCP's Pacific periods."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from finops_simulate import Company, SimConfig
from tests.unit.simulate.conftest import DEFAULT, SMALL_ALL
from tests.unit.simulate.reread import totals

PACIFIC = ZoneInfo("America/Los_Angeles")


def _digests(out):
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files_and_truth(tmp_path):
    cfg = replace(SMALL_ALL, gzip=True)
    a, b = tmp_path / "a", tmp_path / "b"
    Company(cfg).write(a)
    Company(cfg).write(b)
    assert _digests(a) == _digests(b)
    assert len(_digests(a)) >= 8
    assert Company(cfg).truth() == json.loads((a / "truth.json").read_text())
    other = tmp_path / "c"
    Company(replace(cfg, seed=12)).write(other)
    assert _digests(other)["truth.json"] != _digests(a)["truth.json"]


def test_default_organisation_spans_providers_accounts_and_cost_centers(default_company):
    company, files, _ = default_company
    org = company.truth()["organisation"]
    subs = [s for b in org["billing_accounts"] for s in b["sub_accounts"]]
    assert len(subs) == 24
    assert {b["provider"] for b in org["billing_accounts"]} == {"aws", "azure", "gcp"}
    assert len(org["billing_accounts"]) >= 6
    resources = [r for s in subs for r in s["resources"]]
    assert {r["tag_flaw"] for r in resources} == {"missing", "cost-centre", "CostCenter", "upper-value", "clean"}
    assert {r["pattern"] for r in resources} == {"steady", "seasonal", "growing", "migrating", "idle"}
    assert any(r["service_category"] == "Networking" for r in resources)
    assert len({s["cost_center"] for s in subs if s["cost_center"]}) >= 6


@pytest.mark.parametrize(
    "cfg",
    [
        SMALL_ALL,
        replace(SMALL_ALL, layouts={p: "focus" for p in SMALL_ALL.providers}),
        replace(SMALL_ALL, layouts={"azure": "azure-amortized", "aws": "aws-cur-legacy"}, day_first=True),
        replace(SMALL_ALL, granularity="hourly", months=1, gzip=True),
    ],
    ids=["native", "focus", "amortized-day-first", "hourly-gzip"],
)
def test_truth_totals_equal_an_independent_reread_of_the_files(tmp_path, cfg):
    company = Company(cfg)
    files = company.write(tmp_path)
    truth = company.truth()
    expected = {(b["billing_account_id"], b["billing_period_start"], b["version"]): b for b in truth["billing_totals"]}
    seen = set()
    for f in files:
        version = "restated" if f.restatement else "original"
        got = totals(f.path, f.layout, day_first=cfg.day_first)
        assert got, f.path
        for (account, start), (billed, effective, n) in got.items():
            want = expected[(account, start, version)]
            assert (Decimal(want["billed_cost"]), Decimal(want["effective_cost"]), want["lines"]) == (
                billed,
                effective,
                n,
            )
            seen.add((account, start, version))
    assert seen == set(expected)


def test_chargeback_conserves_to_the_cent_and_covers_current_totals(default_company):
    truth = default_company[0].truth()
    current = {}
    for b in truth["billing_totals"]:
        if b["current"]:
            current.setdefault(b["billing_period_start"], Decimal(0))
            current[b["billing_period_start"]] += Decimal(b["effective_cost"])
    assert len(truth["chargeback"]) == len(current)
    for period in truth["chargeback"]:
        ccs = period["cost_centers"].values()
        total = Decimal(period["effective_cost"])
        assert total == current[period["billing_period_start"]]
        assert sum(Decimal(c["effective_cost_exact"]) for c in ccs) == total
        assert sum(Decimal(c["effective_cost"]) for c in ccs) == total.quantize(Decimal("0.01"))
        assert all(
            abs(Decimal(c["effective_cost"]) - Decimal(c["effective_cost_exact"])) < Decimal("0.01") for c in ccs
        )
        shared = sum(Decimal(c["shared_effective_cost"]) for c in ccs)
        assert shared == Decimal(period["pool_effective_cost"]) > 0
        for c in ccs:
            assert Decimal(c["direct_effective_cost"]) + Decimal(c["shared_effective_cost"]) == Decimal(
                c["effective_cost_exact"]
            )


def test_shared_pool_is_in_proportion_to_direct_cost(default_company):
    for period in default_company[0].truth()["chargeback"]:
        ccs = {k: v for k, v in period["cost_centers"].items() if k != "unallocated"}
        direct = sum(Decimal(c["direct_effective_cost"]) for c in ccs.values())
        pool = Decimal(period["pool_effective_cost"])
        for c in ccs.values():
            exact = pool * Decimal(c["direct_effective_cost"]) / direct
            # one billing account's pool at a time, each within a millionth of its exact share
            assert abs(Decimal(c["shared_effective_cost"]) - exact) < Decimal("0.00001")
        assert Decimal(period["cost_centers"].get("unallocated", {}).get("shared_effective_cost", "0")) == 0


def test_at_least_90_percent_is_allocated_to_real_cost_centers(default_company):
    allocation = default_company[0].truth()["allocation"]
    assert Decimal(allocation["allocated_share"]) >= Decimal("0.90")
    assert Decimal(allocation["unallocated_effective_cost"]) > 0  # imperfect tags leave something visible
    assert Decimal(allocation["allocated_effective_cost"]) + Decimal(allocation["unallocated_effective_cost"]) == (
        Decimal(allocation["effective_cost"])
    )


def test_restatement_is_a_second_file_with_changed_costs(default_company):
    company, files, _ = default_company
    truth = company.truth()
    restated = [f for f in files if f.restatement]
    assert len(restated) == 1 and files[-1] is restated[0]
    r = truth["restatement"]
    assert restated[0].periods == (r["billing_period_start"],)
    assert Decimal(r["restated"]["effective_cost"]) < Decimal(r["original"]["effective_cost"])
    assert r["original"]["lines"] == r["restated"]["lines"]
    flags = [
        (b["version"], b["current"])
        for b in truth["billing_totals"]
        if (b["billing_account_id"], b["billing_period_start"]) == (r["billing_account_id"], r["billing_period_start"])
    ]
    assert sorted(flags) == [("original", False), ("restated", True)]


def test_gcp_periods_start_at_pacific_midnight(default_company):
    truth = default_company[0].truth()
    starts = sorted({b["billing_period_start"] for b in truth["billing_totals"] if b["provider"] == "gcp"})
    assert len(starts) == 13
    hours = set()
    for start in starts:
        moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
        local = moment.astimezone(PACIFIC)
        assert (local.day, local.hour, local.minute) == (1, 0, 0)
        hours.add(moment.hour)
    assert hours == {7, 8}  # across DST
    others = {b["billing_period_start"] for b in truth["billing_totals"] if b["provider"] != "gcp"}
    assert all(s.endswith("-01T00:00:00Z") for s in others)


def test_migrating_workload_stops_and_growing_grows(default_company):
    company = default_company[0]
    org = company.org
    migrating = next(r for r in org.resources if r.pattern == "migrating")
    growing = next(r for r in org.resources if r.pattern == "growing")
    from finops_simulate.charges import usage

    periods = company.periods(migrating.provider)
    last = migrating.stops_after
    assert list(usage(migrating, periods[last], seed=7, first=DEFAULT.first_month, hourly=False))
    assert not list(usage(migrating, periods[last + 1], seed=7, first=DEFAULT.first_month, hourly=False))
    first_month = sum(c.billed for c in usage(growing, periods[0], seed=7, first=DEFAULT.first_month, hourly=False))
    later = sum(c.billed for c in usage(growing, periods[-2], seed=7, first=DEFAULT.first_month, hourly=False))
    assert later > first_month * Decimal("1.3")


def test_daily_rows_cover_each_day_and_hourly_each_hour():
    company = Company(SimConfig(accounts=3, months=1, granularity="hourly", start="2026-03-01"))
    gcp = next(b for b in company.org.billing_accounts if b.provider == "gcp")
    p = company.periods("gcp")[0]
    resource = gcp.sub_accounts[0].resources[0]
    from finops_simulate.charges import usage

    hours = list(usage(resource, p, seed=7, first=p.month, hourly=True))
    assert len(hours) == 31 * 24 - 1  # March in Pacific time loses an hour to DST
    assert hours[0].start == p.start == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert hours[-1].end == p.end == datetime(2026, 4, 1, 7, tzinfo=UTC)


def test_config_refuses_what_cannot_be_simulated():
    with pytest.raises(ValueError, match="providers"):
        SimConfig(providers=("aws", "ibm"))
    with pytest.raises(ValueError, match="first day"):
        SimConfig(start="2025-11-02")
    with pytest.raises(ValueError, match="layouts"):
        SimConfig(layouts={"aws": "gcp-billing"})


def test_same_seed_is_byte_identical_across_processes_whatever_the_hash_seed(tmp_path):
    import os
    import subprocess
    import sys

    digests = []
    for n, hash_seed in enumerate(("1", "2")):
        out = tmp_path / str(n)
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-m", "finops_ingest.cli", "simulate", "--out", str(out), "--accounts", "6",
             "--providers", "aws,azure,gcp,oci", "--months", "2"],
            check=True, env=env, capture_output=True,
        )  # fmt: skip
        digests.append(_digests(out))
    assert digests[0] == digests[1]


def test_lines_sets_the_size_approximately():
    for lines in (20_000, 80_000):
        truth = Company(SimConfig(lines=lines, months=3, restate=False)).truth()
        written = sum(f["lines"] for f in truth["files"])
        assert 0.7 * lines <= written <= 1.3 * lines, (lines, written)
