"""The ``users`` table: people who sign in to the portal, one tenant each.

Lookups by e-mail are across the hub (sign-in comes before a tenant is known; the address is stored
lower-cased and unique); every other lookup is by tenant. A user is never deleted — disabled — so
the audit trail's names stay readable. The admins of a tenant can be read under a row lock
(:func:`admins_for_update`): "never leave a tenant without an enabled admin" is decided on rows
no concurrent demotion can change meanwhile (PostgreSQL; SQLite's writers are serialised anyway).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from orderbridge.storage.tables import users


def by_email(conn: Connection, email: str) -> Any | None:
    """The user signing in with ``email`` (already lower-cased), of whichever tenant."""
    return conn.execute(select(users).where(users.c.email == email)).one_or_none()


def by_id(conn: Connection, user_id: int) -> Any | None:
    """A user by id alone: for a session, whose row names its tenant."""
    return conn.execute(select(users).where(users.c.id == user_id)).one_or_none()


def of_tenant_by_id(conn: Connection, tenant_id: int, user_id: int) -> Any | None:
    return conn.execute(select(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id)).one_or_none()


def of_tenant_by_email(conn: Connection, tenant_id: int, email: str) -> Any | None:
    return conn.execute(select(users).where(users.c.tenant_id == tenant_id, users.c.email == email)).one_or_none()


def of_tenant(conn: Connection, tenant_id: int) -> list[Any]:
    """The tenant's users, in creation order."""
    return list(conn.execute(select(users).where(users.c.tenant_id == tenant_id).order_by(users.c.id)).all())


def admins_for_update(conn: Connection, tenant_id: int) -> list[int]:
    """The ids of the tenant's enabled admins, locked until the transaction ends."""
    stmt = (
        select(users.c.id)
        .where(users.c.tenant_id == tenant_id, users.c.role == "admin", users.c.disabled_at.is_(None))
        .order_by(users.c.id)
        .with_for_update()
    )
    return [int(i) for i in conn.execute(stmt).scalars()]


def count_of_tenant(conn: Connection, tenant_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(users).where(users.c.tenant_id == tenant_id)).scalar_one())


def add(
    conn: Connection,
    *,
    tenant_id: int,
    email: str,
    name: str,
    password_hash: str,
    role: str,
    locale: str,
    now: datetime,
) -> int:
    """Insert a user; an e-mail already taken raises the database's ``IntegrityError``."""
    inserted = conn.execute(
        insert(users).values(
            tenant_id=tenant_id,
            email=email,
            name=name,
            password_hash=password_hash,
            role=role,
            locale=locale,
            created_at=now,
            password_changed_at=now,
        )
    ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def change(conn: Connection, tenant_id: int, user_id: int, **values: Any) -> None:
    """Set ``role``, ``locale``, ``name`` or ``disabled_at`` of the tenant's user ``user_id``."""
    allowed = {"role", "locale", "name", "disabled_at"}
    assert values and set(values) <= allowed, values
    conn.execute(update(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id).values(**values))


def set_password_hash(conn: Connection, user_id: int, password_hash: str, *, changed_at: datetime | None) -> None:
    """Store a new hash: a new password (``changed_at`` set) or the same one rehashed with today's
    parameters (``changed_at`` None: the password did not change)."""
    values: dict[str, Any] = {"password_hash": password_hash}
    if changed_at is not None:
        values["password_changed_at"] = changed_at
    conn.execute(update(users).where(users.c.id == user_id).values(**values))
