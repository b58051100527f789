"""Open reasons (``order_reasons``): why an order is held or skipped, or why one of its fulfilment
pushes is held (``kind = 'push'``, ``push_id`` set). A reason is never deleted: releasing it sets
``released_at``, so the history of what blocked an order stays.

The same statements keep the **reason tallies** (``reason_tallies``, decision 147): each batch of
reasons opened appends one +n row per cause (tenant, kind, code, value), each release one −n row
per cause of the rows it really released (``UPDATE … RETURNING``, guarded by ``released_at IS
NULL`` so a reason released twice counts once). The holds grouping sums them (:func:`open_causes`)
instead of counting every open reason; :func:`compact_tallies` folds them together (the
housekeeping). Deltas rather than one counter per cause: two transactions holding orders for the
same cause never wait for each other's row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Update, delete, func, insert, select, update

from orderbridge.domain.reasons import Reason
from orderbridge.storage.db import insert_rows
from orderbridge.storage.tables import order_reasons, reason_tallies

#: ``kind`` of the reasons of an order's pipeline outcome, and of a held fulfilment push
HOLD, SKIP, PUSH = "hold", "skip", "push"

_CHUNK = 500

OpenReasons = dict[tuple[str, str], int]

_TALLY_COLUMNS = ("tenant_id", "kind", "code", "value", "n")
_CAUSE = (order_reasons.c.tenant_id, order_reasons.c.kind, order_reasons.c.code, order_reasons.c.value)


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
    """Open reasons (rows as built by :func:`reason_row`), one executemany, and their tallies."""
    if rows:
        conn.execute(insert(order_reasons), list(rows))
        _tally(conn, Counter((r["tenant_id"], r["kind"], r["code"], r["value"]) for r in rows), 1)


def _tally(conn: Connection, causes: Counter[tuple[Any, ...]], sign: int) -> None:
    deltas = [(*cause, sign * n) for cause, n in causes.items() if n]
    if deltas:
        insert_rows(conn, reason_tallies, _TALLY_COLUMNS, deltas)


def _released(conn: Connection, statement: Update) -> int:
    """Run a release (an ``UPDATE`` of open reasons) and tally what it released; how many."""
    done = conn.execute(statement.returning(*_CAUSE)).all()
    _tally(conn, Counter(tuple(row) for row in done), -1)
    return len(done)


def release(conn: Connection, reason_ids: Sequence[int], now: datetime) -> None:
    for chunk in _chunks(reason_ids):
        _released(
            conn,
            update(order_reasons)
            .where(order_reasons.c.id.in_(chunk), order_reasons.c.released_at.is_(None))
            .values(released_at=now),
        )


def release_code(conn: Connection, order_id: int, code: str, now: datetime) -> int:
    """Release an order's open pipeline reasons with ``code`` (a retry releases its rejections)."""
    return _released(
        conn,
        update(order_reasons)
        .where(
            order_reasons.c.order_id == order_id,
            order_reasons.c.code == code,
            order_reasons.c.released_at.is_(None),
            order_reasons.c.push_id.is_(None),
        )
        .values(released_at=now),
    )


def release_code_of(conn: Connection, order_ids: Sequence[int], code: str, now: datetime) -> int:
    """:func:`release_code` for many orders (a bulk retry releases their rejections)."""
    released = 0
    for chunk in _chunks(order_ids):
        released += _released(
            conn,
            update(order_reasons)
            .where(
                order_reasons.c.order_id.in_(chunk),
                order_reasons.c.code == code,
                order_reasons.c.released_at.is_(None),
                order_reasons.c.push_id.is_(None),
            )
            .values(released_at=now),
        )
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


class Cause(NamedTuple):
    kind: str
    code: str
    value: str
    #: its open reasons (one per order for an order's own, pipeline reasons)
    n: int


def open_causes(
    conn: Connection, tenant_id: int, kinds: Sequence[str], code: str | None = None, value: str | None = None
) -> list[Cause]:
    """The causes with open reasons of ``kinds`` (optionally one code, one value), from the
    tallies: by kind, the most reasons first, then code and value."""
    t = reason_tallies.c
    n = func.sum(t.n)
    q = select(t.kind, t.code, t.value, n).where(t.tenant_id == tenant_id, t.kind.in_(list(kinds)))
    if code is not None:
        q = q.where(t.code == code)
        if value is not None:
            q = q.where(t.value == value)
    q = q.group_by(t.kind, t.code, t.value).having(n > 0).order_by(t.kind, n.desc(), t.code, t.value)
    return [Cause(kind, c, v, int(total)) for kind, c, v, total in conn.execute(q)]


def compact_tallies(conn: Connection, tenant_id: int) -> int:
    """Fold the tenant's reason tallies into one row per cause (none for a cause with nothing
    open); returns how many rows it removed. Safe beside writers and another compaction, as the
    order tallies' (``DELETE … RETURNING``, then the sums written back)."""
    t = reason_tallies.c
    spread = conn.execute(
        select(func.count()).select_from(
            select(t.kind)
            .where(t.tenant_id == tenant_id)
            .group_by(t.kind, t.code, t.value)
            .having((func.count() > 1) | (func.sum(t.n) == 0))
            .subquery()
        )
    ).scalar_one()
    if not spread:
        return 0
    taken = conn.execute(
        delete(reason_tallies).where(t.tenant_id == tenant_id).returning(t.kind, t.code, t.value, t.n)
    ).all()
    sums: Counter[tuple[Any, ...]] = Counter()
    for kind, code, value, n in taken:
        sums[(tenant_id, kind, code, value)] += n
    kept = [(*cause, n) for cause, n in sums.items() if n]
    insert_rows(conn, reason_tallies, _TALLY_COLUMNS, kept)
    return len(taken) - len(kept)


def rebuild_tallies(conn: Connection, tenant_id: int) -> None:
    """Count the tenant's reason tallies again from its open reasons (to repair)."""
    conn.execute(delete(reason_tallies).where(reason_tallies.c.tenant_id == tenant_id))
    counted = conn.execute(
        select(*_CAUSE, func.count())
        .where(order_reasons.c.tenant_id == tenant_id, order_reasons.c.released_at.is_(None))
        .group_by(*_CAUSE)
    ).all()
    insert_rows(conn, reason_tallies, _TALLY_COLUMNS, [tuple(row) for row in counted])


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
