from datetime import UTC, datetime
from decimal import Decimal

from finops_allocation.allocate import UNALLOCATED, allocate
from finops_contracts.costframe import frame_of
from finops_contracts.events import CostLine


def line(cost: str, tags: dict[str, str], currency: str = "USD") -> CostLine:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    return CostLine(
        billing_account_id="1",
        billing_period_start=t,
        billing_period_end=t,
        charge_period_start=t,
        charge_period_end=t,
        charge_category="Usage",
        billing_currency=currency,
        billed_cost=Decimal(cost),
        effective_cost=Decimal(cost),
        provider_name="AWS",
        tags=tags,
    )


def test_allocate_owns_each_line_by_the_single_owner_rule():
    # The team tag (any case) owns a line; `application` is a product, never an owner; no team tag: unallocated.
    lines = [line("1", {" Team ": "search"}), line("2", {"application": "shop"}), line("3", {"team": "  "})]

    totals = allocate(frame_of(lines))

    assert set(totals) == {("search", "USD"), (UNALLOCATED, "USD")}
    assert totals[(UNALLOCATED, "USD")].billed_cost == Decimal("5")


def test_allocate_sums_exactly_per_owner_and_currency():
    lines = [line("0.1", {"team": "a"}), line("0.2", {"team": "a"}), line("5", {}), line("1.5", {"team": "a"}, "EUR")]

    totals = allocate(frame_of(lines))

    assert totals[("a", "USD")].billed_cost == Decimal("0.3")
    assert totals[("a", "USD")].line_count == 2
    assert totals[(UNALLOCATED, "USD")].effective_cost == Decimal("5")
    assert totals[("a", "EUR")].billed_cost == Decimal("1.5")


def test_allocate_keeps_every_digit_across_scales():
    lines = [
        line("0.0000000001", {"team": "a"}),
        line("123456789012345678.5", {"team": "a"}),
        line("-0.0000000001", {}),
    ]

    totals = allocate(frame_of(lines))

    assert totals[("a", "USD")].billed_cost == Decimal("123456789012345678.5000000001")
    assert totals[(UNALLOCATED, "USD")].billed_cost == Decimal("-0.0000000001")


def test_owner_totals_from_facts_equal_the_line_by_line_allocation():
    from finops_allocation.allocate import owner_totals
    from finops_allocation.ledger import facts_of

    lines = [
        line("0.1", {"team": "a"}),
        line("0.25", {" Team ": "a"}),
        line("5", {}),
        line("1.5", {"application": "x"}),
    ]
    frame = frame_of(lines * 3)

    assert owner_totals(facts_of(frame)) == allocate(frame)


def test_sums_stay_exact_when_values_are_near_the_38_digit_limit():
    from finops_contracts.costframe import sums

    big = "9" * 36 + ".5"  # two of them need 38 digits: summed in 76
    frame = frame_of([line(big, {"team": "a"}), line(big, {"team": "a"})])

    [row] = sums(frame, ["billing_currency"]).to_pylist()

    assert row["billed_cost_sum"] == Decimal("1999999999999999999999999999999999999.0")
    assert Decimal(big) + Decimal(big) == row["billed_cost_sum"], "and Python's own sums keep every digit too"
