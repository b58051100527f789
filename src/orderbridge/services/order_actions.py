"""What a person can do to one order: retry it, reset it to pending, refresh it from its channel,
release one of its holds. Each takes the :class:`~orderbridge.services.auth.Actor` doing it.

Every action runs in one transaction that also records it — a ledger event on the order's
timeline (naming who, from where) and a row of the audit trail (``record_action``) — so the change
and its record commit together or not at all. What each does to the ledger (decisions 105–107):

- **retry** (operator): releases the order's ``destination_rejected`` reasons, sends its rejected
  postings *of the current version* back to ``pending`` and runs the pipeline again. For an order
  held, skipped or refused by a destination, after its cause was corrected.
- **reset to pending** (operator): seed 002's "set the order back to Pending". The current version
  goes through the pipeline again and is posted to every destination that has not accepted it —
  and only those: a destination whose posting of this version is ``posted`` gets nothing new (the
  poster skips it; the posting ledger is per destination and version). A destination that holds a
  document of an *earlier* version is amended, never sent a second document: the reset accepts the
  order's update of this version (``services/order_updates.accept_current``), whose plan the next
  posting run performs (issue #15). A posted order goes back to
  ``ready`` only while a destination lacks its current version (the writer's
  ``not_posted_everywhere`` guard); a rejected posting of the current version is sent again with
  its own idempotency key, so the destination upserts one document.
- **refresh from the channel** (operator): the order is fetched from its channel through the
  declared interface (``FETCH_ORDER``) and ingested through the normal ingest path, the fetched
  copy authoritative: a changed order becomes a new version (and, if it is not posted yet, is
  judged again); postings, attempts and events are never deleted or rewritten — the ledger keeps
  that version N was posted as document D. A posted order's new version is an order update: the
  tenant's policy applies it, holds it for review or ignores it (``services/order_updates.py``).
- **release a hold** (admin, with a reason): one open hold reason of the order is released for the
  order's current version, recorded as a ``hold_released`` event (who, why) — the reason row stays
  in the history (``released_at``), and the pipeline and the poster go on as if it were resolved,
  for that reason only (``domain/pipeline.py``). A new version is judged afresh. A
  ``destination_rejected`` reason is released by asking that destination again.

**Idempotent under a double click.** The order's row is read under a lock (PostgreSQL; SQLite
writes one at a time) and what the action changes — state, version, open reasons, postings — is
compared before and after, inside a savepoint: an action that would change nothing (the second
click of a pair, a retry of an order already waiting to be posted) is rolled back and answered
``changed=False`` with why, writing no event and no audit row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from orderbridge.connectors.base import Capability, ChannelRecord, Role
from orderbridge.domain.events import EventKind
from orderbridge.domain.pipeline import RELEASABLE
from orderbridge.domain.reasons import HoldCode
from orderbridge.domain.roles import Role as UserRole
from orderbridge.domain.states import OrderState, PostingState
from orderbridge.errors import Conflict, Forbidden, InvalidInput, NotFound, OrderBridgeError
from orderbridge.services import order_updates
from orderbridge.services.audit_trail import record_action
from orderbridge.services.auth import Actor
from orderbridge.services.ingest import ingest_records
from orderbridge.services.ledger import add_events, event_row
from orderbridge.services.order_retry import RETRYABLE, retry, user_event
from orderbridge.services.order_story import RESETTABLE, order_row
from orderbridge.services.reevaluate import reevaluate_orders
from orderbridge.services.scope import Scope
from orderbridge.services.sync import channel_context
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo
from orderbridge.storage.tables import order_reasons, orders, postings

#: the longest reason a release keeps (a sentence or two)
RELEASE_NOTE_CHARS = 500


@dataclass(frozen=True)
class ActionResult:
    """What an action did. ``changed`` False: nothing needed doing (nothing was written)."""

    action: str
    order_id: int
    number: str
    changed: bool
    #: a stable code for what happened (the portal translates it): ``retried``, ``reset``,
    #: ``refreshed``, ``released``, ``unchanged`` …
    outcome: str
    state_before: str
    state: str
    version_before: int
    version: int
    #: one sentence in English (the API's ``message``; the CLI prints it)
    message: str
    #: destinations the current version goes to next (those that have not accepted it)
    to_post: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


# --- the actions ----------------------------------------------------------------------------------


def retry_now(actor: Actor, order_id: int) -> ActionResult:
    """Release the order's destination rejections and run the pipeline again (operator)."""
    _require(actor, UserRole.OPERATOR, "retry an order")

    def work(conn: Connection, scope: Scope, o: Any) -> str:
        retry(conn, scope, o, actor_name(actor), actor.address)
        return "retried"

    return _act(actor, order_id, "retry", work, "retry requested")


