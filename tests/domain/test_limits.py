"""The declared input limits agree with the database columns, so they can never drift apart."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Numeric, String, Text
from sqlalchemy.dialects import postgresql

from orderbridge.domain import limits
from orderbridge.storage import tables
from orderbridge.storage.types import DecimalAmount


def _column(dotted: str) -> object:
    table, column = dotted.split(".")
    return tables.metadata.tables[table].c[column]


@pytest.mark.parametrize("limit", [t for t in limits.TEXT_LIMITS if t.column], ids=lambda t: t.field)
def test_every_column_limit_is_the_size_of_its_column(limit: limits.TextLimit) -> None:
    assert limit.column is not None
    column_type = _column(limit.column).type  # type: ignore[attr-defined]
    assert isinstance(column_type, String) and not isinstance(column_type, Text)
    assert column_type.length == limit.max_chars, f"{limit.field}: {limit.column} is {column_type.length}"


def test_every_bounded_text_column_fed_from_outside_has_a_declared_limit_or_is_unbounded() -> None:
    declared = {t.column for t in limits.TEXT_LIMITS if t.column}
    fed_from_outside = (
        "orders.external_id",
        "order_reasons.value",
        "mappings.source_value",
        "mappings.target_value",
        "webhook_deliveries.webhook_id",
        "webhook_deliveries.topic",
    )
    assert set(fed_from_outside) <= declared
    for free_text in ("orders.number", "shipments.tracking_number", "shipments.carrier", "shipments.service"):
        assert isinstance(_column(free_text).type, Text), f"{free_text} must be unbounded (migration 0005)"  # type: ignore[attr-defined]


def test_the_money_limits_are_the_precision_of_the_money_column() -> None:
    column_type = _column(limits.MONEY_COLUMN).type  # type: ignore[attr-defined]
    assert isinstance(column_type, DecimalAmount)
    numeric = column_type.load_dialect_impl(postgresql.dialect())  # type: ignore[no-untyped-call]
    assert isinstance(numeric, Numeric)
    assert numeric.scale == limits.MONEY_DECIMAL_PLACES
    assert numeric.precision == limits.MONEY_INTEGER_DIGITS + limits.MONEY_DECIMAL_PLACES
    assert Decimal(10) ** limits.MONEY_INTEGER_DIGITS > limits.MAX_AMOUNT


def test_a_shortened_value_fits_and_says_how_long_it_was() -> None:
    cut = limits.shorten("x" * 301, 100)
    assert len(cut) == 100 and cut.endswith("… (301 chars)")
    assert limits.shorten("short", 100) == "short"


def test_text_no_database_can_store_is_made_storable() -> None:
    assert limits.storable("a\x00b") == "a\ufffdb"
    assert limits.storable("caf\udce9") == "caf\ufffd"
    assert limits.storable("Müller") == "Müller"


@pytest.mark.parametrize(
    ("amount", "fits"),
    [("19.99", True), ("19.990000000", True), ("0.0000001", False), ("1e18", False), ("999999999999999999", True)],
)
def test_an_amount_fits_the_money_column_only_exactly(amount: str, fits: bool) -> None:
    assert limits.fits_column(Decimal(amount)) is fits
