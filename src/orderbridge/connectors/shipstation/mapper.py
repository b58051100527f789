"""Pure mapping between OrderBridge's domain and ShipStation V1 JSON (no I/O, no clock).

Outgoing: :func:`order_body` turns an :class:`OutgoingOrder` into a ``createorder`` body. Money
stays ``Decimal`` (the client serialises it with :mod:`orderbridge.exactjson`, so ``19.99`` is
sent as the JSON number ``19.99``, never via ``float``). SKUs are the *destination* SKUs resolved
by the pipeline; carrier/service come from the resolved shipping mapping. ``orderKey`` is the
stable per-(order, destination) key, which is what makes reposting an update instead of a
duplicate.

Limits: :func:`fit` holds every field :data:`FIELD_LIMITS` names to its documented length before
the body leaves (decision 47). ShipStation's V1 reference gives no lengths; its Custom Store order
format (the same order records, imported as XML) does, and those are used, the stricter where its
pages disagree; where it is silent too the limit is decided here and marked so. Lengths are
counted as ShipStation (.NET) counts them: UTF-16 code units, so an emoji counts two. What is over
its limit is, by what the field means:

- *descriptive text* (names, company, item names, option names, notes, the requested service, the
  billing address) is **shortened** — cut at the limit, ending in ``…``, never inside a surrogate
  pair — and the order's timeline says so;
- *optional identity fields* (``customerUsername``, ``customerEmail``) and the billing address's
  codes are **left out**: a cut e-mail or postal code would be a wrong one, and ShipStation ships
  without them;
- *what the warehouse or the carrier acts on* (order number and key, line keys, SKUs, option
  values, the ship-to address, carrier and service codes) is never cut: the order is **held**
  with ``destination_field_too_long`` naming the field, and nothing is sent.

Incoming: :func:`shipment_from` turns a ``/shipments`` record into a domain :class:`Shipment`.

Time: ShipStation V1 reads and writes *naive* timestamps that mean US Pacific time (its server
zone), not UTC. Every conversion therefore goes through :func:`to_remote_time` /
:func:`parse_remote_time` with the connection's ``timezone`` setting; aware timestamps (with an
offset) are honoured as given. For the ambiguous hour when DST ends, naive values are read with
``fold=0`` (the earlier instant), which can only make a cursor earlier — re-listing a few
shipments, never skipping one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from enum import StrEnum
from typing import Any

from orderbridge.connectors.base import OutgoingOrder
from orderbridge.domain import limits
from orderbridge.domain.order import Address
from orderbridge.domain.shipments import Shipment, ShipmentLine

AWAITING_SHIPMENT = "awaiting_shipment"
#: a cancelled order is re-posted with this status (issue #15: createorder updates by orderKey)
CANCELLED = "cancelled"

Json = dict[str, Any]


def to_remote_time(when: datetime, tz: tzinfo) -> str:
    """An aware instant as ShipStation's naive local timestamp (microsecond precision)."""
    if when.tzinfo is None:
        raise ValueError(f"refusing naive datetime {when.isoformat()}: pass an aware UTC value")
    return when.astimezone(tz).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def parse_remote_time(text: str, tz: tzinfo) -> datetime:
    """A ShipStation timestamp (naive = ``tz``; up to 7 fractional digits) as aware UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def address(value: Address | None, *, fallback_name: str = "") -> Json:
    if value is None:
        return {"name": fallback_name or None}
    return {
        "name": value.name or fallback_name or None,
        "company": value.company or None,
        "street1": value.address1 or None,
        "street2": value.address2 or None,
        "city": value.city or None,
        "state": value.province_code or None,
        "postalCode": value.postal_code or None,
        "country": value.country_code or None,
        "phone": value.phone or None,
    }


def order_body(outgoing: OutgoingOrder, *, tz: tzinfo, store_id: int | None = None) -> Json:
    """The ``createorder`` body for one order version."""
    resolved = outgoing.resolved
    order = resolved.order
    destination_skus = {line.line_key: line.destination_sku for line in resolved.lines}
    # only what is left to fulfil: lines the channel fulfilled already are not shipped again
    items = [
        {
            "lineItemKey": line.external_id,
            "sku": destination_skus.get(line.external_id, line.sku),
            "name": line.title,
            "quantity": line.open_quantity,
            "unitPrice": line.unit_price.amount,
            **({"taxAmount": line.tax.amount} if line.tax is not None else {}),
            **({"options": [{"name": k, "value": v} for k, v in line.properties]} if line.properties else {}),
        }
        for line in order.lines
        if line.open_quantity > 0
    ]
    paid_at = order.processed_at or order.created_at
    body: Json = {
        "orderNumber": order.number,
        "orderKey": outgoing.order_key,
        "orderDate": to_remote_time(order.created_at, tz),
        "paymentDate": to_remote_time(paid_at, tz),
        "orderStatus": CANCELLED if order.cancelled_at is not None else AWAITING_SHIPMENT,
        "customerUsername": order.email or None,
        "customerEmail": order.email or None,
        "billTo": address(order.billing_address or order.shipping_address, fallback_name=order.customer_name),
        "shipTo": address(order.shipping_address, fallback_name=order.customer_name),
        "items": items,
        "amountPaid": order.total.amount,
        "taxAmount": order.total_tax.amount,
        "shippingAmount": order.shipping_total.amount,
        "customerNotes": order.note or None,
        "requestedShippingService": order.shipping_method,
        "carrierCode": resolved.service.carrier if resolved.service else None,
        "serviceCode": resolved.service.service if resolved.service else None,
    }
    if store_id is not None:
        body["advancedOptions"] = {"storeId": store_id}
    return body


# --- field limits ------------------------------------------------------------------------------


class Over(StrEnum):
    """What happens to a field over its limit."""

    SHORTEN = "shorten"
    OMIT = "omit"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class FieldLimit:
    #: where the field is in the body: ``shipTo.street1``, ``items[].sku`` (``[]``: each element)
    field: str
    limit: int
    over: Over
    source: str


_CS = "Custom Store spec"
_ADDRESS = (
    # (field, limit, over for shipTo, over for billTo, source)
    ("name", 100, Over.SHORTEN, Over.SHORTEN, f"{_CS}: Name 1..100"),
    ("company", 100, Over.SHORTEN, Over.SHORTEN, f"{_CS}: Company 0..100"),
    ("street1", 100, Over.HOLD, Over.SHORTEN, f"{_CS} XSD: Address1 100 (ShipNotify: 200; the stricter)"),
    ("street2", 100, Over.HOLD, Over.SHORTEN, f"{_CS} XSD: Address2 100"),
    ("city", 100, Over.HOLD, Over.SHORTEN, f"{_CS} XSD: City 100"),
    ("state", 100, Over.HOLD, Over.SHORTEN, f"{_CS} XSD: State 100"),
    ("postalCode", 50, Over.HOLD, Over.OMIT, f"{_CS} XSD: PostalCode 50"),
    ("country", 2, Over.HOLD, Over.OMIT, f"{_CS} XSD: Country exactly 2"),
    ("phone", 50, Over.HOLD, Over.OMIT, f"{_CS} XSD: Phone 50"),
)

#: every string field the mapper sends, with ShipStation's limit (decision 47)
FIELD_LIMITS: tuple[FieldLimit, ...] = (
    FieldLimit("orderNumber", 50, Over.HOLD, f"{_CS}: OrderNumber 1..50"),
    FieldLimit("orderKey", 50, Over.HOLD, f"{_CS} XSD: OrderID 50"),
    FieldLimit("customerUsername", 50, Over.OMIT, f"{_CS}: CustomerCode 1..50"),
    FieldLimit("customerEmail", 254, Over.OMIT, "decided: RFC 5321's longest address (the spec gives none)"),
    *(FieldLimit(f"shipTo.{name}", limit, ship, source) for name, limit, ship, _bill, source in _ADDRESS),
    *(FieldLimit(f"billTo.{name}", limit, bill, source) for name, limit, _ship, bill, source in _ADDRESS),
    FieldLimit("items[].lineItemKey", 50, Over.HOLD, f"{_CS} XSD: LineItemID 50"),
    FieldLimit("items[].sku", 100, Over.HOLD, f"{_CS} XSD: SKU 100"),
    FieldLimit("items[].name", 200, Over.SHORTEN, f"{_CS} XSD: Name 200"),
    FieldLimit("items[].options[].name", 100, Over.SHORTEN, "decided (the XSD's 30 is for its XML import)"),
    FieldLimit("items[].options[].value", 255, Over.HOLD, "decided: personalisation is never cut"),
    FieldLimit("customerNotes", 1000, Over.SHORTEN, f"{_CS}: CustomerNotes 0..1000"),
    FieldLimit("requestedShippingService", 100, Over.SHORTEN, f"{_CS} XSD: ShippingMethod 100 (reference: 1000)"),
    FieldLimit("carrierCode", 50, Over.HOLD, f"{_CS} ShipNotify: Carrier 0..50"),
    FieldLimit("serviceCode", 50, Over.HOLD, f"{_CS} ShipNotify: Service 0..50"),
)

ELLIPSIS = "…"


def utf16_length(text: str) -> int:
    """Length as ShipStation counts it: UTF-16 code units (a character beyond the BMP is two)."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-16 units, ending in ``…``; never splits a character."""
    if utf16_length(text) <= limit:
        return text
    budget = limit - 1  # room for the ellipsis
    out: list[str] = []
    for ch in text:
        units = 2 if ord(ch) > 0xFFFF else 1
        if units > budget:
            break
        out.append(ch)
        budget -= units
    return "".join(out).rstrip() + ELLIPSIS


