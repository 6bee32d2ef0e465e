"""What the sandbox sells: each provider program the optimizer plans for, in 1- and 3-year terms, with the payment
options that provider really offers (AWS: no, partial or all upfront; Azure: monthly or upfront; GCP: monthly).
Discounts are representative sandbox figures, not quotes."""

from __future__ import annotations

from decimal import Decimal

from finops_purchase.provider import (
    ALL_UPFRONT,
    NO_UPFRONT,
    PARTIAL_UPFRONT,
    TERMS,
    UPFRONT_SHARE,
    Offering,
    Refused,
    canonical_program,
)

# program -> (description, {payment: (1-year discount, 3-year discount)})
_PROGRAMS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "aws_compute_savings_plan": (
        "AWS Compute Savings Plan: an hourly spend commitment on EC2, Fargate and Lambda in any region",
        {NO_UPFRONT: ("0.28", "0.50"), PARTIAL_UPFRONT: ("0.30", "0.53"), ALL_UPFRONT: ("0.32", "0.55")},
    ),
    "aws_ec2_instance_savings_plan": (
        "AWS EC2 Instance Savings Plan: an hourly spend commitment on one instance family in one region",
        {NO_UPFRONT: ("0.36", "0.56"), PARTIAL_UPFRONT: ("0.38", "0.59"), ALL_UPFRONT: ("0.40", "0.61")},
    ),
    "aws_standard_reserved_instance": (
        "AWS EC2 Standard Reserved Instance: instances of one type in one region",
        {NO_UPFRONT: ("0.35", "0.55"), PARTIAL_UPFRONT: ("0.38", "0.59"), ALL_UPFRONT: ("0.40", "0.62")},
    ),
    "azure_reservation": (
        "Azure Reservation: a quantity of one VM size in one region",
        {NO_UPFRONT: ("0.40", "0.60"), ALL_UPFRONT: ("0.40", "0.60")},
    ),
    "azure_savings_plan": (
        "Azure Savings Plan for compute: an hourly spend commitment",
        {NO_UPFRONT: ("0.28", "0.50"), ALL_UPFRONT: ("0.28", "0.50")},
    ),
    "gcp_flexible_cud": (
        "Google Cloud flexible (spend-based) committed use discount, billed monthly",
        {NO_UPFRONT: ("0.28", "0.46")},
    ),
    "gcp_resource_cud": (
        "Google Cloud resource-based committed use discount (vCPU and memory), billed monthly",
        {NO_UPFRONT: ("0.37", "0.55")},
    ),
}


def offerings() -> list[Offering]:
    return [
        Offering(
            provider="sandbox",
            program=program,
            term_months=term,
            payment=payment,
            upfront_share=UPFRONT_SHARE[payment],
            description=description,
            discount=Decimal(discounts[TERMS.index(term)]),
        )
        for program, (description, payments) in _PROGRAMS.items()
        for payment, discounts in payments.items()
        for term in TERMS
    ]


def check(program: str, term_months: int, payment: str) -> str:
    """The program's canonical name when the sandbox sells it in this term and payment; Refused otherwise."""
    name = canonical_program(program)
    if name not in _PROGRAMS:
        raise Refused(f"program {program!r} is not sold; use one of {', '.join(_PROGRAMS)}")
    if term_months not in TERMS:
        raise Refused(f"term_months {term_months} is not sold; use 12 or 36")
    payments = _PROGRAMS[name][1]
    if payment not in payments:
        raise Refused(f"{name} is not sold with payment {payment!r}; use one of {', '.join(payments)}")
    return name
