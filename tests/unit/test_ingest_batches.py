"""Cutting frames into cost batches: every line in exactly one batch, each batch one account and period, sizes
as asked, and decimal scales that differ between blocks kept exact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from finops_contracts.costframe import frame_of
from finops_contracts.events import CostBatchIngested, CostLine
from finops_ingest.service import _Batcher

JAN, FEB = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def lines(n: int, *, account: str, period: datetime, cost: str) -> list[CostLine]:
    return [
        CostLine(
            billing_account_id=account,
            billing_period_start=period,
            billing_period_end=period.replace(month=period.month + 1),
            charge_period_start=period,
            charge_period_end=period.replace(day=2),
            charge_category="Usage",
            billing_currency="USD",
            billed_cost=Decimal(cost),
            effective_cost=Decimal(cost),
            provider_name="AWS",
            resource_id=f"{account}-{i}",
        )
        for i in range(n)
    ]


def decoded(messages) -> list[CostBatchIngested]:
    return [CostBatchIngested.decode(m.payload) for m in messages]


def test_every_line_lands_in_one_batch_of_its_own_account_and_period():
    mixed = lines(7, account="a", period=JAN, cost="0.1") + lines(5, account="b", period=FEB, cost="0.01")
    mixed += lines(4, account="a", period=FEB, cost="1")
    batcher = _Batcher(uuid.uuid4(), 3)

    batches = decoded(batcher.add(frame_of(mixed[::2])) + batcher.add(frame_of(mixed[1::2])) + batcher.flush())

    assert sum(b.line_count for b in batches) == 16
    assert all(b.line_count <= 3 for b in batches)
    assert sorted(b.batch_seq for b in batches) == list(range(len(batches)))
    for b in batches:
        assert {line.billing_account_id for line in b.lines()} == {b.billing_account_id}
        assert {line.billing_period_start for line in b.lines()} == {b.billing_period_start}
    seen = sorted(line.resource_id for b in batches for line in b.lines())
    assert seen == sorted(line.resource_id for line in mixed)
    assert batcher.periods[("a", JAN)].batch_count == 3  # 7 lines, 3 a batch


def test_blocks_with_different_decimal_scales_keep_every_digit():
    batcher = _Batcher(uuid.uuid4(), 10)
    first, second = lines(2, account="a", period=JAN, cost="1.5"), lines(2, account="a", period=JAN, cost="0.0000001")
    for frame in (frame_of(first), frame_of(second)):
        assert batcher.add(frame) == []

    [batch] = decoded(batcher.flush())

    assert sum(line.billed_cost for line in batch.lines()) == Decimal("3.0000002")
    assert batcher.totals[("a", "USD")].billed_cost == Decimal("3.0000002")


def test_a_batch_too_large_for_one_record_is_cut_in_two():
    batcher = _Batcher(uuid.uuid4(), 1000, max_bytes=2_000)

    batches = decoded(batcher.add(frame_of(lines(1000, account="a", period=JAN, cost="1.25"))))

    assert len(batches) > 1
    assert sum(b.line_count for b in batches) == 1000
