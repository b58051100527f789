"""Every (Mirakl state × intended outcome) pair, planned and performed against the sandbox (issue #16).

For each pair an order is put in that state in the sandbox, its remote state read, a plan made (with
and without the right to accept on the way), and the planned calls performed, letting the
marketplace make its own moves (the operator's debit) between plans. Each push ends done, waiting
for the marketplace, or held with one of the documented reasons — and the sandbox's ledger shows it
never received a call it refused, and that a repeat of a finished push sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from orderbridge.connectors.mirakl import MiraklChannel
from orderbridge.domain.channel_rules import ChannelAction, Outcome
from orderbridge.domain.push_plan import Intent, Plan, PlanStatus, Tracking, plan
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.mirakl import MiraklState, create_sandbox
from orderbridge.sandboxes.mirakl.state import STATES

BASE = "http://sandbox.local"
HOLDS = {"shipping_data_missing", "transition_not_allowed", "action_not_supported"}
LINES = [
    {"offer_sku": "MUG-1", "quantity": 2, "price_unit": "9.50"},
    {"offer_sku": "TEE-1", "quantity": 1, "price_unit": "15.00"},
]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    state: MiraklState
    connector: MiraklChannel
    clock: Clock
    app: Any

    def settle(self) -> None:
        """The marketplace's own moves happen (the debit after acceptance)."""
        self.clock.now += timedelta(seconds=61)
        self.state.tick()

    def illegal(self) -> list[dict[str, Any]]:
        return [c for c in self.state.calls() if c["rejected"] or 400 <= c["status"] < 500]


@pytest.fixture
def env() -> Iterator[Env]:
    clock = Clock()
    state, app = create_sandbox(clock=clock, debit_delay_s=60)
    http = in_process_client(app, BASE)
    yield Env(
        state, MiraklChannel(BASE, {"shop_key": "mirakl-shop-key"}, {}, http=http, sleep=lambda _s: None), clock, app
    )
    http.close()


INTENTS: dict[str, tuple[Intent, bool]] = {
    "shipped_known_carrier": (Intent(Outcome.SHIPPED, (), Tracking("1Z111", "UPS")), True),
    "shipped_unknown_carrier_no_url": (Intent(Outcome.SHIPPED, (), Tracking("CP222", "colis-prive")), True),
    "shipped_unknown_carrier_with_url": (
        Intent(Outcome.SHIPPED, (), Tracking("CP333", "colis-prive", "https://colisprive.example/CP333")),
        True,
    ),
    "shipped_partial": (Intent(Outcome.SHIPPED, (("L1", 2),), Tracking("1Z444", "ups")), True),
    "accepted": (Intent(Outcome.ACCEPTED), True),
    "refused": (Intent(Outcome.REFUSED), True),
    "cancelled_can_cancel": (Intent(Outcome.CANCELLED, reason="customer asked"), True),
    "cancelled_cannot_cancel": (Intent(Outcome.CANCELLED, reason="customer asked"), False),
    "refunded": (Intent(Outcome.REFUNDED, refund_total=Decimal("5.00"), reason="damaged"), True),
}

#: the cells whose result is the point of seed 004 and api-facts: (state, intent, may accept) → (status, hold code)
EXPECTED: dict[tuple[str, str, bool], tuple[PlanStatus, str | None]] = {
    ("WAITING_ACCEPTANCE", "shipped_known_carrier", True): (PlanStatus.WAIT, None),
    ("WAITING_ACCEPTANCE", "shipped_known_carrier", False): (PlanStatus.HELD, "transition_not_allowed"),
    ("SHIPPING", "shipped_known_carrier", True): (PlanStatus.READY, None),
    ("SHIPPING", "shipped_unknown_carrier_no_url", True): (PlanStatus.HELD, "shipping_data_missing"),
    ("SHIPPING", "shipped_unknown_carrier_with_url", False): (PlanStatus.READY, None),
    ("SHIPPING", "shipped_partial", True): (PlanStatus.HELD, "action_not_supported"),
    ("SHIPPING", "cancelled_can_cancel", True): (PlanStatus.READY, None),
    ("SHIPPING", "cancelled_cannot_cancel", True): (PlanStatus.HELD, "action_not_supported"),
    ("WAITING_ACCEPTANCE", "cancelled_can_cancel", True): (PlanStatus.READY, None),
    ("WAITING_DEBIT", "shipped_known_carrier", True): (PlanStatus.WAIT, None),
    ("REFUSED", "shipped_known_carrier", True): (PlanStatus.HELD, "transition_not_allowed"),
    ("SHIPPED", "refunded", True): (PlanStatus.READY, None),
    ("RECEIVED", "refunded", True): (PlanStatus.READY, None),
    ("CLOSED", "refunded", True): (PlanStatus.HELD, "transition_not_allowed"),
    ("SHIPPING", "refunded", True): (PlanStatus.HELD, "transition_not_allowed"),
    ("CANCELED", "cancelled_can_cancel", True): (PlanStatus.DONE, None),
    ("SHIPPED", "accepted", True): (PlanStatus.DONE, None),
}


