"""Savings from cost lines that used a commitment, and the verdict against the estimate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from finops_contracts import costframe
from finops_contracts.events import CostLine
from finops_decision import savings

START = datetime(2026, 3, 1, tzinfo=UTC)


def line(hour: int, *, cid: str | None, status: str | None, listed: str | None, effective: str, **kw) -> CostLine:
    return CostLine(
        billing_account_id="1111", billing_period_start=START, billing_period_end=START + timedelta(days=31),
        charge_period_start=START + timedelta(hours=hour), charge_period_end=START + timedelta(hours=hour + 1),
        charge_category=kw.pop("category", "Usage"), billing_currency=kw.pop("currency", "USD"),
        billed_cost=Decimal(0), effective_cost=Decimal(effective), list_cost=Decimal(listed) if listed else None,
        provider_name="AWS", commitment_discount_id=cid, commitment_discount_status=status,
    )  # fmt: skip


def test_covered_usage_saves_list_minus_effective_and_unused_commitment_is_taken_off():
    frame = costframe.frame_of(
        [
            line(0, cid="sp-1", status="Used", listed="3.0000", effective="2.1234"),
            line(1, cid="sp-1", status="Used", listed="3.00", effective="2.00"),
            line(1, cid="sp-1", status="Unused", listed=None, effective="0.45"),
            line(2, cid="sp-1", status=None, listed="1.00", effective="0.50"),
            line(3, cid="sp-1", status=None, listed="9.00", effective="9.00", category="Purchase"),
            line(4, cid="sp-1", status="Used", listed="2.00", effective="1.00", currency="EUR"),
            line(5, cid="sp-2", status="Used", listed="5.00", effective="1.00"),
            line(6, cid=None, status=None, listed="7.00", effective="7.00"),
        ]
    )

    found = savings.match(frame, {"sp-1": "USD"})

    (m,) = found.values()
    assert m.commitment_id == "sp-1" and m.lines == 4
    assert m.covered_savings == Decimal("0.8766") + Decimal("1.00") + Decimal("0.50")
    assert m.unused_cost == Decimal("0.45")
    assert (m.window_start, m.window_end) == (START, START + timedelta(hours=3))
    assert m.other_currency_lines == 1


def test_a_frame_without_the_commitment_matches_nothing():
    frame = costframe.frame_of([line(0, cid="sp-9", status="Used", listed="1", effective="1")])

    assert savings.match(frame, {"sp-1": "USD"}) == {}
    assert savings.match(frame, {}) == {}


def test_verified_when_realized_reaches_the_tolerated_share_of_the_pro_rated_estimate():
    verdict = savings.judge(
        estimated_monthly=Decimal("730.00"), covered_savings=Decimal("30.00"), unused_cost=Decimal("3.00"),
        window_start=START, window_end=START + timedelta(hours=30), tolerance=Decimal("0.9"), currency="USD",
    )  # fmt: skip

    assert verdict.verified and verdict.hours == 30
    assert verdict.estimated == Decimal("30.00") and verdict.realized == Decimal("27.00")
    assert verdict.realization == Decimal("0.9000") and verdict.reason == ""


def test_a_shortfall_says_by_how_much_and_why():
    verdict = savings.judge(
        estimated_monthly=Decimal("730.00"), covered_savings=Decimal("30.00"), unused_cost=Decimal("3.01"),
        window_start=START, window_end=START + timedelta(hours=30), tolerance=Decimal("0.9"), currency="USD",
    )  # fmt: skip

    assert not verdict.verified and verdict.realized == Decimal("26.99")
    assert "26.99 USD over 30 hours is 89.97% of the estimated 30.00 USD" in verdict.reason
    assert "at least 90.00%" in verdict.reason and "unused commitment cost 3.01 USD" in verdict.reason


def test_hours_are_exact():
    assert savings.hours(START, START + timedelta(hours=167, minutes=30)) == Decimal("167.5")
