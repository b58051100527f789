"""Fulfilment pushes (one per shipment, unique ``shipment_id``) and :func:`write`, the one writer of
a push's state.

Every write is a move of :data:`orderbridge.domain.states.PUSH` from the state the row is in
(read under a row lock on PostgreSQL), checked before anything is written. A held push has its
reasons as rows of ``order_reasons`` (``kind = 'push'``): they are opened when it is held, kept
while it waits to be checked again, and released when it leaves (pushed, sent again, voided) —
so ``holds``, the digest and the hold alerts read held pushes as they read held orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from orderbridge.domain.reasons import Reason
from orderbridge.domain.states import PUSH, PushState
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.repos import events as event_log
from orderbridge.storage.repos import order_reasons
from orderbridge.storage.tables import fulfilment_pushes, shipments

_F = PushState


def current(conn: Connection, shipment_id: int) -> tuple[int, PushState] | None:
    """The shipment's push (id, state), locked for this transaction on PostgreSQL; None if it has none."""
    row = conn.execute(
        select(fulfilment_pushes.c.id, fulfilment_pushes.c.status)
        .where(fulfilment_pushes.c.shipment_id == shipment_id)
        .with_for_update()
    ).one_or_none()
    return None if row is None else (int(row.id), PushState(row.status))


def write(
    conn: Connection,
    tenant_id: int,
    *,
    shipment_id: int,
    order_id: int,
    channel_id: int,
    target: PushState,
    now: datetime,
    message: str = "",
    code: str | None = None,
    reasons: Sequence[Reason] = (),
    fulfilment_id: str | None = None,
    attempt: bool = False,
    events: Sequence[dict[str, Any]] = (),
) -> int:
    """Move the shipment's push (created when it has none) to ``target`` and append ``events``.

    ``reasons``: why it is held (``target`` held; the first one's code is the push's
    ``reason_code``); ``code``: the error code of a push left to retry or to settle; ``attempt``:
    one more send is being made. Returns the push's id."""
    if reasons and target is not _F.HELD:
        raise ValueError("only a held push has reasons")
    values: dict[str, Any] = {
        "status": target.value,
        "reason_code": reasons[0].code if reasons else code,
        "message": message,
        "updated_at": now,
    }
    if fulfilment_id is not None:
        values["channel_fulfilment_id"] = fulfilment_id
    for _ in range(3):
        found = current(conn, shipment_id)
        if found is None:
            PUSH.check(None, target)
            push_id = conn.execute(
                dialect_insert(conn)(fulfilment_pushes)
                .values(
                    tenant_id=tenant_id,
                    shipment_id=shipment_id,
                    order_id=order_id,
                    channel_id=channel_id,
                    created_at=now,
                    attempts=1 if attempt else 0,
                    **values,
                )
                .on_conflict_do_nothing(index_elements=["shipment_id"])
                .returning(fulfilment_pushes.c.id)
            ).scalar_one_or_none()
            if push_id is None:
                continue  # another writer created it meanwhile: move it from the state it has
            break
        push_id, state = found
        PUSH.check(state, target)
        set_ = dict(values)
        if attempt:
            set_["attempts"] = fulfilment_pushes.c.attempts + 1
        done = conn.execute(
            update(fulfilment_pushes)
            .where(fulfilment_pushes.c.id == push_id, fulfilment_pushes.c.status == state.value)
            .values(**set_)
        )
        if done.rowcount:
            break
    else:
        raise RuntimeError(f"the push of shipment {shipment_id} kept changing state under this transaction")
    order_reasons.settle_push(conn, tenant_id, order_id, int(push_id), reasons, now)
    event_log.append(conn, events)
    return int(push_id)


