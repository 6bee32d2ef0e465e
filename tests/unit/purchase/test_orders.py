"""Orders, their upfront amounts and terms in Decimal, the fingerprint that makes a client token buy one thing,
and what the sandbox sells and how it injects failures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from finops_purchase.provider import Order, Refused, add_months, upfront_amount
from finops_purchase.sandbox import catalog
from finops_purchase.sandbox.server import Faults, SandboxSettings

ORDER = Order(
    decision_id="d-1",
    provider_name="AWS",
    billing_account_id="111122223333",
    program="aws_compute_savings_plan",
    term_months=12,
    payment="no_upfront",
    start=datetime(2026, 1, 31, tzinfo=UTC),
    commitment_per_hour=Decimal("1.5"),
    currency="USD",
    covered_usage_per_hour=Decimal("2.4"),
)


def test_upfront_is_the_share_of_the_total_over_365_day_years_to_the_cent():
    assert upfront_amount(Decimal("1.25"), 12, "partial_upfront") == Decimal("5475.00")
    assert upfront_amount(Decimal("0.333"), 36, "all_upfront") == Decimal("8751.24")
    assert upfront_amount(Decimal("0.001"), 12, "partial_upfront") == Decimal("4.38")
    assert upfront_amount(Decimal("7"), 36, "no_upfront") == Decimal("0.00")


def test_unknown_payments_and_partial_years_are_refused_with_what_to_use():
    with pytest.raises(Refused, match="no_upfront, partial_upfront, all_upfront"):
        upfront_amount(Decimal(1), 12, "half_upfront")
    with pytest.raises(Refused, match="12 or 36 months"):
        upfront_amount(Decimal(1), 18, "no_upfront")


def test_a_term_ends_on_the_same_day_or_the_last_day_of_a_shorter_month():
    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2027, 3, 1, tzinfo=UTC), 36) == datetime(2030, 3, 1, tzinfo=UTC)
    assert ORDER.end == datetime(2027, 1, 31, tzinfo=UTC)


def test_the_fingerprint_ignores_how_an_amount_is_written_but_not_what_is_bought():
    same = replace(ORDER, commitment_per_hour=Decimal("1.50"), covered_usage_per_hour=Decimal("9"))

    assert same.fingerprint() == ORDER.fingerprint()
    assert replace(ORDER, payment="all_upfront").fingerprint() != ORDER.fingerprint()
    assert replace(ORDER, commitment_per_hour=Decimal("1.51")).fingerprint() != ORDER.fingerprint()
    assert replace(ORDER, billing_account_id="other").fingerprint() != ORDER.fingerprint()


def test_an_alias_names_the_optimizer_program():
    assert replace(ORDER, program="aws_reserved_instance").program == "aws_standard_reserved_instance"


def test_the_sandbox_sells_each_program_in_both_terms_with_its_providers_payment_options():
    sold = {(o.program, o.term_months, o.payment): o for o in catalog.offerings()}

    assert {t for (_, t, _) in sold} == {12, 36}
    assert sold[("aws_compute_savings_plan", 36, "all_upfront")].upfront_share == Decimal(1)
    assert sold[("aws_standard_reserved_instance", 12, "partial_upfront")].upfront_share == Decimal("0.5")
    assert ("azure_reservation", 12, "partial_upfront") not in sold
    assert {p for (p, _, pay) in sold if pay != "no_upfront"} == {
        "aws_compute_savings_plan",
        "aws_ec2_instance_savings_plan",
        "aws_standard_reserved_instance",
        "azure_reservation",
        "azure_savings_plan",
    }
    assert all(isinstance(o.discount, Decimal) and 0 < o.discount < 1 for o in sold.values())


def test_the_sandbox_refuses_what_it_does_not_sell_saying_what_it_does():
    with pytest.raises(Refused, match="not sold with payment 'partial_upfront'; use one of no_upfront"):
        catalog.check("gcp_resource_cud", 12, "partial_upfront")
    with pytest.raises(Refused, match="program 'oci_credits' is not sold"):
        catalog.check("oci_credits", 12, "no_upfront")
    assert catalog.check("aws_reserved_instance", 36, "all_upfront") == "aws_standard_reserved_instance"


def test_injected_failures_follow_their_rates_and_repeat_with_the_seed():
    settings = SandboxSettings(
        database_url="postgresql://unused/db", error_rate=0.1, timeout_rate=0.2, timeout_after_success_rate=0.3, seed=7
    )
    first, second = Faults(settings), Faults(settings)

    draws = [first.draw() for _ in range(4000)]

    assert draws == [second.draw() for _ in range(4000)]
    shares = {fate: draws.count(fate) / len(draws) for fate in set(draws)}
    assert abs(shares["error"] - 0.1) < 0.03 and abs(shares["timeout"] - 0.2) < 0.03
    assert abs(shares["timeout_after_success"] - 0.3) < 0.03 and abs(shares["ok"] - 0.4) < 0.03
    with pytest.raises(ValueError, match="add up to more than 1"):
        first.update({"error_rate": 0.9})
    with pytest.raises(ValueError, match="unknown fault settings"):
        first.update({"timeout": 1})
