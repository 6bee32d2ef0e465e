"""The guard's own measure of a pool's usage and its rule, on hand-computed figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from finops_contracts.costframe import frame_of
from finops_contracts.events import CostLine
from finops_decision import guard

DAY = datetime(2026, 2, 1, tzinfo=UTC)


def line(start: datetime, hours: int, **amounts: object) -> CostLine:
    fields: dict[str, object] = dict(
        billing_account_id="1111", billing_period_start=DAY, billing_period_end=DAY + timedelta(days=28),
        charge_period_start=start, charge_period_end=start + timedelta(hours=hours), charge_category="Usage",
        billing_currency="USD", billed_cost=Decimal(0), effective_cost=Decimal(0), provider_name="AWS",
        service_category="Compute",
    )  # fmt: skip
    return CostLine(**{**fields, **amounts})


def test_on_demand_equivalent_per_hour_with_daily_lines_spread_over_24_hours():
    usage = guard.hourly_usage(
        frame_of(
            [
                line(DAY, 1, effective_cost=Decimal("4.00")),  # on demand: what it cost
                line(
                    DAY, 1, effective_cost=Decimal("2.00"), list_cost=Decimal("3.00"), commitment_discount_status="Used"
                ),  # covered: its list cost
                line(
                    DAY,
                    1,
                    effective_cost=Decimal("1.00"),
                    list_cost=Decimal("3.00"),
                    contracted_cost=Decimal("2.50"),
                    commitment_discount_status="Used",
                ),  # contracted first
                line(DAY, 1, effective_cost=Decimal("0.70"), commitment_discount_status="Unused"),  # waste
                line(DAY, 24, effective_cost=Decimal("48.00")),  # a daily line: 2.00 an hour
                line(DAY, 1, effective_cost=Decimal("9.00"), service_category="Storage"),  # no compute program
                line(DAY, 1, effective_cost=Decimal("9.00"), provider_name="Nobody"),
            ]
        )  # fmt: skip
    )
    key = ("1111", DAY, "aws_compute_savings_plan")
    assert usage[(*key, DAY, "USD")] == Decimal("11.50")  # 4 + 3 + 2.5 + 2
    assert usage[(*key, DAY + timedelta(hours=23), "USD")] == Decimal("2.00")
    assert len(usage) == 24


def test_the_median_over_the_lookback_decides_and_no_usage_refuses():
    hours = {DAY + timedelta(hours=h): Decimal(10 if h < 30 else 1) for h in range(40)}
    limits = guard.Guard(max_usage_share=Decimal("1.0"), lookback_days=1)
    check = guard.judge(usage=hours, commitment_per_hour=Decimal("5"), guard=limits, lookback_hours=None,
                        pool="aws_compute_savings_plan", billing_account_id="1111", currency="USD")  # fmt: skip
    # the last 24 hours: 14 at 10 and 10 at 1, median 10
    assert check.allowed and check.observed_usage_per_hour == Decimal(10) and check.hours_observed == 24
    check = guard.judge(usage=hours, commitment_per_hour=Decimal("5"), guard=limits, lookback_hours=16,
                        pool="aws_compute_savings_plan", billing_account_id="1111", currency="USD")  # fmt: skip
    # the plan's own 16 hours: 6 at 10 and 10 at 1, median 1
    assert not check.allowed and check.observed_usage_per_hour == Decimal(1) and check.lookback_hours == 16
    none = guard.judge(usage={}, commitment_per_hour=Decimal("5"), guard=limits, lookback_hours=None,
                       pool="aws_compute_savings_plan", billing_account_id="1111", currency="USD")  # fmt: skip
    assert not none.allowed and "no usage observed" in none.reason


def test_pools_of_programs():
    assert guard.pool_of_program("aws_ec2_instance_savings_plan") == "aws_compute_savings_plan"
    assert guard.pool_of_provider("Amazon Web Services") == "aws_compute_savings_plan"
    assert guard.pool_of_provider("Microsoft") == guard.pool_of_program("azure_reservation")
