"""The AWS adapter's requests, checked by botocore's Stubber against AWS's published API models (savingsplans
2019-06-28, ec2 2016-11-15): parameters AWS would refuse fail these tests, and so do answers AWS never gives."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from finops_purchase.adapters.aws import TAG, AwsOptions, AwsProvider
from finops_purchase.provider import Order, OutcomeUnknown, Refused

TOKEN = str(uuid.UUID("6b1f0c1e-8a55-4f6e-9d0b-2d6f3c1a7e01"))
PAST = datetime(2026, 1, 1, tzinfo=UTC)


def client(service: str):
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def order(**changes) -> Order:
    base = Order(
        decision_id=TOKEN,
        provider_name="AWS",
        billing_account_id="111122223333",
        program="aws_compute_savings_plan",
        term_months=12,
        payment="partial_upfront",
        start=PAST,
        commitment_per_hour=Decimal("1.25"),
        currency="USD",
        covered_usage_per_hour=Decimal("2.5"),
    )
    return replace(base, **changes)


def plan(**changes) -> dict:
    return {
        "savingsPlanId": "sp-1",
        "savingsPlanArn": "arn:aws:savingsplans::111122223333:savingsplan/sp-1",
        "offeringId": "off-compute-1y-partial",
        "start": "2026-01-01T00:00:00.000Z",
        "end": "2027-01-01T00:00:00.000Z",
        "state": "active",
        "savingsPlanType": "Compute",
        "paymentOption": "Partial Upfront",
        "currency": "USD",
        "commitment": "1.25",
        "upfrontPaymentAmount": "5475",
        "termDurationInSeconds": 31536000,
        "tags": {TAG: TOKEN},
        **changes,
    }


async def test_a_compute_savings_plan_is_bought_with_the_decision_id_as_client_token_and_tag():
    savingsplans = client("savingsplans")
    aws = AwsProvider(savingsplans=savingsplans, ec2=client("ec2"))

    with Stubber(savingsplans) as stub:
        stub.add_response(
            "describe_savings_plans_offerings",
            {"searchResults": [{"offeringId": "off-compute-1y-partial", "planType": "Compute"}]},
            {
                "planTypes": ["Compute"],
                "durations": [31536000],
                "paymentOptions": ["Partial Upfront"],
                "currencies": ["USD"],
            },
        )
        stub.add_response(
            "create_savings_plan",
            {"savingsPlanId": "sp-1"},
            {
                "savingsPlanOfferingId": "off-compute-1y-partial",
                "commitment": "1.25",
                "upfrontPaymentAmount": "5475",
                "clientToken": TOKEN,
                "tags": {TAG: TOKEN},
            },
        )
        stub.add_response("describe_savings_plans", {"savingsPlans": [plan()]}, {"savingsPlanIds": ["sp-1"]})
        bought = await aws.purchase(order(), TOKEN)
        stub.assert_no_pending_responses()

    assert bought.commitment_id == "arn:aws:savingsplans::111122223333:savingsplan/sp-1"
    assert (bought.program, bought.term_months, bought.payment) == ("aws_compute_savings_plan", 12, "partial_upfront")
    assert (bought.commitment_per_hour, bought.upfront) == (Decimal("1.25"), Decimal("5475"))


async def test_an_ec2_instance_savings_plan_starting_later_is_queued_in_its_region_and_family():
    savingsplans = client("savingsplans")
    aws = AwsProvider(
        AwsOptions(region="eu-west-1", instance_family="m5"), savingsplans=savingsplans, ec2=client("ec2")
    )
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)

    with Stubber(savingsplans) as stub:
        stub.add_response(
            "describe_savings_plans_offerings",
            {"searchResults": [{"offeringId": "off-m5"}]},
            {
                "planTypes": ["EC2Instance"],
                "durations": [94608000],
                "paymentOptions": ["No Upfront"],
                "currencies": ["USD"],
                "filters": [{"name": "region", "values": ["eu-west-1"]}, {"name": "instanceFamily", "values": ["m5"]}],
            },
        )
        stub.add_response(
            "create_savings_plan",
            {"savingsPlanId": "sp-2"},
            {
                "savingsPlanOfferingId": "off-m5",
                "commitment": "0.50000",
                "purchaseTime": later,
                "clientToken": TOKEN,
                "tags": {TAG: TOKEN},
            },
        )
        stub.add_response(
            "describe_savings_plans",
            {"savingsPlans": [plan(savingsPlanType="EC2Instance", paymentOption="No Upfront", commitment="0.5")]},
            {"savingsPlanIds": ["sp-2"]},
        )
        bought = await aws.purchase(
            order(
                program="aws_ec2_instance_savings_plan",
                term_months=36,
                payment="no_upfront",
                start=later,
                commitment_per_hour=Decimal("0.50000"),
            ),
            TOKEN,
        )
        stub.assert_no_pending_responses()

    assert bought.program == "aws_ec2_instance_savings_plan"


async def test_reconciliation_pages_through_savings_plans_and_matches_the_decision_tag():
    savingsplans, ec2 = client("savingsplans"), client("ec2")
    aws = AwsProvider(savingsplans=savingsplans, ec2=ec2)
    someone_elses = plan(savingsPlanId="sp-0", savingsPlanArn="arn:aws:savingsplans::1:savingsplan/sp-0", tags={})

    with Stubber(savingsplans) as sp_stub, Stubber(ec2) as ec2_stub:
        sp_stub.add_response(
            "describe_savings_plans", {"savingsPlans": [someone_elses], "nextToken": "page-2"}, {"maxResults": 100}
        )
        sp_stub.add_response(
            "describe_savings_plans", {"savingsPlans": [plan()]}, {"maxResults": 100, "nextToken": "page-2"}
        )
        found = await aws.find(TOKEN)
        sp_stub.add_response("describe_savings_plans", {"savingsPlans": [someone_elses]}, {"maxResults": 100})
        ec2_stub.add_response(
            "describe_reserved_instances",
            {"ReservedInstances": []},
            {"Filters": [{"Name": f"tag:{TAG}", "Values": ["another-token"]}]},
        )
        missing = await aws.find("another-token")
        sp_stub.assert_no_pending_responses()
        ec2_stub.assert_no_pending_responses()

    assert found is not None and found.commitment_id.endswith("/sp-1")
    assert missing is None


def ri_offering() -> dict:
    return {
        "ReservedInstancesOfferingId": "ri-off-1",
        "InstanceType": "m5.large",
        "Duration": 31536000,
        "FixedPrice": 500.0,
        "UsagePrice": 0.0,
        "CurrencyCode": "USD",
        "OfferingType": "Partial Upfront",
        "RecurringCharges": [{"Amount": 0.03, "Frequency": "Hourly"}],
    }


RI_OFFERINGS_REQUEST = {
    "InstanceType": "m5.large",
    "ProductDescription": "Linux/UNIX",
    "OfferingClass": "standard",
    "OfferingType": "Partial Upfront",
    "InstanceTenancy": "default",
    "MinDuration": 31536000,
    "MaxDuration": 31536000,
    "IncludeMarketplace": False,
    "Filters": [{"Name": "scope", "Values": ["Region"]}],
}
RECENT_RIS = {
    "Filters": [
        {"Name": "instance-type", "Values": ["m5.large"]},
        {"Name": "duration", "Values": ["31536000"]},
        {"Name": "state", "Values": ["payment-pending", "active"]},
    ]
}


async def test_reserved_instances_have_no_client_token_so_they_are_tagged_right_after_buying():
    ec2 = client("ec2")
    aws = AwsProvider(AwsOptions(ri_instance_type="m5.large"), savingsplans=client("savingsplans"), ec2=ec2)

    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_reserved_instances_offerings",
            {"ReservedInstancesOfferings": [ri_offering()]},
            RI_OFFERINGS_REQUEST,
        )
        stub.add_response("describe_reserved_instances", {"ReservedInstances": []}, RECENT_RIS)
        stub.add_response(
            "purchase_reserved_instances_offering",
            {"ReservedInstancesId": "ri-1"},
            {"InstanceCount": 5, "ReservedInstancesOfferingId": "ri-off-1"},
        )
        stub.add_response("create_tags", {}, {"Resources": ["ri-1"], "Tags": [{"Key": TAG, "Value": TOKEN}]})
        bought = await aws.purchase(
            order(program="aws_standard_reserved_instance", commitment_per_hour=Decimal("0.5")), TOKEN
        )
        stub.assert_no_pending_responses()

    # One reservation costs 500 / 8,760 h + 0.03 /h = 0.0871 /h, so 0.50 /h buys 5 of them.
    assert bought.commitment_id == "ri-1"
    assert bought.upfront == Decimal("2500.0")
    assert bought.commitment_per_hour == (Decimal(500) / 8760 + Decimal("0.03")) * 5


async def test_an_untagged_reservation_left_by_a_crash_is_adopted_instead_of_bought_again():
    ec2 = client("ec2")
    aws = AwsProvider(AwsOptions(ri_instance_type="m5.large"), savingsplans=client("savingsplans"), ec2=ec2)
    left_behind = {
        **{k: v for k, v in ri_offering().items() if k not in ("ReservedInstancesOfferingId",)},
        "ReservedInstancesId": "ri-crash",
        "InstanceCount": 5,
        "Start": datetime.now(UTC) - timedelta(minutes=3),
        "End": datetime.now(UTC) + timedelta(days=365),
        "State": "payment-pending",
        "Tags": [],
    }

    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_reserved_instances_offerings",
            {"ReservedInstancesOfferings": [ri_offering()]},
            RI_OFFERINGS_REQUEST,
        )
        stub.add_response("describe_reserved_instances", {"ReservedInstances": [left_behind]}, RECENT_RIS)
        stub.add_response("create_tags", {}, {"Resources": ["ri-crash"], "Tags": [{"Key": TAG, "Value": TOKEN}]})
        adopted = await aws.purchase(order(program="aws_reserved_instance", commitment_per_hour=Decimal("0.5")), TOKEN)
        stub.assert_no_pending_responses()

    assert adopted.commitment_id == "ri-crash"


async def test_aws_errors_split_into_retry_with_the_same_token_and_final_refusals():
    savingsplans = client("savingsplans")
    aws = AwsProvider(savingsplans=savingsplans, ec2=client("ec2"))
    offerings = {"searchResults": [{"offeringId": "off-1"}]}

    with Stubber(savingsplans) as stub:
        stub.add_response("describe_savings_plans_offerings", offerings)
        stub.add_client_error("create_savings_plan", "InternalServerException", "try again", http_status_code=500)
        stub.add_response("describe_savings_plans_offerings", offerings)
        stub.add_client_error(
            "create_savings_plan", "ValidationException", "commitment too large", http_status_code=400
        )
        stub.add_response("describe_savings_plans_offerings", {"searchResults": []})
        with pytest.raises(OutcomeUnknown, match="InternalServerException"):
            await aws.purchase(order(), TOKEN)
        with pytest.raises(Refused, match="commitment too large"):
            await aws.purchase(order(), TOKEN)
        with pytest.raises(Refused, match="offers no Compute Savings Plan"):
            await aws.purchase(order(), TOKEN)


def test_a_dry_run_validates_the_requests_against_the_aws_api_model_without_calling_aws():
    aws = AwsProvider(AwsOptions(ri_instance_type="m5.large"))

    aws.validate(order())
    aws.validate(order(program="aws_standard_reserved_instance"))

    with pytest.raises(Refused, match="at most 5 decimal places"):
        aws.validate(order(commitment_per_hour=Decimal("1.123456")))
    with pytest.raises(Refused, match="FINOPS_AWS_INSTANCE_FAMILY"):
        aws.validate(order(program="aws_ec2_instance_savings_plan"))
    with pytest.raises(Refused, match="AWS cannot buy program 'azure_reservation'"):
        aws.validate(order(program="azure_reservation"))
    with pytest.raises(Refused, match="does not match AWS's API model"):
        aws._validate("savingsplans", "CreateSavingsPlan", {"savingsPlanOfferingId": "x", "commitment": 1.25})
