"""The push planner (issue #16): which calls bring an order at a channel to the intended outcome.

Pure — no I/O, no clock. Input: the channel's declared rules (:class:`ChannelRules`), what the
channel holds for the order now (:class:`RemoteOrderState`, read fresh just before) and the intent
(:class:`Intent`: shipped with this tracking, accepted, cancelled, refunded). Output: a :class:`Plan`

- ``DONE`` — the outcome already holds at the channel (``already_in_state``: nothing to send, not
  an error);
- ``READY`` — the calls to make now, in order (e.g. accept, then tracking, then ship); after them the
  outcome holds;
- ``WAIT`` — the calls to make now (possibly none), after which the channel must move the order on by
  itself (Mirakl's debit: WAITING_DEBIT → SHIPPING) before the rest can be sent; the push is planned
  again on the next run from what the channel then holds;
- ``HELD`` — nothing can be sent: the :class:`~orderbridge.domain.reasons.Reason` says why and what a
  person must do (``shipping_data_missing``, ``transition_not_allowed``, ``action_not_supported``).

Because every run plans from what the channel holds *now*, a plan interrupted after any call (a
crash, a lost answer) resumes with only the calls still needed: a call already applied shows in the
remote state and is not planned again. That — not an idempotency key, which Mirakl and WooCommerce
do not offer — is what makes a push exactly-once per intended outcome.

Hand-written: the search is a breadth-first walk over a dozen declared states; no library models
"which API calls lead from this remote state to that outcome" for a channel's rules.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from orderbridge.domain import reasons as R
from orderbridge.domain.channel_rules import (
    ActionSpec,
    ChannelAction,
    ChannelRules,
    Outcome,
    RemoteOrderState,
    TrackingField,
    Transition,
)
from orderbridge.domain.reasons import Reason

#: the actions a plan may take on its own as prerequisites of another (an order shipped at the 3PL
#: was evidently accepted): never a refusal, a cancellation or a refund
PREREQUISITES = frozenset({ChannelAction.ACCEPT})


@dataclass(frozen=True, slots=True)
class Tracking:
    number: str
    carrier: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """What the hub wants to be true of one order at the channel."""

    outcome: Outcome
    #: ``(line external id, quantity)``; empty: the whole order (cancel, refund, accept)
    lines: tuple[tuple[str, int], ...] = ()
    tracking: Tracking | None = None
    #: a reshipment: the tracking number of the voided label already pushed, to be replaced
    replaces: str | None = None
    #: ``REFUNDED``: the total the channel's refunds should reach (not this refund's amount)
    refund_total: Decimal | None = None
    #: a sentence the channel keeps with a cancellation or refund (its reason)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One API call of a plan."""

    action: ChannelAction
    #: the call as the channel's docs name it (``OR24 PUT /api/orders/{id}/ship``)
    call: str
    lines: tuple[tuple[str, int], ...] = ()
    tracking: Tracking | None = None
    #: the remote shipment a ``TRACKING`` call replaces the tracking of (a reshipment), if any
    shipment_id: str | None = None
    #: ``REFUND``: this call's amount
    amount: Decimal | None = None
    reason: str = ""


class PlanStatus(StrEnum):
    DONE = "done"
    READY = "ready"
    WAIT = "wait"
    HELD = "held"


@dataclass(frozen=True, slots=True)
class Plan:
    status: PlanStatus
    calls: tuple[PlannedCall, ...] = ()
    #: ``HELD``: why, with the fix
    hold: Reason | None = None
    #: ``WAIT``: what the channel must do by itself first; ``DONE``: why nothing is needed
    note: str = ""

    def describe(self) -> str:
        """One line: the calls, or the reason (for timelines and the CLI)."""
        if self.status is PlanStatus.HELD and self.hold is not None:
            return f"held: {self.hold.message}"
        calls = ", then ".join(c.call for c in self.calls)
        if self.status is PlanStatus.DONE:
            return f"nothing to send: {self.note}"
        if self.status is PlanStatus.WAIT:
            return f"{calls + '; ' if calls else ''}then wait: {self.note}"
        return calls


