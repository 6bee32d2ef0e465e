"""Commitment price table: the discount off on-demand that each provider gives per program, term and payment option.

The discounts shipped here are defaults for planning, not quotes. A provider's real discount depends on the
instance family, region, operating system and date, so each row says where its number comes from and for what
representative product it holds; a deployment replaces rows with its own negotiated or current rates through
`PriceTable.updated` or `PriceTable.from_rows` (for instance from a JSON file kept by the practitioner).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path

NO_UPFRONT = "no_upfront"
PARTIAL_UPFRONT = "partial_upfront"
ALL_UPFRONT = "all_upfront"
UPFRONT_SHARE = {NO_UPFRONT: 0.0, PARTIAL_UPFRONT: 0.5, ALL_UPFRONT: 1.0}
"""The share of a commitment's total price paid at purchase, per payment option (AWS's definitions); the rest is
billed monthly over the term."""


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
    """What the optimizer weighs: the discount off on-demand, net of the cost of capital when part of the price is
    paid upfront (see `effective_discount`)."""
    payment: str = NO_UPFRONT
    price_discount: Decimal | None = None
    """The price table's discount on the commitment's rate, when it differs from `discount` (an upfront payment):
    the hourly commitment is (1 - price_discount) x the usage it covers."""

    def __post_init__(self) -> None:
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"instrument {self.name}: discount must be a fraction in (0, 1), got {self.discount}")
        if self.term_months <= 0:
            raise ValueError(f"instrument {self.name}: term must be a positive number of months")
        if self.payment not in UPFRONT_SHARE:
            raise ValueError(f"instrument {self.name}: payment must be one of {', '.join(UPFRONT_SHARE)}")

    @property
    def rate_discount(self) -> Decimal:
        """The discount the hourly commitment is priced at, exactly (the float's shortest text when no table rate
        is attached)."""
        return Decimal(repr(self.discount)) if self.price_discount is None else self.price_discount


def allowed_payments(payments: Iterable[str]) -> list[str]:
    """The payment options a plan may choose: those finance allows, and no upfront always."""
    return sorted({NO_UPFRONT, *payments})


def effective_discount(discount: Decimal, term_months: int, payment: str, cost_of_capital: Decimal) -> Decimal:
    """The discount of a commitment paid `payment`, as if it were paid month by month like on-demand usage: the
    upfront share is paid at the start of the term, and money has a yearly `cost_of_capital`. With a share f of a
    price P upfront and the rest in T equal monthly payments, the monthly payment of equal present value is
    P/T x (f x T/A + 1 - f), where A is the present value of T payments of 1 made at the start of each month.
    So the price factor (1 - d) grows by (f x T/A + 1 - f); with no upfront, or money that costs nothing, the
    discount is the rate's own.
    """
    share = Decimal(repr(UPFRONT_SHARE[payment]))
    if share == 0 or cost_of_capital == 0:
        return discount
    v = (1 + cost_of_capital) ** (Decimal(-1) / 12)
    annuity = sum((v**m for m in range(term_months)), Decimal(0))
    factor = share * term_months / annuity + (1 - share)
    return 1 - (1 - discount) * factor


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

    def instrument(self, cost_of_capital: Decimal = Decimal(0)) -> Instrument:
        """The rate as the optimizer weighs it (a float, for the LP); named `1y`, `3y` when paid monthly,
        `1y all_upfront`... else."""
        years = self.term_months // 12
        name = f"{years}y" if self.payment == NO_UPFRONT else f"{years}y {self.payment}"
        weighed = effective_discount(self.discount, self.term_months, self.payment, cost_of_capital)
        return Instrument(
            name=name, term_months=self.term_months, discount=float(weighed), payment=self.payment,
            price_discount=self.discount if weighed != self.discount else None,
        )  # fmt: skip


_AWS_SP = "https://aws.amazon.com/savingsplans/compute-pricing/"
_AWS_EC2 = "https://aws.amazon.com/ec2/pricing/reserved-instances/pricing/"
_AZURE_SP = "https://azure.microsoft.com/pricing/offers/savings-plan-compute/"
_AZURE_RI = "https://azure.microsoft.com/pricing/reserved-vm-instances/"
_GCP_CUD = "https://cloud.google.com/compute/docs/instances/committed-use-discounts-overview"
_AWS_NOTE = "m5.large Linux, us-east-1, on-demand 0.096 USD/h; rounded; recheck on the page before buying"
_GCP_FLEX_NOTE = "spend-based (flexible) CUD, billed monthly"
_GCP_RESOURCE_NOTE = "general-purpose machine types, billed monthly"
_AZURE_NOTE = "D-series v5 Linux, East US, pay-as-you-go; monthly payment costs the same as upfront on Azure"

_AWS_UPFRONT_RATIOS: dict[tuple[Program, int, str], tuple[int, int]] = {
    (Program.AWS_COMPUTE_SAVINGS_PLAN, 12, PARTIAL_UPFRONT): (352, 361),
    (Program.AWS_COMPUTE_SAVINGS_PLAN, 12, ALL_UPFRONT): (349, 361),
    (Program.AWS_COMPUTE_SAVINGS_PLAN, 36, PARTIAL_UPFRONT): (301, 310),
    (Program.AWS_COMPUTE_SAVINGS_PLAN, 36, ALL_UPFRONT): (299, 310),
    (Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, 12, PARTIAL_UPFRONT): (312, 319),
    (Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, 12, ALL_UPFRONT): (310, 319),
    (Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, 36, PARTIAL_UPFRONT): (270, 276),
    (Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, 36, ALL_UPFRONT): (264, 276),
    # Reserved Instances: (upfront / hours in the term + hourly) against the no-upfront hourly, in 1/1000 USD
    (Program.AWS_STANDARD_RESERVED_INSTANCE, 12, PARTIAL_UPFRONT): (312164, 319000),  # 1368/8760 + 0.156
    (Program.AWS_STANDARD_RESERVED_INSTANCE, 12, ALL_UPFRONT): (309817, 319000),  # 2714/8760
    (Program.AWS_STANDARD_RESERVED_INSTANCE, 36, PARTIAL_UPFRONT): (269817, 276000),  # 3543/26280 + 0.135
    (Program.AWS_STANDARD_RESERVED_INSTANCE, 36, ALL_UPFRONT): (264460, 276000),  # 6950/26280
}
"""Price of each AWS upfront option against the same term paid monthly, from the AWS Pricing Calculator's rates
for one product (c5.xlarge, Windows, Asia Pacific (Tokyo): Compute SP 1y 0.361/0.352/0.349 USD/h no/partial/all
upfront, 3y 0.310/0.301/0.299; EC2 Instance SP 1y 0.319/0.312/0.310, 3y 0.276/0.270/0.264; standard RIs as in the
comments). The upfront options' discounts below apply these ratios to the no-upfront discount of each row."""