def _intent_for(env: Env, order_id: str, name: str) -> Intent:
    intent, _ = INTENTS[name]
    if intent.lines:  # the intent's lines are the order's real line ids
        first = env.state.orders[order_id]["order_lines"][0]["order_line_id"]
        return Intent(intent.outcome, ((first, 2),), intent.tracking)
    return intent


def _push(env: Env, order_id: str, intent: Intent, prerequisites: frozenset[ChannelAction]) -> list[Plan]:
    """Plan and perform until done, held or waiting for something that does not come."""
    plans = []
    for _ in range(4):
        remote = env.connector.remote_state(order_id)
        p = plan(env.connector.channel_rules, remote, intent, channel="mirakl", prerequisites=prerequisites)
        plans.append(p)
        for call in p.calls:
            assert env.connector.perform(order_id, call)
        if p.status in (PlanStatus.DONE, PlanStatus.HELD):
            break
        env.settle()
    return plans


@pytest.mark.parametrize("may_accept", [True, False], ids=["auto_accept", "no_auto_accept"])
@pytest.mark.parametrize("intent_name", list(INTENTS))
@pytest.mark.parametrize("state", STATES)
def test_every_state_and_outcome_is_sent_or_held_and_no_call_is_ever_refused(
    env: Env, state: str, intent_name: str, may_accept: bool
) -> None:
    _, can_cancel = INTENTS[intent_name]
    tracking = (
        {"tracking_number": "OLD1", "carrier_code": "ups"}
        if state in ("SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED")
        else None
    )
    order_id = env.state.create_order(state=state, lines=LINES, can_cancel=can_cancel, tracking=tracking)["order_id"]
    intent = _intent_for(env, order_id, intent_name)
    prerequisites = frozenset({ChannelAction.ACCEPT}) if may_accept else frozenset()
    plans = _push(env, order_id, intent, prerequisites)

    first = plans[0]
    expected = EXPECTED.get((state, intent_name, may_accept))
    if expected is not None:
        status, code = expected
        assert first.status is status, first.describe()
        assert (first.hold.code if first.hold else None) == code, first.describe()
    last = plans[-1]
    if last.status is PlanStatus.HELD:
        assert last.hold is not None and last.hold.code in HOLDS, last.describe()
        assert last.hold.fix.text
    assert env.illegal() == [], "the sandbox refused a call the planner sent"

    if last.status is PlanStatus.DONE:
        before = len(env.state.writes(order_id))
        again = _push(env, order_id, intent, prerequisites)
        assert again[0].status is PlanStatus.DONE and len(env.state.writes(order_id)) == before
        if (
            intent.outcome is Outcome.SHIPPED
            and intent.tracking is not None
            and state not in ("TO_COLLECT", "RECEIVED", "CLOSED")
        ):
            order = env.state.orders[order_id]
            assert order["order_state"] == "SHIPPED" and order["shipping_tracking"] == intent.tracking.number


def test_a_shipment_before_acceptance_is_accept_then_after_the_debit_tracking_then_ship_each_once(env: Env) -> None:
    order_id = env.state.create_order(lines=LINES)["order_id"]
    intent = Intent(Outcome.SHIPPED, (), Tracking("1Z999", "ups"))
    plans = _push(env, order_id, intent, frozenset({ChannelAction.ACCEPT}))
    assert [p.status for p in plans] == [PlanStatus.WAIT, PlanStatus.READY, PlanStatus.DONE]
    sent = [(c["method"], c["path"].rsplit("/", 1)[-1]) for c in env.state.writes(order_id)]
    assert sent == [("PUT", "accept"), ("PUT", "tracking"), ("PUT", "ship")]
    transitions = [(e.data["target"], e.data["by"]) for e in env.state.entries("transition") if e.key == order_id]
    assert [t for t, _ in transitions] == ["WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED"]


def test_a_crash_between_calls_then_a_new_plan_sends_only_the_remaining_call(env: Env) -> None:
    order_id = env.state.create_order(state="SHIPPING", lines=LINES)["order_id"]
    intent = Intent(Outcome.SHIPPED, (), Tracking("1Z777", "ups"))
    first = plan(env.connector.channel_rules, env.connector.remote_state(order_id), intent, channel="mirakl")
    assert [c.action for c in first.calls] == [ChannelAction.TRACKING, ChannelAction.SHIP]
    env.connector.perform(order_id, first.calls[0])
    env.connector.close()  # the process stops here, the rest of the plan forgotten
    http = in_process_client(env.app, BASE)
    restarted = MiraklChannel(BASE, {"shop_key": "mirakl-shop-key"}, {}, http=http)
    again = plan(restarted.channel_rules, restarted.remote_state(order_id), intent, channel="mirakl")
    assert [c.action for c in again.calls] == [ChannelAction.SHIP]
    restarted.perform(order_id, again.calls[0])
    http.close()
    paths = [c["path"].rsplit("/", 1)[-1] for c in env.state.writes(order_id)]
    assert paths == ["tracking", "ship"]