def plan(
    rules: ChannelRules,
    remote: RemoteOrderState,
    intent: Intent,
    *,
    channel: str,
    prerequisites: frozenset[ChannelAction] = PREREQUISITES,
) -> Plan:
    """The plan that brings ``remote`` to ``intent``'s outcome under ``rules`` (``channel`` names
    the connection in reasons). ``prerequisites``: the actions the plan may make on its own on the
    way (a connection whose policy is not to accept orders automatically passes none: a shipment of
    an order still awaiting acceptance is then held, ``transition_not_allowed``, until a person
    accepts it in the back office)."""
    if remote.state not in rules.states:
        return _held(
            R.transition_not_allowed(
                channel, remote.state, intent.outcome.value, remote.url,
                f"the order is in state {remote.state!r}, which this version of OrderBridge does not know; "
                "nothing is sent until it is upgraded or the order moves on",
            )
        )  # fmt: skip
    if intent.outcome is Outcome.SHIPPED:
        return _plan_shipped(rules, remote, intent, channel, prerequisites)
    if intent.outcome is Outcome.REFUNDED:
        return _plan_refunded(rules, remote, intent, channel)
    if remote.state in rules.reached.get(intent.outcome, frozenset()) and not intent.lines:
        return Plan(PlanStatus.DONE, note=f"the order is already {remote.state} at {channel}")
    if intent.outcome is Outcome.ACCEPTED:
        return _plan_towards(rules, remote, intent, channel, ChannelAction.ACCEPT, allowed=frozenset())
    if intent.outcome is Outcome.REFUSED:
        return _direct(rules, remote, intent, channel, (ChannelAction.REFUSE,))
    # cancelled: the lines, or the whole order (refusing a not-yet-accepted order cancels it too)
    if intent.lines:
        if _lines_cancelled(remote, intent):
            return Plan(PlanStatus.DONE, note=f"those lines are already cancelled at {channel}")
        return _direct(rules, remote, intent, channel, (ChannelAction.CANCEL_LINES,))
    return _direct(rules, remote, intent, channel, (ChannelAction.CANCEL, ChannelAction.REFUSE))


# --- shipped --------------------------------------------------------------------------------------


def _plan_shipped(
    rules: ChannelRules, remote: RemoteOrderState, intent: Intent, channel: str, allowed: frozenset[ChannelAction]
) -> Plan:
    tracking = intent.tracking
    number = tracking.number.strip() if tracking is not None else ""
    ship = rules.actions.get(ChannelAction.SHIP)
    track = rules.actions.get(ChannelAction.TRACKING)
    if ship is None:
        return _held(R.action_not_supported(channel, "ship", rules.back_office, remote.url))
    # a shipment carrying this tracking is the outcome where shipments are per line (a Shopify
    # fulfilment); elsewhere tracking given ahead of the ship call is only half of it
    shipped_state = remote.state in rules.reached.get(Outcome.SHIPPED, frozenset())
    if (
        number
        and (ship.lines or shipped_state)
        and any(s.tracking_number == number and _covers(s.lines, intent.lines) for s in remote.shipments)
    ):
        return Plan(PlanStatus.DONE, note=f"{channel} already holds tracking {number} for these lines")
    # a reshipment of a voided label already pushed: replace that tracking where the channel can
    if intent.replaces:
        old = next((s for s in remote.shipments if s.tracking_number == intent.replaces), None)
        if old is not None:
            missing = _missing(rules, (track,) if track else (ship,), tracking)
            if missing:
                return _held(R.shipping_data_missing(channel, missing))
            if track is not None and remote.state in track.from_states:
                return Plan(
                    PlanStatus.READY,
                    (PlannedCall(ChannelAction.TRACKING, track.call, intent.lines, tracking, shipment_id=old.id),),
                )
            return _held(
                R.transition_not_allowed(
                    channel, remote.state, "new tracking", remote.url,
                    f"{channel} cannot change the tracking of an order in state {remote.state}; "
                    f"give the customer the new tracking {number} by hand",
                )
            )  # fmt: skip
    if shipped_state and not ship.lines:
        # shipped already as a whole, with another tracking (or none): give the new tracking if allowed
        if track is not None and remote.state in track.from_states:
            missing = _missing(rules, (track,), tracking)
            if missing:
                return _held(R.shipping_data_missing(channel, missing))
            return Plan(PlanStatus.READY, (PlannedCall(ChannelAction.TRACKING, track.call, (), tracking),))
        return Plan(PlanStatus.DONE, note=f"the order is already {remote.state} at {channel}")
    if remote.lines and ship.lines is False and not _whole(remote, intent):
        return _held(
            R.action_not_supported(channel, "ship part of an order", rules.back_office, remote.url,
                                   detail="it ships whole orders only; the push waits until every line is shipped")
        )  # fmt: skip
    if remote.lines and ship.lines and not _open_lines(remote, intent) and remote.state not in rules.terminal:
        if _shipped_any(remote, intent):
            return Plan(PlanStatus.DONE, note=f"{channel} has nothing left open of these lines (shipped there already)")
        return _held(
            R.transition_not_allowed(
                channel, remote.state, intent.outcome.value, remote.url,
                f"the lines are cancelled at {channel}; nothing of them can be marked shipped",
            )
        )  # fmt: skip
    needed = [ship] + ([track] if track is not None and not ship.with_tracking else [])
    missing = _missing(rules, tuple(needed), tracking)
    if missing:
        return _held(R.shipping_data_missing(channel, missing))

    def finish(state: str) -> list[PlannedCall]:
        calls: list[PlannedCall] = []
        if (
            track is not None
            and not ship.with_tracking
            and state in track.from_states
            and not any(s.tracking_number == number for s in remote.shipments)
        ):
            calls.append(PlannedCall(ChannelAction.TRACKING, track.call, intent.lines, tracking))
        lines = _still_open(remote, intent.lines) if ship.lines else ()
        calls.append(PlannedCall(ChannelAction.SHIP, ship.call, lines, tracking))
        return calls

    return _plan_towards(rules, remote, intent, channel, ChannelAction.SHIP, allowed=allowed, finish=finish)


