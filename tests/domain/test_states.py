from typing import Any

import pytest

from orderbridge.domain.states import (
    ORDER,
    POSTING,
    PUSH,
    SHIPMENT,
    InvalidTransition,
    Machine,
    OrderState,
    PostingState,
    PushState,
    ShipmentState,
    check_transition,
    is_evaluable,
)


def test_a_posted_order_goes_back_only_to_ready_or_held_for_an_update_never_skipped() -> None:
    check_transition(OrderState.POSTED, OrderState.READY)  # a user's reset (guarded by the writer)
    # held again by an order update awaiting review, or by the file-export watcher (a file refused or
    # not taken); the pipeline never decides a posted order (it is not evaluable)
    check_transition(OrderState.POSTED, OrderState.HELD)
    check_transition(OrderState.HELD, OrderState.POSTED)  # that update ignored: the destinations keep theirs
    assert not is_evaluable(OrderState.POSTED)
    for target in (OrderState.SKIPPED, OrderState.RECEIVED):
        with pytest.raises(InvalidTransition, match=f"posted to {target}"):
            check_transition(OrderState.POSTED, target)


def test_held_orders_can_be_released() -> None:
    check_transition(OrderState.HELD, OrderState.READY)


def test_terminal_states_allow_nothing() -> None:
    with pytest.raises(InvalidTransition, match="terminal"):
        check_transition(OrderState.CANCELLED, OrderState.READY)


def test_only_unposted_states_are_evaluable() -> None:
    assert is_evaluable(OrderState.HELD) and not is_evaluable(OrderState.POSTED)


# --- the declared machines (decision 75) ----------------------------------------------------------


@pytest.mark.parametrize("machine", [ORDER, POSTING, SHIPMENT, PUSH], ids=lambda m: m.noun)
def test_every_state_of_a_machine_can_be_reached_from_where_a_row_starts(machine: Machine[Any]) -> None:
    reached = set(machine.initial)
    frontier = list(reached)
    while frontier:
        for target in machine.allowed[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(machine.states)


def test_a_new_order_is_written_with_its_pipeline_decision_never_as_posted() -> None:
    for state in (OrderState.RECEIVED, OrderState.READY, OrderState.HELD, OrderState.SKIPPED):
        ORDER.check(None, state)
    with pytest.raises(InvalidTransition, match="an order cannot be created posted"):
        ORDER.check(None, OrderState.POSTED)


def test_a_posting_is_recorded_once_and_a_rejection_can_be_retried() -> None:
    POSTING.check(PostingState.PENDING, PostingState.POSTED)
    POSTING.check(PostingState.REJECTED, PostingState.PENDING)
    for final in (PostingState.POSTED, PostingState.SUPERSEDED):
        with pytest.raises(InvalidTransition, match=f"a posting cannot move from {final}"):
            POSTING.check(final, PostingState.PENDING)
    with pytest.raises(InvalidTransition, match="from rejected to posted"):
        POSTING.check(PostingState.REJECTED, PostingState.POSTED)


def test_a_held_push_is_checked_again_before_it_can_go() -> None:
    with pytest.raises(InvalidTransition, match="a fulfilment push cannot move from held to pending"):
        PUSH.check(PushState.HELD, PushState.PENDING)
    PUSH.check(PushState.HELD, PushState.RECHECK)
    PUSH.check(PushState.RECHECK, PushState.PENDING)
    # a push that may have reached the channel is read before it is sent again, never voided blind
    assert PUSH.can_move(PushState.UNKNOWN, PushState.PUSHED)
    assert not PUSH.can_move(PushState.UNKNOWN, PushState.VOIDED)
    assert PUSH.terminal() == {PushState.PUSHED, PushState.VOIDED}
    assert SHIPMENT.can_move(ShipmentState.SHIPPED, ShipmentState.VOIDED)


def test_an_order_may_be_written_in_its_own_state_other_machines_list_their_self_moves() -> None:
    assert ORDER.can_move(OrderState.HELD, OrderState.HELD)
    assert POSTING.can_move(PostingState.PENDING, PostingState.PENDING)  # reserved again by the next run
    assert not PUSH.can_move(PushState.HELD, PushState.HELD)
