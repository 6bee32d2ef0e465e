"""Hand-worked examples of planning an account's pools together: an Instance plan for a family that stays, the
Compute plan's flexibility for usage that moves between families."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from finops_recommend.commitments import ScopedPool, Settings, Tranche, plan_account
from finops_recommend.prices import Instrument

COMPUTE = (Instrument("1y", 12, 0.28), Instrument("3y", 36, 0.50))
INSTANCE = (Instrument("1y", 12, 0.36), Instrument("3y", 36, 0.56))
HOURS = 60 * 24


def bought(plan) -> list[tuple[str, int, Decimal]]:
    return [(t.instrument, t.start_month, t.covered_usage_per_hour) for t in plan.tranches]


def test_a_steady_family_gets_an_instance_plan_and_usage_that_alternates_between_families_the_compute_plan():
    # Given family A steady at 100 per hour, and families B and C taking turns at 50 (one runs while the other
    # does not): the account uses 150 every hour
    a = np.full(HOURS, 100.0)
    b = np.where(np.arange(HOURS) % 2 == 0, 50.0, 0.0)
    c = 50.0 - b

    # When the account is planned: for B or C an instance plan is used half the hours (3y at 0.44 per unit-hour
    # saves 0.06), while a compute plan over both is used every hour (0.50 per unit-hour saves 0.50)
    flexible, *scoped = plan_account(
        "compute", a + b + c, COMPUTE, [ScopedPool(p, u, INSTANCE) for p, u in (("A", a), ("B", b), ("C", c))]
    )
    by_pool = {p.pool: p for p in scoped}

    # Then A is covered by a 3-year instance plan, B and C by 50 of the 3-year compute plan
    assert bought(by_pool["A"]) == [("3y", 0, Decimal("100.0000"))]
    assert bought(by_pool["B"]) == [] and bought(by_pool["C"]) == []
    assert bought(flexible) == [("3y", 0, Decimal("50.0000"))]
    # and each saves what its tranche saves over 730-hour months: 100 x 0.56 x 730 and 50 x 0.50 x 730
    assert by_pool["A"].expected_monthly_savings.amount == Decimal("40880.00")
    assert flexible.expected_monthly_savings.amount == Decimal("18250.00")
    assert flexible.pool == "compute"


def test_an_instance_commitment_held_is_netted_before_anything_is_bought():
    # Given family A steady at 100 with a 3-year instance commitment of 70 bought 10 months ago
    a = np.full(HOURS, 100.0)
    held = (Tranche(INSTANCE[1], -10, 70.0),)

    # When
    flexible, family = plan_account("compute", a, COMPUTE, [ScopedPool("A", a, INSTANCE, existing=held)])

    # Then only the 30 not yet covered is bought, as an instance plan, and the evidence shows the 70 held
    assert bought(family) == [("3y", 0, Decimal("30.0000"))]
    assert family.evidence.existing_per_month[:3] == (70.0, 70.0, 70.0)
    assert bought(flexible) == []


def test_the_coverage_target_bounds_the_account_all_pools_together_and_the_deepest_discount_keeps_its_layer():
    # Given the account of the first example: A steady at 100, B and C taking turns at 50, 150 every hour
    a = np.full(HOURS, 100.0)
    b = np.where(np.arange(HOURS) % 2 == 0, 50.0, 0.0)
    c = 50.0 - b
    scoped = [ScopedPool(p, u, INSTANCE) for p, u in (("A", a), ("B", b), ("C", c))]

    # When coverage may reach only 80% of the account's usage
    flexible, *rest = plan_account("compute", a + b + c, COMPUTE, scoped, settings=Settings(coverage_target=0.8))
    by_pool = {p.pool: p for p in rest}

    # Then 120 of the 150 is committed in all: A keeps its 100 on the instance plan (it saves 0.56 per unit-hour,
    # the compute plan 0.50), and the compute plan is cut from 50 to 20
    assert bought(by_pool["A"]) == [("3y", 0, Decimal("100.0000"))]
    assert bought(flexible) == [("3y", 0, Decimal("20.0000"))]
    assert bought(by_pool["B"]) == [] and bought(by_pool["C"]) == []
