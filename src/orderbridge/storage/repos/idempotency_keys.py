"""The ``idempotency_keys`` table: a request's key claimed, then the answer it got (decision 131).

:func:`claim` inserts the key with the request's hash *before* the work it covers, in the same
transaction: a second request with the key waits on the first one's row (PostgreSQL) or on the
write lock (SQLite) and then finds it, so two racing retries never both do the work. :func:`settle`
writes the answer once the work is done; a transaction that fails takes its claim with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from orderbridge.storage.db import dialect_insert
from orderbridge.storage.tables import idempotency_keys


def claim(conn: Connection, tenant_id: int, scope: str, key: str, request_hash: str, now: datetime) -> Any | None:
    """Claim ``key`` for this request: None when it is newly claimed, else the row already there
    (``request_hash``, ``status``, ``response``, ``order_id``)."""
    inserted = conn.execute(
        dialect_insert(conn)(idempotency_keys)
        .values(tenant_id=tenant_id, scope=scope, key=key, request_hash=request_hash, created_at=now)
        .on_conflict_do_nothing(index_elements=["tenant_id", "scope", "key"])
        .returning(idempotency_keys.c.id)
    ).first()
    if inserted is not None:  # (not rowcount: PostgreSQL's is -1 for an insert that returns nothing)
        return None
    return conn.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.tenant_id == tenant_id,
            idempotency_keys.c.scope == scope,
            idempotency_keys.c.key == key,
        )
    ).one()


def settle(
    conn: Connection, tenant_id: int, scope: str, key: str, status: int, response: Any, order_id: int | None
) -> None:
    conn.execute(
        update(idempotency_keys)
        .where(
            idempotency_keys.c.tenant_id == tenant_id,
            idempotency_keys.c.scope == scope,
            idempotency_keys.c.key == key,
        )
        .values(status=status, response=response, order_id=order_id)
    )
