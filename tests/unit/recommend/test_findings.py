"""Rightsizing and idle rules on hand-made daily costs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from finops_contracts.recommendations import Kind
from finops_recommend.findings import Resource, Settings, Utilization, judge

LAST = date(2024, 9, 30)


def resource(resource_id: str, costs: list[str], **fields: object) -> Resource:
    daily = {LAST - timedelta(days=len(costs) - 1 - i): Decimal(c) for i, c in enumerate(costs)}
    base: dict[str, object] = dict(
        provider_name="AWS", billing_account_id="acct", sub_account_id="prod", region_id="us-east-1",
        service_name="Amazon EC2", service_category="Compute", resource_id=resource_id, team="payments",
        currency="USD", snapshot=False,
    )  # fmt: skip
    return Resource(**{**base, **fields}, daily=daily)


def by_id(findings) -> dict:
    return {f.resource.resource_id: f for f in findings}


def test_a_steady_tiny_cost_is_idle_and_saves_its_monthly_cost():
    steady = resource("eip-1", ["0.50"] * 10, service_category="Networking")

    (found,) = judge([steady], last_day=LAST)

    assert found.kind is Kind.IDLE and found.rule == "steady_tiny_cost"
    assert found.monthly_savings.amount == Decimal("15.22")  # 0.50 x 365.25 / 12
    assert found.monthly_savings.currency == "USD"
    assert found.evidence["steady_days"] == 10
    assert found.target == "resource/AWS/acct/eip-1"


def test_varying_large_short_lived_or_gone_resources_are_not_idle():
    varying = resource("i-busy", ["0.50", "0.90"] * 5)
    large = resource("i-big", ["50"] * 10)
    young = resource("i-new", ["0.50"] * 6)
    gone = resource("i-old", ["0.50"] * 10 + ["0"])

    assert judge([varying, large, young, gone], last_day=LAST) == []


def test_storage_in_a_place_with_no_compute_is_idle():
    compute = resource("i-1", ["20", "30"] * 5)
    attached = resource("vol-1", ["3", "4"] * 5, service_category="Storage")
    orphan = resource("vol-2", ["3", "4"] * 5, service_category="Storage", region_id="eu-west-1", team="data")

    found = by_id(judge([compute, attached, orphan], last_day=LAST))

    assert set(found) == {"vol-2"}
    assert found["vol-2"].rule == "storage_without_compute" and found["vol-2"].resource.team == "data"
    assert found["vol-2"].monthly_savings.amount == Decimal("108.71")  # mean of the last 7 days (25 / 7) x 30.4375


def test_a_snapshot_older_than_the_threshold_is_stale():
    old = resource("snap-1", ["0.20", "0.30"] * 20, service_category="Storage", snapshot=True)
    new = resource("snap-2", ["0.20", "0.30"] * 5, service_category="Storage", snapshot=True)

    found = by_id(judge([old, new, resource("i-1", ["9", "8"] * 20)], last_day=LAST))

    assert found["snap-1"].rule == "stale_snapshot"
    assert "snap-2" not in found or found["snap-2"].rule != "stale_snapshot"


def test_an_instance_with_low_peak_utilization_is_rightsized_to_half():
    instance = resource("i-1", ["10", "12"] * 5)

    (found,) = judge([instance], last_day=LAST, utilization_p95={"i-1": 0.15})

    assert found.kind is Kind.RIGHTSIZING and found.rule == "overprovisioned"
    assert found.monthly_savings.amount == Decimal("169.58")  # half of the last 7 days' mean (78 / 7) x 30.4375
    assert judge([instance], last_day=LAST, utilization_p95={"i-1": 0.75}) == []


def test_a_named_instance_type_is_shrunk_as_far_as_its_peak_allows_within_its_family():
    # Given an m5.4xlarge (32 units) costing 78 over the last 7 days, a run rate of 339.16 a month
    instance = resource("i-1", ["10", "12"] * 5, instance_type="m5.4xlarge")

    def resize(peak: float):
        (found,) = judge([instance], last_day=LAST, utilization_p95={"i-1": peak})
        return found.evidence["recommended_type"], found.evidence["size_factor"], found.monthly_savings.amount

    # Then at a 9% peak it can be 8 times smaller (72% at m5.large): 7/8 of the run rate saved
    assert resize(0.09) == ("m5.large", 8, Decimal("296.77"))
    # at 15%, 4 times (60%): m5.xlarge, 3/4 saved; at 35%, twice (70%): m5.2xlarge, half saved
    assert resize(0.15) == ("m5.xlarge", 4, Decimal("254.37"))
    assert resize(0.35) == ("m5.2xlarge", 2, Decimal("169.58"))


def test_an_instance_already_at_its_family_s_smallest_size_gets_no_resize():
    # m5 comes no smaller than large; t3 goes down to nano
    smallest = resource("i-1", ["10", "12"] * 5, instance_type="m5.large")
    burstable = resource("i-2", ["10", "12"] * 5, instance_type="t3.large")

    found = by_id(judge([smallest, burstable], last_day=LAST, utilization_p95={"i-1": 0.05, "i-2": 0.05}))

    assert set(found) == {"i-2"} and found["i-2"].evidence["recommended_type"] == "t3.micro"


def test_findings_below_the_minimum_savings_are_dropped():
    tiny = resource("eip-1", ["0.01"] * 10)

    assert judge([tiny], last_day=LAST) == []
    assert len(judge([tiny], last_day=LAST, settings=Settings(min_monthly_savings=Decimal("0.1")))) == 1


def test_an_instance_whose_cpu_stays_near_zero_is_idle_not_rightsized():
    # Given a forgotten instance costing 4.60 a day, with a 2% CPU peak and some memory held (8%), and a busier
    # one at a 15% CPU peak, both over two weeks of hourly samples (336)
    forgotten = resource("i-idle", ["4.60"] * 10)
    quiet = resource("i-quiet", ["10", "12"] * 5)
    used = {
        "i-idle": Utilization(cpu_p95=0.02, memory_p95=0.08, samples=336),
        "i-quiet": Utilization(cpu_p95=0.15, memory_p95=0.20, samples=336),
    }

    found = by_id(judge([forgotten, quiet], last_day=LAST, utilization_p95=used))

    # Then the one doing nothing is idle, to stop: its whole run rate, 4.60 x 365.25 / 12 = 140.0125
    assert found["i-idle"].kind is Kind.IDLE and found["i-idle"].rule == "unused_compute"
    assert found["i-idle"].monthly_savings.amount == Decimal("140.01")
    assert found["i-idle"].evidence["cpu_p95"] == "0.0200"
    # and the quiet one is still resized (half of 78 / 7 x 30.4375)
    assert found["i-quiet"].kind is Kind.RIGHTSIZING and found["i-quiet"].monthly_savings.amount == Decimal("169.58")
    # and too few samples say nothing: the steady tiny cost rule still sees the forgotten one
    few = judge([forgotten], last_day=LAST, utilization_p95={"i-idle": Utilization(cpu_p95=0.02, samples=3)})
    assert [(f.kind, f.rule) for f in few] == [(Kind.IDLE, "steady_tiny_cost")]


def test_compute_a_commitment_covered_at_no_cost_still_gives_storage_something_to_be_attached_to():
    # Given, in an actual-cost export, a VM whose usage a savings plan covered every day (cost 0 on each day
    # it ran; the plan's purchase carries the money) and a storage account beside it; and storage in a region
    # where no compute ran at all
    covered_vm = resource("vm-1", ["0"] * 10, provider_name="Microsoft", service_name="Virtual Machines")
    beside = resource("st-1", ["3", "4"] * 5, provider_name="Microsoft", service_category="Storage")
    alone = resource("st-2", ["3", "4"] * 5, provider_name="Microsoft", service_category="Storage", region_id="x")

    found = by_id(judge([covered_vm, beside, alone], last_day=LAST))

    # Then only the storage with no compute at all is idle (25 / 7 x 30.4375 = 108.71 a month)
    assert set(found) == {"st-2"} and found["st-2"].monthly_savings.amount == Decimal("108.71")