def reset_to_pending(actor: Actor, order_id: int) -> ActionResult:
    """Run the pipeline again on the current version and post it to every destination that has not
    accepted it, and only those (operator)."""
    _require(actor, UserRole.OPERATOR, "reset an order to pending")

    def work(conn: Connection, scope: Scope, o: Any) -> str:
        state = OrderState(o.state)
        if state not in RESETTABLE:
            raise Conflict(
                f"order {o.number} is {state.value}; it cannot go back to pending",
                hint="Only an order not yet shipped, closed or cancelled can be reset.",
            )
        destinations = scope.connections(conn, Role.DESTINATION)
        missing = _lacking_current(conn, o, destinations)
        if not missing:
            raise _Nothing(f"every destination has accepted version {o.version} of order {o.number}: nothing is sent")
        now = scope.now()
        told = user_event(scope, o.id, "order.reset", actor_name(actor), actor.address, "reset to pending")
        # a destination holding an earlier version is amended, never posted to again (issue #15):
        # the order's update of this version is accepted (or made, when none was recorded)
        order_updates.accept_current(conn, scope, o, actor_name(actor))
        posting_repo.reopen_rejected(conn, o.id, version=int(o.version))
        reason_repo.release_code(conn, o.id, HoldCode.DESTINATION_REJECTED.value, now)
        if state is OrderState.POSTED:
            moved = order_repo.transition(
                conn,
                [order_repo.Move(o.id, state, OrderState.READY, (told,))],
                now,
                guard="not_posted_everywhere",
                params={"n": len(destinations)},
            )
            if not moved:
                raise _Nothing(f"every destination has accepted version {o.version} of order {o.number}")
        else:
            # held first, so the re-evaluation below always records its decision on the timeline
            order_repo.transition(conn, [order_repo.Move(o.id, state, OrderState.HELD, (told,))], now)
        reevaluate_orders(conn, scope, [o.id])
        return "reset"

    return _act(actor, order_id, "reset", work, "reset to pending")


def refresh_from_channel(actor: Actor, order_id: int) -> ActionResult:
    """Fetch the order from its channel and ingest it as the channel has it now (operator)."""
    _require(actor, UserRole.OPERATOR, "refresh an order from its channel")
    scope = actor.scope
    with scope.read() as conn:
        o = order_row(conn, scope, order_id)
        row = scope.connection(conn, int(o.connection_id))
    if Capability.FETCH_ORDER not in row.declaration.capabilities:
        raise Conflict(
            f"{row.name} ({row.kind}) cannot be asked for one order",
            hint="The next sync or audit reads the order again.",
        )
    record = _fetch(scope, row, str(o.external_id), str(o.number))
    ctx = channel_context(scope, row)

    def work(conn: Connection, scope: Scope, current: Any) -> str:
        ingest_records(conn, scope.tenant_id, ctx, [record], scope.now(), authoritative=True)
        after = order_row(conn, scope, current.id)
        if int(after.version) == int(current.version):
            raise _Nothing(f"order {current.number} is unchanged in {row.name}")
        message = f"refreshed from {row.name}: version {current.version} → {after.version}"
        add_events(
            conn,
            [user_event(scope, current.id, "order.refresh", actor_name(actor), actor.address, message)],
        )
        return "refreshed"

    return _act(actor, order_id, "refresh", work, f"refreshed from {row.name}")


