"""Back-sync: shipments from destinations → fulfilments on the channel.

Two steps, each idempotent:

- ``poll_shipments``: read the destination's shipments from its cursor (minus overlap) and upsert
  them on ``(destination, external id)``; link each to its order through the posting's
  ``order_key``. A voided label updates the row (``voided``) and is never pushed.
- ``push_fulfilments``: for each shipment without a push (or whose push must be looked at again),
  validate it (tracking number, carrier, and every line matched to a line of the order —
  :func:`~orderbridge.domain.shipments.fulfilment_lines`; an unmatched line holds the push naming
  it, and a push is never widened to the whole order); what cannot be sent is ``held`` with the
  reason and re-validated when the shipment changes. Then the channel's push planner (issue #16,
  :func:`~orderbridge.domain.push_plan.plan`) decides from the channel's declared rules and what
  the channel holds *now* (``remote_state``, read fresh before every plan): ``DONE`` (already so
  there — recorded, nothing sent), ``HELD`` (the typed reason: ``shipping_data_missing``,
  ``transition_not_allowed``, ``action_not_supported``), ``WAIT`` (waiting for the channel, e.g.
  the operator's debit after acceptance) or ``READY`` with the calls in order (accept, tracking,
  ship …). A ``pending`` push row is committed *before* the first call (the unique
  ``shipment_id`` makes it the only one) and each call is recorded as an event as it is answered.
  A reshipment after a voided, already pushed label plans the new tracking as replacing the old.
  Pushes held for the channel's state are planned again from a fresh read on every run (at most
  ``replan_held_per_run``), so an order accepted in the back office is released by itself. The
  requests people ask of the channel (cancel, refund, accept, refuse) go through the same planner
  (``services/channel_intents.py``).

Unknown outcomes. A push whose answer was lost (timeout, truncated body, reset: the connector's
``OutcomeUnknown``) is ``unknown``; one left ``pending`` by a killed process may have been sent too.
Neither is sent again blindly: the next run plans again from a fresh read of the channel, so a call
that landed shows there — the plan is ``DONE`` (recorded: no second fulfilment) or its remaining
calls only. While calls are still to be made, a maybe-sent push waits ``unknown_outcome_settle_s``
after the attempt (long enough for a request still running at the channel to have landed) before
anything is sent. A failure known not to have reached the channel (refused connection, rate limit)
is ``retry``: planned again next run.

When every line the destination was asked to ship (the ``posted`` event's quantities: what was left
to fulfil when it was posted) is covered by non-voided pushed shipments the order becomes
``fulfilled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import Connection, select

from orderbridge.connectors.base import (
    Capability,
    PlannedChannel,
    Role,
    ShipmentSource,
)
from orderbridge.domain import reasons as R
from orderbridge.domain.canonical import order_from_json
from orderbridge.domain.channel_rules import ChannelAction, ChannelRules, Outcome
from orderbridge.domain.events import EventKind
from orderbridge.domain.push_plan import PREREQUISITES, Intent, PlannedCall, PlanStatus, Tracking, plan
from orderbridge.domain.reasons import Reason
from orderbridge.domain.shipments import Shipment, ShipmentLine, fulfilment_lines, push_hold_reasons
from orderbridge.domain.states import PUSH_MAYBE_SENT, PUSH_NOT_SENT, OrderState, PushState
from orderbridge.errors import HoldOrder, InvalidInput, OrderBridgeError, OutcomeUnknown
from orderbridge.seams import crashpoint
from orderbridge.services.channel_intents import IntentReport, push_intents
from orderbridge.services.health import needs_recovery, record_failure, record_success
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ledger import add_events, event_row
from orderbridge.services.scope import Scope
from orderbridge.storage.leases import held
from orderbridge.storage.repos import events as event_log
from orderbridge.storage.repos import fulfilment_pushes as push_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo
from orderbridge.storage.repos import shipments as shipment_repo
from orderbridge.storage.repos.cursors import read_cursor, since_with_overlap, write_cursor
from orderbridge.storage.tables import fulfilment_pushes, orders, shipments

log = structlog.get_logger("orderbridge.backsync")


@dataclass
class BackSyncReport:
    connection: str
    shipments_new: int = 0
    shipments_updated: int = 0
    pushed: int = 0
    held: int = 0
    voided: int = 0
    #: pushes whose outcome is still unknown (not found in the channel yet, inside the settle window)
    unsettled: int = 0
    error: OrderBridgeError | None = None
    #: issue #16: the run's cancel / refund / accept / refuse intents
    intents: IntentReport | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "shipments_new": self.shipments_new,
            "shipments_updated": self.shipments_updated,
            "pushed": self.pushed,
            "held": self.held,
            "voided": self.voided,
            "unsettled": self.unsettled,
            "error": None if self.error is None else {"code": self.error.code, "message": str(self.error)},
        }


def poll_shipments(scope: Scope, destination_id: int) -> BackSyncReport:
    """Read new and changed shipments from the tenant's destination ``destination_id``."""
    row = scope.load(destination_id)
    destination = row.name
    if row.role is not Role.DESTINATION:
        raise InvalidInput(f"{destination!r} is not a destination; shipments come from destinations")
    if not row.can(Capability.LIST_SHIPMENTS):
        raise InvalidInput(f"{destination!r} ({row.kind}) does not list shipments; nothing is read back from it")
    report = BackSyncReport(destination)
    connector = cast(ShipmentSource, scope.destination(row))
    with held(scope.db, f"shipments:{row.id}", scope.settings.lease_ttl_s, scope.now):
        with scope.db.read() as conn:
            cursor = read_cursor(conn, row.id, "shipments")
        try:
            for batch in connector.list_shipments(since_with_overlap(cursor, scope.settings.cursor_overlap_s)):
                now = scope.now()
                with scope.db.transaction() as conn:
                    for shipment in batch.shipments:
                        _upsert_shipment(conn, scope.tenant_id, row, shipment, now, report)
                    if batch.cursor_after is not None:
                        write_cursor(conn, scope.tenant_id, row.id, batch.cursor_after, now, "shipments")
        except OrderBridgeError as exc:
            report.error = exc
            record_failure(scope, row, exc, job="shipments")
        else:
            record_success(scope, row, job="shipments")
    return report


