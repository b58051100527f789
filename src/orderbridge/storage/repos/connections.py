"""Lookups of the ``connections`` table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, update

from orderbridge.storage.tables import connections, cursors, tenants


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


def by_id(conn: Connection, tenant_id: int, connection_id: int) -> Any | None:
    """The tenant's connection with this id; None for an unknown id *or another tenant's*."""
    return conn.execute(
        select(connections).where(connections.c.tenant_id == tenant_id, connections.c.id == connection_id)
    ).one_or_none()


def by_name(conn: Connection, tenant_id: int, name: str) -> Any | None:
    """The tenant's connection with this name (names are unique per tenant: ``uq_connections_tenant_name``)."""
    return conn.execute(
        select(connections).where(connections.c.tenant_id == tenant_id, connections.c.name == name)
    ).one_or_none()


def of_tenant(conn: Connection, tenant_id: int, role: str | None = None) -> list[Any]:
    """The tenant's connections (of one role, when given), in creation order."""
    q = select(connections).where(connections.c.tenant_id == tenant_id)
    if role is not None:
        q = q.where(connections.c.role == role)
    return list(conn.execute(q.order_by(connections.c.id)).all())


def with_tenant_slug(conn: Connection, connection_id: int) -> Any | None:
    """A connection of any tenant, with its tenant's ``slug`` — the one lookup that crosses tenants,
    for an entry point that knows only a connection id (a webhook's URL)."""
    return conn.execute(
        select(connections, tenants.c.slug.label("tenant_slug"))
        .join(tenants, tenants.c.id == connections.c.tenant_id)
        .where(connections.c.id == connection_id)
    ).one_or_none()


def ids_named(conn: Connection, name: str) -> list[int]:
    """Every tenant's connections with this name (a legacy webhook address names one)."""
    return [int(i) for i in conn.execute(select(connections.c.id).where(connections.c.name == name)).scalars()]


def rotate_credentials(conn: Connection, connection_id: int, seal: Callable[[str], str]) -> str:
    """Replace the connection's sealed credentials by ``seal(current)`` under a row lock (a
    remote rotated one of them, issue #15); returns the new sealed token."""
    current = conn.execute(
        select(connections.c.credentials).where(connections.c.id == connection_id).with_for_update()
    ).scalar_one()
    sealed = seal(current)
    conn.execute(update(connections).where(connections.c.id == connection_id).values(credentials=sealed))
    return sealed
