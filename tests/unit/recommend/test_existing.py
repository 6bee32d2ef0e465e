"""Commitments already held: the FOCUS Contract Commitment dataset (the shared synthetic 1.3 sample, which must be
present), sizes measured from cost lines, and where each commitment is planned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from finops_recommend import existing, uploads
from finops_recommend.prices import Program
from tests.support.focus_files import SHARED

CONTRACT_SAMPLE = SHARED / "data" / "focus" / "synthetic" / "focus-1.3_aws_contractcommitment_synthetic-fdt.csv"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def line_stats(**fields: object) -> existing.LineStats:
    base: dict[str, object] = dict(
        commitment_id="sp-1", billing_account_id="acct", provider_name="AWS", category="Spend", currency="USD",
        first_seen=NOW - timedelta(days=30), last_seen=NOW, hours=10, covered=Decimal("700"),
        used_cost=Decimal("350"), unused_cost=Decimal("50"),
    )  # fmt: skip
    return existing.LineStats(**{**base, **fields})


@pytest.mark.samples
def test_the_contract_commitment_sample_gives_its_savings_plans_and_reserved_instances_with_their_expiry():
    # Given the synthetic FOCUS 1.3 Contract Commitment dataset: 46 Compute Savings Plans, 26 RIs and three
    # contract terms that are not commitment discounts (a minimum spend, a minimum usage, a rate card)
    rows = uploads.read_rows(CONTRACT_SAMPLE.read_bytes(), "text/csv")

    # When
    found, skipped = existing.parse_contract_commitments(rows, billing_account_id="100000000001")

    # Then
    programs = [c.program for c in found]
    assert programs.count(Program.AWS_COMPUTE_SAVINGS_PLAN) == 46
    assert programs.count(Program.AWS_STANDARD_RESERVED_INSTANCE) == 26
    assert len(skipped) == 3
    first = next(c for c in found if c.commitment_id.endswith("savingsplan/896334927110f540"))
    assert first.term_months == 12 and first.payment == "no_upfront"
    assert (first.starts_at, first.ends_at) == (
        datetime(2026, 5, 1, 5, tzinfo=UTC),
        datetime(2027, 5, 1, 5, tzinfo=UTC),
    )
    # 280,460.16 USD over 8,760 hours is the 32.016 USD/h the sample's purchase rows bill
    assert first.commitment_per_hour == Decimal("32.016")
    assert first.scope == {"region": "eu-west-1"}
    assert first.billing_account_id == "100000000001"


def test_a_contract_row_without_its_period_is_refused_with_the_column_to_fix():
    with pytest.raises(existing.InvalidCommitments, match="row 1: ContractCommitmentPeriodEnd missing"):
        existing.parse_contract_commitments(
            [{"ContractCommitmentId": "x", "ContractCommitmentPeriodStart": "2026-01-01T00:00:00Z"}]
        )


def test_a_commitment_seen_in_the_lines_is_sized_at_its_realized_discount():
    # Given a commitment that over 10 hours covered usage worth 700 on demand for 350 (a 50% discount) and left
    # 50 of commitment cost unused
    stats = line_stats()

    # When
    (held,) = existing.holdings([stats], [], now=NOW, planned_pools=set())

    # Then it covers (700 + 50 / 0.5) / 10 = 80 per hour of the account's flexible pool, expiry unknown
    assert held.capacity_per_hour == pytest.approx(80.0)
    assert held.discount == pytest.approx(0.5)
    assert held.pool == "aws_compute_savings_plan/acct"
    assert held.ends_at is None and held.sources == ("cost_lines",)


def test_the_dataset_gives_the_expiry_and_a_reserved_instance_goes_to_its_family_pool_when_that_is_planned():
    # Given an RI seen in the lines covering m5 in us-east-1, and its dataset row ending in three months
    stats = line_stats(commitment_id="ri-1", category="Usage", region_id="us-east-1", family="m5")
    row = existing.KnownCommitment(
        commitment_id="ri-1", source="contract_dataset", program=Program.AWS_STANDARD_RESERVED_INSTANCE,
        starts_at=NOW - timedelta(days=270), ends_at=NOW + timedelta(days=90), term_months=12,
    )  # fmt: skip
    family_pool = "aws_ec2_instance_savings_plan/acct/us-east-1/m5"

    # When the m5 pool is planned, and when it is not
    (scoped,) = existing.holdings([stats], [row], now=NOW, planned_pools={family_pool})
    (flexible,) = existing.holdings([stats], [row], now=NOW, planned_pools=set())

    # Then
    assert scoped.pool == family_pool and scoped.ends_at == NOW + timedelta(days=90)
    assert scoped.sources == ("contract_dataset", "cost_lines")
    assert flexible.pool == "aws_compute_savings_plan/acct"


def test_expired_commitments_are_dropped_and_dry_run_purchases_count_only_when_asked():
    # Given a commitment that ended yesterday and a purchase made in dry-run mode
    ended = existing.KnownCommitment(
        commitment_id="old", source="contract_dataset", program=Program.AWS_COMPUTE_SAVINGS_PLAN,
        starts_at=NOW - timedelta(days=365), ends_at=NOW - timedelta(days=1), billing_account_id="acct",
        commitment_per_hour=Decimal("10"),
    )  # fmt: skip
    dry = existing.KnownCommitment(
        commitment_id="dry", source="purchase", program=Program.AWS_COMPUTE_SAVINGS_PLAN, starts_at=NOW,
        ends_at=NOW + timedelta(days=365), billing_account_id="acct", covered_usage_per_hour=Decimal("40"),
        dry_run=True,
    )  # fmt: skip

    # When
    counted = existing.holdings([], [ended, dry], now=NOW, planned_pools=set())
    ignored = existing.holdings([], [ended, dry], now=NOW, planned_pools=set(), count_dry_runs=False)

    # Then
    assert [(h.commitment_id, h.capacity_per_hour, h.dry_run) for h in counted] == [("dry", 40.0, True)]
    assert ignored == []


def test_a_commitment_only_billed_on_purchase_rows_is_sized_from_its_fees_at_the_list_discount():
    # Given a 3-year compute savings plan whose recurring fee is 5.00 an hour and that nothing used yet
    stats = line_stats(covered=Decimal(0), used_cost=Decimal(0), unused_cost=Decimal(0), purchase_cost=Decimal("50"))

    # When
    (held,) = existing.holdings([stats], [], now=NOW, planned_pools=set())

    # Then it covers 5.00 / (1 - 0.50) = 10 of on-demand usage per hour (the table's 3-year rate is the default
    # when the term is unknown)
    assert held.capacity_per_hour == pytest.approx(10.0)
