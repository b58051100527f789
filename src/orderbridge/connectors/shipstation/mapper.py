"""Pure mapping between OrderBridge's domain and ShipStation V1 JSON (no I/O, no clock).

Outgoing: :func:`order_body` turns an :class:`OutgoingOrder` into a ``createorder`` body. Money
stays ``Decimal`` (the client serialises it with :mod:`orderbridge.exactjson`, so ``19.99`` is
sent as the JSON number ``19.99``, never via ``float``). SKUs are the *destination* SKUs resolved
by the pipeline; carrier/service come from the resolved shipping mapping. ``orderKey`` is the
stable per-(order, destination) key, which is what makes reposting an update instead of a
duplicate.

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
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from orderbridge.connectors.base import OutgoingOrder
from orderbridge.domain.order import Address
from orderbridge.domain.shipments import Shipment, ShipmentLine

AWAITING_SHIPMENT = "awaiting_shipment"

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
        "orderStatus": AWAITING_SHIPMENT,
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
    if value is None or value == "":
        return None
    return str(value)
