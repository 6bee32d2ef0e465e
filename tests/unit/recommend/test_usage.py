"""The usage model: on-demand-equivalent usage per commitment pool and hour, net of existing commitments, owner
teams from tags, daily resource cost; and the hourly series the planner reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from finops_contracts.costframe import frame_of
from finops_contracts.events import CostLine
from finops_recommend import usage

T0 = datetime(2024, 9, 1, tzinfo=UTC)


def line(**fields: object) -> CostLine:
    base: dict[str, object] = dict(
        billing_account_id="acct", billing_period_start=T0, billing_period_end=T0 + timedelta(days=30),
        charge_period_start=T0, charge_period_end=T0 + timedelta(hours=1), charge_category="Usage",
        billing_currency="USD", billed_cost=Decimal("1.50"), effective_cost=Decimal("1.50"),
        provider_name="Amazon Web Services", service_name="Amazon EC2", service_category="Compute",
        resource_id="i-1", tags={"team": "payments"},
    )  # fmt: skip
    return CostLine(**{**base, **fields})


def rows(table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: (str(r.get("bucket")), r.get("team"), str(r.get("resource_id"))))


def test_usage_is_counted_at_on_demand_rates_net_of_commitments():
    frame = frame_of([
        line(),
        line(commitment_discount_status="Used", billed_cost=Decimal(0), effective_cost=Decimal("0.70"),
             list_cost=Decimal("1.10"), contracted_cost=Decimal("1.00")),
        line(commitment_discount_status="Unused", billed_cost=Decimal(0), effective_cost=Decimal("0.30")),
    ])  # fmt: skip

    (hour,) = rows(usage.pool_usage(frame))

    assert hour["pool"] == "aws_compute_savings_plan/acct"
    assert hour["bucket"] == T0 and hour["grain_hours"] == 1 and hour["team"] == usage.UNALLOCATED
    assert hour["on_demand_equivalent"] == Decimal("2.50")  # 1.50 on demand + 1.00 contracted for the covered line
    assert hour["covered"] == Decimal("1.00")
    assert hour["commitment_cost"] == Decimal("1.00")  # 0.70 used + 0.30 unused
    assert hour["unused_commitment_cost"] == Decimal("0.30")
    assert hour["on_demand_cost"] == Decimal("1.50")


def test_covered_usage_falls_back_to_list_cost_then_effective_cost():
    frame = frame_of([
        line(commitment_discount_status="Used", effective_cost=Decimal("0.70"), list_cost=Decimal("1.10")),
        line(commitment_discount_status="Used", effective_cost=Decimal("0.40"), resource_id="i-2"),
    ])  # fmt: skip

    (hour,) = rows(usage.pool_usage(frame))

    assert hour["covered"] == hour["on_demand_equivalent"] == Decimal("1.50")


def test_only_compute_of_providers_with_a_program_is_pooled_and_daily_lines_stay_daily():
    frame = frame_of([
        line(service_category="Storage"),
        line(provider_name="Oracle"),
        line(provider_name="Microsoft", charge_period_start=T0 + timedelta(hours=5),
             charge_period_end=T0 + timedelta(days=1), tags={}),
    ])  # fmt: skip

    (day,) = rows(usage.pool_usage(frame))

    assert day["pool"] == "azure_savings_plan/acct"
    assert day["bucket"] == T0 and day["grain_hours"] == 24
    assert day["team"] == usage.UNALLOCATED


def test_usage_never_derives_an_owner_from_tags():
    # Owners come from allocation's ResourceOwned, read at analysis time; the usage model stores none.
    frame = frame_of([line(tags={"team": "payments"}), line(resource_id="i-2", tags={"Team": "search"})])
    tables = (usage.pool_usage(frame), usage.resource_days(frame))
    assert {r["team"] for t in tables for r in t.to_pylist()} == {usage.UNALLOCATED}
    assert not hasattr(usage, "team_of")


def test_resource_days_carry_the_instance_type_compute_lines_name():
    frame = frame_of([
        line(sku_id="BoxUsage:m5.xlarge"),
        line(sku_id="BoxUsage:m5.xlarge", charge_period_start=T0 + timedelta(hours=1),
             charge_period_end=T0 + timedelta(hours=2)),
        line(resource_id="i-2", sku_id="SNA2C9ZKZQUUAPF8"),
        line(resource_id="vol-1", sku_id="EBS:VolumeUsage.gp3", service_category="Storage"),
    ])  # fmt: skip

    found = {r["resource_id"]: r for r in usage.resource_days(frame).to_pylist()}

    assert found["i-1"]["instance_type"] == "m5.xlarge" and found["i-1"]["effective_cost"] == Decimal("3.00")
    assert found["i-2"]["instance_type"] == "" and found["vol-1"]["instance_type"] == ""


def test_resource_days_sum_exactly_per_resource_team_and_day_and_spot_snapshots():
    frame = frame_of([
        line(effective_cost=Decimal("0.1000000001")),
        line(effective_cost=Decimal("0.2"), charge_period_start=T0 + timedelta(hours=3),
             charge_period_end=T0 + timedelta(hours=4)),
        line(resource_id="snap-1", sku_id="EBS:SnapshotUsage", service_category="Storage", tags={"team": "data"}),
        line(resource_id=None, tags={}),
    ])  # fmt: skip

    by_resource = {r["resource_id"]: r for r in usage.resource_days(frame).to_pylist()}

    assert by_resource["i-1"]["effective_cost"] == Decimal("0.3000000001")
    assert by_resource["i-1"]["day"] == T0.date() and not by_resource["i-1"]["snapshot"]
    assert by_resource["snap-1"]["snapshot"] and by_resource["snap-1"]["team"] == usage.UNALLOCATED
    assert by_resource[""]["team"] == usage.UNALLOCATED


def test_hourly_series_spreads_a_day_over_its_hours_and_fills_gaps_with_zero():
    series = usage.hourly([(T0, 24, 48.0), (T0 + timedelta(hours=30), 1, 5.0)])

    assert series is not None
    assert series.start == T0 and series.end == T0 + timedelta(hours=31)
    assert np.allclose(series.values[:24], 2.0)
    assert np.allclose(series.values[24:30], 0.0) and series.values[30] == 5.0
    assert usage.hourly([]) is None


def test_the_instance_family_comes_from_the_instance_type_a_sku_or_resource_names():
    assert usage.family_of("AWS", "BoxUsage:m5.large") == "m5"
    assert usage.family_of("Amazon Web Services", None, "USW2-BoxUsage:c6gn.16xlarge") == "c6gn"
    assert usage.family_of("Microsoft Azure", "Standard_D4s_v5") == "Dsv5"
    assert usage.family_of("Google Cloud", "n2-standard-8") == "n2"
    assert usage.family_of("AWS", "i-0abc", "SNA2C9ZKZQUUAPF8") is None  # an opaque SKU names no family


def test_family_usage_sums_the_compute_lines_that_name_an_instance_type_per_region_and_family():
    # Given two m5 lines (one covered by a reservation, whose unused part is billed too), a c5 line and a line
    # with an opaque SKU
    frame = frame_of([
        line(sku_id="BoxUsage:m5.large", region_id="us-east-1"),
        line(sku_id="BoxUsage:m5.xlarge", region_id="us-east-1", commitment_discount_id="ri-1",
             commitment_discount_status="Used", effective_cost=Decimal("0.60"), contracted_cost=Decimal("1.00")),
        line(sku_id="BoxUsage:m5.xlarge", region_id="us-east-1", commitment_discount_id="ri-1",
             commitment_discount_status="Unused", billed_cost=Decimal(0), effective_cost=Decimal("0.15")),
        line(sku_id="BoxUsage:c5.large", region_id="us-east-1", effective_cost=Decimal("0.40")),
        line(sku_id="9MG5B7V4UUU2WPAV", region_id="us-east-1"),
    ])  # fmt: skip

    # When
    found = {(r["region_id"], r["family"]): r for r in usage.family_usage(frame).to_pylist()}

    # Then m5 is 1.50 on demand + 1.00 covered (at its contracted cost); the opaque SKU is in no family
    assert set(found) == {("us-east-1", "m5"), ("us-east-1", "c5")}
    m5, c5 = found[("us-east-1", "m5")], found[("us-east-1", "c5")]
    assert m5["on_demand_equivalent"] == Decimal("2.50")
    assert m5["covered"] == Decimal("1.00")
    # and the sums its KPIs are computed from: the reservation cost 0.60 used + 0.15 unused, the rest 1.50
    assert (m5["commitment_cost"], m5["unused_commitment_cost"], m5["on_demand_cost"]) == (
        Decimal("0.75"), Decimal("0.15"), Decimal("1.50"),
    )  # fmt: skip
    assert c5["on_demand_equivalent"] == c5["on_demand_cost"] == Decimal("0.40")
    assert c5["commitment_cost"] == c5["unused_commitment_cost"] == 0


def test_commitment_usage_sums_what_each_commitment_covered_cost_left_unused_and_billed():
    # Given a savings plan that covered 1.00 of usage for 0.70, left 0.30 unused, and billed its hourly fee (and
    # a one-time upfront fee, which is not an hour's cost)
    frame = frame_of([
        line(commitment_discount_id="sp-1", commitment_discount_category="Spend",
             commitment_discount_status="Used", effective_cost=Decimal("0.70"), contracted_cost=Decimal("1.00")),
        line(commitment_discount_id="sp-1", commitment_discount_category="Spend",
             commitment_discount_status="Unused", effective_cost=Decimal("0.30")),
        line(commitment_discount_id="sp-1", commitment_discount_category="Spend", charge_category="Purchase",
             charge_frequency="Recurring", billed_cost=Decimal("1.00"), effective_cost=Decimal(0)),
        line(commitment_discount_id="sp-1", commitment_discount_category="Spend", charge_category="Purchase",
             charge_frequency="One-Time", billed_cost=Decimal("500.00"), effective_cost=Decimal(0)),
        line(),
    ])  # fmt: skip

    # When
    (row,) = usage.commitment_usage(frame).to_pylist()

    # Then
    assert row["commitment_id"] == "sp-1" and row["category"] == "Spend"
    assert (row["covered"], row["used_cost"], row["unused_cost"], row["purchase_cost"]) == (
        Decimal("1.00"), Decimal("0.70"), Decimal("0.30"), Decimal("1.00"),
    )  # fmt: skip


def test_a_commitments_own_lines_are_not_resources():
    # Given a usage line a commitment covered, the commitment's unused part and its recurring fee, both billed with
    # the commitment as their resource, and an upfront purchase line
    sp = "arn:aws:savingsplans::1:savingsplan/sp-1"
    frame = frame_of([
        line(resource_id="i-used", commitment_discount_id=sp, commitment_discount_status="Used"),
        line(resource_id=sp, commitment_discount_id=sp, commitment_discount_status="Unused",
             effective_cost=Decimal("0.30"), billed_cost=Decimal(0)),
        line(resource_id=sp, commitment_discount_id=sp, charge_category="Usage", charge_frequency="Recurring",
             effective_cost=Decimal("0.02"), billed_cost=Decimal("0.02")),
        line(resource_id="sandbox/aws_ec2_instance_savings_plan/x", charge_category="Purchase",
             effective_cost=Decimal(0), billed_cost=Decimal("100.00")),
    ])  # fmt: skip

    # When the daily resource costs are summed
    found = {r["resource_id"] for r in usage.resource_days(frame).to_pylist()}

    # Then only the covered instance is a resource
    assert found == {"i-used"}


_COMMITMENT_LINES = st.sampled_from(["purchase", "fee", "unused", "covered"])


@settings(max_examples=80, deadline=None)
@given(
    kinds=st.lists(_COMMITMENT_LINES, min_size=1, max_size=12),
    resources=st.lists(st.sampled_from(["i-a", "i-b", "vol-c", "db-d"]), min_size=1, max_size=8),
    case=st.sampled_from([str.lower, str.upper, str.title]),
    cents=st.integers(min_value=1, max_value=10_000),
)
def test_no_commitment_fee_line_is_ever_a_resource(kinds, resources, case, cents):
    # Given resources' usage lines mixed with a commitment's own lines (purchase, recurring fee, unused part), in any
    # letter case the layouts write them, and lines the commitment covered
    sp = "arn:aws:savingsplans::1:savingsplan/sp-9"
    amount = Decimal(cents) / 100
    lines = [line(resource_id=r, effective_cost=amount, billed_cost=amount) for r in resources]
    for k in kinds:
        if k == "purchase":
            lines.append(line(resource_id=sp, charge_category=case("Purchase"), billed_cost=amount,
                              effective_cost=Decimal(0)))  # fmt: skip
        elif k == "fee":
            lines.append(line(resource_id=sp, commitment_discount_id=sp, charge_frequency="Recurring",
                              effective_cost=amount, billed_cost=amount))  # fmt: skip
        elif k == "unused":
            lines.append(line(resource_id=sp, commitment_discount_id=sp, commitment_discount_status=case("Unused"),
                              effective_cost=amount, billed_cost=Decimal(0)))  # fmt: skip
        else:
            lines.append(line(resource_id="i-covered", commitment_discount_id=sp, commitment_discount_status="Used",
                              effective_cost=amount, billed_cost=Decimal(0)))  # fmt: skip

    # When the daily resource costs are summed
    found = usage.resource_days(frame_of(lines)).to_pylist()

    # Then the commitment is never a resource, every resource's usage is there, and its cost is exactly its lines'
    names = {r["resource_id"] for r in found}
    assert sp not in names
    assert names == set(resources) | ({"i-covered"} if "covered" in kinds else set())
    for r in resources:
        [row] = [x for x in found if x["resource_id"] == r]
        assert row["effective_cost"] == amount * resources.count(r)


def test_a_cur_savings_plan_fee_carries_its_unused_commitment_into_the_kpi_sums():
    # Given a converted CUR hour: usage of 14.00 on demand covered by a savings plan for 9.70, and the plan's
    # recurring fee of 10.00, a Purchase line whose EffectiveCost 0.30 is the unused part ("Unused")
    frame = frame_of([
        line(commitment_discount_id="sp-1", commitment_discount_category="Spend", commitment_discount_status="Used",
             billed_cost=Decimal(0), effective_cost=Decimal("9.70"), list_cost=Decimal("14.00")),
        line(commitment_discount_id="sp-1", commitment_discount_category="Spend", commitment_discount_status="Unused",
             charge_category="Purchase", charge_frequency="Recurring", billed_cost=Decimal("10.00"),
             effective_cost=Decimal("0.30"), resource_id=None),
    ])  # fmt: skip

    # When
    (hour,) = rows(usage.pool_usage(frame))
    (plan,) = usage.commitment_usage(frame).to_pylist()

    # Then the plan cost 10.00 (9.70 used + 0.30 unused), so its utilization is 9.70 / 10.00 = 0.97
    assert hour["commitment_cost"] == Decimal("10.00")
    assert hour["unused_commitment_cost"] == Decimal("0.30")
    assert hour["on_demand_equivalent"] == hour["covered"] == Decimal("14.00")  # the fee is no usage
    assert hour["on_demand_cost"] == 0
    # and the commitment's own sums see its unused part too (its size: what it covered plus what it left)
    assert (plan["used_cost"], plan["unused_cost"], plan["purchase_cost"]) == (
        Decimal("9.70"), Decimal("0.30"), Decimal("10.00"),
    )  # fmt: skip


def test_an_actual_cost_savings_plan_fee_is_the_pools_commitment_fee():
    # Given an Azure actual-cost day: usage covered by a savings plan shows cost 0, and the plan's recurring fee
    # of 96.768 is a Purchase line with EffectiveCost 0 (nothing amortized), an uncovered VM costs 20.00
    frame = frame_of([
        line(provider_name="Microsoft", commitment_discount_id="sp-1", commitment_discount_category="Spend",
             commitment_discount_status="Used", billed_cost=Decimal(0), effective_cost=Decimal(0),
             list_cost=Decimal("120.00")),
        line(provider_name="Microsoft", commitment_discount_id="sp-1", commitment_discount_category="Spend",
             charge_category="Purchase", charge_frequency="Recurring", billed_cost=Decimal("96.768"),
             effective_cost=Decimal(0), resource_id=None),
        line(provider_name="Microsoft", billed_cost=Decimal("20.00"), effective_cost=Decimal("20.00"),
             list_cost=Decimal("20.00"), resource_id="vm-2"),
    ])  # fmt: skip

    (day,) = rows(usage.pool_usage(frame))

    # Then the fee is summed apart, as billed; nothing of it is amortized commitment cost
    assert day["commitment_fee"] == Decimal("96.768")
    assert day["commitment_cost"] == 0 and day["unused_commitment_cost"] == 0
    assert day["on_demand_equivalent"] == Decimal("140.00") and day["covered"] == Decimal("120.00")
    assert day["on_demand_cost"] == Decimal("20.00")
