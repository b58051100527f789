"""What a channel declares about its orders' lives (issue #16): states, transitions, actions, deadlines.

Pure data, no I/O. Every channel connector carries one :class:`ChannelRules` in its declaration
(:attr:`orderbridge.connectors.base.Declaration.channel_rules`): the states its orders go through
(named as the channel names them: Mirakl's ``WAITING_ACCEPTANCE``, WooCommerce's ``processing``),
the transitions between them and what performs each (an API call the hub may make, or the channel
itself — an operator's debit, a missed deadline), the actions its API offers with the fields each
needs, and its deadlines. The push planner (:mod:`orderbridge.domain.push_plan`) reads nothing else
to decide which calls to make; ``docs/channels.md`` is generated from these declarations.

The remote side of a push is :class:`RemoteOrderState`: what the channel holds for one order, read
fresh before acting (a channel without idempotency keys can only be made exactly-once by reading
first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType


class ChannelAction(StrEnum):
    """One thing a channel's API can be asked to do to an order."""

    ACCEPT = "accept"  # accept the order (its lines) — Mirakl OR21
    REFUSE = "refuse"  # refuse the order (its lines) — Mirakl OR21 with accepted=false
    TRACKING = "tracking"  # give (or replace) the tracking without changing the state — Mirakl OR23, a WooCommerce note
    SHIP = "ship"  # mark shipped; carries the tracking where the channel takes it in the same call
    CANCEL = "cancel"  # cancel the whole order
    CANCEL_LINES = "cancel_lines"  # cancel some lines (or quantities)
    REFUND = "refund"  # refund an amount (of some lines)


class Outcome(StrEnum):
    """What the hub wants to be true of an order at the channel (an intent's goal)."""

    SHIPPED = "shipped"  # these lines shipped with this tracking
    ACCEPTED = "accepted"
    REFUSED = "refused"
    CANCELLED = "cancelled"  # the whole order, or the intent's lines
    REFUNDED = "refunded"  # the channel's refunded total reaches the intent's amount


