"""Channel intents (0020, issue #16): what a user or a channel's auto-accept policy asked of an
order at its channel — cancel, refund, accept, refuse — and :func:`write`, the one writer of an
intent's state. States are a shipment push's (:data:`orderbridge.domain.states.PUSH`), checked
before anything is written; ``calls`` grows by each call made for it, in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, select, update

from orderbridge.domain.reasons import Reason
from orderbridge.domain.states import PUSH, PushState
from orderbridge.storage.repos import events as event_log
from orderbridge.storage.tables import channel_intents

_F = PushState
#: states with work left (sent or maybe sent, to plan again, waiting for the channel)
OPEN = ("pending", "unknown", "retry", "recheck", "waiting")
#: held for the channel's state: planned again from a fresh read each run
STATE_CODES = ("transition_not_allowed", "action_not_supported", "acceptance_held")


def create(
    conn: Connection,
    tenant_id: int,
    *,
    order_id: int,
    channel_id: int,
    outcome: str,
    lines: Sequence[tuple[str, int]],
    refund_total: str | None,
    note: str,
    requested_by: str,
    now: datetime,
    status: PushState = _F.PENDING,
    reason: Reason | None = None,
    events: Sequence[dict[str, Any]] = (),
) -> tuple[int, bool]:
    """A new intent — unless the order has one for the same outcome and lines that is not done
    (one push per intended outcome): (its id, whether it was created)."""
    wanted = [[line, int(qty)] for line, qty in lines]
    for row in conn.execute(
        select(channel_intents.c.id, channel_intents.c.lines, channel_intents.c.refund_total, channel_intents.c.status)
        .where(channel_intents.c.order_id == order_id, channel_intents.c.outcome == outcome)
        .with_for_update()
    ):
        if row.status != _F.PUSHED.value and list(row.lines) == wanted and row.refund_total == refund_total:
            return int(row.id), False
    PUSH.check(None, status)
    intent_id = conn.execute(
        channel_intents.insert()
        .values(
            tenant_id=tenant_id,
            order_id=order_id,
            channel_id=channel_id,
            outcome=outcome,
            lines=wanted,
            refund_total=refund_total,
            note=note,
            status=status.value,
            reason_code=reason.code if reason else None,
            message=reason.message if reason else "",
            reason=_reason_json(reason),
            calls=[],
            attempts=0,
            requested_by=requested_by,
            created_at=now,
            updated_at=now,
        )
        .returning(channel_intents.c.id)
    ).scalar_one()
    event_log.append(conn, events)
    return int(intent_id), True


def write(
    conn: Connection,
    intent_id: int,
    *,
    target: PushState,
    now: datetime,
    message: str = "",
    reason: Reason | None = None,
    call: dict[str, Any] | None = None,
    attempt: bool = False,
    events: Sequence[dict[str, Any]] = (),
) -> None:
    """Move the intent to ``target`` (``reason``: why it is held), appending ``call`` to its calls."""
    row = conn.execute(
        select(channel_intents.c.status, channel_intents.c.calls, channel_intents.c.attempts)
        .where(channel_intents.c.id == intent_id)
        .with_for_update()
    ).one()
    current = PushState(row.status)
    if current is not target:
        PUSH.check(current, target)
    values: dict[str, Any] = {
        "status": target.value,
        "message": message,
        "updated_at": now,
        "reason_code": reason.code if reason else None,
        "reason": _reason_json(reason),
    }
    if call is not None:
        values["calls"] = [*list(row.calls or []), call]
    if attempt:
        values["attempts"] = int(row.attempts) + 1
    conn.execute(
        update(channel_intents)
        .where(channel_intents.c.id == intent_id, channel_intents.c.status == current.value)
        .values(**values)
    )
    event_log.append(conn, events)


def recheck_state_held(conn: Connection, channel_id: int, now: datetime, *, limit: int) -> int:
    """held → recheck for up to ``limit`` intents held for the channel's state (oldest look first)."""
    if limit <= 0:
        return 0
    ids = list(
        conn.execute(
            select(channel_intents.c.id)
            .where(
                channel_intents.c.channel_id == channel_id,
                channel_intents.c.status == _F.HELD.value,
                channel_intents.c.reason_code.in_(STATE_CODES),
            )
            .order_by(channel_intents.c.updated_at, channel_intents.c.id)
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return 0
    PUSH.check(_F.HELD, _F.RECHECK)
    return int(
        conn.execute(
            update(channel_intents)
            .where(channel_intents.c.id.in_(ids), channel_intents.c.status == _F.HELD.value)
            .values(status=_F.RECHECK.value)
        ).rowcount
    )


def _reason_json(reason: Reason | None) -> dict[str, Any] | None:
    if reason is None:
        return None
    return {
        "code": reason.code,
        "value": reason.value,
        "message": reason.message,
        "fix": {"action": reason.fix.action.value, "text": reason.fix.text, "params": dict(reason.fix.params)},
    }


# --- lookups -------------------------------------------------------------------------------------


def to_do(conn: Connection, channel_id: int) -> list[Any]:
    """The channel's intents with work left, oldest first."""
    return list(
        conn.execute(
            select(channel_intents)
            .where(channel_intents.c.channel_id == channel_id, channel_intents.c.status.in_(OPEN))
            .order_by(channel_intents.c.id)
        ).all()
    )


def for_order(conn: Connection, order_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(channel_intents).where(channel_intents.c.order_id == order_id).order_by(channel_intents.c.id)
        ).all()
    )


def held(conn: Connection, tenant_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(channel_intents)
            .where(channel_intents.c.tenant_id == tenant_id, channel_intents.c.status == _F.HELD.value)
            .order_by(channel_intents.c.id)
        ).all()
    )


def has_outcome(conn: Connection, order_ids: Sequence[int], outcome: str) -> set[int]:
    """The orders among ``order_ids`` that already have an intent of ``outcome``."""
    if not order_ids:
        return set()
    return set(
        conn.execute(
            select(channel_intents.c.order_id).where(
                channel_intents.c.order_id.in_(list(order_ids)), channel_intents.c.outcome == outcome
            )
        ).scalars()
    )


def not_asked(order_id: Any, outcome: str) -> Any:
    """A condition on an orders query: the order has no intent of ``outcome`` yet."""
    return ~exists().where(channel_intents.c.order_id == order_id, channel_intents.c.outcome == outcome)
