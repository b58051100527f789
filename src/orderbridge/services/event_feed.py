"""The tenant's ledger events, newest first, in keyset pages: ``GET /api/v1/events``.

Events are append-only and their ids only grow, so a page is "the ``limit`` newest events with an
id below the cursor" — one index range per page however deep (``ix_events_order`` for one order,
the primary key otherwise), never an offset. Filtering by an order or a connection of another
tenant is :class:`~orderbridge.errors.NotFound`, like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from orderbridge.errors import InvalidInput
from orderbridge.services.order_story import order_row
from orderbridge.services.scope import Scope
from orderbridge.storage.tables import events, orders

#: the most events one page returns
MAX_LIMIT = 500


@dataclass(frozen=True)
class EventInfo:
    id: int
    at: datetime
    kind: str
    message: str
    order_id: int | None
    order_number: str | None
    connection_id: int | None
    data: dict[str, Any] | None


@dataclass(frozen=True)
class EventPage:
    events: tuple[EventInfo, ...]
    #: the cursor of the next (older) page; None when this is the last
    next_before: int | None


def list_events(
    scope: Scope,
    *,
    order_id: int | None = None,
    connection_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> EventPage:
    """The tenant's events (of one order; of one connection: its own and its orders'), newest
    first, ids below ``before``."""
    if not 1 <= limit <= MAX_LIMIT:
        exc = InvalidInput(f"limit {limit} is not between 1 and {MAX_LIMIT}", hint="Ask for fewer events per page.")
        exc.field = "limit"  # type: ignore[attr-defined]
        raise exc
    q = (
        select(events, orders.c.number)
        .outerjoin(orders, orders.c.id == events.c.order_id)
        .where(events.c.tenant_id == scope.tenant_id)
        .order_by(events.c.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        q = q.where(events.c.id < before)
    with scope.read() as conn:
        if order_id is not None:
            order_row(conn, scope, order_id)  # NotFound for another tenant's
            q = q.where(events.c.order_id == order_id)
        if connection_id is not None:
            scope.connection(conn, connection_id)  # NotFound for another tenant's
            # the connection's own events and those of its orders (a channel's)
            q = q.where((events.c.connection_id == connection_id) | (orders.c.connection_id == connection_id))
        rows = conn.execute(q).all()
    page = rows[:limit]
    return EventPage(
        tuple(
            EventInfo(
                int(r.id),
                r.at,
                str(r.kind),
                str(r.message),
                None if r.order_id is None else int(r.order_id),
                r.number,
                None if r.connection_id is None else int(r.connection_id),
                r.data if isinstance(r.data, dict) else None,
            )
            for r in page
        ),
        int(page[-1].id) if len(rows) > limit else None,
    )
