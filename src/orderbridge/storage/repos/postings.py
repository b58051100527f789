"""Postings (one row per order version and destination, unique ``idempotency_key``) and their
attempts (``posting_attempts``, append-only). Every status written here is a move of
:data:`orderbridge.domain.states.POSTING`, each statement guarded by the states the move may
start from, so a posting can never be recorded twice or brought back from ``posted``.

The posting hot path hands whole batches: reserving a batch is one executemany insert, one
``UPDATE … RETURNING`` and one supersede; recording it is one executemany per outcome. The
statements are built once with expanding ``IN`` parameters (per batch only values are bound).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, literal_column, or_, select, update

from orderbridge.domain.states import POSTING, InvalidTransition, PostingState
from orderbridge.domain.update_plan import Action
from orderbridge.storage.db import insert_rows
from orderbridge.storage.tables import posting_attempts, postings

_P = PostingState

POSTING_COLUMNS = (
    "tenant_id",
    "order_id",
    "destination_id",
    "order_version",
    "idempotency_key",
    "order_key",
    "status",
    "attempts",
    "created_at",
)
ATTEMPT_COLUMNS = ("tenant_id", "posting_id", "at", "outcome", "message", "sent")
#: one attempt as :func:`record` takes it: posting id, outcome, message, and the document sent (or None)
Attempt = tuple[int, str, str, Any]


def _from(target: PostingState) -> ColumnElement[bool]:
    """The statement's guard: the posting is in a status it may move to ``target`` from. The
    statuses are the machine's own constants, written into the SQL (the statements run as
    executemany: no expanding IN, and no parameter per row for them)."""
    return or_(*(postings.c.status == literal_column(f"'{s.value}'") for s in sorted(POSTING.sources(target))))


# reserve: pending → pending, one more attempt (a reserved posting is never one already recorded)
_RESERVE = (
    update(postings)
    .where(
        postings.c.idempotency_key.in_(bindparam("keys", expanding=True)),
        postings.c.status == _P.PENDING.value,
    )
    .values(attempts=postings.c.attempts + 1)
    .returning(postings.c.idempotency_key, postings.c.id)
)
_SUPERSEDE = (
    update(postings)
    .where(
        postings.c.order_id.in_(bindparam("order_ids", expanding=True)),
        postings.c.destination_id == bindparam("dest"),
        _from(_P.SUPERSEDED),
        postings.c.idempotency_key.not_in(bindparam("keys", expanding=True)),
    )
    .values(status=_P.SUPERSEDED.value)
)
_POSTED = (
    update(postings)
    .where(postings.c.id == bindparam("pid"), _from(_P.POSTED))
    .values(status=_P.POSTED.value, document_id=bindparam("doc"), posted_at=bindparam("at"), last_error=None)
)
_REJECTED = (
    update(postings)
    # a sent batch's refusal: from pending only (posted → rejected is the file watcher's, below)
    .where(postings.c.id == bindparam("pid"), postings.c.status == _P.PENDING.value)
    .values(status=_P.REJECTED.value, last_error=bindparam("err"))
)


def reserve(
    conn: Connection,
    tenant_id: int,
    destination_id: int,
    batch: Sequence[tuple[int, int, str, str]],
    now: datetime,
) -> dict[str, int]:
    """Reserve a batch for sending: ``(order id, version, idempotency key, order key)`` each.

    A posting row per key is created ``pending`` (a re-run finds the same row: ``ON CONFLICT DO
    NOTHING``) and counted one more attempt; older versions of the same orders still pending for
    this destination are ``superseded`` (the same order key carries the new one). Returns
    ``{idempotency key: posting id}``; a key whose posting is already recorded is refused."""
    if not batch:
        return {}
    insert_rows(
        conn,
        postings,
        POSTING_COLUMNS,
        [
            (tenant_id, oid, destination_id, version, key, order_key, _P.PENDING.value, 0, now)
            for oid, version, key, order_key in batch
        ],
        conflict=("idempotency_key",),
    )
    keys = [key for _, _, key, _ in batch]
    ids = {str(key): int(pid) for key, pid in conn.execute(_RESERVE, {"keys": keys})}
    if len(ids) != len(keys):
        refused = sorted(set(keys) - set(ids))
        status = conn.execute(select(postings.c.status).where(postings.c.idempotency_key == refused[0])).scalar_one()
        raise InvalidTransition(_P(status), _P.PENDING, POSTING)
    conn.execute(_SUPERSEDE, {"order_ids": [oid for oid, _, _, _ in batch], "dest": destination_id, "keys": keys})
    return ids


def record(
    conn: Connection,
    tenant_id: int,
    posted: Sequence[tuple[int, str | None]],
    rejected: Sequence[tuple[int, str]],
    attempts: Sequence[Attempt],
    now: datetime,
) -> None:
    """Record a sent batch's results: ``posted`` ``(posting id, document id)``, ``rejected``
    ``(posting id, the destination's message)``, and an attempt row each ``(posting id, outcome,
    message, the document sent or None)``. A result for a posting no longer pending raises
    :class:`InvalidTransition`."""
    if posted:
        _expect(
            conn,
            conn.execute(_POSTED, [{"pid": p, "doc": d, "at": now} for p, d in posted]).rowcount,
            posted,
            _P.POSTED,
        )
    if rejected:
        _expect(
            conn, conn.execute(_REJECTED, [{"pid": p, "err": e} for p, e in rejected]).rowcount, rejected, _P.REJECTED
        )
    add_attempts(conn, tenant_id, attempts, now)


def add_attempts(conn: Connection, tenant_id: int, attempts: Sequence[Attempt], now: datetime) -> None:
    insert_rows(
        conn, posting_attempts, ATTEMPT_COLUMNS, [(tenant_id, pid, now, o, m, sent) for pid, o, m, sent in attempts]
    )


def reject_delivered(conn: Connection, posting_ids: Sequence[int], message: str) -> list[int]:
    """posted → rejected for postings whose delivered file the remote refused afterwards (a file
    export's package wrote an error file): the document never entered it, so a retry may post the
    version again. Returns the ids moved (one already moved is left: a second read of the same
    error file does nothing)."""
    POSTING.check(_P.POSTED, _P.REJECTED)
    moved: list[int] = []
    for i in range(0, len(posting_ids), 500):
        moved.extend(
            int(pid)
            for (pid,) in conn.execute(
                update(postings)
                .where(postings.c.id.in_(posting_ids[i : i + 500]), postings.c.status == _P.POSTED.value)
                .values(status=_P.REJECTED.value, last_error=message)
                .returning(postings.c.id)
            )
        )
    return moved


def reopen_rejected(
    conn: Connection, order_id: int, *, version: int | None = None, destination_id: int | None = None
) -> int:
    """rejected → pending for the order's postings (the user retries it) — of one version and one
    destination when given; returns how many."""
    POSTING.check(_P.REJECTED, _P.PENDING)
    stmt = update(postings).where(postings.c.order_id == order_id, postings.c.status == _P.REJECTED.value)
    if version is not None:
        stmt = stmt.where(postings.c.order_version == version)
    if destination_id is not None:
        stmt = stmt.where(postings.c.destination_id == destination_id)
    done = conn.execute(stmt.values(status=_P.PENDING.value))
    return int(done.rowcount)


def reopen_rejected_of(conn: Connection, order_ids: Sequence[int]) -> int:
    """:func:`reopen_rejected` for many orders (a bulk retry); returns how many postings."""
    POSTING.check(_P.REJECTED, _P.PENDING)
    reopened = 0
    for i in range(0, len(order_ids), 500):
        done = conn.execute(
            update(postings)
            .where(postings.c.order_id.in_(order_ids[i : i + 500]), postings.c.status == _P.REJECTED.value)
            .values(status=_P.PENDING.value)
        )
        reopened += int(done.rowcount)
    return reopened


def reopen_first_posts(conn: Connection, destination_id: int, released: Sequence[tuple[int, int]]) -> None:
    """rejected → pending for the first post (``action`` post) of each ``(order id, version)`` at the
    destination: an order released from a hold its refused post caused goes again (decision 242)."""
    if not released:
        return
    POSTING.check(_P.REJECTED, _P.PENDING)
    conn.execute(
        update(postings)
        .where(
            postings.c.order_id == bindparam("oid"),
            postings.c.order_version == bindparam("version"),
            postings.c.destination_id == destination_id,
            postings.c.action == Action.POST.value,
            postings.c.status == _P.REJECTED.value,
        )
        .values(status=_P.PENDING.value),
        [{"oid": oid, "version": version} for oid, version in released],
    )


def order_for_key(conn: Connection, destination_id: int, order_key: str) -> int | None:
    """The order a destination document key belongs to (a shipment names its order by it)."""
    oid = conn.execute(
        select(postings.c.order_id)
        .where(postings.c.destination_id == destination_id, postings.c.order_key == order_key)
        .limit(1)
    ).scalar_one_or_none()
    return None if oid is None else int(oid)


def _expect(conn: Connection, rowcount: int, rows: Sequence[tuple[int, Any]], target: PostingState) -> None:
    """Every row of an executemany moved; else refuse, naming a posting that could not (the
    transaction then rolls back). Checked where the driver counts executemany rows (SQLite's and
    psycopg's do)."""
    if not conn.dialect.supports_sane_multi_rowcount or rowcount == len(rows):
        return
    pids = [pid for pid, _ in rows]
    status = dict(conn.execute(select(postings.c.id, postings.c.status).where(postings.c.id.in_(pids))).all())
    # one not in the target now did not move; if all are, one of them was there already
    stuck = next((pid for pid in pids if status.get(pid) != target.value), pids[0])
    raise InvalidTransition(_P(status[stuck]), target, POSTING)


# --- amendments (issue #15, migration 0018) --------------------------------------------------------

AMENDMENT_COLUMNS = (*POSTING_COLUMNS, "action", "amends_id")


def reserve_amendment(
    conn: Connection,
    tenant_id: int,
    order_id: int,
    destination_id: int,
    version: int,
    key: str,
    order_key: str,
    action: str,
    amends_id: int | None,
    now: datetime,
) -> tuple[int, PostingState, int]:
    """Reserve one amendment posting (``<order>:<destination>:v<version>:<action>``), linked to the
    posting it amends: created ``pending`` (a repeat finds the same row), counted one more attempt
    while pending. Returns ``(posting id, status, attempts before this one)`` — a status other than
    ``pending`` means it is already recorded and nothing is to be sent."""
    insert_rows(
        conn,
        postings,
        AMENDMENT_COLUMNS,
        [(tenant_id, order_id, destination_id, version, key, order_key, _P.PENDING.value, 0, now, action, amends_id)],
        conflict=("idempotency_key",),
    )
    row = conn.execute(
        select(postings.c.id, postings.c.status, postings.c.attempts).where(postings.c.idempotency_key == key)
    ).one()
    status = _P(row.status)
    if status is _P.PENDING:
        conn.execute(update(postings).where(postings.c.id == row.id).values(attempts=postings.c.attempts + 1))
    return int(row.id), status, int(row.attempts)


def posted_of(conn: Connection, order_id: int) -> list[Any]:
    """The order's recorded postings (``posted``), oldest first: what each destination was made to
    hold — the first document, its updates, voids, re-posts and adjustments."""
    return list(
        conn.execute(
            select(
                postings.c.id,
                postings.c.destination_id,
                postings.c.order_version,
                postings.c.idempotency_key,
                postings.c.order_key,
                postings.c.document_id,
                postings.c.action,
                postings.c.amends_id,
                postings.c.status,
            )
            .where(postings.c.order_id == order_id, postings.c.status == _P.POSTED.value)
            .order_by(postings.c.id)
        ).all()
    )


def by_key(conn: Connection, key: str) -> Any | None:
    return conn.execute(select(postings).where(postings.c.idempotency_key == key)).one_or_none()