def _shipment_values(s: Shipment) -> dict[str, Any]:
    return {
        "tracking_number": s.tracking_number,
        "carrier": s.carrier,
        "service": s.service,
        "tracking_url": s.tracking_url,
        "ship_date": s.ship_date,
        "voided": s.voided,
        "lines": [{"line_key": ln.line_key, "sku": ln.sku, "quantity": ln.quantity} for ln in s.lines],
    }


def _upsert_shipment(
    conn: Connection, tenant_id: int, row: ConnectionRow, s: Shipment, now: datetime, report: BackSyncReport
) -> None:
    values = _shipment_values(s)
    existing = shipment_repo.find(conn, row.id, s.external_id)
    order_id = posting_repo.order_for_key(conn, row.id, s.order_key)
    if existing is None:
        if shipment_repo.insert(
            conn,
            {
                "tenant_id": tenant_id,
                "destination_id": row.id,
                "order_id": order_id,
                "external_id": s.external_id,
                "order_key": s.order_key,
                "received_at": now,
                "updated_at": now,
                **values,
            },
        ):
            report.shipments_new += 1
            add_events(
                conn,
                [
                    event_row(
                        tenant_id,
                        order_id,
                        EventKind.SHIPMENT_RECEIVED,
                        now,
                        f"shipment {s.external_id} from {row.name}: {s.carrier or '?'} "
                        f"{s.tracking_number or '(no tracking)'}" + (" (voided)" if s.voided else ""),
                        shipment=s.external_id,
                        connection_id=row.id,
                    )
                ],
            )
        return
    changed = {k: v for k, v in values.items() if existing._mapping[k] != v}
    if not changed:
        return
    report.shipments_updated += 1
    shipment_repo.update_changed(conn, existing, changed, now)
    if changed.get("voided"):
        report.voided += 1
        add_events(
            conn,
            [
                event_row(
                    tenant_id,
                    existing.order_id,
                    EventKind.SHIPMENT_VOIDED,
                    now,
                    f"label {s.tracking_number} of shipment {s.external_id} was voided",
                    shipment=s.external_id,
                )
            ],
        )
    # a held push is re-validated with the new data
    push_repo.recheck_held(conn, existing.id, now)


