"""Open reasons (``order_reasons``): why an order is held or skipped, or why one of its fulfilment
pushes is held (``kind = 'push'``, ``push_id`` set). A reason is never deleted: releasing it sets
``released_at``, so the history of what blocked an order stays."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from orderbridge.domain.reasons import Reason
from orderbridge.storage.tables import order_reasons

#: ``kind`` of the reasons of an order's pipeline outcome, and of a held fulfilment push
HOLD, SKIP, PUSH = "hold", "skip", "push"

_CHUNK = 500

OpenReasons = dict[tuple[str, str], int]


def reason_row(
    tenant_id: int, order_id: int, kind: str, reason: Reason, now: datetime, *, push_id: int | None = None
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "order_id": order_id,
        "push_id": push_id,
        "kind": kind,
        "code": reason.code,
        "value": reason.value,
        "message": reason.message,
        "fix": reason.fix,
        "created_at": now,
    }


def open_for_orders(conn: Connection, order_ids: Sequence[int]) -> dict[int, OpenReasons]:
    """The open pipeline reasons (not a push's) of each order: ``{order: {(code, value): reason id}}``."""
    found: dict[int, OpenReasons] = {}
    for chunk in _chunks(order_ids):
        for rid, oid, code, value in conn.execute(
            select(order_reasons.c.id, order_reasons.c.order_id, order_reasons.c.code, order_reasons.c.value).where(
                order_reasons.c.order_id.in_(chunk),
                order_reasons.c.released_at.is_(None),
                order_reasons.c.push_id.is_(None),
            )
        ):
            found.setdefault(oid, {})[(code, value)] = rid
    return found


def open_for_push(conn: Connection, push_id: int) -> OpenReasons:
    return {
        (code, value): rid
        for rid, code, value in conn.execute(
            select(order_reasons.c.id, order_reasons.c.code, order_reasons.c.value).where(
                order_reasons.c.push_id == push_id, order_reasons.c.released_at.is_(None)
            )
        )
    }


def add(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Open reasons (rows as built by :func:`reason_row`), one executemany."""
    if rows:
        conn.execute(insert(order_reasons), list(rows))


def release(conn: Connection, reason_ids: Sequence[int], now: datetime) -> None:
    for chunk in _chunks(reason_ids):
        conn.execute(update(order_reasons).where(order_reasons.c.id.in_(chunk)).values(released_at=now))


def release_code(conn: Connection, order_id: int, code: str, now: datetime) -> int:
    """Release an order's open pipeline reasons with ``code`` (a retry releases its rejections)."""
    done = conn.execute(
        update(order_reasons)
        .where(
            order_reasons.c.order_id == order_id,
            order_reasons.c.code == code,
            order_reasons.c.released_at.is_(None),
            order_reasons.c.push_id.is_(None),
        )
        .values(released_at=now)
    )
    return int(done.rowcount)


def release_code_of(conn: Connection, order_ids: Sequence[int], code: str, now: datetime) -> int:
    """:func:`release_code` for many orders (a bulk retry releases their rejections)."""
    released = 0
    for chunk in _chunks(order_ids):
        done = conn.execute(
            update(order_reasons)
            .where(
                order_reasons.c.order_id.in_(chunk),
                order_reasons.c.code == code,
                order_reasons.c.released_at.is_(None),
                order_reasons.c.push_id.is_(None),
            )
            .values(released_at=now)
        )
        released += int(done.rowcount)
    return released


def settle_push(
    conn: Connection, tenant_id: int, order_id: int, push_id: int, wanted: Iterable[Reason], now: datetime
) -> tuple[int, int]:
    """Make a push's open reasons exactly ``wanted`` (unchanged ones keep their row); returns
    (opened, released)."""
    current = open_for_push(conn, push_id)
    want = {r.key: r for r in wanted}
    gone = [rid for key, rid in current.items() if key not in want]
    new = [reason_row(tenant_id, order_id, PUSH, r, now, push_id=push_id) for k, r in want.items() if k not in current]
    release(conn, gone, now)
    add(conn, new)
    return len(new), len(gone)


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