def _upfront(rate: Rate, payment: str) -> Rate:
    num, den = _AWS_UPFRONT_RATIOS[(rate.program, rate.term_months, payment)]
    discount = (1 - (1 - rate.discount) * Decimal(num) / Decimal(den)).quantize(Decimal("0.001"))
    note = f"{rate.note}; the no-upfront discount with the {payment} price ratio {num}/{den} (AWS Pricing Calculator)"
    return Rate(rate.program, rate.term_months, payment, discount, rate.source, note)


_AWS_NO_UPFRONT: tuple[Rate, ...] = (
    Rate(Program.AWS_COMPUTE_SAVINGS_PLAN, 12, NO_UPFRONT, Decimal("0.28"), _AWS_SP, _AWS_NOTE),
    Rate(Program.AWS_COMPUTE_SAVINGS_PLAN, 36, NO_UPFRONT, Decimal("0.50"), _AWS_SP, _AWS_NOTE),
    Rate(Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, 12, NO_UPFRONT, Decimal("0.36"), _AWS_SP, _AWS_NOTE),
    Rate(Program.AWS_EC2_INSTANCE_SAVINGS_PLAN, 36, NO_UPFRONT, Decimal("0.56"), _AWS_SP, _AWS_NOTE),
    Rate(Program.AWS_STANDARD_RESERVED_INSTANCE, 12, NO_UPFRONT, Decimal("0.35"), _AWS_EC2, _AWS_NOTE),
    Rate(Program.AWS_STANDARD_RESERVED_INSTANCE, 36, NO_UPFRONT, Decimal("0.55"), _AWS_EC2, _AWS_NOTE),
)

DEFAULT_RATES: tuple[Rate, ...] = (
    *_AWS_NO_UPFRONT,
    *(_upfront(r, p) for r in _AWS_NO_UPFRONT for p in (PARTIAL_UPFRONT, ALL_UPFRONT)),
    Rate(Program.AZURE_SAVINGS_PLAN, 12, NO_UPFRONT, Decimal("0.28"), _AZURE_SP, _AZURE_NOTE),
    Rate(Program.AZURE_SAVINGS_PLAN, 36, NO_UPFRONT, Decimal("0.50"), _AZURE_SP, _AZURE_NOTE),
    Rate(Program.AZURE_RESERVATION, 12, NO_UPFRONT, Decimal("0.40"), _AZURE_RI, _AZURE_NOTE),
    Rate(Program.AZURE_RESERVATION, 36, NO_UPFRONT, Decimal("0.60"), _AZURE_RI, _AZURE_NOTE),
    Rate(Program.GCP_FLEXIBLE_CUD, 12, NO_UPFRONT, Decimal("0.28"), _GCP_CUD, _GCP_FLEX_NOTE),
    Rate(Program.GCP_FLEXIBLE_CUD, 36, NO_UPFRONT, Decimal("0.46"), _GCP_CUD, _GCP_FLEX_NOTE),
    Rate(Program.GCP_RESOURCE_CUD, 12, NO_UPFRONT, Decimal("0.37"), _GCP_CUD, _GCP_RESOURCE_NOTE),
    Rate(Program.GCP_RESOURCE_CUD, 36, NO_UPFRONT, Decimal("0.55"), _GCP_CUD, _GCP_RESOURCE_NOTE),
)
"""Representative discounts: no upfront for every program, rounded to the percent, and AWS's partial and all
upfront options derived from them (see `_AWS_UPFRONT_RATIOS`). Azure bills a reservation or savings plan paid
monthly at the upfront price, and GCP bills committed use discounts monthly: no upfront option to weigh there.
Each `source` is the provider's public pricing or documentation page the number was read from; the `note` names
the product it was read for."""