def _plan_towards(
    rules: ChannelRules,
    remote: RemoteOrderState,
    intent: Intent,
    channel: str,
    goal: ChannelAction,
    *,
    allowed: frozenset[ChannelAction],
    finish: Callable[[str], list[PlannedCall]] | None = None,
) -> Plan:
    """Walk from the remote state to one where ``goal`` is allowed, through prerequisite actions
    (made now) and the channel's own transitions (waited for)."""
    spec = rules.actions.get(goal)
    if spec is None:
        return _held(R.action_not_supported(channel, goal.value, rules.back_office, remote.url))
    path = _path(rules, remote.state, spec.from_states, allowed)
    if path is None:
        return _held(
            R.transition_not_allowed(
                channel, remote.state, intent.outcome.value, remote.url,
                f"{channel} offers no way from {remote.state} to {intent.outcome.value}"
                + (f"; {rules.back_office}" if rules.back_office else ""),
            )
        )  # fmt: skip
    calls: list[PlannedCall] = []
    state = remote.state
    for t in path:
        if t.by is None:
            return Plan(PlanStatus.WAIT, tuple(calls), note=_wait_note(channel, t))
        pre = rules.actions[t.by]
        calls.append(PlannedCall(t.by, pre.call, _all_lines(remote)))
        state = t.target
    if finish is not None:
        calls.extend(finish(state))
    else:
        lines = intent.lines or _all_lines(remote)
        calls.append(PlannedCall(goal, spec.call, lines if spec.lines or goal is ChannelAction.ACCEPT else ()))
    return Plan(PlanStatus.READY, tuple(calls))


def _path(
    rules: ChannelRules, start: str, goals: frozenset[str], allowed: frozenset[ChannelAction]
) -> list[Transition] | None:
    """The shortest path of transitions from ``start`` into ``goals`` that uses only prerequisite
    actions and the channel's own moves (None: there is none)."""
    if start in goals:
        return []
    seen = {start}
    queue: deque[tuple[str, list[Transition]]] = deque([(start, [])])
    while queue:
        state, path = queue.popleft()
        for t in rules.leaving(state):
            if t.target in seen or (t.target in rules.terminal and t.target not in goals):
                continue
            if t.by is not None and t.by not in allowed:
                continue
            if t.by is not None and state not in rules.actions[t.by].from_states:
                continue
            nxt = [*path, t]
            if t.target in goals:
                return nxt
            seen.add(t.target)
            queue.append((t.target, nxt))
    return None


def _wait_note(channel: str, t: Transition) -> str:
    why = f" ({t.note})" if t.note else ""
    return f"waiting for {channel} to move the order from {t.source} to {t.target}{why}"


# --- direct actions (no prerequisites) ------------------------------------------------------------


def _direct(
    rules: ChannelRules, remote: RemoteOrderState, intent: Intent, channel: str, candidates: tuple[ChannelAction, ...]
) -> Plan:
    declared = [rules.actions[a] for a in candidates if a in rules.actions]
    if not declared:
        return _held(R.action_not_supported(channel, candidates[0].value, rules.back_office, remote.url))
    for spec in declared:
        if remote.state in spec.from_states:
            if spec.needs_flag and not remote.flag(spec.needs_flag):
                continue
            lines = intent.lines if spec.lines else ()
            if spec.action in (ChannelAction.ACCEPT, ChannelAction.REFUSE) and not lines:
                lines = _all_lines(remote)
            return Plan(PlanStatus.READY, (PlannedCall(spec.action, spec.call, lines, reason=intent.reason),))
    flagged = next((s for s in declared if remote.state in s.from_states and s.needs_flag), None)
    if flagged is not None:  # allowed in this state in general, but not for this order now
        return _held(
            R.action_not_supported(
                channel, intent.outcome.value, rules.back_office, remote.url,
                detail=f"{channel}'s API does not offer it for this order now ({flagged.needs_flag} is false)",
            )
        )  # fmt: skip
    allowed = sorted(set().union(*(s.from_states for s in declared)))
    return _held(
        R.transition_not_allowed(
            channel, remote.state, intent.outcome.value, remote.url,
            f"{channel} allows it only from {', '.join(allowed)}; the order is {remote.state}"
            + (f" — {rules.back_office}" if rules.back_office else ""),
        )
    )  # fmt: skip


