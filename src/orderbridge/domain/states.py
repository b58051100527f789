"""Order states and the transitions allowed between them.

``received → skipped | held | ready → posted → fulfilled → closed``, plus ``cancelled`` from any
non-terminal state. ``skipped`` and ``held`` are re-evaluated (a rule or a mapping changes, a new
version arrives) so they may move back to ``ready``; a posted order never goes back to ``ready``:
the posting ledger is what makes "never posted twice" true.
"""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    RECEIVED = "received"
    SKIPPED = "skipped"
    HELD = "held"
    READY = "ready"
    POSTED = "posted"
    FULFILLED = "fulfilled"
    CLOSED = "closed"
    CANCELLED = "cancelled"


_EVALUABLE = {OrderState.RECEIVED, OrderState.SKIPPED, OrderState.HELD, OrderState.READY}

ALLOWED: dict[OrderState, frozenset[OrderState]] = {
    OrderState.RECEIVED: frozenset({OrderState.SKIPPED, OrderState.HELD, OrderState.READY, OrderState.CANCELLED}),
    OrderState.SKIPPED: frozenset({OrderState.HELD, OrderState.READY, OrderState.CANCELLED}),
    OrderState.HELD: frozenset({OrderState.SKIPPED, OrderState.READY, OrderState.CANCELLED}),
    OrderState.READY: frozenset({OrderState.SKIPPED, OrderState.HELD, OrderState.POSTED, OrderState.CANCELLED}),
    # a posted order can be held again only by a failing destination amendment/back-sync in
    # later issues; for now it moves forward only.
    OrderState.POSTED: frozenset({OrderState.FULFILLED, OrderState.CLOSED, OrderState.CANCELLED}),
    OrderState.FULFILLED: frozenset({OrderState.CLOSED, OrderState.CANCELLED}),
    OrderState.CLOSED: frozenset(),
    OrderState.CANCELLED: frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, current: OrderState, target: OrderState) -> None:
        allowed = ", ".join(sorted(ALLOWED[current])) or "none (terminal state)"
        super().__init__(f"an order cannot move from {current} to {target}; allowed from {current}: {allowed}")
        self.current = current
        self.target = target


def can_move(current: OrderState, target: OrderState) -> bool:
    return current == target or target in ALLOWED[current]


def check_transition(current: OrderState, target: OrderState) -> None:
    if not can_move(current, target):
        raise InvalidTransition(current, target)


def is_evaluable(state: OrderState) -> bool:
    """True while the pipeline may still decide the order's fate (nothing posted yet)."""
    return state in _EVALUABLE
