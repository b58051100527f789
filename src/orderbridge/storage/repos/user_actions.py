"""The ``user_actions`` table: the audit trail — append-only (triggers refuse UPDATE and DELETE).

Read two ways, each on its own index and newest first: the actions on one object
(``tenant_id, object_type, object_id, id``) and the tenant's latest actions, pages keyed by id
(``tenant_id, id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from orderbridge.storage.tables import user_actions


def add(
    conn: Connection,
    *,
    tenant_id: int,
    at: datetime,
    actor_kind: str,
    actor_id: int | None,
    actor_name: str,
    address: str | None,
    action: str,
    object_type: str,
    object_id: str | None,
    summary: str,
    detail: dict[str, Any] | None,
) -> int:
    inserted = conn.execute(
        insert(user_actions).values(
            tenant_id=tenant_id,
            at=at,
            actor_kind=actor_kind,
            actor_id=actor_id,
            actor_name=actor_name,
            address=address,
            action=action,
            object_type=object_type,
            object_id=object_id,
            summary=summary,
            detail=detail,
        )
    ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def on_object(conn: Connection, tenant_id: int, object_type: str, object_id: str | None, limit: int) -> list[Any]:
    cond = user_actions.c.object_id.is_(None) if object_id is None else user_actions.c.object_id == object_id
    stmt = (
        select(user_actions)
        .where(user_actions.c.tenant_id == tenant_id, user_actions.c.object_type == object_type, cond)
        .order_by(user_actions.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def recent(conn: Connection, tenant_id: int, limit: int, before_id: int | None) -> list[Any]:
    stmt = select(user_actions).where(user_actions.c.tenant_id == tenant_id)
    if before_id is not None:
        stmt = stmt.where(user_actions.c.id < before_id)
    return list(conn.execute(stmt.order_by(user_actions.c.id.desc()).limit(limit)).all())


def by_actor(conn: Connection, tenant_id: int, actor_kind: str, actor_id: int | None, limit: int) -> list[Any]:
    """One person's or token's latest actions (newest first), for their own account page."""
    cond = user_actions.c.actor_id.is_(None) if actor_id is None else user_actions.c.actor_id == actor_id
    stmt = (
        select(user_actions)
        .where(user_actions.c.tenant_id == tenant_id, user_actions.c.actor_kind == actor_kind, cond)
        .order_by(user_actions.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).all())
