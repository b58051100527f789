"""The timeline (``events``): append-only — a trigger refuses UPDATE and DELETE — so the only
statement is the append, one driver executemany per batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from orderbridge.domain.events import EventKind
from orderbridge.storage.db import insert_rows
from orderbridge.storage.tables import events, orders

EVENT_COLUMNS = ("tenant_id", "order_id", "connection_id", "kind", "at", "message", "data")


def event_row(
    tenant_id: int, order_id: int | None, kind: EventKind, at: datetime, message: str, **data: Any
) -> dict[str, Any]:
    """One event as :func:`append` takes it; ``connection_id`` may be passed with the data."""
    return {
        "tenant_id": tenant_id,
        "order_id": order_id,
        "connection_id": data.pop("connection_id", None),
        "kind": kind.value,
        "at": at,
        "message": message,
        "data": data or None,
    }


def append(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append events (rows as built by :func:`event_row`) with one driver executemany."""
    if rows:
        append_tuples(conn, [tuple([r.get(c) for c in EVENT_COLUMNS]) for r in rows])


def append_tuples(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Append events given as tuples in :data:`EVENT_COLUMNS` order (JSON data may be pre-serialised)."""
    if rows:
        insert_rows(conn, events, EVENT_COLUMNS, rows)


def last_data(conn: Connection, order_id: int, kind: EventKind) -> Any:
    """The ``data`` of the order's newest event of ``kind`` (None when it has none)."""
    for data in conn.execute(
        select(events.c.data)
        .where(events.c.order_id == order_id, events.c.kind == kind.value)
        .order_by(events.c.id.desc())
        .limit(1)
    ).scalars():
        return data
    return None


def released_holds(conn: Connection, order_ids: Sequence[int]) -> dict[int, frozenset[tuple[str, str]]]:
    """The ``(code, value)`` of the hold reasons released on each order's *current* version (its
    ``hold_released`` events naming that version; decision 107); orders with none are left out."""
    found: dict[int, set[tuple[str, str]]] = {}
    ids = list(order_ids)
    for i in range(0, len(ids), 500):
        for oid, version, data in conn.execute(
            select(events.c.order_id, orders.c.version, events.c.data)
            .join(orders, orders.c.id == events.c.order_id)
            .where(events.c.order_id.in_(ids[i : i + 500]), events.c.kind == EventKind.HOLD_RELEASED.value)
        ):
            if isinstance(data, dict) and data.get("version") == version:
                found.setdefault(int(oid), set()).add((str(data.get("code")), str(data.get("value"))))
    return {oid: frozenset(keys) for oid, keys in found.items()}
