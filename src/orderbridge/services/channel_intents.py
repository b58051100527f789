"""What a person (or a channel's auto-accept policy) asks of an order at its channel (issue #16):
cancel (the whole order or some lines), refund (up to a total), accept, refuse.

Each request is one ``channel_intents`` row (``storage/repos/channel_intents.py``, its one writer),
pushed by the channel's push run (``backsync.push_fulfilments``) through the same planner as a
shipment: what the channel holds is read fresh (``remote_state``), the plan decides —
``DONE`` (already so at the channel: recorded, nothing sent), ``READY`` (the calls, made in order,
each recorded on the intent and the timeline), ``WAIT`` (waiting, planned again next run) or
``HELD`` (the typed reason: ``transition_not_allowed``, ``action_not_supported`` with the back
office link). A held intent is planned again from a fresh read on every run (bounded), so an order
cancelled by hand in the back office marks a not-supported cancel done by itself.

An unknown outcome (a lost answer, a process killed while sending) is never resent blindly: the
next run reads the channel again, and a call already applied shows there.

The auto-accept policy (:func:`auto_accept`): for a channel whose rules declare ``ACCEPT`` and
whose connection's HUB setting ``auto_accept`` is on (the default), every order awaiting acceptance
is accepted when it is not held for an SKU (``sku_unmapped``/``sku_missing``: its destinations
could not take it); otherwise its acceptance is held (``acceptance_held``, naming why) and accepted
by itself once the order is no longer held — the deadline alerts (``services/deadlines.py``) warn
before the channel refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from orderbridge.domain import reasons as R
from orderbridge.domain.channel_rules import ChannelAction, ChannelRules, Outcome
from orderbridge.domain.events import EventKind
from orderbridge.domain.push_plan import Intent, PlannedCall, PlanStatus, plan
from orderbridge.domain.reasons import Reason
from orderbridge.domain.states import PushState
from orderbridge.errors import HoldOrder, InvalidInput, NotFound, OrderBridgeError, OutcomeUnknown
from orderbridge.seams import crashpoint
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ledger import event_row
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import channel_intents as repo
from orderbridge.storage.repos import order_reasons
from orderbridge.storage.tables import orders

#: what a person may ask of a channel (a shipment is asked by the 3PL, not here)
ASKABLE = (Outcome.CANCELLED, Outcome.REFUNDED, Outcome.ACCEPTED, Outcome.REFUSED)
#: who the auto-accept policy's requests are by
AUTO_ACCEPT = "auto_accept policy"
#: an order held for one of these is not accepted automatically: a destination could not take it
UNACCEPTABLE = ("sku_unmapped", "sku_missing")
#: orders looked at by one auto-accept run (the oldest first)
AUTO_ACCEPT_BATCH = 500


@dataclass
class IntentReport:
    sent: int = 0
    done: int = 0
    held: int = 0
    waiting: int = 0
    unsettled: int = 0
    accepted_automatically: int = 0
    acceptance_held: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Requested:
    intent_id: int
    created: bool
    outcome: str


def request_intent(
    scope: Scope,
    order_id: int,
    outcome: Outcome | str,
    *,
    by: str,
    lines: tuple[tuple[str, int], ...] = (),
    refund_total: Decimal | str | None = None,
    note: str = "",
) -> Requested:
    """Ask the order's channel for ``outcome`` (sent by the channel's next push run). The same
    request while one is not done yet returns that one: one push per intended outcome."""
    _own_order(scope, order_id)  # another tenant's order is not found, whatever else is asked
    try:
        wanted = Outcome(outcome)
    except ValueError:
        raise InvalidInput(
            f"{outcome!r} cannot be asked of a channel",
            hint="Ask for one of: " + ", ".join(o.value for o in ASKABLE) + ".",
        ) from None
    if wanted not in ASKABLE:
        raise InvalidInput(f"{wanted} cannot be asked by hand", hint="Shipments come from the 3PL's shipments.")
    total: str | None = None
    if wanted is Outcome.REFUNDED:
        try:
            amount = Decimal(str(refund_total))
        except (InvalidOperation, ValueError):
            raise InvalidInput(
                "a refund needs the total the channel's refunds should reach",
                hint="Give refund_total, e.g. 12.50 (in the order's currency).",
            ) from None
        if not amount.is_finite() or amount <= 0:
            raise InvalidInput("the refund total must be a positive amount", hint="e.g. 12.50")
        total = str(amount)
    for line, qty in lines:
        if not line or qty <= 0:
            raise InvalidInput(
                f"line {line!r} × {qty} is not a line to act on", hint="Give line ids and quantities ≥ 1."
            )
    with scope.db.read() as conn:
        order = conn.execute(
            select(orders.c.id, orders.c.connection_id, orders.c.number).where(
                orders.c.id == order_id, orders.c.tenant_id == scope.tenant_id
            )
        ).one_or_none()
    if order is None:
        raise NotFound(f"order {order_id} does not exist", hint="Check the order id (the orders list shows it).")
    row = scope.load(int(order.connection_id))
    if row.declaration.channel_rules is None:
        raise InvalidInput(
            f"{row.name!r} ({row.kind}) declares no channel rules: nothing can be asked of it",
            hint="Do it where the order was placed.",
        )
    now = scope.now()
    what = _describe(wanted, lines, total)
    event = event_row(
        scope.tenant_id, order_id, EventKind.CHANNEL_INTENT, now,
        f"{what} asked of {row.name} by {by}" + (f" ({note})" if note else ""),
        outcome=wanted.value, by=by, connection_id=row.id,
    )  # fmt: skip
    with scope.db.transaction() as conn:
        intent_id, created = repo.create(
            conn, scope.tenant_id, order_id=order_id, channel_id=row.id, outcome=wanted.value, lines=lines,
            refund_total=total, note=note, requested_by=by, now=now, events=[event],
        )  # fmt: skip
    return Requested(intent_id, created, wanted.value)


def _describe(outcome: Outcome, lines: tuple[tuple[str, int], ...], total: str | None) -> str:
    verb = {
        Outcome.CANCELLED: "cancellation",
        Outcome.REFUNDED: "refund",
        Outcome.ACCEPTED: "acceptance",
        Outcome.REFUSED: "refusal",
    }.get(outcome, str(outcome))
    if lines:
        verb += " of " + ", ".join(f"{line} × {qty}" for line, qty in lines)
    if total is not None:
        verb += f" up to {total}"
    return verb


# --- pushing (called by backsync.push_fulfilments under the channel's push lease) -----------------


def push_intents(scope: Scope, row: ConnectionRow, connector: Any, rules: ChannelRules) -> IntentReport:
    """Plan and send every intent of the channel with work left (held ones for the channel's state
    first become ``recheck``, a bounded number per run)."""
    report = IntentReport()
    with scope.db.transaction() as conn:
        repo.recheck_state_held(conn, row.id, scope.now(), limit=scope.settings.replan_held_per_run)
    auto_accept(scope, row, rules, report)
    with scope.db.read() as conn:
        work = repo.to_do(conn, row.id)
        ext = _external_ids(conn, [int(w.order_id) for w in work])
    for it in work:
        try:
            _push_one(scope, row, connector, rules, it, ext.get(int(it.order_id), ""), report)
        except OrderBridgeError as exc:  # one intent's failure does not stop the others
            report.errors.append(f"intent {it.id}: {exc.message}")
    return report


def _external_ids(conn: Any, order_ids: list[int]) -> dict[int, str]:
    if not order_ids:
        return {}
    return {
        int(i): str(e)
        for i, e in conn.execute(select(orders.c.id, orders.c.external_id).where(orders.c.id.in_(order_ids)))
    }


def _intent(it: Any) -> Intent:
    return Intent(
        Outcome(it.outcome),
        tuple((str(line), int(qty)) for line, qty in it.lines or ()),
        refund_total=Decimal(it.refund_total) if it.refund_total is not None else None,
        reason=it.note or "",
    )


def _push_one(
    scope: Scope,
    row: ConnectionRow,
    connector: Any,
    rules: ChannelRules,
    it: Any,
    external_id: str,
    report: IntentReport,
) -> None:
    now = scope.now()
    intent = _intent(it)
    if it.requested_by == AUTO_ACCEPT and intent.outcome is Outcome.ACCEPTED:
        why = _unacceptable(scope, int(it.order_id))
        if why:
            remote_url = ""
            _hold(scope, row, it, now, R.acceptance_held(row.name, why, remote_url), report)
            return
    try:
        remote = connector.remote_state(external_id)
    except HoldOrder as exc:
        _hold(scope, row, it, now, R.channel_rejected(row.name, exc.message), report)
        return
    p = plan(rules, remote, intent, channel=row.name, prerequisites=frozenset())
    status = PushState(it.status)
    if p.status is PlanStatus.DONE:
        with scope.db.transaction() as conn:
            repo.write(
                conn, int(it.id), target=PushState.PUSHED, now=now, message=f"already_in_state: {p.note}",
                events=[event_row(scope.tenant_id, int(it.order_id), EventKind.CHANNEL_INTENT, now,
                                  f"{_describe(intent.outcome, intent.lines, it.refund_total)} done at {row.name}: "
                                  f"{p.note}", outcome=intent.outcome.value, intent=int(it.id))],
            )  # fmt: skip
        report.done += 1
        return
    if p.status is PlanStatus.HELD:
        assert p.hold is not None
        _hold(scope, row, it, now, p.hold, report)
        return
    maybe_sent = status is PushState.UNKNOWN or (status is PushState.PENDING and int(it.attempts) > 0)
    if maybe_sent and p.calls:
        waited = (now - it.updated_at).total_seconds() if it.updated_at is not None else None
        if waited is not None and waited < scope.settings.unknown_outcome_settle_s:
            report.unsettled += 1  # an earlier attempt may still land: read again later, never resend now
            return
    if not p.calls:
        _wait(scope, it, now, p.note, report)
        return
    with scope.db.transaction() as conn:
        repo.write(
            conn, int(it.id), target=PushState.PENDING, now=now, message="sending: " + p.describe(), attempt=True
        )
    crashpoint("intent.before_send")
    for n, call in enumerate(p.calls):
        if n:
            crashpoint("intent.between_calls")
        try:
            answer = connector.perform(external_id, call)
        except HoldOrder as exc:
            code = exc.code if exc.code != HoldOrder.code else R.HoldCode.CHANNEL_REJECTED.value
            rejected = R.channel_rejected(row.name, exc.message)
            _hold(scope, row, it, scope.now(), Reason(code, row.name, rejected.message, rejected.fix), report)
            return
        except OrderBridgeError as exc:
            unknown = isinstance(exc, OutcomeUnknown)
            with scope.db.transaction() as conn:
                repo.write(
                    conn, int(it.id), target=PushState.UNKNOWN if unknown else PushState.RETRY, now=scope.now(),
                    message=(f"outcome unknown ({call.call}): {exc.message}; {row.name} is read before it is sent again"
                             if unknown else f"not sent ({call.call}): {exc.message}; planned again on the next run"),
                )  # fmt: skip
            raise
        with scope.db.transaction() as conn:
            repo.write(
                conn, int(it.id), target=PushState.PENDING, now=scope.now(), message="sending: " + p.describe(),
                call=_call_json(call, answer, scope.now()),
                events=[event_row(scope.tenant_id, int(it.order_id), EventKind.PUSH_CALL, scope.now(),
                                  f"{row.name}: {call.call} sent ({call.action})" + (f" → {answer}" if answer else ""),
                                  call=call.call, action=call.action.value, answer=answer, intent=int(it.id),
                                  connection_id=row.id)],
            )  # fmt: skip
    crashpoint("intent.after_send")
    report.sent += 1
    if p.status is PlanStatus.WAIT:
        _wait(scope, it, scope.now(), p.note, report)
        return
    with scope.db.transaction() as conn:
        repo.write(
            conn, int(it.id), target=PushState.PUSHED, now=scope.now(), message=p.describe(),
            events=[event_row(scope.tenant_id, int(it.order_id), EventKind.CHANNEL_INTENT, scope.now(),
                              f"{_describe(intent.outcome, intent.lines, it.refund_total)} sent to {row.name}: "
                              f"{p.describe()}", outcome=intent.outcome.value, intent=int(it.id))],
        )  # fmt: skip


def _call_json(call: PlannedCall, answer: str, at: datetime) -> dict[str, Any]:
    return {
        "action": call.action.value,
        "call": call.call,
        "lines": [[line, qty] for line, qty in call.lines],
        "amount": None if call.amount is None else str(call.amount),
        "answer": answer,
        "at": at.isoformat(),
    }


def _hold(scope: Scope, row: ConnectionRow, it: Any, now: datetime, reason: Reason, report: IntentReport) -> None:
    """Held with ``reason``; on the timeline when the reason is new (a re-plan that finds the same
    cause again does not repeat it)."""
    again = it.status in (PushState.RECHECK.value, PushState.HELD.value) and it.reason_code == reason.code
    events = (
        []
        if again
        else [
            event_row(
                scope.tenant_id, int(it.order_id), EventKind.CHANNEL_INTENT, now,
                f"{_describe(Outcome(it.outcome), (), it.refund_total)} held: {reason.message} — {reason.fix.text}",
                outcome=it.outcome, intent=int(it.id), codes=[reason.code],
            )
        ]
    )  # fmt: skip
    with scope.db.transaction() as conn:
        if it.status != PushState.HELD.value:
            repo.write(
                conn, int(it.id), target=PushState.HELD, now=now, message=reason.message, reason=reason, events=events
            )
    report.held += 1
    if reason.code == R.HoldCode.ACCEPTANCE_HELD:
        report.acceptance_held += 1


def _wait(scope: Scope, it: Any, now: datetime, note: str, report: IntentReport) -> None:
    report.waiting += 1
    if it.status == PushState.WAITING.value and it.message == note:
        return
    with scope.db.transaction() as conn:
        repo.write(
            conn, int(it.id), target=PushState.WAITING, now=now, message=note,
            events=[event_row(scope.tenant_id, int(it.order_id), EventKind.PUSH_WAITING, now, note, intent=int(it.id))],
        )  # fmt: skip


# --- the auto-accept policy -----------------------------------------------------------------------


def auto_accept_on(row: ConnectionRow) -> bool:
    return True if row.declaration.setting("auto_accept") is None else bool(row.hub_setting("auto_accept"))


def _unacceptable(scope: Scope, order_id: int) -> str:
    """Why the policy would not accept the order now ('' when it would)."""
    with scope.db.read() as conn:
        open_ = order_reasons.open_for_orders(conn, [order_id]).get(order_id, {})
    found = sorted(f"{code} {value}" for code, value in open_ if code in UNACCEPTABLE)
    return "held for " + ", ".join(found) if found else ""


def auto_accept(scope: Scope, row: ConnectionRow, rules: ChannelRules, report: IntentReport) -> None:
    """Ask acceptance of every order awaiting it (the policy's requests are ``AUTO_ACCEPT``'s);
    an order a destination could not take has its acceptance held instead (planned again each run)."""
    spec = rules.actions.get(ChannelAction.ACCEPT)
    if spec is None or not auto_accept_on(row):
        return
    with scope.db.read() as conn:
        candidates = [
            (int(r.id), r.canonical)
            for r in conn.execute(
                select(orders.c.id, orders.c.canonical)
                .where(
                    orders.c.tenant_id == scope.tenant_id,
                    orders.c.connection_id == row.id,
                    orders.c.state.in_(("received", "held", "ready", "posted")),
                    # those already asked are left out before the batch is cut: 500 held acceptances
                    # must not keep every newer order from being asked (decision 194)
                    repo.not_asked(orders.c.id, Outcome.ACCEPTED.value),
                )
                .order_by(orders.c.id)
            )
            if isinstance(r.canonical, dict) and r.canonical.get("channel_state") in spec.from_states
        ][:AUTO_ACCEPT_BATCH]
    for order_id, _canonical in candidates:
        why = _unacceptable(scope, order_id)
        now = scope.now()
        if why:
            reason = R.acceptance_held(row.name, why, "", _due(_canonical, "acceptance"))
            event = event_row(
                scope.tenant_id, order_id, EventKind.CHANNEL_INTENT, now,
                f"acceptance held: {reason.message} — {reason.fix.text}",
                outcome=Outcome.ACCEPTED.value, codes=[reason.code], by=AUTO_ACCEPT,
            )  # fmt: skip
            with scope.db.transaction() as conn:
                repo.create(
                    conn, scope.tenant_id, order_id=order_id, channel_id=row.id, outcome=Outcome.ACCEPTED.value,
                    lines=(), refund_total=None, note="", requested_by=AUTO_ACCEPT, now=now,
                    status=PushState.HELD, reason=reason, events=[event],
                )  # fmt: skip
            report.acceptance_held += 1
            continue
        request_intent(scope, order_id, Outcome.ACCEPTED, by=AUTO_ACCEPT)
        report.accepted_automatically += 1


def _due(canonical: Any, name: str) -> str:
    deadlines = canonical.get("deadlines") if isinstance(canonical, dict) else None
    return str(deadlines.get(name, "")) if isinstance(deadlines, dict) else ""


# --- reading (order page, API, CLI) ---------------------------------------------------------------


def _own_order(scope: Scope, order_id: int) -> None:
    with scope.db.read() as conn:
        found = conn.execute(
            select(orders.c.id).where(orders.c.id == order_id, orders.c.tenant_id == scope.tenant_id)
        ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"order {order_id} does not exist", hint="Check the order id (the orders list shows it).")


def intents_of(scope: Scope, order_id: int) -> list[dict[str, Any]]:
    _own_order(scope, order_id)
    with scope.db.read() as conn:
        rows = repo.for_order(conn, order_id)
    return [intent_json(r) for r in rows if int(r.tenant_id) == scope.tenant_id]


def held_intents(scope: Scope) -> list[dict[str, Any]]:
    with scope.db.read() as conn:
        return [intent_json(r) for r in repo.held(conn, scope.tenant_id)]


def intent_json(r: Any) -> dict[str, Any]:
    return {
        "id": int(r.id),
        "order_id": int(r.order_id),
        "channel_id": int(r.channel_id),
        "outcome": r.outcome,
        "lines": [[line, int(qty)] for line, qty in r.lines or ()],
        "refund_total": r.refund_total,
        "note": r.note,
        "status": r.status,
        "reason": r.reason,
        "message": r.message,
        "calls": list(r.calls or ()),
        "attempts": int(r.attempts),
        "requested_by": r.requested_by,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
    }


# --- a person's request (portal, REST API, CLI): the audit trail names who ----------------------


def ask(
    actor: Any,
    order_id: int,
    outcome: str,
    *,
    lines: tuple[tuple[str, int], ...] = (),
    refund_total: str | None = None,
    note: str = "",
) -> Requested:
    """:func:`request_intent` by ``actor`` (an :class:`~orderbridge.services.principals.Actor`),
    recorded in the audit trail."""
    from orderbridge.services.audit_trail import record_action

    asked = request_intent(
        actor.scope, order_id, outcome, by=actor.principal.name, lines=lines, refund_total=refund_total, note=note
    )
    if asked.created:
        record_action(
            actor, "order.channel_request", "order", order_id,
            f"asked the channel for {_describe(Outcome(asked.outcome), lines, refund_total)}",
            {"intent": asked.intent_id, "outcome": asked.outcome},
        )  # fmt: skip
    return asked


def order_requests(scope: Scope, order_id: int) -> dict[str, Any]:
    """The order page's requests section: the order's requests, and what may be asked of its channel
    (the outcomes its rules offer an action for; empty when it declares no rules)."""
    with scope.db.read() as conn:
        connection_id = conn.execute(
            select(orders.c.connection_id).where(orders.c.id == order_id, orders.c.tenant_id == scope.tenant_id)
        ).scalar_one_or_none()
    if connection_id is None:
        return {"intents": [], "askable": []}
    row = scope.load(int(connection_id))
    rules = row.declaration.channel_rules
    offered = {
        Outcome.CANCELLED: (ChannelAction.CANCEL, ChannelAction.CANCEL_LINES, ChannelAction.REFUSE),
        Outcome.REFUNDED: (ChannelAction.REFUND,),
        Outcome.ACCEPTED: (ChannelAction.ACCEPT,),
        Outcome.REFUSED: (ChannelAction.REFUSE,),
    }
    # a cancel or refund the API does not offer may still be asked: it is held with the back office
    # link and marked done once the channel shows it (seed 004)
    askable = (
        []
        if rules is None
        else [
            o.value
            for o in ASKABLE
            if o in (Outcome.CANCELLED, Outcome.REFUNDED) or any(a in rules.actions for a in offered[o])
        ]
    )
    return {"intents": intents_of(scope, order_id), "askable": askable, "channel": row.name}


@dataclass(frozen=True)
class HeldRequests:
    """Held requests of one cause (code + channel), for the exceptions screen."""

    code: str
    channel: str
    count: int
    message: str
    fix: Any
    #: (order id, order number) of a few of them
    examples: tuple[tuple[int, str], ...]


def held_by_cause(scope: Scope, *, examples: int = 5) -> list[HeldRequests]:
    """The tenant's held requests grouped by cause (code + channel), the largest first."""
    from orderbridge.fixes import Fix
    from orderbridge.storage.tables import connections

    with scope.db.read() as conn:
        rows = repo.held(conn, scope.tenant_id)
        names = dict(
            conn.execute(
                select(connections.c.id, connections.c.name).where(connections.c.tenant_id == scope.tenant_id)
            ).all()
        )
        numbers = dict(
            conn.execute(
                select(orders.c.id, orders.c.number).where(orders.c.id.in_({int(r.order_id) for r in rows}))
            ).all()
        )
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        groups.setdefault((str(r.reason_code or ""), str(names.get(r.channel_id, "?"))), []).append(r)
    out = []
    for (code, channel), items in groups.items():
        reason = items[0].reason or {}
        out.append(
            HeldRequests(
                code, channel, len(items), str(reason.get("message") or ""),
                Fix.from_dict(reason.get("fix") or {"action": "none", "text": ""}),
                tuple((int(i.order_id), str(numbers.get(i.order_id, i.order_id))) for i in items[:examples]),
            )
        )  # fmt: skip
    out.sort(key=lambda h: (-h.count, h.code, h.channel))
    return out