class TrackingField(StrEnum):
    """The shipping data an action may require (``shipping_data_missing`` names one)."""

    NUMBER = "tracking_number"
    CARRIER = "carrier"
    URL = "tracking_url"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action the channel's API offers, and when it may be called."""

    action: ChannelAction
    #: the API call that performs it, as the channel's documentation names it (shown in plans and docs)
    call: str
    #: the remote states it may be called in (any other: the channel answers with an error)
    from_states: frozenset[str]
    #: the state it leads to (``None``: the state does not change, e.g. tracking)
    to_state: str | None = None
    #: the shipping data it cannot be sent without
    requires: tuple[TrackingField, ...] = ()
    #: the tracking URL is required when the carrier is not one of :attr:`ChannelRules.known_carriers`
    url_unless_known_carrier: bool = False
    #: it can act on some lines only (a partial shipment, cancellation or refund)
    lines: bool = False
    #: a flag of :attr:`RemoteOrderState.flags` that must be true for the call to be allowed
    #: (Mirakl's ``can_cancel``); false: the API does not offer the action for this order now
    needs_flag: str | None = None
    #: ``SHIP``: the call carries the tracking itself (a Shopify fulfilment is created with its
    #: tracking), so no separate ``TRACKING`` call is planned before it; ``TRACKING`` is then only
    #: the replacement of an existing shipment's tracking (a reshipment)
    with_tracking: bool = False
    #: one sentence for the docs (what the call carries, what it does not)
    note: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    source: str
    target: str
    #: the action that performs it; ``None``: the channel moves the order itself (an operator's
    #: debit, a deadline) — a plan waits for it and never tries to force it
    by: ChannelAction | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Deadline:
    """A channel deadline on an order (its due time is on the order: ``Order.deadlines``)."""

    #: ``acceptance`` or ``shipping``
    name: str
    #: the states in which it runs (it no longer matters once the order has left them)
    states: frozenset[str]
    #: what the channel does when it is missed, one sentence ("the order is refused automatically")
    missed: str
    #: how long before the due time the hub warns (the dashboard lists it, an alert fires)
    warn_before_s: int = 6 * 3600


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """A channel's order state machine and API actions, as declared by its connector."""

    states: tuple[str, ...]
    #: states an order never leaves
    terminal: frozenset[str]
    transitions: tuple[Transition, ...]
    actions: Mapping[ChannelAction, ActionSpec]
    #: per outcome, the states in which it already holds (a plan finds ``already_in_state`` there)
    reached: Mapping[Outcome, frozenset[str]]
    #: carrier codes the channel knows (lower case); for others an action with
    #: ``url_unless_known_carrier`` needs the tracking URL
    known_carriers: frozenset[str] = frozenset()
    deadlines: tuple[Deadline, ...] = ()
    #: the channel deduplicates repeated calls itself; when false the planner's input must be read
    #: fresh before every push (it always is; this says why it matters)
    idempotent: bool = False
    #: where a person does by hand what the API does not offer, one sentence ("the Mirakl back
    #: office, Orders › the order › Cancel"); the order's own link is :attr:`RemoteOrderState.url`
    back_office: str = ""
    #: a paragraph for docs/channels.md (what the channel does on its own, what it never offers)
    note: str = ""
    _by_source: Mapping[str, tuple[Transition, ...]] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def __post_init__(self) -> None:
        problems: list[str] = []
        known = set(self.states)
        for t in self.transitions:
            for s in (t.source, t.target):
                if s not in known:
                    problems.append(f"transition {t.source}→{t.target} names unknown state {s!r}")
            if t.by is not None and t.by not in self.actions:
                problems.append(f"transition {t.source}→{t.target} is made by undeclared action {t.by}")
        for action, spec in self.actions.items():
            if spec.action is not action:
                problems.append(f"action {action} is declared as {spec.action}")
            for s in spec.from_states | ({spec.to_state} if spec.to_state else set()):
                if s not in known:
                    problems.append(f"action {action} names unknown state {s!r}")
            if spec.to_state is not None:
                for s in spec.from_states:
                    if s != spec.to_state and not any(
                        t.source == s and t.target == spec.to_state and t.by is action for t in self.transitions
                    ):
                        problems.append(f"action {action} moves {s}→{spec.to_state}: declare that transition")
        for outcome, states in self.reached.items():
            if states - known:
                problems.append(f"outcome {outcome} names unknown states {sorted(states - known)}")
        if self.terminal - known:
            problems.append(f"unknown terminal states {sorted(self.terminal - known)}")
        if problems:
            raise ValueError("channel rules: " + "; ".join(problems))
        by_source: dict[str, list[Transition]] = {}
        for t in self.transitions:
            by_source.setdefault(t.source, []).append(t)
        object.__setattr__(self, "_by_source", MappingProxyType({k: tuple(v) for k, v in by_source.items()}))

    def leaving(self, state: str) -> tuple[Transition, ...]:
        return self._by_source.get(state, ())

    def allows(self, action: ChannelAction, state: str) -> bool:
        spec = self.actions.get(action)
        return spec is not None and state in spec.from_states

    def knows_carrier(self, carrier: str) -> bool:
        return carrier.strip().lower() in self.known_carriers


# --- the remote side ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteLine:
    """One order line as the channel holds it now."""

    line_external_id: str
    quantity: int
    #: units already shipped (fulfilled) at the channel
    shipped: int = 0
    #: units cancelled or refused at the channel
    cancelled: int = 0
    #: the line's own state where the channel has one (Mirakl's ``order_line_state``)
    state: str | None = None

    @property
    def open_quantity(self) -> int:
        return max(self.quantity - self.shipped - self.cancelled, 0)


@dataclass(frozen=True, slots=True)
class RemoteShipment:
    """A shipment the channel already holds: a Shopify fulfilment, Mirakl's order tracking, a
    WooCommerce tracking note. ``lines`` empty: it covers the whole order."""

    id: str
    tracking_number: str
    carrier: str = ""
    lines: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class RemoteOrderState:
    """What the channel holds for one order, read just now (``PlannedChannel.remote_state``)."""

    external_id: str
    #: the order's state, as the channel names it (one of its declared states; an unknown one is
    #: kept as it is and the planner refuses to act on it)
    state: str
    lines: tuple[RemoteLine, ...] = ()
    shipments: tuple[RemoteShipment, ...] = ()
    #: booleans the channel reports on the order (Mirakl's ``can_cancel``)
    flags: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    #: what the channel has refunded so far (in the order's currency)
    refunded: Decimal = Decimal(0)
    currency: str = ""
    #: the order's deadlines as the channel gives them (``acceptance``, ``shipping``)
    deadlines: Mapping[str, datetime] = field(default_factory=lambda: MappingProxyType({}))
    #: the order's page in the channel's back office (where a person acts by hand); empty if unknown
    url: str = ""

    def flag(self, name: str) -> bool:
        return bool(self.flags.get(name, False))
