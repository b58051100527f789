"""The push planner against the Shopify sandbox, table-driven (issue #16 acceptance): for every
(remote state × intended outcome) pair the planned calls succeed against the sandbox and leave the
outcome holding, or the push is held with the documented reason — and the sandbox's own ledger
shows it never refused a call (no illegal call was ever sent)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderbridge.connectors.base import FulfilmentLine, FulfilmentRequest
from orderbridge.connectors.shopify.connector import CHANNEL_RULES
from orderbridge.domain.channel_rules import Outcome
from orderbridge.domain.order import Order
from orderbridge.domain.push_plan import Intent, PlanStatus, Tracking, plan
from tests.connectors.test_shopify_connector import ShopifyEnv, make_env

STATES = ("UNFULFILLED", "PARTIALLY_FULFILLED", "FULFILLED", "CANCELLED")
INTENTS = ("ship_all", "ship_part", "reship", "cancel", "refund", "accept")

#: (state, intent) → what must happen: "sent" (calls made, outcome then holds), "done"
#: (already_in_state), or the hold code
EXPECTED: dict[tuple[str, str], str] = {
    ("UNFULFILLED", "ship_all"): "sent",
    ("UNFULFILLED", "ship_part"): "sent",
    ("UNFULFILLED", "reship"): "sent",  # nothing to replace yet: a first fulfilment with the new tracking
    ("UNFULFILLED", "cancel"): "sent",
    ("UNFULFILLED", "refund"): "action_not_supported",
    ("UNFULFILLED", "accept"): "done",
    ("PARTIALLY_FULFILLED", "ship_all"): "sent",
    ("PARTIALLY_FULFILLED", "ship_part"): "done",  # line A is the one already shipped with OLD
    ("PARTIALLY_FULFILLED", "reship"): "sent",
    ("PARTIALLY_FULFILLED", "cancel"): "transition_not_allowed",
    ("PARTIALLY_FULFILLED", "refund"): "action_not_supported",
    ("PARTIALLY_FULFILLED", "accept"): "done",
    ("FULFILLED", "ship_all"): "done",
    ("FULFILLED", "ship_part"): "done",
    ("FULFILLED", "reship"): "sent",
    ("FULFILLED", "cancel"): "transition_not_allowed",
    ("FULFILLED", "refund"): "action_not_supported",
    ("FULFILLED", "accept"): "done",
    ("CANCELLED", "ship_all"): "transition_not_allowed",
    ("CANCELLED", "ship_part"): "transition_not_allowed",
    ("CANCELLED", "reship"): "transition_not_allowed",
    ("CANCELLED", "cancel"): "done",
    ("CANCELLED", "refund"): "action_not_supported",
    ("CANCELLED", "accept"): "action_not_supported",
}


def _order(env: ShopifyEnv, state: str) -> tuple[str, list[str]]:
    external_id = env.add_order(
        line_items=[{"sku": "A", "quantity": 2, "price": "3.00"}, {"sku": "B", "quantity": 1, "price": "4.00"}]
    )
    order = env.connector.fetch_order(external_id)
    assert isinstance(order, Order)
    lines = [ln.external_id for ln in order.lines]
    if state in ("PARTIALLY_FULFILLED", "FULFILLED"):
        wanted = [(lines[0], 2)] if state == "PARTIALLY_FULFILLED" else [(lines[0], 2), (lines[1], 1)]
        env.connector.push_fulfilment(
            FulfilmentRequest(external_id, tuple(FulfilmentLine(k, q) for k, q in wanted), "OLD", "UPS")
        )
    if state == "CANCELLED":
        assert env.state.cancel_order(int(external_id), "CUSTOMER") == []
    return external_id, lines


def _intent(name: str, lines: list[str]) -> Intent:
    new = Tracking("NEW-1", "UPS", "https://t.example/NEW-1")
    return {
        "ship_all": Intent(Outcome.SHIPPED, ((lines[0], 2), (lines[1], 1)), new),
        "ship_part": Intent(Outcome.SHIPPED, ((lines[0], 2),), Tracking("OLD", "UPS")),
        "reship": Intent(Outcome.SHIPPED, ((lines[0], 2),), new, replaces="OLD"),
        "cancel": Intent(Outcome.CANCELLED, reason="customer asked"),
        "refund": Intent(Outcome.REFUNDED, refund_total=Decimal("3.00")),
        "accept": Intent(Outcome.ACCEPTED),
    }[name]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("intent_name", INTENTS)
def test_every_state_and_intent_is_sent_legally_or_held_with_its_reason(state: str, intent_name: str) -> None:
    env, http = make_env(0)
    external_id, lines = _order(env, state)
    remote = env.connector.remote_state(external_id)
    assert remote.state == state
    assert remote.url.endswith(f"/admin/orders/{external_id}")
    intent = _intent(intent_name, lines)
    p = plan(CHANNEL_RULES, remote, intent, channel="shop")
    expected = EXPECTED[(state, intent_name)]
    if expected == "sent":
        assert p.status is PlanStatus.READY, p.describe()
        for call in p.calls:
            assert env.connector.perform(external_id, call)
        after = plan(CHANNEL_RULES, env.connector.remote_state(external_id), intent, channel="shop")
        assert after.status is PlanStatus.DONE, after.describe()
    elif expected == "done":
        assert p.status is PlanStatus.DONE, p.describe()
    else:
        assert p.status is PlanStatus.HELD and p.hold is not None, p.describe()
        assert p.hold.code == expected
        assert p.hold.fix.action == "act_in_back_office"
        assert p.hold.fix.param("url") == remote.url
    assert env.state.entries("refused") == []  # the sandbox never received a call it refuses
    http.close()


def test_the_sandbox_refuses_to_cancel_a_fulfilled_order_and_records_it() -> None:
    """The guard the table relies on is real: orderCancel with a fulfilment is refused (api-facts)."""
    env, http = make_env(0)
    external_id, _ = _order(env, "PARTIALLY_FULFILLED")
    from orderbridge.domain.channel_rules import ChannelAction
    from orderbridge.domain.push_plan import PlannedCall
    from orderbridge.errors import HoldOrder

    with pytest.raises(HoldOrder, match="fulfillments"):
        env.connector.perform(external_id, PlannedCall(ChannelAction.CANCEL, "orderCancel"))
    assert [e.key for e in env.state.entries("refused")] == ["orderCancel"]
    assert env.connector.remote_state(external_id).state == "PARTIALLY_FULFILLED"
    http.close()


def test_a_cancel_through_the_api_is_in_the_ledger_and_fires_the_webhook_topics() -> None:
    env, http = make_env(0)
    external_id, _ = _order(env, "UNFULFILLED")
    p = plan(CHANNEL_RULES, env.connector.remote_state(external_id), Intent(Outcome.CANCELLED), channel="shop")
    assert [c.call for c in p.calls] == ["orderCancel"]
    env.connector.perform(external_id, p.calls[0])
    assert [e.key for e in env.state.entries("order_cancel")] == [external_id]
    order = env.connector.fetch_order(external_id)
    assert isinstance(order, Order) and order.cancelled_at is not None
    http.close()
