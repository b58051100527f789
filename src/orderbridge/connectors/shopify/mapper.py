"""Pure mapping from Shopify order JSON to the canonical :class:`~orderbridge.domain.order.Order`.

Shopify speaks two shapes, read by three entry points: :func:`order_from_graphql` reads a GraphQL
``Order`` node dict (``list_changed`` pages, ``fetch_order``; connections as Relay ``edges`` or
``nodes``), :func:`order_from_bulk` reads one order of a bulk export from its JSONL lines as bytes
(decoded straight into the same typed nodes, see "GraphQL: typed nodes" below), and
:func:`order_from_rest` reads the REST/webhook ``order`` JSON. All are total: anything unreadable
becomes an :class:`UnreadableOrder` naming the problem, so one bad record never breaks a page and is
never dropped; only a bulk file that is itself broken raises (:class:`BulkExportError`). Money is
parsed from strings into ``Decimal``; times become aware UTC.

Identity: an order's id has one form, its number as text (:func:`order_id`): the REST number and
the GraphQL gid (``gid://shopify/Order/N``) of one order are the same order wherever an id enters
(webhook, page, bulk export, fetch, audit stamp). A record without a usable id becomes an
UnreadableOrder with an empty ``external_id``, which the hub never stores (it could only be merged
into another order); it is counted and reported instead. Bulk export children are told apart by
their ``__typename`` (which :data:`~orderbridge.connectors.shopify.connector.BULK_QUERY` selects),
never by which fields they carry: a child of a type the mapper does not know makes its order
unreadable, so it is never filed as something it is not."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import orjson

from orderbridge.connectors.base import ChannelRecord, UnreadableOrder
from orderbridge.domain import limits
from orderbridge.domain.money import Money, MoneyError
from orderbridge.domain.order import (
    Address,
    Discount,
    FulfilmentStatus,
    Order,
    OrderLine,
    PaymentStatus,
    RawJson,
    ShippingLine,
    TaxLine,
    fulfillable,
)
from orderbridge.errors import UnusableId

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
_PAYMENT = frozenset(p.value for p in PaymentStatus if p is not PaymentStatus.UNKNOWN)
_PAYMENT_GRAPHQL = {p.value: p for p in PaymentStatus if p is not PaymentStatus.UNKNOWN}
_ZERO = Decimal(0)
_UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, MoneyError)


class _Problem(ValueError):
    """A named reason the record cannot be read."""


ORDER_GID = "gid://shopify/Order/"
#: Shopify ids are 64-bit integers
_MAX_ID = 2**63 - 1


def order_id(value: Any) -> str:
    """The one form of a Shopify order id — its number as text — from the number (an ``int`` or a
    string of digits) or the gid ``gid://shopify/Order/N``; :class:`UnusableId` for anything else
    (missing, empty, another resource's gid, not a positive 64-bit number)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value[len(ORDER_GID) :] if value.startswith(ORDER_GID) else value
        if text.isascii() and text.isdigit() and len(text) <= limits.EXTERNAL_ID.max_chars:
            number = int(text)
    if number is None or not 0 < number <= _MAX_ID:
        shown = "missing" if value is None else repr(limits.shorten(str(value), limits.QUOTE_CHARS))
        raise UnusableId(
            f"the order has no usable Shopify id ({shown}): it needs the order's number or its {ORDER_GID}<number> gid",
            hint="Nothing was stored. Send the order with its id; the next sync reads the store's own copy.",
        )
    return str(number)


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
    """An UnreadableOrder over ``raw``; its ``external_id`` is empty when ``raw`` has no usable id
    (the hub then refuses it rather than store it under a made-up key)."""
    try:
        external_id = order_id(raw.get("legacyResourceId") or raw.get("id"))
    except (UnusableId, AttributeError):
        external_id = ""
    try:
        updated = parse_time(raw.get("updatedAt" if graphql else "updated_at"), "updated_at")
    except (_Problem, AttributeError):
        updated = None
    number = raw.get("name") if isinstance(raw, Mapping) else None
    return UnreadableOrder(external_id, _text(number), updated, problem, raw)


def _describe(exc: Exception) -> str:
    if isinstance(exc, UnusableId):
        return exc.message
    if isinstance(exc, KeyError):
        return f"field {exc.args[0]!r} is missing"
    return str(exc) or type(exc).__name__


def order_from_rest(data: Mapping[str, Any]) -> ChannelRecord:
    """A REST/webhook ``order`` JSON → Order, or UnreadableOrder naming what could not be read."""
    try:
        return _rest(data)
    except (*_UNREADABLE, UnusableId) as exc:
        return _unreadable(data, _describe(exc), graphql=False)


# --- GraphQL: typed nodes ------------------------------------------------------------------------
# The selection the connector asks for, as msgspec Structs: a bulk export's lines are decoded
# straight into them in C (no dict per JSON object, nothing for the collector to track), and a
# page's node dicts are converted into the same types, so both paths share one mapping. Types are
# lenient where Shopify is (nullable almost everywhere); a value of the wrong JSON type fails the
# decode with msgspec's message naming the path (``Expected `int`, got `str` - at `$.quantity` ``),
# which becomes the UnreadableOrder's problem.


class _Amount(msgspec.Struct, gc=False):
    amount: str | float | int | None = None


class _Bag(msgspec.Struct, gc=False):
    shopMoney: _Amount | None = None


class _Address(msgspec.Struct, gc=False):
    name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    zip: str | None = None
    provinceCode: str | None = None
    countryCodeV2: str | None = None
    phone: str | None = None


class _Customer(msgspec.Struct, gc=False):
    email: str | None = None
    firstName: str | None = None
    lastName: str | None = None


class _Attribute(msgspec.Struct, gc=False):
    key: str | None = None
    value: str | None = None


class _Tax(msgspec.Struct, gc=False):
    title: str | None = None
    rate: float | int | str | None = None
    priceSet: _Bag | None = None


class _Ref(msgspec.Struct, gc=False):
    id: str | int


class OrderNode(msgspec.Struct, gc=False):
    """A GraphQL ``Order`` (its connections — line items, shipping lines — read separately)."""

    id: str | int | None = None  # required, but checked by order_id (a clear refusal, not a decode error)
    legacyResourceId: str | int | None = None
    name: str | None = None
    email: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    processedAt: str | None = None
    cancelledAt: str | None = None
    closedAt: str | None = None
    test: bool | None = None
    displayFinancialStatus: str | None = None
    displayFulfillmentStatus: str | None = None
    currencyCode: str | None = None
    subtotalPriceSet: _Bag | None = None
    totalPriceSet: _Bag | None = None
    totalTaxSet: _Bag | None = None
    totalDiscountsSet: _Bag | None = None
    totalRefundedSet: _Bag | None = None
    tags: list[str] | None = None
    note: str | None = None
    discountCodes: list[str | None] | None = None
    customAttributes: list[_Attribute] | None = None
    shippingAddress: _Address | None = None
    billingAddress: _Address | None = None
    customer: _Customer | None = None
    taxLines: list[_Tax] | None = None


class ChildNode(msgspec.Struct, gc=False):
    """A ``LineItem`` or a ``ShippingLine`` (a bulk export's child line carries its ``__parentId``
    and, as the connector selects it, its ``__typename``)."""

    id: str | int | None = None
    parent_id: str | None = msgspec.field(default=None, name="__parentId")
    typename: str | None = msgspec.field(default=None, name="__typename")
    sku: str | None = None
    name: str | None = None
    title: str | None = None
    quantity: int | None = None
    #: what is left to fulfil (REST ``fulfillable_quantity``); ``currentQuantity`` leaves out removed units
    unfulfilledQuantity: int | None = None
    currentQuantity: int | None = None
    variant: _Ref | None = None
    product: _Ref | None = None
    originalUnitPriceSet: _Bag | None = None
    customAttributes: list[_Attribute] | None = None
    code: str | None = None
    source: str | None = None
    originalPriceSet: _Bag | None = None


_decode_order = msgspec.json.Decoder(OrderNode).decode
_decode_child = msgspec.json.Decoder(ChildNode).decode
#: a bulk child's ``__typename`` → the order connection it belongs to
CHILD_CONNECTIONS = {"LineItem": "lineItems", "ShippingLine": "shippingLines"}


def order_from_graphql(node: Mapping[str, Any]) -> ChannelRecord:
    """A GraphQL ``Order`` node dict → Order, or UnreadableOrder naming what could not be read."""
    try:
        order = msgspec.convert(node, OrderNode)
        lines = [msgspec.convert(li, ChildNode) for li in _items(node.get("lineItems"))]
        shipping = [msgspec.convert(sl, ChildNode) for sl in _items(node.get("shippingLines"))]
        return _graphql(order, lines, shipping, node)
    except msgspec.ValidationError as exc:
        return _unreadable(node, str(exc), graphql=True)
    except (*_UNREADABLE, UnusableId) as exc:
        return _unreadable(node, _describe(exc), graphql=True)


def is_bulk_child(line: bytes) -> bool:
    """Whether a bulk JSONL line is a child object: it has the *key* ``__parentId`` (a key is the
    only place ``"__parentId":`` can occur — as a value, say a custom attribute named so, it is
    followed by ``,`` or ``}``; inside a string its quotes are escaped)."""
    return b'"__parentId":' in line


class BulkExportError(Exception):
    """The bulk result file itself is broken (not JSON, a child outside its parent's block): the
    export must be fetched again — nothing in it can be trusted to belong to the order it follows."""


def order_from_bulk(line: bytes, children: list[bytes]) -> ChannelRecord:
    """One order of a bulk export — its JSONL line and its children's lines, as received — → Order.

    The raw payload kept is those bytes spliced into one JSON object (the order line with
    ``lineItems``/``shippingLines`` arrays of the child lines, each still carrying its
    ``__parentId``): exactly what Shopify sent, without parsing it into dicts to re-serialise.
    An order that cannot be read becomes an UnreadableOrder over the same payload as plain JSON.
    """
    try:
        order = _decode_order(line)
        nodes = [_decode_child(c) for c in children]
    except msgspec.ValidationError as exc:
        return _unreadable_bulk(line, children, str(exc))
    except msgspec.DecodeError as exc:
        raise BulkExportError("a line of the bulk result is not JSON (truncated?)") from exc
    try:
        order_id(order.legacyResourceId or order.id)
    except UnusableId as exc:  # its children cannot be told from another's: the whole block is refused
        return _unreadable_bulk(line, children, exc.message)
    items: list[ChildNode] = []
    shipping: list[ChildNode] = []
    kinds: list[bool] = []
    for c in nodes:
        if c.parent_id != order.id:
            raise BulkExportError(f"a child of {c.parent_id} is outside its parent's block")
        if c.typename == "LineItem":
            items.append(c)
        elif c.typename == "ShippingLine":
            shipping.append(c)
        else:
            shown = "no __typename" if c.typename is None else f"__typename {c.typename!r}"
            return _unreadable_bulk(
                line,
                children,
                f"the bulk export has a child line with {shown}, which is neither a line item nor a shipping line",
            )
        kinds.append(c.typename == "ShippingLine")
    try:
        return _graphql(order, items, shipping, _spliced(line, children, kinds))
    except (*_UNREADABLE, UnusableId) as exc:
        return _unreadable_bulk(line, children, _describe(exc))


def _unreadable_bulk(line: bytes, children: list[bytes], problem: str) -> UnreadableOrder:
    node = orjson.loads(line)
    if not isinstance(node, dict):
        node = {"value": node}
    for c in children:
        child = orjson.loads(c)
        kind = child.get("__typename") if isinstance(child, dict) else None
        node.setdefault(CHILD_CONNECTIONS.get(str(kind), "unclassifiedChildren"), []).append(child)
    return _unreadable(node, problem, graphql=True)


def _spliced(line: bytes, children: list[bytes], shipping: list[bool]) -> RawJson:
    body = line.strip()
    sep = b"" if not body[1:-1].strip() else b","
    items = b",".join([c for c, s in zip(children, shipping, strict=True) if not s])
    ships = b",".join([c for c, s in zip(children, shipping, strict=True) if s])
    return RawJson(body[:-1] + sep + b'"lineItems":[' + items + b'],"shippingLines":[' + ships + b"]}")


def _amount(bag: _Bag | None, currency: str, field: str) -> Money:
    if bag is None or bag.shopMoney is None:
        return Money(_ZERO, currency)
    return _money(bag.shopMoney.amount, currency, field)


def _gid(value: str | int | None, what: str) -> str:
    if value is None:
        raise _Problem(f"{what} has no id")
    return legacy_id(value)


def _time(value: str | None, field: str) -> datetime:
    if value is None:
        raise _Problem(f"{field} is missing")
    return parse_time(value, field)


def _address(a: _Address | None) -> Address | None:
    if a is None:
        return None
    return Address(
        a.name or "",
        a.company or "",
        a.address1 or "",
        a.address2 or "",
        a.city or "",
        a.provinceCode or "",
        a.zip or "",
        a.countryCodeV2 or "",
        a.phone or "",
    )


def _pairs(attributes: list[_Attribute] | None) -> tuple[tuple[str, str], ...]:
    return tuple([(a.key or "", a.value or "") for a in attributes]) if attributes else ()


def _remaining_graphql(li: ChildNode) -> int | None:
    """GraphQL's remainder of a line: ``unfulfilledQuantity``, capped by ``currentQuantity`` (units
    removed by an edit or refund are not to be fulfilled — REST's ``fulfillable_quantity`` leaves them
    out too, so both shapes give the same canonical value)."""
    if li.unfulfilledQuantity is None:
        return li.currentQuantity
    return li.unfulfilledQuantity if li.currentQuantity is None else min(li.unfulfilledQuantity, li.currentQuantity)


def _graphql(n: OrderNode, items: list[ChildNode], shipping_nodes: list[ChildNode], raw: Any) -> Order:
    currency = n.currencyCode
    if currency is None:
        raise _Problem("currencyCode is missing")
    _check_currency(currency)
    lines = []
    for li in items:
        line_id = _gid(li.id, "a line item")
        if li.quantity is None:
            raise _Problem(f"line {line_id} has no quantity")
        lines.append(
            OrderLine(
                line_id,
                li.sku or None,
                li.name or li.title or "",
                li.quantity,
                _amount(li.originalUnitPriceSet, currency, f"line {line_id} price"),
                legacy_id(li.product.id) if li.product else None,
                legacy_id(li.variant.id) if li.variant else None,
                properties=_pairs(li.customAttributes),
                fulfillable_quantity=fulfillable(li.quantity, _remaining_graphql(li)),
            )
        )
    shipping = tuple(
        [
            ShippingLine(
                s.title or "", s.code or None, _amount(s.originalPriceSet, currency, "shipping price"), s.source
            )
            for s in shipping_nodes
        ]
    )
    total_discounts = _amount(n.totalDiscountsSet, currency, "totalDiscountsSet")
    codes = [c for c in n.discountCodes or () if c]
    discounts = tuple(
        [Discount(code, total_discounts if i == 0 else Money(_ZERO, currency)) for i, code in enumerate(codes)]
    )
    taxes = tuple(
        [
            TaxLine(t.title or "", Decimal(str(t.rate or 0)), _amount(t.priceSet, currency, "tax line price"))
            for t in n.taxLines or ()
        ]
    )
    customer = n.customer
    shipping_address = _address(n.shippingAddress)
    name = " ".join(p for p in (customer.firstName, customer.lastName) if p) if customer else ""
    if not name and shipping_address is not None:
        name = shipping_address.name
    fin = (n.displayFinancialStatus or "").lower()
    payment = _PAYMENT_GRAPHQL.get(fin, PaymentStatus.UNKNOWN)
    shipped = n.displayFulfillmentStatus or ""
    fulfilment = _FULFILMENT_GRAPHQL.get(shipped, FulfilmentStatus.UNKNOWN)
    return Order(
        external_id=order_id(n.legacyResourceId or n.id),
        number=n.name or "",
        currency=currency,
        created_at=_time(n.createdAt, "createdAt"),
        updated_at=_time(n.updatedAt, "updatedAt"),
        payment_status=payment,
        fulfilment_status=fulfilment,
        lines=tuple(lines),
        subtotal=_amount(n.subtotalPriceSet, currency, "subtotalPriceSet"),
        total_tax=_amount(n.totalTaxSet, currency, "totalTaxSet"),
        total=_amount(n.totalPriceSet, currency, "totalPriceSet"),
        shipping_lines=shipping,
        discounts=discounts,
        taxes=taxes,
        processed_at=_opt_time(n.processedAt, "processedAt"),
        cancelled_at=_opt_time(n.cancelledAt, "cancelledAt"),
        closed_at=_opt_time(n.closedAt, "closedAt"),
        test=bool(n.test),
        email=n.email or (customer.email if customer else None) or "",
        customer_name=name,
        shipping_address=shipping_address,
        billing_address=_address(n.billingAddress),
        tags=tuple(n.tags or ()),
        note=n.note or "",
        custom_fields=_pairs(n.customAttributes),
        unknown_values=_unknown_values(payment, fin, fulfilment, shipped.lower()),
        refunded=_refunded(_amount(n.totalRefundedSet, currency, "totalRefundedSet")),
        raw=raw,
    )


def _count(value: Any, field: str) -> int:
    """A REST count (a quantity): an integer, or its digits as text. ``int()`` alone would read
    ``2.5`` as 2 and ``true`` as 1 — a quantity the store never sent (adversarial suite)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Problem(f"{field} is {limits.shorten(repr(value), limits.QUOTE_CHARS)}, not a whole number")
    return int(value)


def _opt_int(value: Any, field: str = "count") -> int | None:
    return None if value is None else _count(value, field)


def _unknown_values(
    payment: PaymentStatus, fin: str, fulfilment: FulfilmentStatus, shipped: str
) -> tuple[tuple[str, str], ...]:
    """The channel's own values of the statuses that mapped to ``UNKNOWN`` (kept for the hold)."""
    found = []
    if payment is PaymentStatus.UNKNOWN and fin:
        found.append(("financial_status", fin))
    if fulfilment is FulfilmentStatus.UNKNOWN and shipped:
        found.append(("fulfillment_status", shipped))
    return tuple(found)


def _rest_sku(li: Mapping[str, Any]) -> str | None:
    """A REST line's SKU: text or nothing. Anything else (a list, an object) would reach the SKU
    mappings as a key it cannot be, so the order is unreadable, not stored with it (webhook fuzz)."""
    sku = li.get("sku")
    if sku is None or isinstance(sku, str):
        return sku or None
    raise _Problem(f"line {li.get('id')}: sku is a JSON {type(sku).__name__}, not text")


def _rest(o: Mapping[str, Any]) -> Order:
    currency = o.get("currency")
    if not isinstance(currency, str):
        raise _Problem("currency is missing")
    _check_currency(currency)
    lines = tuple(
        OrderLine(
            external_id=_gid(li.get("id"), "a line item"),  # one form, as GraphQL's: never "None"
            sku=_rest_sku(li),
            title=_text(li.get("name") or li.get("title")),
            quantity=_count(li["quantity"], f"line {li['id']} quantity"),
            unit_price=_money(li.get("price"), currency, f"line {li['id']} price"),
            product_id=None if li.get("product_id") is None else str(li["product_id"]),
            variant_id=None if li.get("variant_id") is None else str(li["variant_id"]),
            properties=tuple((_text(p["name"]), _text(p.get("value"))) for p in li.get("properties") or []),
            fulfillable_quantity=fulfillable(
                _count(li["quantity"], "quantity"),
                _opt_int(li.get("fulfillable_quantity"), f"line {li['id']} fulfillable_quantity"),
            ),
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
    # what GraphQL's `discountCodes` + `totalDiscountsSet` carry, no more: the canonical order must be
    # the same whichever API it was read from, or a webhook and a poll of one version would differ
    # (per-code amounts and types stay in the raw payload)
    total_discounts = _money(o.get("total_discounts"), currency, "total_discounts")
    codes = [
        code for code in (_text(d.get("code")) for d in o.get("discount_codes") or [] if isinstance(d, dict)) if code
    ]
    discounts = tuple(
        [Discount(code, total_discounts if i == 0 else Money(_ZERO, currency)) for i, code in enumerate(codes)]
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
    payment = PaymentStatus(fin) if fin in _PAYMENT else PaymentStatus.UNKNOWN
    shipped = o.get("fulfillment_status")
    fulfilment = _FULFILMENT_REST.get(shipped, FulfilmentStatus.UNKNOWN)
    tags = o.get("tags") or ""
    return Order(
        external_id=order_id(o.get("id")),
        number=_text(o.get("name")),
        currency=currency,
        created_at=parse_time(o.get("created_at"), "created_at"),
        updated_at=parse_time(o.get("updated_at"), "updated_at"),
        payment_status=payment,
        fulfilment_status=fulfilment,
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
        unknown_values=_unknown_values(payment, _text(fin), fulfilment, _text(shipped)),
        refunded=_refunded(_rest_refunded(o.get("refunds"), currency)),
        raw=o,
    )


def _refunded(amount: Money) -> Money | None:
    """The order's refunded amount, ``None`` when nothing was refunded: an order never refunded has
    the canonical form (and content hash) it had before refunds were read (decision 153)."""
    return amount if amount.amount else None


def _rest_refunded(refunds: Any, currency: str) -> Money:
    """REST's refunded amount: the successful ``refund`` transactions of the order's refunds — what
    GraphQL's ``totalRefundedSet`` sums (a webhook and a poll of one version must map alike)."""
    total = Money(_ZERO, currency)
    for refund in refunds if isinstance(refunds, list) else ():
        if not isinstance(refund, dict):
            continue
        for tx in refund.get("transactions") or ():
            if isinstance(tx, dict) and tx.get("kind") == "refund" and tx.get("status") == "success":
                total = total + _money(tx.get("amount"), currency, "refund amount")
    return total
