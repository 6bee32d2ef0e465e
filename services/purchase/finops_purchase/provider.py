"""What a provider adapter is: buy a commitment under a client token, find what a token bought, list what can
be bought. Every adapter (sandbox, AWS, Azure, GCP) has this interface, so the executor never knows which
provider it talks to.

The client token is the decision id. Buying twice with the same token returns the first commitment; buying with
the same token and other parameters is refused, as AWS refuses an `IdempotentParameterMismatch`."""

from __future__ import annotations

import calendar
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from finops_contracts.decisions import PurchaseRequested

NO_UPFRONT = "no_upfront"
PARTIAL_UPFRONT = "partial_upfront"
ALL_UPFRONT = "all_upfront"
UPFRONT_SHARE: dict[str, Decimal] = {NO_UPFRONT: Decimal(0), PARTIAL_UPFRONT: Decimal("0.5"), ALL_UPFRONT: Decimal(1)}
"""Share of a commitment's total value paid at purchase. AWS takes half up front for Partial Upfront."""

HOURS_PER_YEAR = 8760
"""Providers count a term in 365-day years: a 1-year AWS term is 31,536,000 seconds."""
TERMS = (12, 36)
CENT = Decimal("0.01")

PROGRAM_ALIASES = {"aws_reserved_instance": "aws_standard_reserved_instance"}
"""Names some callers use for the same program as the optimizer's price table."""


class ProviderError(Exception):
    """A provider call that did not give an answer to act on."""


class Transient(ProviderError):
    """Try again later with the same token (throttling, missing credentials, a provider outage)."""


class OutcomeUnknown(Transient):
    """Timeout, lost connection or a server error: the provider may or may not have bought. Retry with the same
    token after asking the provider what the token bought."""


class Refused(ProviderError):
    """The provider answered that it will not buy this (bad parameters, no such offering, the token was used
    for another request). Nothing was bought by this request."""


class IdempotencyMismatch(Refused):
    """The client token was already used for a purchase with other parameters."""


def canonical_program(program: str) -> str:
    return PROGRAM_ALIASES.get(program, program)


def term_hours(term_months: int) -> int:
    if term_months % 12:
        raise Refused(f"term_months {term_months} is not a whole number of years; commitments last 12 or 36 months")
    return term_months // 12 * HOURS_PER_YEAR


def upfront_amount(commitment_per_hour: Decimal, term_months: int, payment: str) -> Decimal:
    """What is paid at purchase: the share of the total (hourly commitment x hours of the term), to the cent."""
    if payment not in UPFRONT_SHARE:
        raise Refused(f"payment {payment!r} is unknown; use one of {', '.join(UPFRONT_SHARE)}")
    total = commitment_per_hour * term_hours(term_months)
    return (total * UPFRONT_SHARE[payment]).quantize(CENT, rounding=ROUND_HALF_UP)


def add_months(start: datetime, months: int) -> datetime:
    """The same day and time `months` later (the last day of the month when that day does not exist)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))


def _plain(amount: Decimal) -> str:
    """A decimal's value as text, the same for 1.50 and 1.5."""
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "0") else text


@dataclass(frozen=True, slots=True)
class Order:
    """One commitment to buy, as the decision service asked for it."""

    decision_id: str
    provider_name: str
    billing_account_id: str | None
    program: str
    term_months: int
    payment: str
    start: datetime
    commitment_per_hour: Decimal
    currency: str
    covered_usage_per_hour: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "program", canonical_program(self.program))

    @classmethod
    def of(cls, event: PurchaseRequested) -> Order:
        p = event.purchase
        return cls(
            decision_id=str(event.decision_id),
            provider_name=event.provider_name,
            billing_account_id=event.billing_account_id,
            program=p.program,
            term_months=p.term_months,
            payment=p.payment,
            start=p.start.astimezone(UTC),
            commitment_per_hour=p.commitment_per_hour.amount,
            currency=p.commitment_per_hour.currency,
            covered_usage_per_hour=p.covered_usage_per_hour,
        )

    def terms(self) -> dict[str, Any]:
        """The parameters that define the purchase; two requests under one token must agree on all of them."""
        return {
            "billing_account_id": self.billing_account_id,
            "program": self.program,
            "term_months": self.term_months,
            "payment": self.payment,
            "start": self.start.astimezone(UTC).isoformat(),
            "commitment_per_hour": _plain(self.commitment_per_hour),
            "currency": self.currency,
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.terms(), sort_keys=True).encode()).hexdigest()

    @property
    def upfront(self) -> Decimal:
        return upfront_amount(self.commitment_per_hour, self.term_months, self.payment)

    @property
    def end(self) -> datetime:
        return add_months(self.start, self.term_months)


@dataclass(frozen=True, slots=True)
class Commitment:
    """What a provider bought: its id is what cost lines carry as CommitmentDiscountId."""

    commitment_id: str
    program: str
    term_months: int
    payment: str
    start: datetime
    end: datetime
    commitment_per_hour: Decimal | None
    """None when the provider's record does not say (an Azure order read back): the order's figure stands."""
    currency: str
    upfront: Decimal | None


@dataclass(frozen=True, slots=True)
class Offering:
    """Something a provider sells: a program, a term and a payment option."""

    provider: str
    program: str
    term_months: int
    payment: str
    upfront_share: Decimal
    description: str
    discount: Decimal | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "program": self.program,
            "term_months": self.term_months,
            "payment": self.payment,
            "upfront_share": str(self.upfront_share),
            "discount": None if self.discount is None else str(self.discount),
            "description": self.description,
        }


class Provider(Protocol):
    name: str
    spends_money: bool
    """True for a real cloud: dry-run unless live buying is configured."""

    def validate(self, order: Order) -> None:
        """Raise Refused when the order can never be bought here; makes no call."""

    async def purchase(self, order: Order, client_token: str) -> Commitment:
        """Buy, idempotently under `client_token`; raise Refused or OutcomeUnknown."""

    async def find(self, client_token: str) -> Commitment | None:
        """What `client_token` bought, or None when the provider confirms it bought nothing."""

    async def offerings(self) -> list[Offering]: ...
