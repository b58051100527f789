"""The cursor store: per connection and name (``orders``, ``shipments``), the time a sync resumes
from. Written in the same transaction as the batch it covers, so it is never ahead of committed
data, and only ever moved forward."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from orderbridge.storage.db import dialect_insert
from orderbridge.storage.tables import cursors


def read_cursor(conn: Connection, connection_id: int, name: str = "orders") -> datetime | None:
    value: datetime | None = conn.execute(
        select(cursors.c.value).where(cursors.c.connection_id == connection_id, cursors.c.name == name)
    ).scalar_one_or_none()
    return value


def write_cursor(
    conn: Connection, tenant_id: int, connection_id: int, value: datetime, now: datetime, name: str = "orders"
) -> None:
    """Move a cursor forward (never back) inside the caller's transaction."""
    current = read_cursor(conn, connection_id, name)
    if current is not None and value <= current:
        return
    stmt = dialect_insert(conn)(cursors).values(
        connection_id=connection_id, name=name, tenant_id=tenant_id, value=value, updated_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["connection_id", "name"], set_={"value": value, "updated_at": now})
    )


def since_with_overlap(cursor: datetime | None, overlap_s: float) -> datetime | None:
    """Where a sync resumes: the cursor less the overlap window (``None``: from the beginning)."""
    return None if cursor is None else cursor - timedelta(seconds=overlap_s)
