"""Pure mapping between WooCommerce REST v3 JSON and the domain: orders, audit stamps, remote state.

Total, like every mapper here: an order that cannot be read becomes an :class:`UnreadableOrder`
naming the problem (kept and held, never dropped); an order without a usable id raises
:class:`UnusableId` (nothing can be stored under it).

Times: WooCommerce sends each date twice, in the site's timezone (``date_modified``) and in UTC
(``date_modified_gmt``), both *without* an offset (``"2026-12-03T08:15:00"``). Only the ``_gmt``
fields are read, as aware UTC; the site-local ones depend on a WordPress setting the hub never sees.

Money: every order amount is a string (``"24.99"``) and parsed to ``Decimal``. A line's ``price``
is a JSON *number* (the line total divided by the quantity, after discounts), so it is never read:
the unit price is the line's ``subtotal`` string (before discounts) over its quantity, and the
line discount is ``subtotal - total``.

Status: the order's ``status`` is kept as :attr:`Order.channel_state` (what the kind's download
rule ``processing`` and the push planner read) and also summarised as payment and fulfilment
statuses for the generic rules and the portal.

Tracking notes: WooCommerce core has no tracking field, so the hub gives tracking as an order note
(``POST /orders/{id}/notes``) written by :func:`tracking_note` and read back by
:func:`tracking_from_note` — so :func:`remote_state` reports every tracking note (the hub's, or one
a person wrote in the same form) as a :class:`RemoteShipment`, and the planner never posts the
same tracking twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from orderbridge.connectors.base import ChannelRecord, OrderStamp, UnreadableOrder
from orderbridge.domain import limits
from orderbridge.domain.channel_rules import RemoteLine, RemoteOrderState, RemoteShipment
from orderbridge.domain.money import Money, MoneyError
from orderbridge.domain.order import (
    Address,
    Discount,
    FulfilmentStatus,
    Order,
    OrderLine,
    PaymentStatus,
    ShippingLine,
    TaxLine,
)
from orderbridge.domain.push_plan import Tracking
from orderbridge.errors import UnusableId

#: WooCommerce's order statuses (``checkout-draft`` comes from the block checkout)
STATUSES = (
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "trash",
    "checkout-draft",
)

#: status → (payment, fulfilment) summary for the generic download rules and the portal
_SUMMARY: dict[str, tuple[PaymentStatus, FulfilmentStatus]] = {
    "pending": (PaymentStatus.PENDING, FulfilmentStatus.UNFULFILLED),
    "processing": (PaymentStatus.PAID, FulfilmentStatus.UNFULFILLED),
    "on-hold": (PaymentStatus.PENDING, FulfilmentStatus.UNFULFILLED),
    "completed": (PaymentStatus.PAID, FulfilmentStatus.FULFILLED),
    "cancelled": (PaymentStatus.VOIDED, FulfilmentStatus.UNFULFILLED),
    "refunded": (PaymentStatus.REFUNDED, FulfilmentStatus.UNFULFILLED),
    "failed": (PaymentStatus.PENDING, FulfilmentStatus.UNFULFILLED),
    "trash": (PaymentStatus.PENDING, FulfilmentStatus.UNFULFILLED),
    "checkout-draft": (PaymentStatus.PENDING, FulfilmentStatus.UNFULFILLED),
}
_UNIT = Decimal("0.0001")
_ZERO = Decimal(0)
_MAX_ID = 2**63 - 1
_UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, MoneyError)


class _Problem(ValueError):
    """A named reason the record cannot be read."""


def order_id(value: Any) -> str:
    """The one form of a WooCommerce order id: its positive integer as text."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
    if number is None or not 0 < number <= _MAX_ID:
        shown = "missing" if value is None else repr(limits.shorten(str(value), limits.QUOTE_CHARS))
        raise UnusableId(
            f"the order has no usable WooCommerce id ({shown}): it needs the order's positive integer id",
            hint="Nothing was stored. The next sync reads the store's own copy of the order.",
        )
    return str(number)


