from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from finops_contracts.money import Amount, Money


class Priced(BaseModel):
    cost: Amount


def test_amount_travels_as_a_decimal_string_and_comes_back_exact():
    priced = Priced(cost=Decimal("0.1000000001"))

    text = priced.model_dump_json()

    assert text == '{"cost":"0.1000000001"}'
    assert Priced.model_validate_json(text).cost == Decimal("0.1000000001")


def test_amount_refuses_a_float():
    with pytest.raises(ValidationError, match="never a float"):
        Priced(cost=0.1)


def test_amount_refuses_infinity_and_nan():
    with pytest.raises(ValidationError):
        Priced.model_validate_json('{"cost": "Infinity"}')
    with pytest.raises(ValidationError):
        Priced.model_validate_json('{"cost": "NaN"}')


def test_money_adds_only_the_same_currency():
    a = Money(amount=Decimal("1.10"), currency="USD")

    assert (a + Money(amount=Decimal("2.205"), currency="USD")).amount == Decimal("3.305")
    with pytest.raises(ValueError, match="EUR to USD"):
        a + Money(amount=Decimal("1"), currency="EUR")


def test_currency_must_be_an_iso_code():
    with pytest.raises(ValidationError):
        Money(amount=Decimal(1), currency="usd")
