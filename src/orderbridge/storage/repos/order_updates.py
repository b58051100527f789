"""The ``order_updates`` table (0018): a later version of an order some destination holds, and
what was decided about it. The only writer of the table.

Statuses move ``review → applying | ignored | cancelled | superseded``, ``applying → applied |
superseded``; ``applied``, ``ignored``, ``cancelled`` and ``superseded`` are final. Each statement
is guarded by the statuses its move may start from, so a double click (accept twice, accept and
ignore at once) moves an update once and the second finds it moved (``False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from orderbridge.storage.db import insert_rows
from orderbridge.storage.tables import order_updates

REVIEW, APPLYING, APPLIED, IGNORED, CANCELLED, SUPERSEDED = (
    "review",
    "applying",
    "applied",
    "ignored",
    "cancelled",
    "superseded",
)
OPEN = (REVIEW, APPLYING)
#: each status → the statuses it may be reached from
SOURCES: dict[str, tuple[str, ...]] = {
    APPLYING: (REVIEW,),
    APPLIED: (APPLYING,),
    IGNORED: (REVIEW,),
    CANCELLED: (REVIEW,),
    SUPERSEDED: (REVIEW, APPLYING),
}
COLUMNS = (
    "tenant_id",
    "order_id",
    "from_version",
    "to_version",
    "classes",
    "changes",
    "policy",
    "policies",
    "status",
    "cancel",
    "created_at",
    "decided_at",
    "decided_by",
)


def insert(conn: Connection, values: dict[str, Any]) -> int | None:
    """Insert one update; None when that order version already has one (a repeated ingest)."""
    row = tuple(values.get(c) for c in COLUMNS)
    got = insert_rows(conn, order_updates, COLUMNS, [row], conflict=("order_id", "to_version"), returning=("id",))
    return int(got[0][0]) if got else None


def move(
    conn: Connection, update_id: int, target: str, now: datetime, *, by: str | None = None, cancel: bool | None = None
) -> bool:
    """Move one update to ``target`` from a status allowed to reach it; False when it was not there."""
    values: dict[str, Any] = {"status": target}
    if target in (APPLYING, IGNORED, CANCELLED):
        values.update(decided_at=now, decided_by=by)
    if target == APPLIED:
        values["applied_at"] = now
    if cancel is not None:
        values["cancel"] = cancel
    done = conn.execute(
        update(order_updates)
        .where(order_updates.c.id == update_id, order_updates.c.status.in_(SOURCES[target]))
        .values(**values)
    )
    return bool(done.rowcount)


def supersede_open(conn: Connection, order_id: int, now: datetime) -> list[Any]:
    """Supersede the order's open updates (a newer version arrived); returns the rows superseded."""
    rows = list(
        conn.execute(
            select(order_updates).where(order_updates.c.order_id == order_id, order_updates.c.status.in_(OPEN))
        ).all()
    )
    for r in rows:
        move(conn, int(r.id), SUPERSEDED, now)
    return rows


def get(conn: Connection, tenant_id: int, update_id: int) -> Any | None:
    return conn.execute(
        select(order_updates).where(order_updates.c.id == update_id, order_updates.c.tenant_id == tenant_id)
    ).one_or_none()


def of_status(conn: Connection, tenant_id: int, statuses: Sequence[str], *, limit: int = 500) -> list[Any]:
    return list(
        conn.execute(
            select(order_updates)
            .where(order_updates.c.tenant_id == tenant_id, order_updates.c.status.in_(statuses))
            .order_by(order_updates.c.id)
            .limit(limit)
        ).all()
    )


def of_order(conn: Connection, order_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(order_updates).where(order_updates.c.order_id == order_id).order_by(order_updates.c.id)
        ).all()
    )


def reopen(conn: Connection, update_id: int, now: datetime, *, by: str) -> bool:
    """An ignored update taken up again by a person's reset: ``ignored → applying`` (the one move
    back from a final status — the reset is the person's later decision, recorded on the trail)."""
    done = conn.execute(
        update(order_updates)
        .where(order_updates.c.id == update_id, order_updates.c.status == IGNORED)
        .values(status=APPLYING, decided_at=now, decided_by=by)
    )
    return bool(done.rowcount)
