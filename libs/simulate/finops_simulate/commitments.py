"""Commitments: AWS Compute Savings Plans over the EC2 usage of a payer (billing) account, and Azure savings plans
for compute over the VM usage of an Azure billing account.

A plan commits `hourly` USD per hour for `term_months` from `start` at a discount d off on-demand: covered usage
costs (1 - d) x its on-demand (list) cost. In each charge interval (an hour, or a day = its hours) the plan's
commitment for the interval is `hourly` x hours; the billing account's EC2 charges are offered to it in resource
order and a charge is covered whole when its discounted cost fits in what is left (first fit; a charge that does
not fit is on demand). What is left at the end of the interval is unused.

An AWS reserved instance (aws_reserved_instance, bought with Company.with_purchase) is simulated as a
size-flexible, no-upfront reservation over the same EC2 usage and applied the same way (first fit of (1 - d) x
list cost into its hourly fee); CUR writes DiscountedUsage (reservation/EffectiveCost) and RIFee lines
(reservation/UnusedRecurringFee) instead.

Rows (FOCUS semantics):
  covered usage  ChargeCategory Usage, BilledCost 0, EffectiveCost (1 - d) x ListCost (6 places, half even),
                 PricingCategory Committed, CommitmentDiscountId the plan's ARN, CommitmentDiscountStatus Used
  recurring fee  ChargeCategory Purchase, ChargeFrequency Recurring, BilledCost hourly x hours, EffectiveCost 0
  unused         ChargeCategory Usage, BilledCost 0, EffectiveCost the unused commitment, Status Unused
Azure actual cost shows covered usage at Cost 0 and the fee as a Purchase row (EffectiveCost 0: the actual view
is not amortized); Azure amortized cost shows covered usage at its amortized cost and the unused part as an
UnusedSavingsPlan row (written even when 0, so each interval has one), and no purchase row. The truth's
commitment figures are the plan's own, whatever the view. CUR 2.0 writes the fee and the unused part as one
SavingsPlanRecurringFee line (total and used commitment), as AWS
does; the covered usage as SavingsPlanCoveredUsage with its unblended cost 0 (net of its negation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from finops_simulate.periods import add_months

PROGRAM = "aws_compute_savings_plan"
RESERVED = "aws_reserved_instance"
PROGRAMS = {"aws": PROGRAM, "azure": "azure_savings_plan"}
EXTRA_PROGRAMS = {"aws": (RESERVED,)}
DISCOUNTS = {PROGRAM: Decimal("0.28"), "azure_savings_plan": Decimal("0.25"), RESERVED: Decimal("0.36")}
DEFAULT_DISCOUNT = DISCOUNTS[PROGRAM]
Q6 = Decimal("0.000001")


@dataclass(frozen=True)
class Commitment:
    """A purchase: provider, billing account, program, hourly amount, term and start (the first of a month)."""

    provider: str
    billing_account: str
    hourly: Decimal
    start: str
    term_months: int = 12
    program: str = ""  # the provider's (PROGRAMS)
    discount: Decimal | None = None  # the program's (DISCOUNTS)
    id: str = ""

    def __post_init__(self) -> None:
        allowed = ("", PROGRAMS.get(self.provider), *EXTRA_PROGRAMS.get(self.provider, ()))
        if self.provider not in PROGRAMS or self.program not in allowed:
            raise ValueError(f"simulated: {PROGRAM} and {RESERVED} on aws, azure_savings_plan on azure; "
                             f"not {self.program or 'a plan'} on {self.provider}")  # fmt: skip
        object.__setattr__(self, "program", self.program or PROGRAMS[self.provider])
        if self.discount is None:
            object.__setattr__(self, "discount", DISCOUNTS[self.program])
        object.__setattr__(self, "discount", Decimal(self.discount))
        if not Decimal(0) < self.discount < Decimal(1):
            raise ValueError("discount must be in (0, 1)")
        if Decimal(self.hourly) <= 0:
            raise ValueError("hourly must be positive")
        if date.fromisoformat(self.start).day != 1:
            raise ValueError("start must be the first of a month")
        object.__setattr__(self, "hourly", Decimal(self.hourly))
        if not self.id:
            tag = f"{self.start.replace('-', '')}-{self.hourly.normalize()}".replace(".", "p")
            if self.program == RESERVED:
                ident = f"arn:aws:ec2:us-east-1:{self.billing_account}:reserved-instances/ri-{tag}"
            elif self.provider == "aws":
                ident = f"arn:aws:savingsplans::{self.billing_account}:savingsplan/sp-{tag}"
            else:
                ident = (f"/providers/Microsoft.BillingBenefits/savingsPlanOrders/spo-{self.billing_account}"
                         f"/savingsPlans/sp-{tag}")  # fmt: skip
            object.__setattr__(self, "id", ident)

    @property
    def begins(self) -> datetime:
        d = date.fromisoformat(self.start)
        return datetime(d.year, d.month, 1, tzinfo=UTC)

    @property
    def ends(self) -> datetime:
        d = add_months(date.fromisoformat(self.start), self.term_months)
        return datetime(d.year, d.month, 1, tzinfo=UTC)

    def active(self, moment: datetime) -> bool:
        return self.begins <= moment < self.ends

    @property
    def kind(self) -> str:
        """FOCUS CommitmentDiscountType."""
        return "Reserved Instance" if self.program == RESERVED else "Savings Plan"

    def rate(self, list_cost: Decimal) -> Decimal:
        return (list_cost * (1 - self.discount)).quantize(Q6, ROUND_HALF_EVEN)