class PriceTableError(ValueError):
    """A price table file that cannot be used; the message names the file, row and column, and what to write."""


_COLUMNS = ("program", "term_months", "payment", "discount", "source", "note")


def _row_rate(path: Path, number: int, row: Mapping[str, object]) -> Rate:
    where = f"{path.name} row {number}"
    unknown = sorted(set(row) - set(_COLUMNS))
    if unknown:
        raise PriceTableError(f"{where}: unknown column {', '.join(unknown)}; the columns are {', '.join(_COLUMNS)}")

    def text(column: str, default: str | None = None) -> str:
        value = row.get(column)
        if value is None or str(value).strip() == "":
            if default is not None:
                return default
            raise PriceTableError(f"{where}, column {column}: missing; every row needs {column}")
        return str(value).strip()

    program = text("program")
    if program not in {p.value for p in Program}:
        raise PriceTableError(
            f"{where}, column program: {program!r} is not a program; use one of {', '.join(p.value for p in Program)}"
        )
    term = text("term_months")
    if not term.isdigit() or int(term) <= 0:
        raise PriceTableError(f"{where}, column term_months: {term!r} is not a number of months such as 12 or 36")
    payment = text("payment", NO_UPFRONT)
    if payment not in UPFRONT_SHARE:
        raise PriceTableError(f"{where}, column payment: {payment!r}; use one of {', '.join(UPFRONT_SHARE)}")
    raw = text("discount")
    try:
        discount = Decimal(raw)
    except InvalidOperation:
        discount = Decimal("NaN")
    if not discount.is_finite() or not Decimal(0) < discount < Decimal(1):
        raise PriceTableError(
            f"{where}, column discount: {raw!r} is not a fraction between 0 and 1; write 28% off as 0.28"
        )
    return Rate(Program(program), int(term), payment, discount, text("source"), text("note", ""))


def load(path: Path, base: PriceTable | None = None) -> PriceTable:
    """`base` (the defaults) with the rows of a CSV or JSON file (a list of objects) replacing the rows of the same
    program, term and payment and adding new ones: the practitioner's negotiated or current rates. Every row is
    checked before any is used; a bad one raises PriceTableError naming the file, row and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PriceTableError(
            f"{path}: cannot be read ({e.strerror}); point FINOPS_PRICE_TABLE at a CSV or JSON file"
        ) from None
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise PriceTableError(f"{path.name} line {e.lineno}, column {e.colno}: not JSON ({e.msg})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise PriceTableError(f"{path.name}: write a JSON list of objects with {', '.join(_COLUMNS)}")
        first = 1
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = [{k: v for k, v in r.items() if k is not None} for r in reader]
        first = 2  # the header is row 1
    else:
        raise PriceTableError(f"{path.name}: a price table is a .csv or .json file")
    rates = [_row_rate(path, first + i, row) for i, row in enumerate(rows)]
    seen: dict[tuple[Program, int, str], int] = {}
    for i, rate in enumerate(rates):
        if rate.key in seen:
            raise PriceTableError(
                f"{path.name} row {first + i}: {rate.program.value} {rate.term_months} months {rate.payment} is "
                f"already priced in row {first + seen[rate.key]}; keep one"
            )
        seen[rate.key] = i
    return (base or PriceTable()).updated(*rates)


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

    def choices(
        self, program: Program | str, payments: Iterable[str] = (NO_UPFRONT,), cost_of_capital: Decimal = Decimal(0)
    ) -> tuple[Instrument, ...]:
        """Every term and allowed payment option the table prices for a program, as the optimizer weighs them (an
        upfront payment net of the cost of capital), shortest term first; no upfront when nothing allowed is
        priced."""
        allowed = allowed_payments(payments)
        found = sorted(
            (r for r in self.rates if r.program == Program(program) and r.payment in allowed),
            key=lambda r: (r.term_months, UPFRONT_SHARE.get(r.payment, 0.0)),
        )
        if not found:
            raise UnknownRate(f"no rates for {program}: add them to the price table")
        return tuple(r.instrument(cost_of_capital) for r in found)

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
