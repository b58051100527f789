"""The canonical order: what every channel's payload is mapped into and every destination reads.

Frozen ``msgspec.Struct`` types (not pydantic, not dataclasses). The domain stays free of
I/O-oriented libraries — msgspec here is only a fast immutable record type — and instances are
built tens of thousands of times per second during ingest: a Struct is constructed in C about
fifteen times faster than a frozen dataclass, and with ``gc=False`` the collector never traverses
it (an order is a tree of values with no references back up, so it can never form a cycle; the
raw payload it carries is plain JSON data). The content hash covers everything a destination
could care about, and deliberately excludes ``updated_at`` and the raw payload: a touch that
changes nothing material is not a new version.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import Any

import msgspec

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


class RawJson(bytes):
    """A payload's JSON text exactly as received (UTF-8), kept as bytes rather than parsed into
    dicts only to be serialised again for storage (a bulk export's lines, spliced)."""


class Address(msgspec.Struct, frozen=True, gc=False):
    name: str = ""
    company: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    province_code: str = ""
    postal_code: str = ""
    country_code: str = ""
    phone: str = ""


class OrderLine(msgspec.Struct, frozen=True, gc=False):
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
    #: how much of ``quantity`` the channel still has to fulfil, when less than all of it (``None``:
    #: all of it). Built with :func:`fulfillable`, so an open line reads the same from every source.
    fulfillable_quantity: int | None = None

    @property
    def open_quantity(self) -> int:
        """What is left to fulfil: what a destination is sent, and what its shipments may cover."""
        return self.quantity if self.fulfillable_quantity is None else self.fulfillable_quantity


def fulfillable(quantity: int, remaining: int | None) -> int | None:
    """A line's ``fulfillable_quantity`` from the channel's remaining quantity: ``None`` when the
    whole quantity is open (or the channel does not say), else the remainder within ``[0, quantity]``.
    ``None`` rather than ``quantity`` keeps an open line's canonical form, and so the content hash of
    every order nothing was fulfilled of, what it was before lines carried the remainder. A negative
    remainder is nonsense, not "fulfilled": ``ValueError`` (the mapper makes the order unreadable,
    held naming it, rather than skip it as nothing left to fulfil)."""
    if remaining is None or remaining >= quantity:
        return None  # a quantity itself out of range (0, negative) is the input limits' to hold
    if remaining < 0:
        raise ValueError(f"a line's remaining quantity is {remaining}; it cannot be negative")
    return remaining


class ShippingLine(msgspec.Struct, frozen=True, gc=False):
    title: str
    code: str | None
    price: Money
    source: str | None = None

    @property
    def method(self) -> str:
        """The value mapped to a destination service: the code when present, else the title."""
        return self.code or self.title


class Discount(msgspec.Struct, frozen=True, gc=False):
    code: str
    amount: Money
    kind: str = ""


class TaxLine(msgspec.Struct, frozen=True, gc=False):
    title: str
    rate: Decimal
    amount: Money


class Order(msgspec.Struct, frozen=True, gc=False):
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
    #: ``(field, channel value)`` of each status the mapper had no member for (the status is then
    #: ``UNKNOWN``): the value is kept so the hold can name it (see domain/validation.py)
    unknown_values: tuple[tuple[str, str], ...] = ()
    #: how much of the order the channel has refunded, when it says (``None``: not known or nothing);
    #: in the canonical form only when set, so every order read before refunds were kept hashes as before
    refunded: Money | None = None
    #: the channel's own state for the order as it names it (Mirakl's ``WAITING_ACCEPTANCE``), for
    #: channels whose rules (issue #16) the hub acts on; empty when the channel has none beyond the
    #: statuses above. In the canonical form only when set.
    channel_state: str = ""
    #: the channel's deadlines on the order, ``(name, due)`` — ``acceptance``, ``shipping`` (issue
    #: #16); in the canonical form only when set
    deadlines: tuple[tuple[str, datetime], ...] = ()
    #: the payload the order was read from, for display and audit (not part of the content hash):
    #: a JSON object, or its text as received
    raw: Mapping[str, Any] | RawJson = msgspec.field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """Equal content, whatever payload each was read from (``raw`` is not part of an order)."""
        if type(other) is not Order:
            return NotImplemented
        return _content(self) == _content(other)

    def __hash__(self) -> int:
        return hash(_content(self))

    def __post_init__(self) -> None:
        for name in ("created_at", "updated_at", "processed_at", "cancelled_at", "closed_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
        for name, due in self.deadlines:
            if due.tzinfo is None:
                raise ValueError(f"deadline {name} must be timezone-aware, got naive {due.isoformat()}")

    @property
    def shipping_method(self) -> str | None:
        return self.shipping_lines[0].method if self.shipping_lines else None

    @property
    def shipping_total(self) -> Money:
        total = Money.zero(self.currency)
        for line in self.shipping_lines:
            total = total + line.price
        return total


#: every field but ``raw``: what equality and hashing of orders compare
_content = attrgetter(*(name for name in Order.__struct_fields__ if name != "raw"))
