"""The push planner on a marketplace-like and a shop-like set of rules (issue #16)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orderbridge.domain.canonical import order_from_json, order_to_json
from orderbridge.domain.changes import ChangeClass, diff
from orderbridge.domain.channel_rules import (
    ActionSpec,
    ChannelRules,
    Outcome,
    RemoteLine,
    RemoteOrderState,
    RemoteShipment,
    TrackingField,
    Transition,
)
from orderbridge.domain.channel_rules import (
    ChannelAction as A,
)
from orderbridge.domain.push_plan import Intent, PlanStatus, Tracking, plan

S = frozenset
MARKET = ChannelRules(
    states=("WAITING_ACCEPTANCE", "WAITING_DEBIT", "SHIPPING", "SHIPPED", "REFUSED", "CANCELED", "CLOSED"),
    terminal=S({"REFUSED", "CANCELED", "CLOSED"}),
    transitions=(
        Transition("WAITING_ACCEPTANCE", "WAITING_DEBIT", A.ACCEPT),
        Transition("WAITING_ACCEPTANCE", "REFUSED", A.REFUSE),
        Transition("WAITING_DEBIT", "SHIPPING", None, "the operator debits the customer"),
        Transition("SHIPPING", "SHIPPED", A.SHIP),
        Transition("SHIPPING", "CANCELED", A.CANCEL),
        Transition("SHIPPED", "CLOSED", None),
    ),
    actions={
        A.ACCEPT: ActionSpec(A.ACCEPT, "OR21", S({"WAITING_ACCEPTANCE"}), "WAITING_DEBIT", lines=True),
        A.REFUSE: ActionSpec(A.REFUSE, "OR21 refuse", S({"WAITING_ACCEPTANCE"}), "REFUSED", lines=True),
        A.TRACKING: ActionSpec(
            A.TRACKING, "OR23", S({"SHIPPING", "SHIPPED"}), None,
            requires=(TrackingField.NUMBER, TrackingField.CARRIER), url_unless_known_carrier=True,
        ),
        A.SHIP: ActionSpec(A.SHIP, "OR24", S({"SHIPPING"}), "SHIPPED"),
        A.CANCEL: ActionSpec(A.CANCEL, "OR29", S({"SHIPPING"}), "CANCELED", needs_flag="can_cancel"),
        A.REFUND: ActionSpec(A.REFUND, "OR28", S({"SHIPPED"}), None, lines=True),
    },
    reached={
        Outcome.SHIPPED: S({"SHIPPED", "CLOSED"}),
        Outcome.ACCEPTED: S({"WAITING_DEBIT", "SHIPPING", "SHIPPED", "CLOSED"}),
        Outcome.REFUSED: S({"REFUSED"}),
        Outcome.CANCELLED: S({"CANCELED", "REFUSED"}),
    },
    known_carriers=S({"ups", "dhl"}),
    back_office="the marketplace back office",
)  # fmt: skip

LINES = (RemoteLine("L1", 2), RemoteLine("L2", 1))
UPS = Tracking("1Z999", "ups")


def remote(state: str, **kw: object) -> RemoteOrderState:
    return RemoteOrderState("O1", state, LINES, url="https://mp.example/orders/O1", **kw)  # type: ignore[arg-type]


def ship(tracking: Tracking | None = UPS, lines: tuple[tuple[str, int], ...] = ()) -> Intent:
    return Intent(Outcome.SHIPPED, lines, tracking)


def test_ship_before_accept_plans_accept_then_waits_for_the_debit() -> None:
    p = plan(MARKET, remote("WAITING_ACCEPTANCE"), ship(), channel="mp")
    assert p.status is PlanStatus.WAIT
    assert [c.action for c in p.calls] == [A.ACCEPT]
    assert p.calls[0].lines == (("L1", 2), ("L2", 1))
    assert "WAITING_DEBIT to SHIPPING" in p.note


def test_ship_from_shipping_sends_tracking_then_ship() -> None:
    p = plan(MARKET, remote("SHIPPING"), ship(), channel="mp")
    assert p.status is PlanStatus.READY
    assert [c.call for c in p.calls] == ["OR23", "OR24"]


def test_tracking_already_given_is_not_sent_again() -> None:
    r = remote("SHIPPING", shipments=(RemoteShipment("O1", "1Z999", "ups"),))
    assert [c.call for c in plan(MARKET, r, ship(), channel="mp").calls] == ["OR24"]


def test_already_shipped_with_the_same_tracking_is_done() -> None:
    r = remote("SHIPPED", shipments=(RemoteShipment("O1", "1Z999", "ups"),))
    assert plan(MARKET, r, ship(), channel="mp").status is PlanStatus.DONE


@pytest.mark.parametrize(
    ("tracking", "field"),
    [
        (Tracking("", "ups"), "tracking_number"),
        (Tracking("1", ""), "carrier"),
        (Tracking("1", "colis-prive"), "tracking_url"),
    ],
)
def test_missing_shipping_data_is_held_naming_the_field(tracking: Tracking, field: str) -> None:
    p = plan(MARKET, remote("SHIPPING"), ship(tracking), channel="mp")
    assert p.status is PlanStatus.HELD and p.hold is not None
    assert (p.hold.code, p.hold.value) == ("shipping_data_missing", field)


def test_an_unknown_carrier_with_its_url_is_sent() -> None:
    p = plan(MARKET, remote("SHIPPING"), ship(Tracking("1", "colis-prive", "https://t.example/1")), channel="mp")
    assert p.status is PlanStatus.READY


def test_partial_shipment_is_held_where_the_channel_ships_whole_orders() -> None:
    p = plan(MARKET, remote("SHIPPING"), ship(lines=(("L1", 2),)), channel="mp")
    assert p.hold is not None and p.hold.code == "action_not_supported"


def test_cancel_without_can_cancel_is_not_supported_with_the_back_office_link() -> None:
    p = plan(MARKET, remote("SHIPPING", flags={"can_cancel": False}), Intent(Outcome.CANCELLED), channel="mp")
    assert p.hold is not None and p.hold.code == "action_not_supported"
    assert p.hold.fix.param("url") == "https://mp.example/orders/O1"
    ok = plan(MARKET, remote("SHIPPING", flags={"can_cancel": True}), Intent(Outcome.CANCELLED), channel="mp")
    assert [c.call for c in ok.calls] == ["OR29"]


def test_cancel_before_acceptance_refuses_and_cancelled_is_done() -> None:
    assert [
        c.action for c in plan(MARKET, remote("WAITING_ACCEPTANCE"), Intent(Outcome.CANCELLED), channel="mp").calls
    ] == [A.REFUSE]
    assert plan(MARKET, remote("CANCELED"), Intent(Outcome.CANCELLED), channel="mp").status is PlanStatus.DONE


def test_ship_a_refused_order_is_a_transition_not_allowed() -> None:
    p = plan(MARKET, remote("REFUSED"), ship(), channel="mp")
    assert p.hold is not None and p.hold.code == "transition_not_allowed"


def test_refund_plans_the_difference_only_after_shipping() -> None:
    early = plan(MARKET, remote("SHIPPING"), Intent(Outcome.REFUNDED, refund_total=Decimal("5")), channel="mp")
    assert early.hold is not None and early.hold.code == "transition_not_allowed"
    p = plan(
        MARKET,
        remote("SHIPPED", refunded=Decimal("2")),
        Intent(Outcome.REFUNDED, refund_total=Decimal("5")),
        channel="mp",
    )
    assert p.calls[0].amount == Decimal("3")
    done = plan(
        MARKET,
        remote("SHIPPED", refunded=Decimal("5")),
        Intent(Outcome.REFUNDED, refund_total=Decimal("5")),
        channel="mp",
    )
    assert done.status is PlanStatus.DONE


def test_reshipment_replaces_the_tracking_of_the_old_label() -> None:
    r = remote("SHIPPED", shipments=(RemoteShipment("O1", "OLD", "ups"),))
    p = plan(MARKET, r, Intent(Outcome.SHIPPED, (), UPS, replaces="OLD"), channel="mp")
    assert [(c.call, c.shipment_id, c.tracking) for c in p.calls] == [("OR23", "O1", UPS)]


def test_an_unknown_remote_state_is_never_acted_on() -> None:
    assert plan(MARKET, remote("SOMETHING_NEW"), ship(), channel="mp").status is PlanStatus.HELD


def test_rules_refuse_an_undeclared_transition() -> None:
    with pytest.raises(ValueError, match="declare that transition"):
        ChannelRules(
            states=("A", "B"), terminal=S(), transitions=(),
            actions={A.SHIP: ActionSpec(A.SHIP, "x", S({"A"}), "B")}, reached={},
        )  # fmt: skip


def test_channel_state_and_deadlines_round_trip_and_classify() -> None:
    base = order_from_json(
        {
            "external_id": "1", "number": "1", "currency": "EUR", "created_at": "2026-01-01T00:00:00+00:00",
            "updated_at": "2026-01-01T00:00:00+00:00", "payment_status": "paid", "fulfilment_status": "unfulfilled",
            "subtotal": "1", "total_tax": "0", "total": "1", "lines": [],
        }
    )  # fmt: skip
    assert "channel_state" not in order_to_json(base) and "deadlines" not in order_to_json(base)
    due = datetime(2026, 1, 2, tzinfo=UTC)
    later = order_from_json(
        {**order_to_json(base), "channel_state": "SHIPPING", "deadlines": {"shipping": due.isoformat()}}
    )
    assert later.channel_state == "SHIPPING" and later.deadlines == (("shipping", due),)
    assert order_from_json(order_to_json(later)) == later
    d = diff(base, later)
    assert {c.change for c in d.changes} == {ChangeClass.FULFILMENT, ChangeClass.NOTES}


def test_without_auto_accept_a_shipment_before_acceptance_is_held_until_accepted_by_hand() -> None:
    p = plan(MARKET, remote("WAITING_ACCEPTANCE"), ship(), channel="mp", prerequisites=frozenset())
    assert p.hold is not None and p.hold.code == "transition_not_allowed"
    assert p.hold.fix.param("url") == "https://mp.example/orders/O1"