def release_hold(actor: Actor, order_id: int, reason_id: int, note: str) -> ActionResult:
    """Release one hold reason of the order's current version, with the reason why (admin)."""
    _require(actor, UserRole.ADMIN, "release a hold")
    why = " ".join((note or "").split())
    if not why:
        raise _invalid("a release needs a reason", hint="Say why the order may go as it is.", field="reason")
    if len(why) > RELEASE_NOTE_CHARS:
        raise _invalid(
            f"the reason is {len(why)} characters long; at most {RELEASE_NOTE_CHARS}",
            hint="Say it in a sentence or two.",
            field="reason",
        )

    def work(conn: Connection, scope: Scope, o: Any) -> str:
        r = conn.execute(
            select(order_reasons).where(order_reasons.c.id == reason_id, order_reasons.c.order_id == o.id)
        ).one_or_none()
        if r is None:
            raise NotFound(f"order {o.number} has no reason {reason_id}", hint="Open the order page again.")
        if r.released_at is not None:
            raise _Nothing(f"the reason {r.code} ({r.value}) of order {o.number} is already released")
        if r.kind != reason_repo.HOLD or r.push_id is not None:
            raise Conflict(
                f"{r.code} ({r.value}) is not a hold of the order but of "
                + ("a fulfilment push" if r.push_id is not None else "the download rules"),
                hint="Correct it where its fix says; a push goes once its shipment is corrected.",
            )
        if r.code not in RELEASABLE:
            raise Conflict(
                f"{r.code} ({r.value}) cannot be released: the order cannot be sent without it",
                hint=r.fix.text,
            )
        now = scope.now()
        reason_repo.release(conn, [int(r.id)], now)
        add_events(
            conn,
            [
                event_row(
                    scope.tenant_id,
                    o.id,
                    EventKind.HOLD_RELEASED,
                    now,
                    f"hold released by {actor_name(actor)}: {r.message} — reason given: {why}",
                    action="order.release",
                    by=actor_name(actor),
                    address=actor.address,
                    code=r.code,
                    value=r.value,
                    version=int(o.version),
                    reason_id=int(r.id),
                    note=why,
                )
            ],
        )
        if r.code == HoldCode.DESTINATION_REJECTED:
            # released = that destination is asked again (the pipeline never makes this reason)
            for dest in scope.connections(conn, Role.DESTINATION):
                if dest.name == r.value:
                    posting_repo.reopen_rejected(conn, o.id, version=int(o.version), destination_id=dest.id)
        state = OrderState(o.state)
        if state in RETRYABLE:
            order_repo.transition(conn, [order_repo.Move(o.id, state, OrderState.HELD)], now)
            reevaluate_orders(conn, scope, [o.id])
        return "released"

    return _act(actor, order_id, "release", work, "hold released", detail={"reason_id": reason_id, "note": why})


def actor_name(actor: Actor) -> str:
    return actor.principal.name


# --- the machinery --------------------------------------------------------------------------------


class _Nothing(Exception):
    """Raised inside an action: it would change nothing (the savepoint is rolled back)."""


def _invalid(message: str, *, hint: str, field: str) -> InvalidInput:
    exc = InvalidInput(message, hint=hint)
    exc.field = field  # type: ignore[attr-defined]  # the API's error shape names the field
    return exc


def _require(actor: Actor, role: UserRole, what: str) -> None:
    if not actor.principal.allows(role):
        raise Forbidden(
            f"{actor.principal.name} ({actor.principal.role}) cannot {what}",
            hint=f"Ask someone with the {role} role.",
        )


def _act(
    actor: Actor,
    order_id: int,
    action: str,
    work: Callable[[Connection, Scope, Any], str],
    summary: str,
    *,
    detail: dict[str, Any] | None = None,
) -> ActionResult:
    scope = actor.scope
    with scope.transaction() as conn:
        o = _locked(conn, scope, order_id)
        before = _snapshot(conn, o)
        savepoint = conn.begin_nested()
        try:
            outcome = work(conn, scope, o)
        except _Nothing as nothing:
            savepoint.rollback()
            return _result(conn, scope, o, action, False, "unchanged", str(nothing))
        except BaseException:
            savepoint.rollback()
            raise
        if _snapshot(conn, order_row(conn, scope, o.id)) == before:
            savepoint.rollback()
            return _result(conn, scope, o, action, False, "unchanged", _unchanged(o, action))
        savepoint.commit()
        result = _result(conn, scope, o, action, True, outcome, "")
        record_action(
            actor,
            f"order.{action}",
            "order",
            o.id,
            f"{summary}: order {o.number} {result.state_before} → {result.state}",
            {**(detail or {}), "state_before": result.state_before, "state": result.state, "to_post": result.to_post},
            conn=conn,
        )
    return result


