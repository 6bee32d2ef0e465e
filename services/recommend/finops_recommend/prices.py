"""Commitment price table: the discount off on-demand that each provider gives per program, term and payment option.

The discounts shipped here are defaults for planning, not quotes. A provider's real discount depends on the
instance family, region, operating system and date, so each row says where its number comes from and for what
representative product it holds; a deployment replaces rows with its own negotiated or current rates through
`PriceTable.updated` or `PriceTable.from_rows` (for instance from a JSON file kept by the practitioner).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

NO_UPFRONT = "no_upfront"
PARTIAL_UPFRONT = "partial_upfront"
ALL_UPFRONT = "all_upfront"


class Program(StrEnum):
    """A commitment program: what a commitment of that kind can cover (its pool)."""

    AWS_COMPUTE_SAVINGS_PLAN = "aws_compute_savings_plan"
    AWS_EC2_INSTANCE_SAVINGS_PLAN = "aws_ec2_instance_savings_plan"
    AWS_STANDARD_RESERVED_INSTANCE = "aws_standard_reserved_instance"
    AZURE_SAVINGS_PLAN = "azure_savings_plan"
    AZURE_RESERVATION = "azure_reservation"
    GCP_FLEXIBLE_CUD = "gcp_flexible_cud"
    GCP_RESOURCE_CUD = "gcp_resource_cud"


@dataclass(frozen=True)
class Instrument:
    """A commitment product as the optimizer sees it: a term and a discount off the on-demand rate."""

    name: str
    term_months: int
    discount: float

    def __post_init__(self) -> None:
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"instrument {self.name}: discount must be a fraction in (0, 1), got {self.discount}")
        if self.term_months <= 0:
            raise ValueError(f"instrument {self.name}: term must be a positive number of months")


@dataclass(frozen=True)
class Rate:
    """One row of the price table, with the provenance of its number."""

    program: Program
    term_months: int
    payment: str
    discount: Decimal
    source: str
    note: str = ""

    @property
    def key(self) -> tuple[Program, int, str]:
        return (self.program, self.term_months, self.payment)

    def instrument(self) -> Instrument:
        years = self.term_months // 12
        return Instrument(name=f"{years}y", term_months=self.term_months, discount=float(self.discount))


_AWS_SP = "https://aws.amazon.com/savingsplans/compute-pricing/"
_AWS_EC2 = "https://aws.amazon.com/ec2/pricing/reserved-instances/pricing/"
_AZURE_SP = "https://azure.microsoft.com/pricing/offers/savings-plan-compute/"
_AZURE_RI = "https://azure.microsoft.com/pricing/reserved-vm-instances/"
_GCP_CUD = "https://cloud.google.com/compute/docs/instances/committed-use-discounts-overview"
_AWS_NOTE = "m5.large Linux, us-east-1, on-demand 0.096 USD/h; rounded; recheck on the page before buying"
_GCP_FLEX_NOTE = "spend-based (flexible) CUD, billed monthly"
_GCP_RESOURCE_NOTE = "general-purpose machine types, billed monthly"
_AZURE_NOTE = "D-series v5 Linux, East US, pay-as-you-go; monthly payment costs the same as upfront on Azure"

DEFAULT_RATES: tuple[Rate, ...] = (
    Rate(Program.AWS_COMPUTE_SAVINGS_PLAN, 12, NO_UPFRONT, Decimal("0.28"), _AWS_SP, _AWS_NOTE),
    Rate(Program.AWS_COMPUTE_SAVINGS_PLAN, 36, NO_UPFRONT, Decimal("0.50"), _AWS_SP, _AWS_NOTE),
    Rate(Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, 12, NO_UPFRONT, Decimal("0.36"), _AWS_SP, _AWS_NOTE),
    Rate(Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, 36, NO_UPFRONT, Decimal("0.56"), _AWS_SP, _AWS_NOTE),
    Rate(Program.AWS_STANDARD_RESERVED_INSTANCE, 12, NO_UPFRONT, Decimal("0.35"), _AWS_EC2, _AWS_NOTE),
    Rate(Program.AWS_STANDARD_RESERVED_INSTANCE, 36, NO_UPFRONT, Decimal("0.55"), _AWS_EC2, _AWS_NOTE),
    Rate(Program.AZURE_SAVINGS_PLAN, 12, NO_UPFRONT, Decimal("0.28"), _AZURE_SP, _AZURE_NOTE),
    Rate(Program.AZURE_SAVINGS_PLAN, 36, NO_UPFRONT, Decimal("0.50"), _AZURE_SP, _AZURE_NOTE),
    Rate(Program.AZURE_RESERVATION, 12, NO_UPFRONT, Decimal("0.40"), _AZURE_RI, _AZURE_NOTE),
    Rate(Program.AZURE_RESERVATION, 36, NO_UPFRONT, Decimal("0.60"), _AZURE_RI, _AZURE_NOTE),
    Rate(Program.GCP_FLEXIBLE_CUD, 12, NO_UPFRONT, Decimal("0.28"), _GCP_CUD, _GCP_FLEX_NOTE),
    Rate(Program.GCP_FLEXIBLE_CUD, 36, NO_UPFRONT, Decimal("0.46"), _GCP_CUD, _GCP_FLEX_NOTE),
    Rate(Program.GCP_RESOURCE_CUD, 12, NO_UPFRONT, Decimal("0.37"), _GCP_CUD, _GCP_RESOURCE_NOTE),
    Rate(Program.GCP_RESOURCE_CUD, 36, NO_UPFRONT, Decimal("0.55"), _GCP_CUD, _GCP_RESOURCE_NOTE),
)
"""Representative no-upfront discounts. Each `source` is the provider's public pricing or documentation page the
number was read from; the `note` names the product it was read for. Rounded to the percent."""


class UnknownRate(LookupError):
    """The price table has no rate for a program, term and payment option; add one with `PriceTable.updated`."""


@dataclass(frozen=True)
class PriceTable:
    """An updatable set of discount rates, at most one per (program, term, payment)."""

    rates: tuple[Rate, ...] = DEFAULT_RATES

    def __post_init__(self) -> None:
        keys = [r.key for r in self.rates]
        if len(keys) != len(set(keys)):
            raise ValueError("price table has two rates for the same program, term and payment option")

    def rate(self, program: Program | str, term_months: int, payment: str = NO_UPFRONT) -> Rate:
        for r in self.rates:
            if r.key == (Program(program), term_months, payment):
                return r
        raise UnknownRate(f"no {payment} rate for {program} over {term_months} months: add it to the price table")

    def instruments(self, program: Program | str, payment: str = NO_UPFRONT) -> tuple[Instrument, ...]:
        """Every term the table prices for a program and payment option, shortest first."""
        found = sorted(
            (r for r in self.rates if r.program == Program(program) and r.payment == payment),
            key=lambda r: r.term_months,
        )
        if not found:
            raise UnknownRate(f"no {payment} rates for {program}: add them to the price table")
        return tuple(r.instrument() for r in found)

    def updated(self, *rates: Rate) -> PriceTable:
        """A copy in which each given rate replaces the row with the same program, term and payment."""
        new = {r.key: r for r in rates}
        kept = tuple(new.pop(r.key, r) for r in self.rates)
        return replace(self, rates=kept + tuple(new.values()))

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> PriceTable:
        """A table from plain rows (program, term_months, payment, discount, source, note), as kept in JSON."""
        rates = tuple(
            Rate(
                program=Program(str(row["program"])),
                term_months=int(str(row["term_months"])),
                payment=str(row.get("payment", NO_UPFRONT)),
                discount=Decimal(str(row["discount"])),
                source=str(row["source"]),
                note=str(row.get("note", "")),
            )
            for row in rows
        )
        return cls(rates=rates)

    def to_rows(self) -> list[dict[str, object]]:
        return [
            {
                "program": r.program.value,
                "term_months": r.term_months,
                "payment": r.payment,
                "discount": str(r.discount),
                "source": r.source,
                "note": r.note,
            }
            for r in self.rates
        ]
