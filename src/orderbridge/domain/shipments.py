"""Shipments reported by a destination and the fulfilment pushes they cause on the channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orderbridge.domain import reasons
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
    return found