def _plan_refunded(rules: ChannelRules, remote: RemoteOrderState, intent: Intent, channel: str) -> Plan:
    target = intent.refund_total if intent.refund_total is not None else Decimal(0)
    if remote.refunded >= target:
        return Plan(PlanStatus.DONE, note=f"{channel} has refunded {remote.refunded} already")
    plan_ = _direct(rules, remote, intent, channel, (ChannelAction.REFUND,))
    if plan_.status is not PlanStatus.READY:
        return plan_
    call = plan_.calls[0]
    return Plan(
        PlanStatus.READY,
        (PlannedCall(call.action, call.call, call.lines, amount=target - remote.refunded, reason=intent.reason),),
    )


# --- helpers --------------------------------------------------------------------------------------


def _held(reason: Reason) -> Plan:
    return Plan(PlanStatus.HELD, hold=reason)


def _missing(rules: ChannelRules, specs: tuple[ActionSpec, ...], tracking: Tracking | None) -> TrackingField | None:
    """The first shipping field one of ``specs`` requires that the tracking lacks."""
    for spec in specs:
        for f in spec.requires:
            if not _value(tracking, f):
                return f
        if (
            spec.url_unless_known_carrier
            and tracking is not None
            and not rules.knows_carrier(tracking.carrier)
            and not (tracking.url or "").strip()
        ):
            return TrackingField.URL
    return None


def _value(tracking: Tracking | None, f: TrackingField) -> str:
    if tracking is None:
        return ""
    return {TrackingField.NUMBER: tracking.number, TrackingField.CARRIER: tracking.carrier}.get(
        f, tracking.url or ""
    ).strip()


def _all_lines(remote: RemoteOrderState) -> tuple[tuple[str, int], ...]:
    return tuple((ln.line_external_id, ln.quantity) for ln in remote.lines)


def _covers(shipped: tuple[tuple[str, int], ...], wanted: tuple[tuple[str, int], ...]) -> bool:
    """A remote shipment's lines cover the intent's (a shipment of the whole order covers any)."""
    if not shipped or not wanted:
        return True
    have = dict(shipped)
    return all(have.get(line, 0) >= qty for line, qty in wanted)


def _whole(remote: RemoteOrderState, intent: Intent) -> bool:
    """The intent ships every unit still open at the channel."""
    if not intent.lines:
        return True
    asked = dict(intent.lines)
    return all(asked.get(ln.line_external_id, 0) >= ln.open_quantity for ln in remote.lines)


def _open_lines(remote: RemoteOrderState, intent: Intent) -> bool:
    """Some unit the intent ships is still open at the channel."""
    open_ = {ln.line_external_id: ln.open_quantity for ln in remote.lines}
    if not intent.lines:
        return any(open_.values())
    return any(open_.get(line, 0) > 0 for line, _ in intent.lines)


def _shipped_any(remote: RemoteOrderState, intent: Intent) -> bool:
    """Some unit of the intent's lines is shipped at the channel (not only cancelled)."""
    asked = {line for line, _ in intent.lines} if intent.lines else None
    return any(ln.shipped > 0 for ln in remote.lines if asked is None or ln.line_external_id in asked)


def _still_open(remote: RemoteOrderState, wanted: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """The intent's lines cut to what the channel still has open (units shipped there by someone
    else are not shipped again: the channel would refuse the whole call)."""
    if not remote.lines or not wanted:
        return wanted
    open_ = {ln.line_external_id: ln.open_quantity for ln in remote.lines}
    # a line the channel does not list is kept as asked: the channel names it when it refuses
    return tuple(
        (line, min(qty, open_[line]) if line in open_ else qty)
        for line, qty in wanted
        if line not in open_ or open_[line] > 0
    )


def _lines_cancelled(remote: RemoteOrderState, intent: Intent) -> bool:
    by_id = {ln.line_external_id: ln for ln in remote.lines}
    return all(line in by_id and by_id[line].cancelled >= qty for line, qty in intent.lines)
