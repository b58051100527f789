"""Lookups of the ``connections`` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from orderbridge.storage.tables import connections, cursors


def with_order_cursor(conn: Connection, tenant_id: int) -> list[Any]:
    """Every connection of the tenant with its order cursor (``cursor``), in creation order."""
    return list(
        conn.execute(
            select(connections, cursors.c.value.label("cursor"))
            .outerjoin(cursors, (cursors.c.connection_id == connections.c.id) & (cursors.c.name == "orders"))
            .where(connections.c.tenant_id == tenant_id)
            .order_by(connections.c.id)
        ).all()
    )
