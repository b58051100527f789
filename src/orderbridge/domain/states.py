"""The ledger's state machines: orders, postings, shipments and fulfilment pushes.

Each is declared once as a :class:`Machine` — its states, the states a new row may be written in,
and the moves allowed between them — and every writer of that fact (``storage/repos/``) checks a
move against it before it writes (decision 75). A move the machine does not allow raises
:class:`InvalidTransition`: the transaction rolls back and nothing half-true is stored.

**Orders.** ``received → skipped | held | ready → posted → fulfilled → closed``, plus ``cancelled``
from any non-terminal state. ``skipped`` and ``held`` are re-evaluated (a rule or a mapping changes,
a new version arrives) so they may move back to ``ready``; a posted order goes back to
``ready`` only when a user resets it while a destination lacks its current version (decision 106):
the posting ledger, per destination, is what makes "never posted twice" true. A new order is written with
its pipeline decision (``received`` and the decision in one step), and an order may be written in
the state it is in (a re-evaluation that changes only its reasons).

**Postings** (one row per order version and destination): ``pending`` (reserved: sent or about to
be; reserved again by each run until its result is recorded) → ``posted`` | ``rejected`` |
``superseded`` (a newer version of the order carries the same destination document). A rejection
the user retries goes back to ``pending``. ``posted`` and ``superseded`` are final.

**Shipments**: ``shipped`` or ``voided`` (the row's ``voided`` flag). The destination owns its
labels: the hub records what it reports, both ways.

**Fulfilment pushes** (one per shipment): ``pending`` (committed before the channel call: sent or
about to be) → ``pushed``; ``unknown`` (the answer was lost: the channel is read before any resend);
``retry`` (known not to have reached the channel); ``held`` (cannot go as it is: reasons, like an
order's) → ``recheck`` when its shipment changes → validated again; ``voided`` (its label was
voided before it was pushed). ``pushed`` and ``voided`` are final.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar


class OrderState(StrEnum):
    RECEIVED = "received"
    SKIPPED = "skipped"
    HELD = "held"
    READY = "ready"
    POSTED = "posted"
    FULFILLED = "fulfilled"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class PostingState(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class ShipmentState(StrEnum):
    SHIPPED = "shipped"
    VOIDED = "voided"


class PushState(StrEnum):
    PENDING = "pending"
    PUSHED = "pushed"
    UNKNOWN = "unknown"
    RETRY = "retry"
    HELD = "held"
    RECHECK = "recheck"
    VOIDED = "voided"
    #: issue #16: the planner waits for the channel to move the order on by itself (Mirakl's debit);
    #: planned again by every push run from what the channel then holds
    WAITING = "waiting"


S = TypeVar("S", bound=StrEnum)


class InvalidTransition(ValueError):
    def __init__(self, current: StrEnum | None, target: StrEnum, machine: Machine[Any] | None = None) -> None:
        machine = machine if machine is not None else ORDER
        known: Machine[Any] = machine
        if current is None:
            starts = ", ".join(sorted(known.initial))
            message = f"{known.noun} cannot be created {target}; it starts as one of: {starts}"
        else:
            allowed = ", ".join(sorted(known.allowed[current])) or "none (terminal state)"
            message = f"{known.noun} cannot move from {current} to {target}; allowed from {current}: {allowed}"
        super().__init__(message)
        self.current = current
        self.target = target
        self.machine = machine


@dataclass(frozen=True)
class Machine(Generic[S]):
    """A declared state machine: ``initial`` (what a new row may be written as) and ``allowed``
    (target states per state). ``stays``: whether writing a row in the state it already has is a
    move (orders: a re-evaluation that changes only the reasons); otherwise self-moves are listed."""

    noun: str
    states: frozenset[S]
    initial: frozenset[S]
    allowed: Mapping[S, frozenset[S]]
    stays: bool = False

    def __post_init__(self) -> None:
        if set(self.allowed) != set(self.states) or not self.initial <= self.states:
            raise ValueError(f"{self.noun}: every state needs its allowed moves, and initial states are states")
        for targets in self.allowed.values():
            if not targets <= self.states:
                raise ValueError(f"{self.noun}: a move leads to an undeclared state")

    def can_move(self, current: S | None, target: S) -> bool:
        if current is None:
            return target in self.initial
        return (self.stays and current == target) or target in self.allowed[current]

    def check(self, current: S | None, target: S) -> None:
        if not self.can_move(current, target):
            raise InvalidTransition(current, target, self)

    def sources(self, target: S) -> frozenset[S]:
        """Every state a row may be in to move to ``target``."""
        return frozenset(s for s in self.states if self.can_move(s, target))

    def terminal(self) -> frozenset[S]:
        return frozenset(s for s in self.states if not self.allowed[s])


_EVALUABLE = {OrderState.RECEIVED, OrderState.SKIPPED, OrderState.HELD, OrderState.READY}

ALLOWED: dict[OrderState, frozenset[OrderState]] = {
    OrderState.RECEIVED: frozenset({OrderState.SKIPPED, OrderState.HELD, OrderState.READY, OrderState.CANCELLED}),
    OrderState.SKIPPED: frozenset({OrderState.HELD, OrderState.READY, OrderState.CANCELLED}),
    # held → posted: an update held for review is ignored, and the destinations keep what they hold
    OrderState.HELD: frozenset({OrderState.SKIPPED, OrderState.READY, OrderState.POSTED, OrderState.CANCELLED}),
    OrderState.READY: frozenset({OrderState.SKIPPED, OrderState.HELD, OrderState.POSTED, OrderState.CANCELLED}),
    # a posted order goes back to ready only when a user resets it while a destination lacks its
    # current version (the writer guards the move: ``not_posted_everywhere``, decision 106); the
    # posting ledger, per destination, keeps "never posted twice" true. Held again by an order update
    # that waits for review (issue #15: ``update_needs_review``), an amendment a destination refused,
    # or the package importing a file-export destination's file refusing it or not taking it in time
    # (issue #15 item 5: services/deliveries.py).
    OrderState.POSTED: frozenset(
        {OrderState.READY, OrderState.HELD, OrderState.FULFILLED, OrderState.CLOSED, OrderState.CANCELLED}
    ),
    OrderState.FULFILLED: frozenset({OrderState.CLOSED, OrderState.CANCELLED}),
    OrderState.CLOSED: frozenset(),
    OrderState.CANCELLED: frozenset(),
}

ORDER: Machine[OrderState] = Machine(
    "an order",
    frozenset(OrderState),
    # written with its pipeline decision: received and the decision in one step
    frozenset({OrderState.RECEIVED, *ALLOWED[OrderState.RECEIVED]} - {OrderState.CANCELLED}),
    ALLOWED,
    stays=True,
)

_P = PostingState
POSTING: Machine[PostingState] = Machine(
    "a posting",
    frozenset(PostingState),
    frozenset({_P.PENDING}),
    {
        # pending → pending: reserved again by the next run (one more attempt), sent again (upserted)
        _P.PENDING: frozenset({_P.PENDING, _P.POSTED, _P.REJECTED, _P.SUPERSEDED}),
        _P.REJECTED: frozenset({_P.PENDING}),  # the user retries the order
        # issue #15 item 5: a file the package refused (its error file): the document never entered it
        _P.POSTED: frozenset({_P.REJECTED}),
        _P.SUPERSEDED: frozenset(),
    },
)

SHIPMENT: Machine[ShipmentState] = Machine(
    "a shipment",
    frozenset(ShipmentState),
    frozenset(ShipmentState),
    {
        ShipmentState.SHIPPED: frozenset({ShipmentState.VOIDED}),
        # the destination owns its labels: one it reports active again is recorded as it says
        ShipmentState.VOIDED: frozenset({ShipmentState.SHIPPED}),
    },
)

_F = PushState
PUSH: Machine[PushState] = Machine(
    "a fulfilment push",
    frozenset(PushState),
    # sending; held before anything was sent; its label voided before it was pushed; issue #16:
    # the channel already holds it (already_in_state: pushed without a call), or the plan waits
    frozenset({_F.PENDING, _F.HELD, _F.VOIDED, _F.PUSHED, _F.WAITING}),
    {
        # pending → pending: maybe sent, not found in the channel after the settle window: sent again
        _F.PENDING: frozenset({_F.PENDING, _F.PUSHED, _F.UNKNOWN, _F.RETRY, _F.HELD, _F.WAITING}),
        _F.UNKNOWN: frozenset({_F.PENDING, _F.PUSHED, _F.HELD, _F.WAITING}),
        _F.RETRY: frozenset({_F.PENDING, _F.HELD, _F.VOIDED, _F.PUSHED, _F.WAITING}),
        _F.RECHECK: frozenset({_F.PENDING, _F.HELD, _F.VOIDED, _F.PUSHED, _F.WAITING}),
        # its shipment changed, or (issue #16) the channel's state may have: planned again
        _F.HELD: frozenset({_F.RECHECK}),
        _F.WAITING: frozenset({_F.PENDING, _F.PUSHED, _F.HELD, _F.VOIDED}),
        _F.PUSHED: frozenset(),
        _F.VOIDED: frozenset(),
    },
)

#: push states with work left: sent or maybe sent (pending, unknown), to re-check, or to resend
PUSH_TO_DO = frozenset({_F.PENDING, _F.UNKNOWN, _F.RECHECK, _F.RETRY})
#: push states whose send may have reached the channel: it is read before anything is sent again
PUSH_MAYBE_SENT = frozenset({_F.PENDING, _F.UNKNOWN})
#: push states known not to have reached the channel (a voided label is then simply not sent)
PUSH_NOT_SENT = frozenset({_F.RECHECK, _F.RETRY})


def can_move(current: OrderState, target: OrderState) -> bool:
    return ORDER.can_move(current, target)


def check_transition(current: OrderState, target: OrderState) -> None:
    ORDER.check(current, target)


def is_evaluable(state: OrderState) -> bool:
    """True while the pipeline may still decide the order's fate (nothing posted yet)."""
    return state in _EVALUABLE
