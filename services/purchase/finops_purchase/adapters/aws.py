"""AWS: Savings Plans through the savingsplans API, EC2 Standard Reserved Instances through the EC2 API.

Savings Plans: DescribeSavingsPlansOfferings finds the offering (plan type, duration, payment option, currency;
region and instance family for an EC2 Instance Savings Plan), CreateSavingsPlan buys it with
`clientToken` = the decision id (AWS's idempotency token) and the tag `finops:decision-id`. DescribeSavingsPlans
has no tag filter, so reconciliation pages through the account's plans and matches the tag in each answer.

Reserved Instances: PurchaseReservedInstancesOffering has NO client token, so it is not idempotent at AWS. The
adapter tags the reservation (CreateTags, `finops:decision-id`) right after buying and reconciles with
DescribeReservedInstances filtered by that tag. A crash between the purchase and the tag leaves an untagged
reservation: before buying, the adapter adopts (tags and returns) an untagged active or payment-pending
reservation of the same instance type, term and count that started in the last day instead of buying again.
That adoption is the only guard AWS allows here; it can mistake a reservation bought by hand in that window.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any, TypeVar

import botocore.exceptions
from botocore.validate import validate_parameters

from finops_purchase.provider import (
    ALL_UPFRONT,
    NO_UPFRONT,
    PARTIAL_UPFRONT,
    UPFRONT_SHARE,
    Commitment,
    IdempotencyMismatch,
    Offering,
    Order,
    OutcomeUnknown,
    Refused,
    Transient,
    add_months,
    term_hours,
)

TAG = "finops:decision-id"
SAVINGS_PLAN_TYPES = {"aws_compute_savings_plan": "Compute", "aws_ec2_instance_savings_plan": "EC2Instance"}
RESERVED_INSTANCE = "aws_standard_reserved_instance"
PAYMENT_OPTIONS = {NO_UPFRONT: "No Upfront", PARTIAL_UPFRONT: "Partial Upfront", ALL_UPFRONT: "All Upfront"}
DURATION_S = {12: 31_536_000, 36: 94_608_000}
_THROTTLING = {"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"}
_MISMATCH = {"IdempotentParameterMismatch", "IdempotentParameterMismatchException"}

T = TypeVar("T")


@functools.cache
def _service_model(service: str) -> Any:
    """AWS's published API model of a service, as botocore ships it (loaded once)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@dataclass(frozen=True)
class AwsOptions:
    region: str = "us-east-1"
    instance_family: str | None = None
    """For an EC2 Instance Savings Plan: the instance family it covers (m5, c6g...)."""
    ri_instance_type: str | None = None
    """For a Reserved Instance: the instance type (m5.large...); the request does not carry one."""
    ri_product_description: str = "Linux/UNIX"
    ri_offering_class: str = "standard"
    ri_tenancy: str = "default"
    endpoint_url: str | None = None
    timeout_s: float = 10.0


def _decimal(value: Any) -> Decimal:
    # botocore hands EC2 prices over as floats; their shortest text is the price AWS sent.
    return Decimal(str(value))


def _at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _commit_text(amount: Decimal) -> str:
    if amount.as_tuple().exponent < -5:  # type: ignore[operator]
        raise Refused(f"a Savings Plan commitment has at most 5 decimal places; {amount} has more")
    if not Decimal("0.001") <= amount <= Decimal(1_000_000):
        raise Refused(f"a Savings Plan commitment is between 0.001 and 1,000,000 per hour; got {amount}")
    return format(amount, "f")


def savings_plan_upfront(order: Order) -> Decimal:
    """Partial Upfront pays half the total value, as a whole number (AWS takes 50 to 99 percent, whole units)."""
    total = order.commitment_per_hour * term_hours(order.term_months)
    if order.payment == PARTIAL_UPFRONT:
        return (total * UPFRONT_SHARE[PARTIAL_UPFRONT]).quantize(Decimal(1), rounding=ROUND_CEILING)
    return (total * UPFRONT_SHARE[order.payment]).quantize(Decimal("0.01"))


