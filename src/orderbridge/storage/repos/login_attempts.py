"""The ``login_attempts`` table: every sign-in attempt, for the rate limits.

Two lookups, each on its own index: the recent failures of one e-mail since its last success (the
per-account limit), and the recent failures from one address (the per-address limit). Rows older
than the window are of no further use and are deleted as the same keys are written again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, or_, select

from orderbridge.storage.tables import login_attempts


def failures_of_email(conn: Connection, email: str, since: datetime, limit: int) -> list[datetime]:
    """When the e-mail's failed attempts after ``since`` (the window is open at its start) and
    after its last success happened, newest first, at most ``limit``."""
    last_ok = (
        select(func.max(login_attempts.c.at))
        .where(login_attempts.c.email == email, login_attempts.c.ok.is_(True), login_attempts.c.at > since)
        .scalar_subquery()
    )
    stmt = (
        select(login_attempts.c.at)
        .where(
            login_attempts.c.email == email,
            login_attempts.c.ok.is_(False),
            login_attempts.c.at > since,
            or_(last_ok.is_(None), login_attempts.c.at > last_ok),
        )
        .order_by(login_attempts.c.at.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())


def failures_from(conn: Connection, address: str, since: datetime, limit: int) -> list[datetime]:
    """When the address's failed attempts after ``since`` happened, newest first, at most ``limit``."""
    stmt = (
        select(login_attempts.c.at)
        .where(login_attempts.c.address == address, login_attempts.c.ok.is_(False), login_attempts.c.at > since)
        .order_by(login_attempts.c.at.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())


def add(conn: Connection, email: str, address: str | None, at: datetime, *, ok: bool) -> None:
    conn.execute(insert(login_attempts).values(email=email, address=address, at=at, ok=ok))


def forget_before(conn: Connection, email: str, address: str | None, before: datetime) -> None:
    """Delete this e-mail's and this address's attempts older than ``before`` (outside every window)."""
    conn.execute(delete(login_attempts).where(login_attempts.c.email == email, login_attempts.c.at < before))
    if address is not None:
        conn.execute(delete(login_attempts).where(login_attempts.c.address == address, login_attempts.c.at < before))
