"""Cost lines become daily facts per dimension, exactly: the sums of a batch's facts are its lines' sums to the
last decimal place; product comes from its tag (any case), and team and cost center never from tags: facts keep
each line's resource, whose owner allocation publishes (ResourceOwned)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from finops_console import costs
from finops_contracts.costframe import frame_of
from finops_contracts.events import CostLine

START = datetime(2026, 9, 1, tzinfo=UTC)


def line(
    day: int, cost: str, tags: dict[str, str], service: str | None = "Amazon EC2", resource: str | None = "i-1"
) -> CostLine:
    at = START + timedelta(days=day, hours=3)
    return CostLine(
        billing_account_id="acct",
        billing_period_start=START,
        billing_period_end=START + timedelta(days=30),
        charge_period_start=at,
        charge_period_end=at + timedelta(hours=1),
        charge_category="Usage",
        billing_currency="EUR",
        billed_cost=Decimal(cost),
        effective_cost=Decimal(cost) / 2,
        provider_name="AWS",
        service_name=service,
        resource_id=resource,
        tags=tags,
    )


def test_tags_name_the_product_only():
    assert costs.product_of({" Product ": " shop ", "team": "checkout"}) == "shop"
    assert costs.product_of({"team": "checkout", "cost_center": "CC-1"}) == "unallocated"
    assert not hasattr(costs, "tag_dimensions")


def test_day_facts_sum_each_day_and_dimension_exactly():
    # Given lines of two resources over two days, with many decimal places, one without service, resource or tags
    lines = [
        line(0, "0.0000000001", {"team": "a"}),
        line(0, "1.10", {"team": "a"}),
        line(0, "2.2", {"TEAM": "b", "cost_center": "CC-9"}, resource="i-2"),
        line(1, "3.333333", {"team": "a"}),
        line(1, "5", {}, service=None, resource=None),
    ]

    # When they are turned into facts
    facts = costs.day_facts(frame_of(lines))
    rows = {
        (r["day"].isoformat(), r["resource_id"], r["service"]): (
            r["billed_cost_sum"],
            r["effective_cost_sum"],
            r["_lines_sum"],
        )
        for r in facts.to_pylist()
    }

    # Then each day and resource has its lines' exact sums, and the whole equals the lines' total
    assert set(facts.column_names).isdisjoint({"team", "cost_center"})
    assert rows[("2026-09-01", "i-1", "Amazon EC2")] == (
        Decimal("1.1000000001"),
        Decimal("0.55000000005"),
        2,
    )
    assert rows[("2026-09-01", "i-2", "Amazon EC2")][0] == Decimal("2.2")
    assert rows[("2026-09-02", "", "(none)")] == (Decimal(5), Decimal("2.5"), 1)
    assert sum(v[0] for v in rows.values()) == sum(ln.billed_cost for ln in lines)
    assert sum(v[2] for v in rows.values()) == len(lines)


def test_stage_records_follow_the_stage_columns():
    facts = costs.day_facts(frame_of([line(0, "1.5", {"team": "a", "product": "p"})]))

    records = costs.stage_records(facts, ingest_id="ingest", billing_account_id="acct", period=START.date())

    assert len(records) == 1
    record = dict(zip(costs.STAGE_COLUMNS, records[0], strict=True))
    assert record["resource_id"] == "i-1" and record["product"] == "p" and record["currency"] == "EUR"
    assert record["billed_cost"] == Decimal("1.5") and record["line_count"] == 1