def _locked(conn: Connection, scope: Scope, order_id: int) -> Any:
    """The order's row, locked for this transaction on PostgreSQL (a double click waits here, then
    finds the first click's work done); SQLite's write transactions run one at a time."""
    row = conn.execute(
        select(orders).where(orders.c.id == order_id, orders.c.tenant_id == scope.tenant_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"no order {order_id}", hint="Find the order in the orders list, by its number.")
    return row


def _snapshot(conn: Connection, o: Any) -> tuple[Any, ...]:
    """What an action may change: the order's state and version, its open reasons, its postings."""
    reasons = conn.execute(
        select(order_reasons.c.id).where(order_reasons.c.order_id == o.id, order_reasons.c.released_at.is_(None))
    ).scalars()
    posts = conn.execute(select(postings.c.id, postings.c.status).where(postings.c.order_id == o.id)).all()
    return (str(o.state), int(o.version), frozenset(reasons), frozenset((int(i), str(s)) for i, s in posts))


def _result(
    conn: Connection, scope: Scope, before: Any, action: str, changed: bool, outcome: str, message: str
) -> ActionResult:
    after = order_row(conn, scope, before.id)
    to_post = _to_post(conn, scope, after)
    if not message:
        message = _done_message(action, after, to_post)
    return ActionResult(
        action=action,
        order_id=int(after.id),
        number=str(after.number),
        changed=changed,
        outcome=outcome,
        state_before=str(before.state),
        state=str(after.state),
        version_before=int(before.version),
        version=int(after.version),
        message=message,
        to_post=to_post,
    )


def _to_post(conn: Connection, scope: Scope, o: Any) -> tuple[str, ...]:
    if OrderState(o.state) is not OrderState.READY:
        return ()
    destinations = scope.connections(conn, Role.DESTINATION)
    return tuple(d.name for d in _lacking_current(conn, o, destinations))


def _lacking_current(conn: Connection, o: Any, destinations: list[Any]) -> list[Any]:
    """The destinations that have not accepted the order's current version."""
    accepted = set(
        conn.execute(
            select(postings.c.destination_id).where(
                postings.c.order_id == o.id,
                postings.c.order_version == o.version,
                postings.c.status == PostingState.POSTED.value,
            )
        ).scalars()
    )
    return [d for d in destinations if d.id not in accepted]


def _done_message(action: str, o: Any, to_post: tuple[str, ...]) -> str:
    what = {
        "retry": "retried",
        "reset": "reset to pending",
        "refresh": f"refreshed from the channel (version {o.version})",
        "release": "hold released",
    }[action]
    if to_post:
        return f"order {o.number} {what}: it is posted next to {', '.join(to_post)}"
    return f"order {o.number} {what}: it is {o.state}"


def _unchanged(o: Any, action: str) -> str:
    state = OrderState(o.state)
    if state is OrderState.READY:
        return f"order {o.number} is already pending: it is posted on the next run"
    return f"nothing to {action}: order {o.number} is {state.value} and running it again changes nothing"


def _fetch(scope: Scope, row: Any, external_id: str, number: str) -> ChannelRecord:
    connector = scope.channel(row)
    try:
        return connector.fetch_order(external_id)
    except NotFound as exc:
        raise Conflict(
            f"{row.name} no longer has order {number} ({exc.message}); the ledger keeps its version",
            hint="Nothing to refresh: the order was deleted in the channel.",
            code="gone_from_channel",
        ) from exc
    except OrderBridgeError as exc:
        raise Conflict(
            f"{row.name} could not be asked for order {number} now: {exc.message}",
            hint=exc.hint or "Try again in a moment; the connection's page shows its health.",
            code="channel_unavailable",
            fix=exc.fix,
        ) from exc
