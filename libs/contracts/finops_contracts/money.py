"""Money: `Decimal` in Python, `NUMERIC` in PostgreSQL, a decimal string in JSON, always with its currency."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer, StringConstraints

# Python's default decimal context keeps 28 significant digits, so a sum of amounts with many decimal places
# could round silently. Every process that handles money imports this module: give it (and every thread it
# starts) 76 digits, the precision of the widest decimal in a cost frame.
MONEY_PRECISION = 76
decimal.DefaultContext.prec = MONEY_PRECISION
decimal.getcontext().prec = MONEY_PRECISION


def _reject_float(value: object) -> object:
    # A float has already lost cents before it reaches us; make the producer send a string.
    if isinstance(value, float):
        raise ValueError("money must be a decimal string or Decimal, never a float")
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("money must be a finite number")
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_reject_float),
    AfterValidator(_finite),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]
"""A monetary amount or quantity: exact, serialized to JSON as a plain decimal string."""

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 alphabetic code."""


class Money(BaseModel):
    """An amount with its currency."""

    model_config = ConfigDict(frozen=True)

    amount: Amount
    currency: CurrencyCode

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(amount=self.amount + other.amount, currency=self.currency)
