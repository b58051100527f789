"""Every (WooCommerce status × intended outcome) pair, planned against the sandbox's own state and
performed: each planned call succeeds, or the push is held with the documented reason; the sandbox
(strict about status moves) refuses nothing; and a repeat sends nothing (issue #16 acceptance)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderbridge.connectors.woocommerce import RULES
from orderbridge.connectors.woocommerce.mapper import STATUSES
from orderbridge.domain.channel_rules import ChannelAction, Outcome
from orderbridge.domain.push_plan import Intent, Plan, PlanStatus, Tracking, plan
from orderbridge.errors import OutcomeUnknown
from tests.connectors._woocommerce_env import WooEnv, make_env

UPS = Tracking("1Z999AA10123456784", "UPS", "https://www.ups.com/track?tracknum=1Z999AA10123456784")
LINES = [("MUG-1", "Mug", "9.50", 2), ("CAP-2", "Cap", "12.25", 1)]
WRITES = ("status_changed", "note_created")

#: what the documented rules make of each pair: ("ready", calls) | ("wait",) | ("done",) | ("held", code)
T, SHIP, CANCEL = ChannelAction.TRACKING, ChannelAction.SHIP, ChannelAction.CANCEL
HELD_NO_WAY = ("held", "transition_not_allowed")
NOT_OFFERED = ("held", "action_not_supported")
NO_NUMBER = ("held", "shipping_data_missing")
EXPECTED: dict[str, dict[str, tuple[object, ...]]] = {
    "shipped": {
        "pending": ("wait",), "processing": ("ready", (T, SHIP)), "on-hold": ("wait",), "completed": ("ready", (T,)),
        "cancelled": HELD_NO_WAY, "refunded": HELD_NO_WAY, "failed": ("wait",), "trash": HELD_NO_WAY,
        "checkout-draft": ("wait",),
    },
    # without a tracking number nothing is sent, whatever the state (the tracking note needs it)
    "shipped_without_tracking": {s: NO_NUMBER for s in STATUSES},
    # WooCommerce ships whole orders only; a completed order can still be given the tracking
    "shipped_partial": {**{s: NOT_OFFERED for s in STATUSES}, "completed": ("ready", (T,))},
    "cancelled": {
        "pending": ("ready", (CANCEL,)), "processing": ("ready", (CANCEL,)), "on-hold": ("ready", (CANCEL,)),
        "completed": HELD_NO_WAY, "cancelled": ("done",), "refunded": HELD_NO_WAY, "failed": HELD_NO_WAY,
        "trash": ("done",), "checkout-draft": HELD_NO_WAY,
    },
    # refunds are made in the WooCommerce admin (REFUND is not declared); a refunded order is done
    "refunded": {**{s: NOT_OFFERED for s in STATUSES}, "refunded": ("done",)},
    # there is no acceptance step: a placed order is accepted
    "accepted": {
        **{s: NOT_OFFERED for s in STATUSES},
        **{s: ("done",) for s in ("pending", "processing", "on-hold", "completed")},
    },
}  # fmt: skip


def intent_for(name: str, env: WooEnv, external_id: str) -> Intent:
    order = env.state.orders[int(external_id)]
    first = order["line_items"][0]
    return {
        "shipped": Intent(Outcome.SHIPPED, (), UPS),
        "shipped_without_tracking": Intent(Outcome.SHIPPED, (), None),
        "shipped_partial": Intent(Outcome.SHIPPED, ((str(first["id"]), first["quantity"]),), UPS),
        "cancelled": Intent(Outcome.CANCELLED, reason="out of stock"),
        "refunded": Intent(Outcome.REFUNDED, refund_total=Decimal(order["total"])),
        "accepted": Intent(Outcome.ACCEPTED),
    }[name]


def describe(p: Plan) -> tuple[object, ...]:
    if p.status is PlanStatus.READY:
        return ("ready", tuple(c.action for c in p.calls))
    if p.status is PlanStatus.HELD:
        assert p.hold is not None
        return ("held", p.hold.code)
    assert not p.calls, "a WooCommerce wait makes no call first (the store moves the order itself)"
    return (p.status.value,)


def writes(env: WooEnv, external_id: str) -> list[tuple[str, str]]:
    return [
        (e.kind, str(e.data.get("target") or e.data.get("note")))
        for e in env.state.ledger
        if e.kind in WRITES and e.key == external_id and e.data.get("by", "api") == "api"
    ]


@pytest.fixture(scope="module")
def env() -> WooEnv:
    return make_env(orders=0, status_rules="strict")


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("outcome", list(EXPECTED))
def test_every_status_and_outcome_is_sent_once_or_held_with_its_reason(env: WooEnv, status: str, outcome: str) -> None:
    external_id = str(env.state.add_order(status=status, lines=LINES)["id"])
    intent = intent_for(outcome, env, external_id)
    first = plan(RULES, env.connector.remote_state(external_id), intent, channel="shop")

    assert describe(first) == EXPECTED[outcome][status], first.describe()
    if first.status is PlanStatus.HELD:
        assert first.hold is not None and first.hold.message and first.hold.fix.text
        assert first.hold.fix.param("url") in ("", env.connector.admin_url(external_id)) or first.hold.code == (
            "shipping_data_missing"
        )
    for call in first.calls if first.status is PlanStatus.READY else ():
        assert env.connector.perform(external_id, call)
    sent = writes(env, external_id)
    assert len(sent) == (len(first.calls) if first.status is PlanStatus.READY else 0)

    # planned again from what the store now holds: nothing more to send, and nothing is sent
    again = plan(RULES, env.connector.remote_state(external_id), intent, channel="shop")
    if first.status is PlanStatus.READY:
        assert again.status is PlanStatus.DONE, again.describe()
    else:
        assert describe(again) == describe(first)
    assert writes(env, external_id) == sent
    assert env.state.entries("rejected") == [], "the sandbox refused a planned call"


def test_a_shipment_becomes_a_tracking_note_then_completed_and_the_note_reads_back_as_the_shipment() -> None:
    env = make_env(orders=0, status_rules="strict")
    external_id = str(env.state.add_order(status="processing", lines=LINES)["id"])
    p = plan(RULES, env.connector.remote_state(external_id), Intent(Outcome.SHIPPED, (), UPS), channel="shop")
    assert [c.call for c in p.calls] == ["POST /orders/{id}/notes", "PUT /orders/{id} status=completed"]
    note_id = env.connector.perform(external_id, p.calls[0])
    assert env.connector.perform(external_id, p.calls[1]) == external_id
    (note,) = [n for n in env.notes(external_id) if n["id"] == int(note_id)]
    assert note["customer_note"] is True
    assert note["note"] == f"Shipped with UPS: tracking number {UPS.number} ({UPS.url})"
    remote = env.connector.remote_state(external_id)
    assert remote.state == "completed"
    assert [(s.id, s.tracking_number, s.carrier) for s in remote.shipments] == [(note_id, UPS.number, "UPS")]


def test_a_note_whose_answer_was_lost_is_found_by_the_next_plan_and_not_posted_twice() -> None:
    env = make_env(orders=0)
    external_id = str(env.state.add_order(status="processing", lines=LINES)["id"])
    intent = Intent(Outcome.SHIPPED, (), UPS)
    p = plan(RULES, env.connector.remote_state(external_id), intent, channel="shop")
    env.fault("truncate", method="POST")  # the note is made, its answer cut
    with pytest.raises(OutcomeUnknown):
        env.connector.perform(external_id, p.calls[0])
    again = plan(RULES, env.connector.remote_state(external_id), intent, channel="shop")
    assert [c.action for c in again.calls] == [ChannelAction.SHIP]
    env.connector.perform(external_id, again.calls[0])
    assert [k for k, _ in writes(env, external_id)] == ["note_created", "status_changed"]


def test_a_reshipment_after_a_voided_label_adds_a_note_with_the_new_tracking() -> None:
    env = make_env(orders=0)
    external_id = str(env.state.add_order(status="processing", lines=LINES)["id"])
    old = Tracking("1ZOLD", "UPS")
    first = plan(RULES, env.connector.remote_state(external_id), Intent(Outcome.SHIPPED, (), old), channel="s")
    for call in first.calls:
        env.connector.perform(external_id, call)
    new = Tracking("1ZNEW", "UPS")
    reship = Intent(Outcome.SHIPPED, (), new, replaces="1ZOLD")
    p = plan(RULES, env.connector.remote_state(external_id), reship, channel="s")
    assert [c.action for c in p.calls] == [ChannelAction.TRACKING] and p.calls[0].shipment_id
    env.connector.perform(external_id, p.calls[0])
    assert "This replaces tracking number 1ZOLD" in env.notes(external_id)[-1]["note"]
    numbers = [s.tracking_number for s in env.connector.remote_state(external_id).shipments]
    assert numbers == ["1ZOLD", "1ZNEW"]
    assert plan(RULES, env.connector.remote_state(external_id), reship, channel="s").status is PlanStatus.DONE