def push_fulfilments(scope: Scope, channel_id: int) -> BackSyncReport:
    """Push the shipments of the tenant's channel ``channel_id``'s orders back to it as fulfilments."""
    row = scope.load(channel_id)
    channel = row.name
    if row.role is not Role.CHANNEL:
        raise InvalidInput(f"{channel!r} is not a channel; fulfilments are pushed to channels")
    if not row.can(Capability.PUSH_FULFILMENT):
        raise InvalidInput(f"{channel!r} ({row.kind}) does not accept fulfilments; nothing is pushed to it")
    report = BackSyncReport(channel)
    connector = cast(PlannedChannel, scope.channel(row))
    with held(scope.db, f"push:{row.id}", scope.settings.lease_ttl_s, scope.now):
        # held for the channel's state (issue #16): planned again from what it holds now, a few a run
        with scope.db.transaction() as conn:
            push_repo.recheck_state_held(conn, row.id, scope.now(), limit=scope.settings.replan_held_per_run)
        try:
            for item in _work(scope, row):
                _push_one(scope, row, connector, item, report)
            # what people (and the auto-accept policy) asked of the channel: cancel, refund, accept, refuse
            report.intents = push_intents(scope, row, connector, channel_rules(row, connector))
        except OrderBridgeError as exc:
            report.error = exc
            record_failure(scope, row, exc, job="push")
        else:
            if report.pushed or needs_recovery(scope, row, "push"):
                record_success(scope, row, job="push")
    return report


#: push statuses with work left: sent or maybe sent (pending, unknown), to re-check, or to resend
_TO_DO = ("pending", "unknown", "recheck", "retry", "waiting")
#: statuses whose send may have reached the channel: read it before anything is sent again
_MAYBE_SENT = ("pending", "unknown")


def _work(scope: Scope, row: ConnectionRow) -> list[Any]:
    """Shipments of this channel's orders with no push yet, or whose push must be re-checked/resent."""
    with scope.db.read() as conn:
        q = (
            select(
                shipments,
                fulfilment_pushes.c.id.label("push_id"),
                fulfilment_pushes.c.status.label("push_status"),
                fulfilment_pushes.c.updated_at.label("push_updated_at"),
                fulfilment_pushes.c.message.label("push_message"),
                orders.c.external_id.label("order_external_id"),
                orders.c.canonical,
            )
            .join(orders, orders.c.id == shipments.c.order_id)
            .outerjoin(fulfilment_pushes, fulfilment_pushes.c.shipment_id == shipments.c.id)
            .where(
                orders.c.connection_id == row.id,
                (fulfilment_pushes.c.id.is_(None)) | (fulfilment_pushes.c.status.in_(_TO_DO)),
            )
            .order_by(shipments.c.id)
        )
        return list(conn.execute(q).all())