def parse_gmt(value: Any, field: str) -> datetime:
    """A ``*_gmt`` field (``"2026-12-03T08:15:00"``, UTC without an offset) as aware UTC."""
    if not isinstance(value, str) or not value:
        raise _Problem(f"{field} is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _Problem(f"{field} {value!r} is not an ISO 8601 time") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_gmt(when: datetime) -> str:
    """An aware time as WooCommerce's query parameters take it with ``dates_are_gmt=true``."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()}: pass an aware UTC time")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _opt_gmt(value: Any, field: str) -> datetime | None:
    return None if value in (None, "") else parse_gmt(value, field)


def _amount(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        if value is None or value == "":
            return _ZERO
        raise _Problem(f"{field}: {value!r} is not an amount WooCommerce sends (a string)")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _Problem(f"{field}: {value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise _Problem(f"{field}: {value!r} is not a finite amount")
    return amount


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _address(data: Any) -> Address | None:
    if not isinstance(data, Mapping):
        return None
    name = " ".join(p for p in (_text(data.get("first_name")).strip(), _text(data.get("last_name")).strip()) if p)
    address = Address(
        name=name,
        company=_text(data.get("company")),
        address1=_text(data.get("address_1")),
        address2=_text(data.get("address_2")),
        city=_text(data.get("city")),
        province_code=_text(data.get("state")),
        postal_code=_text(data.get("postcode")),
        country_code=_text(data.get("country")),
        phone=_text(data.get("phone")),
    )
    return None if address == Address() else address


def _line(item: Mapping[str, Any], currency: str) -> OrderLine:
    line_id = order_id(item.get("id")) if item.get("id") is not None else ""
    if not line_id:
        raise _Problem("a line item has no id")
    quantity = item.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise _Problem(f"line {line_id}: quantity {quantity!r} is not an integer")
    subtotal = _amount(item.get("subtotal"), f"line {line_id} subtotal")
    total = _amount(item.get("total"), f"line {line_id} total")
    unit = (subtotal / quantity).quantize(_UNIT, ROUND_HALF_UP) if quantity > 0 else subtotal
    discount = subtotal - total
    product = item.get("product_id") or None
    variation = item.get("variation_id") or None
    props = tuple(
        (str(m["key"]), str(m["value"]))
        for m in item.get("meta_data") or []
        if isinstance(m, Mapping) and isinstance(m.get("value"), str) and not str(m.get("key", "_")).startswith("_")
    )
    return OrderLine(
        external_id=line_id,
        sku=_text(item.get("sku")).strip() or None,
        title=_text(item.get("name")),
        quantity=quantity,
        unit_price=Money(unit, currency),
        product_id=None if product is None else str(product),
        variant_id=None if variation is None else str(variation),
        discount=Money(discount, currency) if discount else None,
        tax=Money(_amount(item.get("total_tax"), f"line {line_id} total_tax"), currency),
        properties=props,
    )


def order_from_json(data: Mapping[str, Any]) -> ChannelRecord:
    """A v3 order object (a REST response or a webhook body) → the canonical order, or an
    :class:`UnreadableOrder` naming the problem; :class:`UnusableId` without a usable id."""
    external_id = order_id(data.get("id"))
    try:
        return _order(external_id, data)
    except _UNREADABLE as exc:
        updated: datetime | None = None
        try:
            updated = parse_gmt(data.get("date_modified_gmt"), "date_modified_gmt")
        except _Problem:
            updated = None
        return UnreadableOrder(external_id, _text(data.get("number")), updated, str(exc), dict(data))


def _order(external_id: str, data: Mapping[str, Any]) -> Order:
    currency = data.get("currency")
    if not isinstance(currency, str):
        raise _Problem("currency is missing")
    status = data.get("status")
    if not isinstance(status, str) or not status:
        raise _Problem("status is missing")
    payment, fulfilment = _SUMMARY.get(status, (PaymentStatus.UNKNOWN, FulfilmentStatus.UNKNOWN))
    unknown = (("financial_status", status), ("fulfillment_status", status)) if status not in _SUMMARY else ()
    updated = parse_gmt(data.get("date_modified_gmt"), "date_modified_gmt")
    lines = tuple(_line(item, currency) for item in data.get("line_items") or [])
    subtotal = sum((_amount(i.get("total"), "line total") for i in data.get("line_items") or []), _ZERO)
    shipping = tuple(
        ShippingLine(
            title=_text(s.get("method_title")),
            code=_text(s.get("method_id")) or None,
            price=Money(_amount(s.get("total"), "shipping line total"), currency),
        )
        for s in data.get("shipping_lines") or []
    )
    discounts = tuple(
        Discount(_text(c.get("code")), Money(_amount(c.get("discount"), "coupon discount"), currency), "coupon")
        for c in data.get("coupon_lines") or []
    )
    taxes = tuple(
        TaxLine(
            title=_text(t.get("label") or t.get("rate_code")),
            rate=Decimal(str(t.get("rate_percent") or 0)) / 100,
            amount=Money(
                _amount(t.get("tax_total"), "tax total") + _amount(t.get("shipping_tax_total"), "shipping tax"),
                currency,
            ),
        )
        for t in data.get("tax_lines") or []
    )
    refunded = sum((abs(_amount(r.get("total"), "refund total")) for r in data.get("refunds") or []), _ZERO)
    if refunded and payment is PaymentStatus.PAID:
        payment = PaymentStatus.PARTIALLY_REFUNDED
    billing = data.get("billing") if isinstance(data.get("billing"), Mapping) else {}
    assert isinstance(billing, Mapping)
    name = " ".join(p for p in (_text(billing.get("first_name")).strip(), _text(billing.get("last_name")).strip()) if p)
    custom = tuple(
        (str(m["key"]), str(m["value"]))
        for m in data.get("meta_data") or []
        if isinstance(m, Mapping) and isinstance(m.get("value"), str) and not str(m.get("key", "_")).startswith("_")
    )
    return Order(
        external_id=external_id,
        number=_text(data.get("number")) or external_id,
        currency=currency,
        created_at=parse_gmt(data.get("date_created_gmt"), "date_created_gmt"),
        updated_at=updated,
        payment_status=payment,
        fulfilment_status=fulfilment,
        lines=lines,
        subtotal=Money(subtotal, currency),
        total_tax=Money(_amount(data.get("total_tax"), "total_tax"), currency),
        total=Money(_amount(data.get("total"), "total"), currency),
        shipping_lines=shipping,
        discounts=discounts,
        taxes=taxes,
        processed_at=_opt_gmt(data.get("date_paid_gmt"), "date_paid_gmt"),
        cancelled_at=updated if status == "cancelled" else None,
        email=_text(billing.get("email")),
        customer_name=name,
        shipping_address=_address(data.get("shipping")),
        billing_address=_address(billing),
        note=_text(data.get("customer_note")),
        custom_fields=custom,
        unknown_values=unknown,
        refunded=Money(refunded, currency) if refunded else None,
        channel_state=status,
        raw=dict(data),
    )


def stamp(data: Mapping[str, Any]) -> OrderStamp | None:
    """An audit stamp from ``id, number, date_modified_gmt``; None when either is unusable (the hub
    could not have stored such an order under an id either)."""
    try:
        return OrderStamp(
            order_id(data.get("id")),
            parse_gmt(data.get("date_modified_gmt"), "date_modified_gmt"),
            _text(data.get("number")),
        )
    except (UnusableId, ValueError):
        return None


# --- tracking notes ---------------------------------------------------------------------------------

_NOTE = re.compile(
    # the number runs to the URL's " (" or the end of its line: carriers' numbers may hold spaces
    r"^Shipped(?: with (?P<carrier>.+?))?: tracking number (?P<number>.+?)(?: \((?P<url>https?://\S+)\))?$",
    re.MULTILINE,
)


def tracking_note(tracking: Tracking, replaces: str | None = None) -> str:
    """The note that gives the customer the tracking (``customer_note``: they are e-mailed it)."""
    carrier = f" with {tracking.carrier.strip()}" if tracking.carrier.strip() else ""
    url = f" ({tracking.url.strip()})" if tracking.url and tracking.url.strip() else ""
    text = f"Shipped{carrier}: tracking number {tracking.number.strip()}{url}"
    if replaces:
        text += f"\nThis replaces tracking number {replaces}, which is no longer in use."
    return text


def tracking_from_note(text: str) -> Tracking | None:
    """The tracking a note written by :func:`tracking_note` gives (None for any other note)."""
    found = _NOTE.search(text or "")
    if found is None:
        return None
    return Tracking(found["number"], found["carrier"] or "", found["url"])


def remote_state(order: Mapping[str, Any], notes: Iterable[Mapping[str, Any]], admin_url: str) -> RemoteOrderState:
    """What the store holds for one order: its status, lines, tracking notes and refunds."""
    external_id = order_id(order.get("id"))
    status = _text(order.get("status"))
    shipped = status == "completed"
    lines = tuple(
        RemoteLine(
            str(item.get("id")),
            int(item.get("quantity") or 0),
            shipped=int(item.get("quantity") or 0) if shipped else 0,
        )
        for item in order.get("line_items") or []
        if isinstance(item, Mapping)
    )
    shipments = tuple(
        RemoteShipment(str(note.get("id")), tracking.number, tracking.carrier)
        for note in sorted(notes, key=lambda n: int(n.get("id") or 0))
        if (tracking := tracking_from_note(_text(note.get("note")))) is not None
    )
    refunded = _ZERO
    for r in order.get("refunds") or []:
        try:
            refunded += abs(_amount(r.get("total"), "refund total"))
        except _Problem:
            continue
    return RemoteOrderState(
        external_id=external_id,
        state=status,
        lines=lines,
        shipments=shipments,
        refunded=refunded,
        currency=_text(order.get("currency")),
        url=admin_url,
    )
