"""Shipments reported by destinations, unique ``(destination_id, external_id)``. A shipment's state
is its ``voided`` flag (:data:`orderbridge.domain.states.SHIPMENT`): written here only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from orderbridge.domain.states import SHIPMENT, ShipmentState
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.tables import shipments


def state(voided: bool) -> ShipmentState:
    return ShipmentState.VOIDED if voided else ShipmentState.SHIPPED


def find(conn: Connection, destination_id: int, external_id: str) -> Row[Any] | None:
    return conn.execute(
        select(shipments).where(shipments.c.destination_id == destination_id, shipments.c.external_id == external_id)
    ).one_or_none()


def insert(conn: Connection, values: Mapping[str, Any]) -> bool:
    """A shipment seen for the first time; False when another writer stored it first."""
    SHIPMENT.check(None, state(bool(values["voided"])))
    done = conn.execute(
        dialect_insert(conn)(shipments)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["destination_id", "external_id"])
    )
    return bool(done.rowcount)


def update_changed(conn: Connection, current: Row[Any], changed: Mapping[str, Any], now: datetime) -> None:
    """Write what the destination changed on a shipment it reported before (``current``: its row)."""
    if "voided" in changed:
        SHIPMENT.check(state(bool(current.voided)), state(bool(changed["voided"])))
    conn.execute(update(shipments).where(shipments.c.id == current.id).values(updated_at=now, **changed))
