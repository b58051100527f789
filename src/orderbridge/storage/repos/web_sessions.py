"""The ``web_sessions`` table: signed-in browsers. Only the SHA-256 of a session's token is stored;
a session ends (``ended_at``) on sign-out, when its user is disabled or their password changes,
and expires by itself (absolute ``expires_at``, idle ``last_seen_at``) — rows are kept, never
updated back to life."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from orderbridge.storage.tables import web_sessions


def by_token_hash(conn: Connection, token_hash: str) -> Any | None:
    return conn.execute(select(web_sessions).where(web_sessions.c.token_hash == token_hash)).one_or_none()


def add(
    conn: Connection,
    *,
    tenant_id: int,
    user_id: int,
    token_hash: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
    address: str | None,
    user_agent: str | None,
) -> int:
    inserted = conn.execute(
        insert(web_sessions).values(
            tenant_id=tenant_id,
            user_id=user_id,
            token_hash=token_hash,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
            last_seen_at=now,
            address=address,
            user_agent=user_agent,
        )
    ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def seen(conn: Connection, session_id: int, now: datetime) -> None:
    """Move the idle clock (the caller does it at most once a minute)."""
    conn.execute(
        update(web_sessions)
        .where(web_sessions.c.id == session_id, web_sessions.c.ended_at.is_(None))
        .values(last_seen_at=now)
    )


def end(conn: Connection, token_hash: str, now: datetime) -> int | None:
    """End the open session with this token hash; its user's id, or None when there was none."""
    ended = conn.execute(
        update(web_sessions)
        .where(web_sessions.c.token_hash == token_hash, web_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
        .returning(web_sessions.c.user_id)
    ).scalar_one_or_none()
    return None if ended is None else int(ended)


def end_of_user(conn: Connection, user_id: int, now: datetime, *, keep: int | None = None) -> int:
    """End every open session of a user (but ``keep``, the one changing its own password); how many."""
    stmt = update(web_sessions).where(web_sessions.c.user_id == user_id, web_sessions.c.ended_at.is_(None))
    if keep is not None:
        stmt = stmt.where(web_sessions.c.id != keep)
    return conn.execute(stmt.values(ended_at=now)).rowcount
