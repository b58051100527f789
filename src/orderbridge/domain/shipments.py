"""Shipments reported by a destination and the fulfilment pushes they cause on the channel.

:func:`fulfilment_lines` matches a shipment's lines to the order's, by line key (what the hub posted
as the destination's line key) and else by a SKU that names exactly one line. It is all or nothing:
a line that matches nothing, matches ambiguously or has no positive quantity holds the whole push
with a reason naming it — a fulfilment without that line would under-report what shipped, and the
channel reads a fulfilment without lines as "everything".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orderbridge.domain import reasons
from orderbridge.domain.order import Order
from orderbridge.domain.reasons import Reason


@dataclass(frozen=True, slots=True)
class ShipmentLine:
    line_key: str | None
    sku: str | None
    quantity: int


@dataclass(frozen=True, slots=True)
class Shipment:
    external_id: str
    order_key: str
    tracking_number: str | None
    carrier: str | None
    service: str | None
    ship_date: datetime | None
    voided: bool
    lines: tuple[ShipmentLine, ...]
    tracking_url: str | None = None


def push_hold_reasons(shipment: Shipment) -> list[Reason]:
    """What stops a shipment from being pushed to the channel as a fulfilment."""
    found: list[Reason] = []
    if not shipment.tracking_number:
        found.append(reasons.tracking_number_missing(shipment.external_id))
    if not shipment.carrier:
        found.append(reasons.carrier_missing(shipment.external_id))
    # a replacement character is where the destination sent something no carrier's code or number
    # holds (a NUL, made storable at the boundary): pushing it would tell the customer nonsense
    for name, value in (("tracking_number", shipment.tracking_number), ("carrier", shipment.carrier)):
        if value and "\ufffd" in value:
            found.append(reasons.invalid_text(f"shipment {shipment.external_id} {name}", value))
    return found


def fulfilment_lines(shipment: Shipment, order: Order) -> tuple[tuple[tuple[str, int], ...], list[Reason]]:
    """The shipment as ``(order line id, quantity)`` pairs (lines named twice summed), or the reasons
    it cannot be pushed as it is — every unusable line named, and the pairs then empty."""
    if not shipment.lines:
        return (), [reasons.shipment_without_lines(shipment.external_id)]
    by_key = {line.external_id: line for line in order.lines}
    by_sku: dict[str, list[str]] = {}
    for line in order.lines:
        if line.sku:
            by_sku.setdefault(line.sku, []).append(line.external_id)
    found: list[Reason] = []
    quantities: dict[str, int] = {}
    for ln in shipment.lines:
        why = ""
        target: str | None = None
        if ln.line_key and ln.line_key in by_key:
            target = ln.line_key
        elif ln.sku and len(by_sku.get(ln.sku, ())) == 1:
            target = by_sku[ln.sku][0]
        elif ln.sku and len(by_sku.get(ln.sku, ())) > 1:
            why = f"matches {len(by_sku[ln.sku])} lines of order {order.number} by SKU and names none by line key"
        else:
            why = f"matches no line of order {order.number}"
        if target is not None and ln.quantity <= 0:
            why, target = "has no quantity to fulfil", None
        if target is None:
            found.append(reasons.shipment_line_unmatched(shipment.external_id, ln.line_key, ln.sku, ln.quantity, why))
            continue
        quantities[target] = quantities.get(target, 0) + ln.quantity
    if found:
        return (), found
    return tuple(quantities.items()), []
