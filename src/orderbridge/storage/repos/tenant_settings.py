"""The ``tenant_settings`` table: one JSON value per (tenant, key) — what a tenant sets in the
portal (notification recipients, webhook targets …) rather than in the process's environment.
Written by an upsert on the primary key; who changed it is kept with it (and in the audit trail,
by the service that changes it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from orderbridge.storage.db import dialect_insert
from orderbridge.storage.tables import tenant_settings


def get(conn: Connection, tenant_id: int, key: str) -> Any | None:
    """The row (value, updated_at, updated_by) of one setting, or None when it was never set."""
    return conn.execute(
        select(tenant_settings).where(tenant_settings.c.tenant_id == tenant_id, tenant_settings.c.key == key)
    ).one_or_none()


def of_tenant(conn: Connection, tenant_id: int) -> dict[str, Any]:
    """Every setting of the tenant: key → value."""
    rows = conn.execute(
        select(tenant_settings.c.key, tenant_settings.c.value).where(tenant_settings.c.tenant_id == tenant_id)
    ).all()
    return {str(r.key): r.value for r in rows}


def put(conn: Connection, tenant_id: int, key: str, value: Any, now: datetime, by: str) -> None:
    stmt = dialect_insert(conn)(tenant_settings).values(
        tenant_id=tenant_id, key=key, value=value, updated_at=now, updated_by=by
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "key"], set_={"value": value, "updated_at": now, "updated_by": by}
        )
    )


def remove(conn: Connection, tenant_id: int, key: str) -> bool:
    done = conn.execute(
        delete(tenant_settings).where(tenant_settings.c.tenant_id == tenant_id, tenant_settings.c.key == key)
    ).rowcount
    return bool(done)