@dataclass(frozen=True, slots=True)
class Overflow:
    """One field over its limit: the pattern, where it was (``items[1].sku``), its length and value."""

    limit: FieldLimit
    where: str
    length: int
    value: str


@dataclass(slots=True)
class Fitted:
    """A body within every limit, with what was shortened or left out; ``too_long`` non-empty
    means the order must be held and the body not sent."""

    body: Json
    shortened: list[Overflow] = field(default_factory=list)
    omitted: list[Overflow] = field(default_factory=list)
    too_long: list[Overflow] = field(default_factory=list)

    def notes(self) -> tuple[str, ...]:
        """One timeline sentence per change."""
        return tuple(
            [
                f"ShipStation: {o.where} shortened to {o.limit.limit} characters (it had {o.length})"
                for o in self.shortened
            ]
            + [
                f"ShipStation: {o.where} left out — {o.length} characters, over its limit of {o.limit.limit}"
                for o in self.omitted
            ]
        )


def _group_limits() -> tuple[tuple[tuple[str, ...], tuple[tuple[str, int, FieldLimit], ...]], ...]:
    """The limits grouped by the container they sit in (``()``, ``("shipTo",)``, ``("items[]",)``…),
    each as (key, half the limit, limit): a body is walked once per container, not once per field."""
    groups: dict[tuple[str, ...], list[tuple[str, int, FieldLimit]]] = {}
    for limit in FIELD_LIMITS:
        *container, key = limit.field.split(".")
        groups.setdefault(tuple(container), []).append((key, limit.limit // 2, limit))
    return tuple((container, tuple(keys)) for container, keys in groups.items())


_GROUPS = _group_limits()


def _containers(node: Any, parts: tuple[str, ...], where: str, out: list[tuple[dict[str, Any], str]]) -> None:
    """Append each dict the container pattern ``parts`` reaches in ``node``, with its concrete path."""
    if type(node) is not dict:
        return
    if not parts:
        out.append((node, where))
        return
    head, rest = parts[0], parts[1:]
    many = head.endswith("[]")
    key = head[:-2] if many else head
    here = f"{where}.{key}" if where else key
    child = node.get(key)
    if not many:
        _containers(child, rest, here, out)
    elif type(child) is list:
        for i, element in enumerate(child):
            _containers(element, rest, f"{here}[{i}]", out)


def fit(body: Json) -> Fitted:
    """Hold ``body`` (freshly built by :func:`order_body`; changed in place) to :data:`FIELD_LIMITS`."""
    fitted = Fitted(body)
    found: list[tuple[dict[str, Any], str]] = []
    for parts, keys in _GROUPS:
        found.clear()
        _containers(body, parts, "", found)
        for container, where in found:
            for key, half, limit in keys:
                value = container.get(key)
                if type(value) is not str or len(value) <= half:
                    continue  # fast path: even all-astral text this short is within the limit
                length = utf16_length(value)
                if length <= limit.limit:
                    continue
                overflow = Overflow(limit, f"{where}.{key}" if where else key, length, value)
                if limit.over is Over.SHORTEN:
                    container[key] = shorten(value, limit.limit)
                    fitted.shortened.append(overflow)
                elif limit.over is Over.OMIT:
                    container[key] = None
                    fitted.omitted.append(overflow)
                else:
                    fitted.too_long.append(overflow)
    return fitted


def error_message(body: Any, fallback: str) -> str:
    """ShipStation's own words from an error body (``ExceptionMessage``, ``ModelState``, ``Message``)."""
    if not isinstance(body, Mapping):
        return fallback
    detail = body.get("ExceptionMessage")
    if isinstance(detail, str) and detail:
        return detail
    state = body.get("ModelState")
    if isinstance(state, Mapping) and state:
        return "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in state.items())
    message = body.get("Message")
    return message if isinstance(message, str) and message else fallback


def shipment_created(doc: Mapping[str, Any], tz: tzinfo) -> datetime:
    return parse_remote_time(str(doc["createDate"]), tz)


def shipment_from(doc: Mapping[str, Any], tz: tzinfo) -> Shipment:
    """A ``/shipments`` record as a domain :class:`Shipment` (ship date as aware UTC).

    ``shipDate`` is a calendar date in ShipStation's zone; when it is the day the label was
    created, the label's ``createDate`` is the more precise instant, otherwise the start of that
    day in ShipStation's zone is used.
    """
    ship_date: datetime | None = None
    created = shipment_created(doc, tz) if doc.get("createDate") else None
    raw_date = doc.get("shipDate")
    if raw_date:
        day = date.fromisoformat(str(raw_date)[:10])
        if created is not None and created.astimezone(tz).date() == day:
            ship_date = created
        else:
            ship_date = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    else:
        ship_date = created
    lines = tuple(
        ShipmentLine(
            line_key=_str_or_none(item.get("lineItemKey")),
            sku=_str_or_none(item.get("sku")),
            quantity=int(item.get("quantity") or 0),
        )
        for item in doc.get("shipmentItems") or ()
    )
    return Shipment(
        external_id=str(doc["shipmentId"]),
        order_key=str(doc.get("orderKey") or ""),
        tracking_number=_str_or_none(doc.get("trackingNumber")),
        carrier=_str_or_none(doc.get("carrierCode")),
        service=_str_or_none(doc.get("serviceCode")),
        ship_date=ship_date,
        voided=bool(doc.get("voided")),
        lines=lines,
    )


def _str_or_none(value: Any) -> str | None:
    """Text from ShipStation as the ledger can store it: ``None`` for nothing, and for a value that
    is neither text nor a whole number (a list is no tracking number); a NUL becomes U+FFFD, which
    PostgreSQL's text columns would refuse and so fail the whole shipment poll (adversarial suite)."""
    if value is None or value == "" or isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return limits.storable(str(value))
