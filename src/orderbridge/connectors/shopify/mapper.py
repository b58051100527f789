"""Pure mapping from Shopify order JSON to the canonical :class:`~orderbridge.domain.order.Order`.

Two entry points because Shopify speaks two shapes: :func:`order_from_graphql` reads a GraphQL
``Order`` node (what ``list_changed``/``fetch_order`` and bulk backfills return; connections may
be Relay ``edges``/``nodes`` or, after bulk reassembly, plain lists) and :func:`order_from_rest`
reads the REST/webhook ``order`` JSON. Both are total: anything unreadable becomes an
:class:`UnreadableOrder` naming the problem, so one bad record never breaks a page and is never
dropped. Money is parsed from strings into ``Decimal``; times become aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from orderbridge.connectors.base import ChannelRecord, UnreadableOrder
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

_FULFILMENT_GRAPHQL = {
    "UNFULFILLED": FulfilmentStatus.UNFULFILLED,
    "PARTIALLY_FULFILLED": FulfilmentStatus.PARTIAL,
    "FULFILLED": FulfilmentStatus.FULFILLED,
    "RESTOCKED": FulfilmentStatus.RESTOCKED,
    # in-flight states of fulfilment orders: nothing has shipped yet
    "IN_PROGRESS": FulfilmentStatus.UNFULFILLED,
    "OPEN": FulfilmentStatus.UNFULFILLED,
    "ON_HOLD": FulfilmentStatus.UNFULFILLED,
    "SCHEDULED": FulfilmentStatus.UNFULFILLED,
    "PENDING_FULFILLMENT": FulfilmentStatus.UNFULFILLED,
    "REQUEST_DECLINED": FulfilmentStatus.UNFULFILLED,
}
_FULFILMENT_REST = {
    None: FulfilmentStatus.UNFULFILLED,
    "fulfilled": FulfilmentStatus.FULFILLED,
    "partial": FulfilmentStatus.PARTIAL,
    "restocked": FulfilmentStatus.RESTOCKED,
}
_PAYMENT = frozenset(p.value for p in PaymentStatus)
_UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, MoneyError)


class _Problem(ValueError):
    """A named reason the record cannot be read."""


def legacy_id(gid: Any) -> str:
    """``gid://shopify/Order/123`` → ``"123"`` (plain numbers pass through)."""
    text = str(gid)
    tail = text.rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise _Problem(f"id {text!r} is not a Shopify id")
    return tail


def parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise _Problem(f"{field} is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _Problem(f"{field} {value!r} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise _Problem(f"{field} {value!r} has no timezone")
    return parsed.astimezone(UTC)


def _opt_time(value: Any, field: str) -> datetime | None:
    return None if value is None else parse_time(value, field)


def _money(value: Any, currency: str, field: str) -> Money:
    if isinstance(value, str):  # the common case, on the ingest hot path; currency checked per order
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise _Problem(f"{field}: {value!r} is not a decimal amount") from None
        if amount.is_finite():
            return Money(amount, currency)
        raise _Problem(f"{field}: amount must be finite, got {value!r}")
    if isinstance(value, float):
        raise _Problem(f"{field} is a float ({value!r}); Shopify sends money as strings")
    try:
        return Money.parse(value, currency)
    except MoneyError as exc:
        raise _Problem(f"{field}: {exc}") from exc


def _check_currency(currency: str) -> None:
    try:
        Money.zero(currency)
    except MoneyError as exc:
        raise _Problem(str(exc)) from exc


def _bag(bag: Any, currency: str, field: str) -> Money:
    if bag is None:
        return Money.zero(currency)
    return _money(bag["shopMoney"]["amount"], currency, field)


def _items(connection: Any) -> list[dict[str, Any]]:
    """Items of a GraphQL connection given as ``edges``, ``nodes`` or a plain list."""
    if connection is None:
        return []
    if isinstance(connection, list):
        return connection
    if "nodes" in connection:
        return list(connection["nodes"])
    return [edge["node"] for edge in connection.get("edges", [])]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _address_graphql(a: Mapping[str, Any] | None) -> Address | None:
    if not a:
        return None
    return Address(
        name=_text(a.get("name")),
        company=_text(a.get("company")),
        address1=_text(a.get("address1")),
        address2=_text(a.get("address2")),
        city=_text(a.get("city")),
        province_code=_text(a.get("provinceCode")),
        postal_code=_text(a.get("zip")),
        country_code=_text(a.get("countryCodeV2")),
        phone=_text(a.get("phone")),
    )


def _address_rest(a: Mapping[str, Any] | None) -> Address | None:
    if not a:
        return None
    name = a.get("name") or " ".join(p for p in (a.get("first_name"), a.get("last_name")) if p)
    return Address(
        name=_text(name),
        company=_text(a.get("company")),
        address1=_text(a.get("address1")),
        address2=_text(a.get("address2")),
        city=_text(a.get("city")),
        province_code=_text(a.get("province_code")),
        postal_code=_text(a.get("zip")),
        country_code=_text(a.get("country_code")),
        phone=_text(a.get("phone")),
    )


def _unreadable(raw: Mapping[str, Any], problem: str, *, graphql: bool) -> UnreadableOrder:
    try:
        external_id = legacy_id(raw.get("legacyResourceId") or raw.get("id"))
    except (_Problem, AttributeError):
        external_id = str(raw.get("id", "")) if isinstance(raw, Mapping) else ""
    try:
        updated = parse_time(raw.get("updatedAt" if graphql else "updated_at"), "updated_at")
    except (_Problem, AttributeError):
        updated = None
    number = raw.get("name") if isinstance(raw, Mapping) else None
    return UnreadableOrder(external_id, _text(number), updated, problem, raw)


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"field {exc.args[0]!r} is missing"
    return str(exc) or type(exc).__name__


def order_from_graphql(node: Mapping[str, Any]) -> ChannelRecord:
    """A GraphQL ``Order`` node → Order, or UnreadableOrder naming what could not be read."""
    try:
        return _graphql(node)
    except _UNREADABLE as exc:
        return _unreadable(node, _describe(exc), graphql=True)


def order_from_rest(data: Mapping[str, Any]) -> ChannelRecord:
    """A REST/webhook ``order`` JSON → Order, or UnreadableOrder naming what could not be read."""
    try:
        return _rest(data)
    except _UNREADABLE as exc:
        return _unreadable(data, _describe(exc), graphql=False)


def _graphql(n: Mapping[str, Any]) -> Order:
    currency = n.get("currencyCode")
    if not isinstance(currency, str):
        raise _Problem("currencyCode is missing")
    _check_currency(currency)
    lines = []
    for li in _items(n.get("lineItems")):
        variant, product = li.get("variant"), li.get("product")
        lines.append(
            OrderLine(
                external_id=legacy_id(li["id"]),
                sku=li.get("sku") or None,
                title=_text(li.get("name") or li.get("title")),
                quantity=int(li["quantity"]),
                unit_price=_bag(li.get("originalUnitPriceSet"), currency, f"line {li['id']} price"),
                product_id=legacy_id(product["id"]) if product else None,
                variant_id=legacy_id(variant["id"]) if variant else None,
                properties=tuple((_text(a["key"]), _text(a.get("value"))) for a in li.get("customAttributes") or []),
            )
        )
    shipping = tuple(
        ShippingLine(
            title=_text(s.get("title")),
            code=s.get("code") or None,
            price=_bag(s.get("originalPriceSet"), currency, "shipping line price"),
            source=s.get("source"),
        )
        for s in _items(n.get("shippingLines"))
    )
    total_discounts = _bag(n.get("totalDiscountsSet"), currency, "totalDiscountsSet")
    codes = [c for c in n.get("discountCodes") or [] if c]
    discounts = tuple(
        Discount(code, total_discounts if i == 0 else Money.zero(currency)) for i, code in enumerate(codes)
    )
    taxes = tuple(
        TaxLine(
            _text(t.get("title")),
            Decimal(str(t.get("rate") or 0)),
            _bag(t.get("priceSet"), currency, "tax line price"),
        )
        for t in n.get("taxLines") or []
    )
    customer = n.get("customer") or {}
    shipping_address = _address_graphql(n.get("shippingAddress"))
    name = " ".join(p for p in (customer.get("firstName"), customer.get("lastName")) if p)
    if not name and shipping_address is not None:
        name = shipping_address.name
    fin = n.get("displayFinancialStatus")
    payment = PaymentStatus(fin.lower()) if isinstance(fin, str) and fin.lower() in _PAYMENT else PaymentStatus.UNKNOWN
    return Order(
        external_id=legacy_id(n.get("legacyResourceId") or n["id"]),
        number=_text(n.get("name")),
        currency=currency,
        created_at=parse_time(n.get("createdAt"), "createdAt"),
        updated_at=parse_time(n.get("updatedAt"), "updatedAt"),
        payment_status=payment,
        fulfilment_status=_FULFILMENT_GRAPHQL.get(n.get("displayFulfillmentStatus") or "", FulfilmentStatus.UNKNOWN),
        lines=tuple(lines),
        subtotal=_bag(n.get("subtotalPriceSet"), currency, "subtotalPriceSet"),
        total_tax=_bag(n.get("totalTaxSet"), currency, "totalTaxSet"),
        total=_bag(n.get("totalPriceSet"), currency, "totalPriceSet"),
        shipping_lines=shipping,
        discounts=discounts,
        taxes=taxes,
        processed_at=_opt_time(n.get("processedAt"), "processedAt"),
        cancelled_at=_opt_time(n.get("cancelledAt"), "cancelledAt"),
        closed_at=_opt_time(n.get("closedAt"), "closedAt"),
        test=bool(n.get("test")),
        email=_text(n.get("email") or customer.get("email")),
        customer_name=name,
        shipping_address=shipping_address,
        billing_address=_address_graphql(n.get("billingAddress")),
        tags=tuple(n.get("tags") or ()),
        note=_text(n.get("note")),
        custom_fields=tuple((_text(a["key"]), _text(a.get("value"))) for a in n.get("customAttributes") or []),
        raw=n,
    )


def _rest(o: Mapping[str, Any]) -> Order:
    currency = o.get("currency")
    if not isinstance(currency, str):
        raise _Problem("currency is missing")
    _check_currency(currency)
    lines = tuple(
        OrderLine(
            external_id=str(li["id"]),
            sku=li.get("sku") or None,
            title=_text(li.get("name") or li.get("title")),
            quantity=int(li["quantity"]),
            unit_price=_money(li.get("price"), currency, f"line {li['id']} price"),
            product_id=None if li.get("product_id") is None else str(li["product_id"]),
            variant_id=None if li.get("variant_id") is None else str(li["variant_id"]),
            properties=tuple((_text(p["name"]), _text(p.get("value"))) for p in li.get("properties") or []),
        )
        for li in o.get("line_items") or []
    )
    shipping = tuple(
        ShippingLine(
            _text(s.get("title")),
            s.get("code") or None,
            _money(s.get("price"), currency, "shipping price"),
            s.get("source"),
        )
        for s in o.get("shipping_lines") or []
    )
    discounts = tuple(
        Discount(_text(d.get("code")), _money(d.get("amount"), currency, "discount amount"), _text(d.get("type")))
        for d in o.get("discount_codes") or []
    )
    taxes = tuple(
        TaxLine(
            _text(t.get("title")),
            Decimal(str(t.get("rate") or 0)),
            _money(t.get("price"), currency, "tax price"),
        )
        for t in o.get("tax_lines") or []
    )
    customer = o.get("customer") or {}
    shipping_address = _address_rest(o.get("shipping_address"))
    name = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p)
    if not name and shipping_address is not None:
        name = shipping_address.name
    fin = o.get("financial_status")
    tags = o.get("tags") or ""
    return Order(
        external_id=str(o["id"]),
        number=_text(o.get("name")),
        currency=currency,
        created_at=parse_time(o.get("created_at"), "created_at"),
        updated_at=parse_time(o.get("updated_at"), "updated_at"),
        payment_status=PaymentStatus(fin) if fin in _PAYMENT else PaymentStatus.UNKNOWN,
        fulfilment_status=_FULFILMENT_REST.get(o.get("fulfillment_status"), FulfilmentStatus.UNKNOWN),
        lines=lines,
        subtotal=_money(o.get("subtotal_price"), currency, "subtotal_price"),
        total_tax=_money(o.get("total_tax"), currency, "total_tax"),
        total=_money(o.get("total_price"), currency, "total_price"),
        shipping_lines=shipping,
        discounts=discounts,
        taxes=taxes,
        processed_at=_opt_time(o.get("processed_at"), "processed_at"),
        cancelled_at=_opt_time(o.get("cancelled_at"), "cancelled_at"),
        closed_at=_opt_time(o.get("closed_at"), "closed_at"),
        test=bool(o.get("test")),
        email=_text(o.get("email") or customer.get("email")),
        customer_name=name,
        shipping_address=shipping_address,
        billing_address=_address_rest(o.get("billing_address")),
        tags=tuple(t.strip() for t in tags.split(",") if t.strip()) if isinstance(tags, str) else tuple(tags),
        note=_text(o.get("note")),
        custom_fields=tuple((_text(a["name"]), _text(a.get("value"))) for a in o.get("note_attributes") or []),
        raw=o,
    )
