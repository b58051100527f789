"""The ``api_tokens`` table: a tenant's REST API tokens. Only the SHA-256 of a token is stored,
with its first characters (``prefix``) for lists; revoking sets ``revoked_at`` (the row stays, so
the audit trail's "token obt_ab12…" still names one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from orderbridge.storage.tables import api_tokens


def by_token_hash(conn: Connection, token_hash: str) -> Any | None:
    return conn.execute(select(api_tokens).where(api_tokens.c.token_hash == token_hash)).one_or_none()


def of_tenant_by_id(conn: Connection, tenant_id: int, token_id: int) -> Any | None:
    return conn.execute(
        select(api_tokens).where(api_tokens.c.tenant_id == tenant_id, api_tokens.c.id == token_id)
    ).one_or_none()


def of_tenant(conn: Connection, tenant_id: int, *, include_revoked: bool) -> list[Any]:
    """The tenant's tokens, newest first."""
    stmt = select(api_tokens).where(api_tokens.c.tenant_id == tenant_id)
    if not include_revoked:
        stmt = stmt.where(api_tokens.c.revoked_at.is_(None))
    return list(conn.execute(stmt.order_by(api_tokens.c.id.desc())).all())


def add(
    conn: Connection,
    *,
    tenant_id: int,
    label: str,
    prefix: str,
    token_hash: str,
    role: str,
    created_by: str,
    now: datetime,
) -> int:
    inserted = conn.execute(
        insert(api_tokens).values(
            tenant_id=tenant_id,
            label=label,
            prefix=prefix,
            token_hash=token_hash,
            role=role,
            created_by=created_by,
            created_at=now,
        )
    ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def used(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def revoke(conn: Connection, tenant_id: int, token_id: int, now: datetime) -> bool:
    """Revoke the tenant's token; False when it was revoked already (or is not the tenant's)."""
    done = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.tenant_id == tenant_id, api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    return bool(done)
