"""The utilization metrics feed: what a row must hold, and over-provisioned findings from its p95."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from finops_contracts.recommendations import Kind
from finops_recommend import uploads, utilization
from finops_recommend.findings import Resource, Utilization, judge

LAST = date(2024, 9, 30)


def test_csv_and_json_rows_become_fractions_with_a_utc_timestamp():
    csv_body = b"resource_id,timestamp,cpu_utilization,memory_utilization\ni-1,2024-09-30T10:00:00Z,0.12,\n"
    json_body = b'[{"resource_id": "i-2", "timestamp": "2024-09-30 11:00:00", "memory": 0.5}]'

    rows = utilization.parse(uploads.read_rows(csv_body, "text/csv"))
    rows += utilization.parse(uploads.read_rows(json_body, "application/json"))

    assert rows == [
        ("i-1", datetime(2024, 9, 30, 10, tzinfo=UTC), Decimal("0.12"), None),
        ("i-2", datetime(2024, 9, 30, 11, tzinfo=UTC), None, Decimal("0.5")),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"timestamp": "2024-09-30T10:00:00Z", "cpu": "0.1"}, "row 1: resource_id missing"),
        ({"resource_id": "i-1", "cpu": "0.1"}, "row 1: timestamp missing"),
        ({"resource_id": "i-1", "timestamp": "yesterday", "cpu": "0.1"}, "not an ISO 8601"),
        ({"resource_id": "i-1", "timestamp": "2024-09-30T10:00:00Z", "cpu": "45"}, "divided by 100"),
        ({"resource_id": "i-1", "timestamp": "2024-09-30T10:00:00Z"}, "cpu_utilization, memory_utilization"),
    ],
)
def test_a_bad_row_is_refused_naming_what_to_fix(row, message):
    with pytest.raises(utilization.InvalidMetrics, match=message):
        utilization.parse([row])


def test_an_instance_whose_cpu_and_memory_peaks_stay_low_is_over_provisioned_and_saves_half_its_cost():
    # Given two instances costing 4.00 a day; one peaks at 20% CPU and 30% memory, the other at 20% CPU but 85%
    # memory; a third is idle by its numbers but has only 3 samples
    def instance(rid: str) -> Resource:
        daily = {LAST - timedelta(days=i): Decimal("4.00") for i in range(30)}
        return Resource(
            provider_name="AWS", billing_account_id="acct", sub_account_id="prod", region_id="us-east-1",
            service_name="Amazon EC2", service_category="Compute", resource_id=rid, team="payments",
            currency="USD", snapshot=False, daily=daily,
        )  # fmt: skip

    metrics = {
        "i-low": Utilization(cpu_p95=0.2, memory_p95=0.3, samples=336),
        "i-mem": Utilization(cpu_p95=0.2, memory_p95=0.85, samples=336),
        "i-few": Utilization(cpu_p95=0.1, memory_p95=0.1, samples=3),
    }

    # When (a steady 4.00 a day may also be judged idle: only the rightsizing findings matter here)
    found = judge([instance(r) for r in metrics], last_day=LAST, utilization_p95=metrics)

    # Then only the first is over-provisioned: one size down saves half of 4.00 x 365.25 / 12 = 60.88
    (finding,) = [f for f in found if f.kind is Kind.RIGHTSIZING]
    assert finding.resource.resource_id == "i-low"
    assert finding.monthly_savings.amount == Decimal("60.88")
    assert finding.evidence["cpu_p95"] == "0.2000" and finding.evidence["memory_p95"] == "0.3000"
    assert finding.resource.team == "payments"