def _push_one(scope: Scope, row: ConnectionRow, connector: Any, s: Any, report: BackSyncReport) -> None:
    """One shipment through the push planner (issue #16): validate the shipment, read what the
    channel holds now, plan, and act on the plan's outcome."""
    now = scope.now()
    shipment = Shipment(
        s.external_id,
        s.order_key,
        s.tracking_number,
        s.carrier,
        s.service,
        s.ship_date,
        s.voided,
        tuple(ShipmentLine(ln.get("line_key"), ln.get("sku"), int(ln.get("quantity") or 0)) for ln in s.lines),
        s.tracking_url,
    )
    if s.voided:
        # a push that cannot have reached the channel is not sent; one that may have is left as it is
        if s.push_id is None or PushState(s.push_status) in PUSH_NOT_SENT:
            with scope.db.transaction() as conn:
                _set_push(conn, scope, row, s, now, PushState.VOIDED, "label voided before it was pushed; not sent")
        return
    order = order_from_json(s.canonical)
    lines, line_problems = fulfilment_lines(shipment, order)
    problems = [*push_hold_reasons(shipment), *line_problems]
    if problems:
        message = "; ".join(p.message for p in problems)
        _hold_push(
            scope, row, s, now, report, problems, message, f"fulfilment push held: {message} — {problems[0].fix.text}"
        )
        return
    rules = channel_rules(row, connector)
    # a reshipment after a voided label already pushed: the tracking it replaces
    with scope.db.read() as conn:
        replaced = push_repo.replaced_trackings(conn, s.order_id, s.id)
    try:
        remote = connector.remote_state(s.order_external_id)
    except HoldOrder as exc:  # the order is gone from the channel, say
        reason = _channel_reason(row.name, exc, exc.code)
        _hold_push(scope, row, s, now, report, [reason], str(exc), f"{row.name}: {exc}")
        return
    on_remote = {r.tracking_number for r in remote.shipments}
    intent = Intent(
        Outcome.SHIPPED,
        lines,
        Tracking(s.tracking_number or "", s.carrier or "", s.tracking_url or None),
        replaces=next((t for t in replaced if t in on_remote), None),
    )
    p = plan(rules, remote, intent, channel=row.name, prerequisites=prerequisites(row))
    maybe_sent = s.push_status is not None and PushState(s.push_status) in PUSH_MAYBE_SENT
    if p.status is PlanStatus.DONE:
        found = next((r.id for r in remote.shipments if r.tracking_number == s.tracking_number), "")
        message = (
            f"fulfilment {found} found in {row.name} with tracking {s.carrier} {s.tracking_number}: "
            "the earlier attempt reached it and its answer was lost; recorded, not sent again"
            if maybe_sent
            else f"shipment {s.external_id} already_in_state at {row.name}: {p.note}; nothing sent"
        )
        _record_pushed(scope, row, s, order, now, report, found, message)
        return
    if p.status is PlanStatus.HELD:
        assert p.hold is not None
        _hold_push(
            scope, row, s, now, report, [p.hold], p.hold.message,
            f"fulfilment push held: {p.hold.message} — {p.hold.fix.text}",
        )  # fmt: skip
        return
    if maybe_sent and p.calls:
        # an earlier attempt may still land at the channel: give it the settle window before resending
        waited = (now - s.push_updated_at).total_seconds() if s.push_updated_at is not None else None
        if waited is not None and waited < scope.settings.unknown_outcome_settle_s:
            report.unsettled += 1
            return
    if not p.calls:  # WAIT with nothing to send now
        _wait(scope, row, s, now, p.note)
        return
    with scope.db.transaction() as conn:
        _set_push(conn, scope, row, s, now, PushState.PENDING, "sending: " + p.describe(), attempt=True)
    crashpoint("push.before_send")
    made = ""
    for n, call in enumerate(p.calls):
        if n:
            crashpoint("push.between_calls")
        try:
            answer = connector.perform(s.order_external_id, call)
        except HoldOrder as exc:
            code = exc.code if exc.code != HoldOrder.code else R.HoldCode.CHANNEL_REJECTED.value
            reason = _channel_reason(row.name, exc, code)
            _hold_push(scope, row, s, now, report, [reason], str(exc), f"{row.name} rejected {call.call}: {exc}")
            return
        except OrderBridgeError as exc:  # OutcomeUnknown: maybe applied; else answered, or never reached it
            unknown = isinstance(exc, OutcomeUnknown)
            with scope.db.transaction() as conn:
                _set_push(
                    conn,
                    scope,
                    row,
                    s,
                    scope.now(),
                    PushState.UNKNOWN if unknown else PushState.RETRY,
                    (
                        f"outcome unknown ({call.call}): {exc.message}; {row.name} is read before it is sent again"
                        if unknown
                        else f"not sent ({call.call}): {exc.message}; planned again on the next run"
                    ),
                    code=exc.code,
                )
            raise
        if call.action in (ChannelAction.SHIP, ChannelAction.TRACKING):
            made = answer
        with scope.db.transaction() as conn:
            add_events(conn, [_call_event(scope, s.order_id, row, call, answer, shipment=s.external_id)])
    crashpoint("push.after_send")
    if p.status is PlanStatus.WAIT:
        _wait(scope, row, s, scope.now(), p.note)
        return
    _record_pushed(
        scope,
        row,
        s,
        order,
        now,
        report,
        made,
        f"fulfilment {made} pushed to {row.name} with tracking {s.carrier} {s.tracking_number} ({p.describe()})",
    )