class AwsProvider:
    name = "aws"
    spends_money = True

    def __init__(self, options: AwsOptions | None = None, *, savingsplans: Any = None, ec2: Any = None) -> None:
        self.options = options or AwsOptions()
        self._savingsplans = savingsplans
        self._ec2 = ec2

    def _client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=self.options.timeout_s,
            read_timeout=self.options.timeout_s,
            retries={"mode": "standard", "max_attempts": 3},
        )
        # Savings Plans is a global API served from us-east-1.
        region = "us-east-1" if service == "savingsplans" else self.options.region
        return boto3.client(service, region_name=region, endpoint_url=self.options.endpoint_url, config=config)

    @property
    def savingsplans(self) -> Any:
        if self._savingsplans is None:
            self._savingsplans = self._client("savingsplans")
        return self._savingsplans

    @property
    def ec2(self) -> Any:
        if self._ec2 is None:
            self._ec2 = self._client("ec2")
        return self._ec2

    # ---- requests, built and checked against AWS's published API models without calling AWS

    def validate(self, order: Order) -> None:
        if order.program in SAVINGS_PLAN_TYPES:
            self._check(order)
            params = self.create_savings_plan_request(
                order, order.decision_id, offering_id="offering-looked-up-at-purchase"
            )
            self._validate("savingsplans", "CreateSavingsPlan", params)
            self._validate("savingsplans", "DescribeSavingsPlansOfferings", self.offerings_request(order))
        elif order.program == RESERVED_INSTANCE:
            self._check(order)
            self._validate("ec2", "DescribeReservedInstancesOfferings", self.ri_offerings_request(order))
            self._validate(
                "ec2",
                "PurchaseReservedInstancesOffering",
                {"InstanceCount": 1, "ReservedInstancesOfferingId": "offering-looked-up-at-purchase"},
            )
        else:
            raise Refused(
                f"AWS cannot buy program {order.program!r}; use one of "
                f"{', '.join([*SAVINGS_PLAN_TYPES, RESERVED_INSTANCE])}"
            )

    def _check(self, order: Order) -> None:
        if order.term_months not in DURATION_S:
            raise Refused(f"AWS sells 12- or 36-month terms, not {order.term_months}")
        if order.payment not in PAYMENT_OPTIONS:
            raise Refused(
                f"payment {order.payment!r} is not an AWS payment option; use one of {', '.join(PAYMENT_OPTIONS)}"
            )
        if order.program == "aws_ec2_instance_savings_plan" and not self.options.instance_family:
            raise Refused("an EC2 Instance Savings Plan needs an instance family: set FINOPS_AWS_INSTANCE_FAMILY")
        if order.program == RESERVED_INSTANCE and not self.options.ri_instance_type:
            raise Refused("a Reserved Instance needs an instance type: set FINOPS_AWS_RI_INSTANCE_TYPE")
        if order.program in SAVINGS_PLAN_TYPES:
            _commit_text(order.commitment_per_hour)

    def _validate(self, service: str, operation: str, params: dict[str, Any]) -> None:
        model = _service_model(service).operation_model(operation)
        try:
            validate_parameters(params, model.input_shape)
        except botocore.exceptions.ParamValidationError as exc:
            raise Refused(f"{operation} request does not match AWS's API model: {exc}") from exc

    def offerings_request(self, order: Order) -> dict[str, Any]:
        params: dict[str, Any] = {
            "planTypes": [SAVINGS_PLAN_TYPES[order.program]],
            "durations": [DURATION_S[order.term_months]],
            "paymentOptions": [PAYMENT_OPTIONS[order.payment]],
            "currencies": [order.currency],
        }
        if order.program == "aws_ec2_instance_savings_plan":
            params["filters"] = [
                {"name": "region", "values": [self.options.region]},
                {"name": "instanceFamily", "values": [str(self.options.instance_family)]},
            ]
        return params

    def create_savings_plan_request(self, order: Order, client_token: str, *, offering_id: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "savingsPlanOfferingId": offering_id,
            "commitment": _commit_text(order.commitment_per_hour),
            "clientToken": client_token,
            "tags": {TAG: client_token},
        }
        if order.payment == PARTIAL_UPFRONT:
            params["upfrontPaymentAmount"] = format(savings_plan_upfront(order), "f")
        if order.start > datetime.now(UTC):
            params["purchaseTime"] = order.start  # a queued plan starts then
        return params

    def ri_offerings_request(self, order: Order) -> dict[str, Any]:
        o = self.options
        return {
            "InstanceType": str(o.ri_instance_type),
            "ProductDescription": o.ri_product_description,
            "OfferingClass": o.ri_offering_class,
            "OfferingType": PAYMENT_OPTIONS[order.payment],
            "InstanceTenancy": o.ri_tenancy,
            "MinDuration": DURATION_S[order.term_months],
            "MaxDuration": DURATION_S[order.term_months],
            "IncludeMarketplace": False,
            "Filters": [{"Name": "scope", "Values": ["Region"]}],
        }

    # ---- calls

    async def _run(self, call: Callable[..., T], **params: Any) -> T:
        try:
            return await asyncio.to_thread(call, **params)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", ""), error.get("Message", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _MISMATCH:
                raise IdempotencyMismatch(f"AWS {code}: {message}") from exc
            if status >= 500 or code in _THROTTLING:
                raise OutcomeUnknown(f"AWS {code or status}: {message}") from exc
            raise Refused(f"AWS refused ({code}): {message}") from exc
        except (
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.EndpointConnectionError,
        ) as exc:
            raise OutcomeUnknown(f"AWS did not answer: {exc}") from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise Transient("no AWS credentials: configure them (AWS_* variables, a profile or a role)") from exc

    async def purchase(self, order: Order, client_token: str) -> Commitment:
        self.validate(order)
        if order.program == RESERVED_INSTANCE:
            return await self._buy_reserved_instances(order, client_token)
        return await self._buy_savings_plan(order, client_token)

    async def _buy_savings_plan(self, order: Order, client_token: str) -> Commitment:
        found = await self._run(self.savingsplans.describe_savings_plans_offerings, **self.offerings_request(order))
        offers = found.get("searchResults", [])
        if not offers:
            raise Refused(
                f"AWS offers no {SAVINGS_PLAN_TYPES[order.program]} Savings Plan for {order.term_months} months "
                f"{PAYMENT_OPTIONS[order.payment]} in {order.currency}"
            )
        params = self.create_savings_plan_request(order, client_token, offering_id=offers[0]["offeringId"])
        created = await self._run(self.savingsplans.create_savings_plan, **params)
        plan_id = created["savingsPlanId"]
        described = await self._run(self.savingsplans.describe_savings_plans, savingsPlanIds=[plan_id])
        plans = described.get("savingsPlans", [])
        if not plans:
            raise OutcomeUnknown(f"AWS created Savings Plan {plan_id} but does not describe it yet")
        return self._plan_commitment(plans[0])

    def _plan_commitment(self, plan: dict[str, Any]) -> Commitment:
        program = {v: k for k, v in SAVINGS_PLAN_TYPES.items()}.get(plan.get("savingsPlanType", ""), "aws_savings_plan")
        seconds = int(plan.get("termDurationInSeconds", DURATION_S[12]))
        payment = {v: k for k, v in PAYMENT_OPTIONS.items()}.get(plan.get("paymentOption", ""), NO_UPFRONT)
        return Commitment(
            commitment_id=plan.get("savingsPlanArn") or plan["savingsPlanId"],
            program=program,
            term_months=round(seconds / DURATION_S[12] * 12),
            payment=payment,
            start=_at(plan["start"]),
            end=_at(plan["end"]),
            commitment_per_hour=Decimal(plan["commitment"]),
            currency=plan.get("currency", "USD"),
            upfront=Decimal(plan.get("upfrontPaymentAmount") or "0"),
        )

    async def _buy_reserved_instances(self, order: Order, client_token: str) -> Commitment:
        seconds = DURATION_S[order.term_months]
        found = await self._run(self.ec2.describe_reserved_instances_offerings, **self.ri_offerings_request(order))
        offers = [
            o
            for o in found.get("ReservedInstancesOfferings", [])
            if int(o.get("Duration", 0)) == seconds and o.get("CurrencyCode", "USD") == order.currency
        ]
        if not offers:
            raise Refused(
                f"AWS offers no {self.options.ri_instance_type} {PAYMENT_OPTIONS[order.payment]} reservation "
                f"for {order.term_months} months in {order.currency}"
            )
        offer = offers[0]
        hourly = self._hourly(offer, order.term_months)
        count = math.floor(order.commitment_per_hour / hourly)
        if count < 1:
            raise Refused(
                f"{order.commitment_per_hour} {order.currency}/h buys no {self.options.ri_instance_type} "
                f"reservation (one costs {hourly}/h)"
            )
        adopted = await self._adopt_untagged(order, client_token, count)
        if adopted is not None:
            return adopted
        params: dict[str, Any] = {
            "InstanceCount": count,
            "ReservedInstancesOfferingId": offer["ReservedInstancesOfferingId"],
        }
        if order.start > datetime.now(UTC):
            params["PurchaseTime"] = order.start
        bought = await self._run(self.ec2.purchase_reserved_instances_offering, **params)
        ri_id = bought["ReservedInstancesId"]
        try:
            await self._run(self.ec2.create_tags, Resources=[ri_id], Tags=[{"Key": TAG, "Value": client_token}])
        except Refused as exc:
            raise OutcomeUnknown(f"bought reservation {ri_id} but could not tag it: {exc}") from exc
        start = max(order.start, datetime.now(UTC))
        return Commitment(
            commitment_id=ri_id,
            program=RESERVED_INSTANCE,
            term_months=order.term_months,
            payment=order.payment,
            start=start,
            end=add_months(start, order.term_months),
            commitment_per_hour=hourly * count,
            currency=order.currency,
            upfront=_decimal(offer.get("FixedPrice", 0)) * count,
        )

    @staticmethod
    def _hourly(offer: dict[str, Any], term_months: int) -> Decimal:
        """Effective hourly cost of one reservation: upfront spread over the term, plus the hourly charges."""
        recurring = sum(
            (_decimal(c["Amount"]) for c in offer.get("RecurringCharges", []) if c.get("Frequency") == "Hourly"),
            Decimal(0),
        )
        return (
            _decimal(offer.get("FixedPrice", 0)) / term_hours(term_months)
            + _decimal(offer.get("UsagePrice", 0))
            + recurring
        )

    async def _adopt_untagged(self, order: Order, client_token: str, count: int) -> Commitment | None:
        found = await self._run(
            self.ec2.describe_reserved_instances,
            Filters=[
                {"Name": "instance-type", "Values": [str(self.options.ri_instance_type)]},
                {"Name": "duration", "Values": [str(DURATION_S[order.term_months])]},
                {"Name": "state", "Values": ["payment-pending", "active"]},
            ],
        )
        since = datetime.now(UTC) - timedelta(days=1)
        for ri in found.get("ReservedInstances", []):
            tagged = any(t.get("Key") == TAG for t in ri.get("Tags", []))
            if not tagged and int(ri.get("InstanceCount", 0)) == count and _at(ri["Start"]) >= since:
                await self._run(
                    self.ec2.create_tags,
                    Resources=[ri["ReservedInstancesId"]],
                    Tags=[{"Key": TAG, "Value": client_token}],
                )
                return self._ri_commitment(ri)
        return None

    def _ri_commitment(self, ri: dict[str, Any]) -> Commitment:
        count = int(ri.get("InstanceCount", 1))
        months = round(int(ri.get("Duration", DURATION_S[12])) / DURATION_S[12] * 12)
        payment = {v: k for k, v in PAYMENT_OPTIONS.items()}.get(ri.get("OfferingType", ""), NO_UPFRONT)
        return Commitment(
            commitment_id=ri["ReservedInstancesId"],
            program=RESERVED_INSTANCE,
            term_months=months,
            payment=payment,
            start=_at(ri["Start"]),
            end=_at(ri["End"]),
            commitment_per_hour=self._hourly(ri, months) * count,
            currency=ri.get("CurrencyCode", "USD"),
            upfront=_decimal(ri.get("FixedPrice", 0)) * count,
        )

    async def find(self, client_token: str) -> Commitment | None:
        next_token: str | None = None
        while True:
            params: dict[str, Any] = {"maxResults": 100}
            if next_token:
                params["nextToken"] = next_token
            page = await self._run(self.savingsplans.describe_savings_plans, **params)
            for plan in page.get("savingsPlans", []):
                if (plan.get("tags") or {}).get(TAG) == client_token:
                    return self._plan_commitment(plan)
            next_token = page.get("nextToken")
            if not next_token:
                break
        tagged = await self._run(
            self.ec2.describe_reserved_instances, Filters=[{"Name": f"tag:{TAG}", "Values": [client_token]}]
        )
        reservations = tagged.get("ReservedInstances", [])
        return self._ri_commitment(reservations[0]) if reservations else None

    async def offerings(self) -> list[Offering]:
        """What this adapter can buy (from the API models; live prices come from AWS at purchase)."""
        names = {
            "aws_compute_savings_plan": "AWS Compute Savings Plan (CreateSavingsPlan)",
            "aws_ec2_instance_savings_plan": "AWS EC2 Instance Savings Plan (CreateSavingsPlan)",
            RESERVED_INSTANCE: "AWS EC2 Standard Reserved Instance (PurchaseReservedInstancesOffering)",
        }
        return [
            Offering(self.name, program, term, payment, UPFRONT_SHARE[payment], description)
            for program, description in names.items()
            for term in DURATION_S
            for payment in PAYMENT_OPTIONS
        ]
