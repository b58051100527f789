"""Inventory honesty: a sale the POS leaves pending (no stock moved) is never left quietly — the order
is held ``pos_order_incomplete``, read again every run, never posted a second time, and released
(back to ``posted``) once the POS completed it."""

from __future__ import annotations

from orderbridge.fixes import FixAction
from orderbridge.services.order_actions import retry_now
from orderbridge.services.principals import Actor
from tests.connectors.pos_kind.world import World
from tests.connectors.pos_kind.world import world as world
from tests.scoped import tenant


def test_a_pending_sale_holds_the_order_saying_inventory_is_not_adjusted_until_it_is_completed(world: World) -> None:
    world.pos.pending_sales = True
    order = world.shop.add_order()
    report = world.post_report(world.cycle())
    assert report["posted"] == 1 and report["preflight"]["incomplete"] == 1
    sale = world.sale(order["id"])
    assert sale is not None and sale["state"] == "pending" and sale["stock_moved"] is False
    assert world.state(order["id"]) == "held"
    hold = world.holds(order["id"])[("pos_order_incomplete", "pos")]
    assert "inventory is not yet adjusted there" in hold["message"] and "pending" in hold["message"]
    assert hold["fix"].action is FixAction.ACT_IN_POS and hold["fix"].param("connection") == "pos"
    told = world.timeline(order["id"], "pos_document")
    assert [(e["state"], e["stock_moved"]) for e in told] == [("pending", False)]

    world.cycle()  # read again: still pending, still held, nothing posted again, nothing told twice
    assert world.state(order["id"]) == "held"
    assert len(world.pos.entries("sale")) == 1 and len(world.timeline(order["id"], "pos_document")) == 1

    world.pos.complete(sale["id"])  # someone invoices it in the POS: stock moves
    report = world.post_report(world.cycle())
    assert report["preflight"]["completed"] == 1
    assert world.state(order["id"]) == "posted" and world.holds(order["id"]) == {}
    told = world.timeline(order["id"], "pos_document")
    assert [(e["state"], e["stock_moved"]) for e in told] == [("pending", False), ("completed", True)]
    assert len(world.pos.entries("sale")) == 1


def test_a_retry_does_not_end_the_incomplete_hold_nor_post_the_sale_twice(world: World) -> None:
    world.pos.pending_sales = True
    order = world.shop.add_order()
    world.cycle()
    retry_now(Actor.cli(tenant(world.hub)), _oid(world, order["id"]))
    world.cycle()
    assert world.state(order["id"]) == "held" and len(world.pos.entries("sale")) == 1


def _oid(world: World, external_id: str) -> int:
    from sqlalchemy import select

    from orderbridge.storage.tables import orders

    with world.hub.db.read() as conn:
        return int(conn.execute(select(orders.c.id).where(orders.c.external_id == external_id)).scalar_one())


def test_a_sale_that_cannot_be_read_back_is_held_until_it_is_read_complete(world: World) -> None:
    from orderbridge.sandboxes.base import Fault

    order = world.shop.add_order()
    world.pos.add_fault(Fault("500", path="/v1/sales/", method="GET", count=-1, retry_after=0.01))
    world.cycle()
    assert len(world.pos.entries("sale")) == 1  # posted once
    assert world.state(order["id"]) == "held"
    hold = world.holds(order["id"])[("pos_order_incomplete", "pos")]
    assert "not read back" in hold["message"]
    world.cycle()  # still unreadable: still held, never posted again
    assert world.state(order["id"]) == "held" and len(world.pos.entries("sale")) == 1
    world.pos.clear_faults()
    world.cycle()  # read again: the sale was complete all along
    assert world.state(order["id"]) == "posted" and len(world.pos.entries("sale")) == 1
