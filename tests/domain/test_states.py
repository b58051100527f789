import pytest

from orderbridge.domain.states import InvalidTransition, OrderState, check_transition, is_evaluable


def test_a_posted_order_never_goes_back_to_ready() -> None:
    with pytest.raises(InvalidTransition, match="posted to ready"):
        check_transition(OrderState.POSTED, OrderState.READY)


def test_held_orders_can_be_released() -> None:
    check_transition(OrderState.HELD, OrderState.READY)


def test_terminal_states_allow_nothing() -> None:
    with pytest.raises(InvalidTransition, match="terminal"):
        check_transition(OrderState.CANCELLED, OrderState.READY)


def test_only_unposted_states_are_evaluable() -> None:
    assert is_evaluable(OrderState.HELD) and not is_evaluable(OrderState.POSTED)