def channel_rules(row: ConnectionRow, connector: Any) -> ChannelRules:
    """The rules to plan with: the connector's own when it refines its kind's for the connection
    (Mirakl's known carriers, decision 202), else its declaration's."""
    rules = getattr(connector, "channel_rules", None) or row.declaration.channel_rules
    assert isinstance(rules, ChannelRules)  # a pushing channel declares its rules (connectors/base.py)
    return rules


def prerequisites(row: ConnectionRow) -> frozenset[ChannelAction]:
    """What the planner may do on its own for this connection: accept an order before shipping it
    only when the connection's ``auto_accept`` is on (a kind that declares ACCEPT declares it)."""
    rules = row.declaration.channel_rules
    if rules is None or ChannelAction.ACCEPT not in rules.actions:
        return frozenset()
    on = True if row.declaration.setting("auto_accept") is None else bool(row.hub_setting("auto_accept"))
    return PREREQUISITES if on else frozenset()


def _call_event(
    scope: Scope, order_id: int, row: ConnectionRow, call: PlannedCall, answer: str, **data: Any
) -> dict[str, Any]:
    return event_row(
        scope.tenant_id,
        order_id,
        EventKind.PUSH_CALL,
        scope.now(),
        f"{row.name}: {call.call} sent ({call.action})" + (f" → {answer}" if answer else ""),
        call=call.call,
        action=call.action.value,
        answer=answer,
        connection_id=row.id,
        **data,
    )


def _wait(scope: Scope, row: ConnectionRow, s: Any, now: datetime, note: str) -> None:
    """The plan waits for the channel to move the order on by itself: shown, planned again next run."""
    if s.push_status == PushState.WAITING.value and s.push_message == note:
        return
    with scope.db.transaction() as conn:
        _set_push(
            conn, scope, row, s, now, PushState.WAITING, note,
            events=[
                event_row(scope.tenant_id, s.order_id, EventKind.PUSH_WAITING, now, f"{row.name}: {note}",
                          shipment=s.external_id)
            ],
        )  # fmt: skip


def _record_pushed(
    scope: Scope,
    row: ConnectionRow,
    s: Any,
    order: Any,
    now: datetime,
    report: BackSyncReport,
    fulfilment_id: str,
    message: str,
) -> None:
    with scope.db.transaction() as conn:
        _set_push(
            conn,
            scope,
            row,
            s,
            now,
            PushState.PUSHED,
            "",
            fulfilment_id=fulfilment_id,
            events=[
                event_row(
                    scope.tenant_id, s.order_id, EventKind.FULFILMENT_PUSHED, now, message, shipment=s.external_id
                )
            ],
        )
        report.pushed += 1
        _maybe_fulfilled(conn, scope, s.order_id, order, now)