def recheck_held(conn: Connection, shipment_id: int, now: datetime) -> int:
    """held → recheck for the shipment's push (its shipment changed: validated again by the next
    run; its reasons stay open until then). Returns how many moved (0 or 1)."""
    PUSH.check(_F.HELD, _F.RECHECK)
    done = conn.execute(
        update(fulfilment_pushes)
        .where(fulfilment_pushes.c.shipment_id == shipment_id, fulfilment_pushes.c.status == _F.HELD.value)
        .values(status=_F.RECHECK.value, updated_at=now)
    )
    return int(done.rowcount)


#: issue #16: held for what the channel holds (its state, what its API offers now): planned again
#: from a fresh read by each push run — accepted or cancelled in the back office meanwhile
STATE_CODES = ("transition_not_allowed", "action_not_supported")


def recheck_state_held(conn: Connection, channel_id: int, now: datetime, *, limit: int) -> int:
    """held → recheck for up to ``limit`` of the channel's pushes held for its state (the least
    recently looked at first); their reasons stay open until the next plan says otherwise."""
    if limit <= 0:
        return 0
    ids = list(
        conn.execute(
            select(fulfilment_pushes.c.id)
            .where(
                fulfilment_pushes.c.channel_id == channel_id,
                fulfilment_pushes.c.status == _F.HELD.value,
                fulfilment_pushes.c.reason_code.in_(STATE_CODES),
            )
            .order_by(fulfilment_pushes.c.updated_at, fulfilment_pushes.c.id)
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return 0
    PUSH.check(_F.HELD, _F.RECHECK)
    done = conn.execute(
        update(fulfilment_pushes)
        .where(fulfilment_pushes.c.id.in_(ids), fulfilment_pushes.c.status == _F.HELD.value)
        .values(status=_F.RECHECK.value)
    )
    return int(done.rowcount)


# --- lookups -------------------------------------------------------------------------------------


def replaced_trackings(conn: Connection, order_id: int, shipment_id: int) -> list[str]:
    """The tracking numbers of the order's labels pushed and since voided (newest first): a
    reshipment, shipment ``shipment_id``, replaces one of them at the channel."""
    return [
        str(t)
        for t in conn.execute(
            select(shipments.c.tracking_number)
            .join(fulfilment_pushes, fulfilment_pushes.c.shipment_id == shipments.c.id)
            .where(
                shipments.c.order_id == order_id,
                shipments.c.voided.is_(True),
                fulfilment_pushes.c.status == _F.PUSHED.value,
                shipments.c.id != shipment_id,
            )
            .order_by(shipments.c.id.desc())
        ).scalars()
        if t
    ]


def replaced_fulfilment(conn: Connection, order_id: int, shipment_id: int) -> str | None:
    """The channel fulfilment of the order pushed for a label since voided (a reshipment, shipment
    ``shipment_id``, updates its tracking instead of creating another)."""
    found: str | None = conn.execute(
        select(fulfilment_pushes.c.channel_fulfilment_id)
        .join(shipments, shipments.c.id == fulfilment_pushes.c.shipment_id)
        .where(
            shipments.c.order_id == order_id,
            shipments.c.voided.is_(True),
            fulfilment_pushes.c.status == _F.PUSHED.value,
            shipments.c.id != shipment_id,
        )
        .limit(1)
    ).scalar_one_or_none()
    return found


def pushed_lines(conn: Connection, order_id: int) -> list[Any]:
    """The lines of the order's shipments that are pushed and not voided."""
    return list(
        conn.execute(
            select(shipments.c.lines)
            .join(fulfilment_pushes, fulfilment_pushes.c.shipment_id == shipments.c.id)
            .where(
                shipments.c.order_id == order_id,
                shipments.c.voided.is_(False),
                fulfilment_pushes.c.status == _F.PUSHED.value,
            )
        ).scalars()
    )


def not_pushed(conn: Connection, tenant_id: int) -> int:
    """How many of the tenant's pushes are not (yet) pushed."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(fulfilment_pushes)
            .where(fulfilment_pushes.c.tenant_id == tenant_id, fulfilment_pushes.c.status != _F.PUSHED.value)
        ).scalar_one()
    )
