"""Test data builders for canonical orders (plain domain objects, no I/O)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from orderbridge.domain.money import Money
from orderbridge.domain.order import Address, FulfilmentStatus, Order, OrderLine, PaymentStatus, ShippingLine
from orderbridge.domain.rules import DownloadRules

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

#: seed 000's rules (a 3PL takes paid, unfulfilled or partial, open, live orders) — Shopify's declared
#: default, written out here so the domain's tests need no connector
SEED_000_RULES = DownloadRules(
    financial_statuses=frozenset({"paid"}), fulfilment_statuses=frozenset({"unfulfilled", "partial"})
)

_T = TypeVar("_T")


def replace(obj: _T, **changes: Any) -> _T:
    """A copy of a domain value with ``changes``: msgspec Structs (orders) and dataclasses alike."""
    if isinstance(obj, msgspec.Struct):
        return msgspec.structs.replace(obj, **changes)
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def line(sku: str | None = "SKU-1", qty: int = 1, price: str = "10.00", n: int = 1, currency: str = "USD") -> OrderLine:
    return OrderLine(
        external_id=f"L{n}", sku=sku, title=f"Item {sku}", quantity=qty, unit_price=Money(Decimal(price), currency)
    )


def order(
    n: int = 1,
    *,
    skus: tuple[str | None, ...] = ("SKU-1",),
    shipping: str | None = "Standard",
    currency: str = "USD",
    updated_minutes: int = 0,
    **overrides: Any,
) -> Order:
    lines = tuple(line(s, n=i + 1, currency=currency) for i, s in enumerate(skus))
    subtotal = Money(sum((li.unit_price.amount * li.quantity for li in lines), Decimal(0)), currency)
    ship = (ShippingLine(shipping, shipping, Money(Decimal("5.00"), currency)),) if shipping else ()
    base = Order(
        external_id=str(1000 + n),
        number=f"#{1000 + n}",
        currency=currency,
        created_at=T0,
        updated_at=T0 + timedelta(minutes=updated_minutes),
        payment_status=PaymentStatus.PAID,
        fulfilment_status=FulfilmentStatus.UNFULFILLED,
        lines=lines,
        subtotal=subtotal,
        total_tax=Money.zero(currency),
        total=subtotal + (ship[0].price if ship else Money.zero(currency)),
        shipping_lines=ship,
        email=f"buyer{n}@example.com",
        customer_name=f"Buyer {n}",
        shipping_address=Address(
            name=f"Buyer {n}",
            address1="1 Main St",
            city="Springfield",
            postal_code="12345",
            country_code="US",
            province_code="IL",
        ),
        raw={"id": 1000 + n},
    )
    return replace(base, **overrides) if overrides else base
