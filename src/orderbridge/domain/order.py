"""The canonical order: what every channel's payload is mapped into and every destination reads.

Frozen dataclasses (not pydantic) because the domain must stay free of I/O-oriented libraries
and because instances are built tens of thousands of times per second during ingest. The content
hash covers everything a destination could care about, and deliberately excludes ``updated_at``
and the raw payload: a touch that changes nothing material is not a new version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from orderbridge.domain.money import Money


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class FulfilmentStatus(StrEnum):
    UNFULFILLED = "unfulfilled"
    PARTIAL = "partial"
    FULFILLED = "fulfilled"
    RESTOCKED = "restocked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Address:
    name: str = ""
    company: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    province_code: str = ""
    postal_code: str = ""
    country_code: str = ""
    phone: str = ""


@dataclass(frozen=True, slots=True)
class OrderLine:
    external_id: str
    sku: str | None
    title: str
    quantity: int
    unit_price: Money
    product_id: str | None = None
    variant_id: str | None = None
    discount: Money | None = None
    tax: Money | None = None
    properties: tuple[tuple[str, str], ...] = ()
    #: channel-side ids the back-sync needs (e.g. Shopify fulfillment order line item id)
    fulfilment_ref: str | None = None


@dataclass(frozen=True, slots=True)
class ShippingLine:
    title: str
    code: str | None
    price: Money
    source: str | None = None

    @property
    def method(self) -> str:
        """The value mapped to a destination service: the code when present, else the title."""
        return self.code or self.title


@dataclass(frozen=True, slots=True)
class Discount:
    code: str
    amount: Money
    kind: str = ""


@dataclass(frozen=True, slots=True)
class TaxLine:
    title: str
    rate: Decimal
    amount: Money


@dataclass(frozen=True, slots=True)
class Order:
    external_id: str
    number: str
    currency: str
    created_at: datetime
    updated_at: datetime
    payment_status: PaymentStatus
    fulfilment_status: FulfilmentStatus
    lines: tuple[OrderLine, ...]
    subtotal: Money
    total_tax: Money
    total: Money
    shipping_lines: tuple[ShippingLine, ...] = ()
    discounts: tuple[Discount, ...] = ()
    taxes: tuple[TaxLine, ...] = ()
    processed_at: datetime | None = None
    cancelled_at: datetime | None = None
    closed_at: datetime | None = None
    test: bool = False
    email: str = ""
    customer_name: str = ""
    shipping_address: Address | None = None
    billing_address: Address | None = None
    tags: tuple[str, ...] = ()
    note: str = ""
    custom_fields: tuple[tuple[str, str], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("created_at", "updated_at", "processed_at", "cancelled_at", "closed_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")

    @property
    def shipping_method(self) -> str | None:
        return self.shipping_lines[0].method if self.shipping_lines else None

    @property
    def shipping_total(self) -> Money:
        total = Money.zero(self.currency)
        for line in self.shipping_lines:
            total = total + line.price
        return total

    def content_hash(self) -> str:
        """SHA-256 of the canonical content (no raw payload, no ``updated_at``)."""
        from orderbridge.domain.canonical import canonical_hash, order_to_json

        return canonical_hash(order_to_json(self))