def _hold_push(
    scope: Scope,
    row: ConnectionRow,
    s: Any,
    now: datetime,
    report: BackSyncReport,
    reasons: list[Reason],
    message: str,
    event_message: str,
) -> None:
    """A push that cannot go: held with its reasons (shown by ``holds`` with held orders), on the
    order's timeline and in the log."""
    with scope.db.transaction() as conn:
        _set_push(
            conn,
            scope,
            row,
            s,
            now,
            PushState.HELD,
            message,
            reasons=reasons,
            events=[
                event_row(
                    scope.tenant_id,
                    s.order_id,
                    EventKind.FULFILMENT_PUSH_HELD,
                    now,
                    event_message,
                    shipment=s.external_id,
                    codes=[r.code for r in reasons],
                )
            ],
        )
    report.held += 1
    log.info("push.held", tenant_id=scope.tenant_id, connection_id=row.id, order_id=s.order_id, reason=message)


def _channel_reason(channel: str, exc: HoldOrder, code: str) -> Reason:
    """Why the channel would not take (or no longer has) a fulfilment, as a push's reason."""
    rejected = R.channel_rejected(channel, exc.message)
    message = rejected.message if code == R.HoldCode.CHANNEL_REJECTED else f"{channel}: {exc.message}"
    fix = exc.fix or (rejected.fix.with_text(exc.hint) if exc.hint else rejected.fix)
    return Reason(code, channel, message, fix)


def _set_push(
    conn: Connection,
    scope: Scope,
    row: ConnectionRow,
    s: Any,
    now: datetime,
    target: PushState,
    message: str,
    *,
    code: str | None = None,
    reasons: list[Reason] | None = None,
    fulfilment_id: str | None = None,
    attempt: bool = False,
    events: list[dict[str, Any]] | None = None,
) -> None:
    push_repo.write(
        conn,
        scope.tenant_id,
        shipment_id=s.id,
        order_id=s.order_id,
        channel_id=row.id,
        target=target,
        now=now,
        message=message,
        code=code,
        reasons=reasons or (),
        fulfilment_id=fulfilment_id,
        attempt=attempt,
        events=events or (),
    )


def _maybe_fulfilled(conn: Connection, scope: Scope, order_id: int, order: Any, now: datetime) -> None:
    shipped: dict[str, int] = {}
    for lines in push_repo.pushed_lines(conn, order_id):
        for ln in lines:
            key = ln.get("line_key") or ln.get("sku") or ""
            shipped[key] = shipped.get(key, 0) + int(ln["quantity"])
    # what the destination was asked to ship; orders posted before posts recorded it: every unit
    asked = _posted_quantities(conn, order_id) or {line.external_id: line.quantity for line in order.lines}
    complete = all(
        shipped.get(line.external_id, 0) + (shipped.get(line.sku, 0) if line.sku else 0)
        >= asked.get(line.external_id, 0)
        for line in order.lines
    )
    if complete:  # fulfilled if it is posted (one fulfilled already, or not posted everywhere, stays)
        event = event_row(scope.tenant_id, order_id, EventKind.FULFILLED, now, "all lines fulfilled")
        order_repo.transition(
            conn, [order_repo.Move(order_id, OrderState.POSTED, OrderState.FULFILLED, (event,))], now, leave_others=True
        )


def _posted_quantities(conn: Connection, order_id: int) -> dict[str, int] | None:
    """The line quantities the order's last ``posted`` event says the destination was sent, if any."""
    data = event_log.last_data(conn, order_id, EventKind.POSTED)
    if isinstance(data, dict) and isinstance(data.get("lines"), dict):
        return {str(k): int(v) for k, v in data["lines"].items()}
    return None


def pending_push_count(scope: Scope) -> int:
    with scope.db.read() as conn:
        return push_repo.not_pushed(conn, scope.tenant_id)
