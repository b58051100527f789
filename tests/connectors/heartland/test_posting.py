"""Posting to Heartland Retail beyond the shared contract: lost answers settled by reading Heartland,
the seed-001 traps as Heartland itself reacts to them, pending sales and inventory, the document state."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from orderbridge.connectors.base import PosDocumentState
from orderbridge.domain.reasons import HoldCode
from orderbridge.errors import OutcomeUnknown
from tests.builders import replace
from tests.connectors.contract_destination import make_order, outgoing
from tests.connectors.heartland.env import HL_POLICY, HeartlandEnv, hl_outgoing, open_env


@pytest.fixture
def slow_env() -> Iterator[HeartlandEnv]:
    # the client gives up after 0.5 s; a lost answer is settled 1.5 s later (really waited)
    gen = open_env(timeout=0.5, settings={"timeout_settle_s": 1.5})
    env = next(gen)
    env.nap = 2.0
    yield env
    gen.close()


def test_a_create_whose_answer_times_out_is_looked_up_and_not_made_again(slow_env: HeartlandEnv) -> None:
    # the sales order's POST is answered after 1 s: the client has given up at 0.5 s, the order is made at 1 s
    # (matching on the body makes the sandbox read it before the delay, as a server that got it would)
    slow_env.fault("timeout", path="/api/sales/orders", method="POST", delay=1.0, body_contains="public_id")
    order = hl_outgoing(1)
    (result,) = slow_env.connector.post_orders([order])
    assert result.ok, result.error
    [sale] = slow_env.orders_for(order.resolved.order.number)
    assert result.document_id == f"order:{sale['id']}" and sale["status"] == "closed"
    assert len(sale["lines"]) == 2 and len(sale["payments"]) == 1
    assert any("lost its answer" in note for note in result.notes)
    assert any("already held sales order" in note for note in result.notes)  # found, then went on from there
    assert 1.5 in slow_env.sleeps


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("truncate", "/api/sales/orders/"),  # made, its answer cut: a line, the payment…
        ("503", "/api/sales/orders/"),  # refused before it ran: nothing made
        ("truncate", "/api/sales/invoices"),
        ("500", "/api/customers"),
    ],
)
def test_a_write_whose_answer_is_lost_is_settled_by_reading_heartland(
    heartland_env: HeartlandEnv, kind: str, path: str
) -> None:
    heartland_env.fault(kind, path=path, method="POST", count=2)
    order = hl_outgoing(1, lines=3)
    (result,) = heartland_env.connector.post_orders([order])
    assert result.ok, result.error
    [sale] = heartland_env.orders_for(order.resolved.order.number)
    assert [line["qty"] for line in sale["lines"]] == [1, 2, 3]
    assert len(sale["payments"]) == 1 and len(sale["taxes"]) == 1
    assert len(heartland_env.state.invoices) == 1 and len(heartland_env.state.customers) == 1
    assert sale["status"] == "closed"


@pytest.mark.parametrize("mode", ["sales_order", "ticket"])
def test_writes_applied_whose_answers_are_lost_are_read_back_and_not_made_again(mode: str) -> None:
    gen = open_env(settings={"posting_mode": mode})
    env = next(gen)
    try:
        env.state.fail_after_commit = 3  # the customer, its address, the sale: each applied, answered 503
        order = hl_outgoing(1, lines=3)
        (result,) = env.connector.post_orders([order])
        assert result.ok, result.error
        assert sum("lost its answer" in n for n in result.notes) == 3
        assert len(env.state.customers) == 1 and len(env.state.addresses) == 1
        assert len([s for s in env.sales() if s["public_id"] == order.resolved.order.number]) == 1
    finally:
        gen.close()


def test_more_lost_answers_than_one_run_settles_leave_the_order_for_the_next_run_which_finishes_the_same_sale(
    heartland_env: HeartlandEnv,
) -> None:
    heartland_env.state.fail_after_commit = 6
    order, other = hl_outgoing(1, lines=3), hl_outgoing(2)
    with pytest.raises(OutcomeUnknown):  # the hub keeps the postings pending: read again next run
        heartland_env.connector.post_orders([order, other])
    assert heartland_env.orders_for(other.resolved.order.number)[0]["status"] == "closed"  # the other still went
    writes = len(heartland_env.writes())
    result, again = heartland_env.build().post_orders([order, other])
    assert result.ok and again.ok
    assert len(heartland_env.orders_for(other.resolved.order.number)) == 1
    assert len(heartland_env.writes()) > writes
    [sale] = heartland_env.orders_for(order.resolved.order.number)
    assert [li["qty"] for li in sale["lines"]] == [1, 2, 3] and len(sale["payments"]) == 1
    assert sale["status"] == "closed" and len(heartland_env.state.invoices) == 2  # one each


def test_an_order_the_checks_hold_is_refused_before_anything_is_sent(heartland_env: HeartlandEnv) -> None:
    heartland_env.state.add_custom_field("gift_note", "sales.transaction", required=True)
    (result,) = heartland_env.connector.post_orders([hl_outgoing(1)])
    assert not result.ok and result.hold is not None and result.hold.code == HoldCode.REQUIRED_FIELD_MISSING
    assert heartland_env.writes() == []


def test_a_required_field_that_blocks_makes_heartland_refuse_the_sale(heartland_env: HeartlandEnv) -> None:
    heartland_env.state.add_custom_field("gift_note", "sales.transaction", required=True, on_missing="block")
    unchecked = heartland_env.build(check_before_post=False)
    (result,) = unchecked.post_orders([hl_outgoing(1)])
    assert not result.ok and result.error is not None and result.error.code == "destination_rejected"
    assert "custom@gift_note is required" in result.error.message
    assert heartland_env.state.orders == {}  # blocked: never created
    (result,) = heartland_env.build(check_before_post=False, custom_field_defaults={"gift_note": "web"}).post_orders(
        [hl_outgoing(1)]
    )
    assert result.ok and [o["custom"] for o in heartland_env.state.orders.values()] == [{"gift_note": "web"}]


def test_a_required_field_that_leaves_the_order_pending_says_inventory_is_not_adjusted_and_a_repost_completes_it(
    heartland_env: HeartlandEnv,
) -> None:
    heartland_env.state.add_custom_field("pickup_date", "sales.transaction", required=True, on_missing="pending")
    unchecked = heartland_env.build(check_before_post=False)
    order = hl_outgoing(1)
    (result,) = unchecked.post_orders([order])
    [sale] = heartland_env.orders_for(order.resolved.order.number)
    # Heartland holds the sale: it is the order's document (posted once), and it says it is incomplete
    assert result.ok and result.document_id == f"order:{sale['id']}"
    assert any("inventory is not adjusted" in n and "pickup_date" in n for n in result.notes), result.notes
    assert sale["status"] == "pending" and len(sale["lines"]) == 2
    # a pending order moves no inventory: not on hand, not committed
    assert heartland_env.state.stock("WH-TEE-001") == {"on_hand": Decimal(100), "committed": Decimal(0)}
    state = unchecked.document_state(f"order:{sale['id']}")
    assert state is not None and state.state is PosDocumentState.PENDING and not state.stock_moved

    fixed = heartland_env.build(check_before_post=False, custom_field_defaults={"pickup_date": "2025-03-02"})
    (result,) = fixed.post_orders([order])
    assert result.ok and result.document_id == f"order:{sale['id']}"
    assert len(heartland_env.state.orders) == 1 and len(sale["lines"]) == 2 and len(sale["payments"]) == 1
    assert sale["custom"] == {"pickup_date": "2025-03-02"} and sale["status"] == "closed"
    assert heartland_env.state.stock("WH-TEE-001") == {"on_hand": Decimal(99), "committed": Decimal(0)}
    done = fixed.document_state(result.document_id or "")
    assert done is not None and done.state is PosDocumentState.INVOICED and done.stock_moved
    assert done.number == order.resolved.order.number


def test_a_ticket_left_pending_by_a_required_field_is_completed_later_not_made_twice(ticket_env: HeartlandEnv) -> None:
    ticket_env.state.add_custom_field("pickup_date", "sales.transaction", required=True, on_missing="pending")
    order = hl_outgoing(1)
    (result,) = ticket_env.build(check_before_post=False).post_orders([order])
    [ticket] = ticket_env.state.tickets.values()
    assert result.ok and result.document_id == f"ticket:{ticket['id']}"
    pending = ticket_env.connector.document_state(result.document_id or "")
    assert pending is not None and pending.state is PosDocumentState.PENDING and not pending.stock_moved
    assert ticket["status"] == "pending" and ticket_env.state.stock("SKU-1")["on_hand"] == 100
    (result,) = ticket_env.build(custom_field_defaults={"pickup_date": "today"}).post_orders([order])
    assert result.ok and result.document_id == f"ticket:{ticket['id']}"
    assert len(ticket_env.state.tickets) == 1 and ticket["status"] == "complete"
    assert ticket_env.state.stock("SKU-1")["on_hand"] == 98
    state = ticket_env.connector.document_state(result.document_id or "")
    assert state is not None and state.state is PosDocumentState.COMPLETED and state.stock_moved


def test_an_open_order_not_invoiced_commits_stock_without_moving_it(heartland_env: HeartlandEnv) -> None:
    connector = heartland_env.build(auto_invoice=False)
    (result,) = connector.post_orders([hl_outgoing(1)])
    assert result.ok and heartland_env.state.invoices == {}
    assert heartland_env.state.stock("SKU-1") == {"on_hand": Decimal(100), "committed": Decimal(2)}
    state = connector.document_state(result.document_id or "")
    assert state is not None and state.state is PosDocumentState.OPEN and not state.stock_moved
    assert connector.document_state("order:999999") is None and connector.document_state("nonsense") is None


def test_a_ticket_carries_shipping_and_discount_on_the_helper_items_and_totals_as_the_channel(
    ticket_env: HeartlandEnv,
) -> None:
    order = make_order(1)
    from orderbridge.domain.money import Money
    from orderbridge.domain.order import Discount

    order = replace(
        order,
        discounts=(Discount("WELCOME", Money(Decimal("5.00"), "USD")),),
        total=Money(order.total.amount - 5, "USD"),
    )
    (result,) = ticket_env.connector.post_orders([outgoing(order, policy=HL_POLICY)])
    assert result.ok
    [ticket] = ticket_env.state.tickets.values()
    helper_ids = {ticket_env.state.item_by_public_id(s)["id"]: s for s in ("Shopify Shipping", "Shopify Discount")}  # type: ignore[index]
    helper_lines = {
        helper_ids[li["item_id"]]: li["unit_price"] for li in ticket["item_lines"] if li["item_id"] in helper_ids
    }
    assert helper_lines == {"Shopify Shipping": Decimal("4.95"), "Shopify Discount": Decimal("-5.00")}
    assert ticket["total"] == order.total.amount and ticket["payments"][0]["amount"] == order.total.amount


def test_heartland_refuses_a_sale_by_an_archived_sales_rep_where_a_rep_is_required(heartland_env: HeartlandEnv) -> None:
    heartland_env.state.put_setting("pos.tickets.sales_rep_required", True)
    heartland_env.state.set_user_active("online-orders", False)
    (result,) = heartland_env.build(check_before_post=False).post_orders([hl_outgoing(1)])
    assert not result.ok and result.error is not None and "not an active user" in result.error.message
    assert heartland_env.state.orders == {}


@pytest.mark.parametrize("unique", [True, False])
def test_a_create_applied_after_the_settle_time_is_stopped_by_unique_public_ids_or_named_on_the_timeline(
    unique: bool,
) -> None:
    """The documented limit: a request Heartland applies later than ``timeout_settle_s`` after the client
    gave up. Where Heartland enforces unique public_ids (a (?)), the late one is refused; where it does
    not, the next post names both sales on the order's timeline (the oldest is the order's)."""
    gen = open_env(timeout=0.5, settings={"timeout_settle_s": 0}, unique_public_id=unique)
    env = next(gen)
    try:
        env.fault("timeout", path="/api/sales/orders", method="POST", delay=1.0, body_contains="public_id")
        order = hl_outgoing(1)
        (result,) = env.connector.post_orders([order])
        assert result.ok
        import time

        time.sleep(1.0)  # the late request lands now
        sales = env.orders_for(order.resolved.order.number)
        if unique:
            assert len(sales) == 1
            assert [e.data["status"] for e in env.state.entries("call") if e.key == "POST /api/sales/orders"] == [
                201,
                422,
            ]
        else:
            assert len(sales) == 2
            (again,) = env.build().post_orders([order])
            assert again.document_id == result.document_id
            assert any("holds 2 sales with public_id" in note for note in again.notes), again.notes
    finally:
        gen.close()
