from decimal import Decimal

import pytest

from orderbridge.domain.money import Money, MoneyError


def test_money_parses_remote_strings_exactly() -> None:
    assert Money.parse("19.99", "USD").amount == Decimal("19.99")
    assert Money.parse(None, "EUR") == Money(Decimal(0), "EUR")


def test_money_refuses_floats_and_names_the_value() -> None:
    with pytest.raises(MoneyError, match=r"19\.99"):
        Money.parse(19.99, "USD")  # type: ignore[arg-type]


def test_money_refuses_a_currency_that_is_not_iso_4217() -> None:
    with pytest.raises(MoneyError, match="'usd'"):
        Money(Decimal(1), "usd")


def test_adding_different_currencies_is_an_error() -> None:
    with pytest.raises(MoneyError, match="USD with EUR"):
        Money(Decimal(1), "USD") + Money(Decimal(1), "EUR")


def test_garbage_amount_is_a_money_error() -> None:
    with pytest.raises(MoneyError, match="'abc'"):
        Money.parse("abc", "USD")
