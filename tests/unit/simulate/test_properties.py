"""Property tests (hypothesis) of the generator's invariants over random small companies."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops_simulate import Company, SimConfig
from finops_simulate.truth import apportion, round_to_cents

D = Decimal
configs = st.builds(
    SimConfig,
    seed=st.integers(0, 10_000),
    accounts=st.integers(4, 10),
    providers=st.sampled_from([("aws", "azure", "gcp", "oci"), ("aws",), ("aws", "gcp"), ("azure", "oci")]),
    months=st.integers(1, 3),
    start=st.sampled_from(["2025-11-01", "2026-03-01", "2026-10-01"]),
    granularity=st.just("daily"),
    resources_per_account=st.integers(1, 4),
)


def _charges(company: Company):
    for ba in company.org.billing_accounts:
        for p in company.periods(ba.provider):
            yield from company.charges(ba, p)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_every_charge_is_exact_and_covered_usage_is_cheaper_than_list(cfg):
    company = Company(cfg)
    for c in _charges(company):
        assert c.billed >= 0 and c.effective >= 0 and c.quantity >= 0
        assert c.period.start <= c.start < c.end <= c.period.end
        assert -c.billed.as_tuple().exponent <= 6 and -c.effective.as_tuple().exponent <= 6
        if c.commitment_status == "Used":
            assert c.effective < c.list_cost and c.billed == 0 and c.commitment_id
        elif c.resource is not None:
            assert c.effective == c.billed <= c.list_cost
        r = c.resource
        if r is not None and r.stops_after is not None:
            assert c.period.index <= r.stops_after


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_truth_invariants(cfg):
    truth = Company(cfg).truth()
    current = sum(D(b["effective_cost"]) for b in truth["billing_totals"] if b["current"])
    assert (
        sum(D(p["effective_cost"]) for p in truth["chargeback"]) == current == D(truth["allocation"]["effective_cost"])
    )
    for p in truth["chargeback"]:
        assert sum(D(c["effective_cost"]) for c in p["cost_centers"].values()) == D(p["effective_cost"]).quantize(
            D("0.01")
        )
    for pool in truth["commitments"]["pools"]:
        q = [D(pool["hourly_on_demand_quantiles"][f"p{n}"]) for n in range(10, 100, 10)]
        assert q == sorted(q)
        for m in pool["months"]:
            assert D(0) <= D(m["coverage"]) <= D(1) and D(0) <= D(m["utilization"]) <= D(1)
            assert D(m["covered"]) <= D(m["on_demand_equivalent"])
    for plan in truth["commitments"]["plans"]:
        for m in plan["months"]:
            assert D(m["used"]) + D(m["unused"]) == D(m["commitment_cost"])


@given(
    st.integers(-(10**9), 10**9),
    st.dictionaries(st.sampled_from("abcdefg"), st.integers(1, 10**6), min_size=1),
    st.integers(0, 6),
)
def test_apportion_conserves_and_stays_within_one_unit(units, weights, places):
    amount = D(units).scaleb(-places)
    weights = {k: D(v) for k, v in weights.items()}
    shares = apportion(amount, weights, places)
    assert sum(shares.values()) == amount
    total = sum(weights.values())
    for k, share in shares.items():
        assert abs(share - amount * weights[k] / total) < D(1).scaleb(-places)


@given(st.dictionaries(st.text(min_size=1, max_size=3), st.integers(-(10**9), 10**9).map(lambda n: D(n).scaleb(-6))))
def test_round_to_cents_sums_to_the_rounded_total(amounts):
    rounded = round_to_cents(amounts)
    assert sum(rounded.values(), D(0)) == sum(amounts.values(), D(0)).quantize(D("0.01"))
    assert all(abs(rounded[k] - v) < D("0.01") for k, v in amounts.items())
