"""The ``tenants`` table: one row per merchant account. Every other row carries its ``tenant_id``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from orderbridge.storage.tables import tenants


def by_id(conn: Connection, tenant_id: int) -> Any | None:
    return conn.execute(select(tenants).where(tenants.c.id == tenant_id)).one_or_none()


def by_slug(conn: Connection, slug: str) -> Any | None:
    return conn.execute(select(tenants).where(tenants.c.slug == slug)).one_or_none()


def every(conn: Connection) -> list[Any]:
    """Every tenant, in creation order."""
    return list(conn.execute(select(tenants).order_by(tenants.c.id)).all())


def add(conn: Connection, slug: str, name: str, now: datetime) -> int:
    inserted = conn.execute(insert(tenants).values(slug=slug, name=name, created_at=now)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])
