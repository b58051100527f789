"""Heartland Retail through the hub, end to end over real HTTP: Shopify sandbox → sync → pre-flight →
post → Heartland sandbox. Each seed-001 trap, reproduced in the Heartland sandbox, shows as its typed
hold with its fix, nothing is sent while it holds, and the hold is released by itself once the trap is
fixed — the acting user reactivated, the helper items created through the action, a default set for
the required field. A sale Heartland leaves pending holds the order saying inventory is not adjusted,
until it is completed there. Every assertion about Heartland reads the sandbox's own records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.fixes import FixAction
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.heartland import HeartlandState
from orderbridge.sandboxes.heartland import create_sandbox as heartland_sandbox
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.connections import add_connection, update_connection
from orderbridge.services.hub import Hub
from orderbridge.services.posting import PostReport, post_ready
from orderbridge.services.preflight import create_helper_items
from orderbridge.services.principals import Actor
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import events, order_reasons, orders
from tests.scoped import cid, tenant

LINES = [{"sku": "SKU-1", "quantity": 1, "price": "24.00"}, {"sku": "SKU-2", "quantity": 2, "price": "16.00"}]


@dataclass
class World:
    hub: Hub
    shop: ShopifyState
    pos: HeartlandState

    def order(self) -> dict[str, Any]:
        return self.shop.add_order(line_items=LINES)

    def run(self) -> PostReport:
        sync_channel(tenant(self.hub), cid(self.hub, "shop"))
        report = post_ready(tenant(self.hub), cid(self.hub, "pos"))
        assert report.error is None, report.error
        return report

    def state(self, order: dict[str, Any]) -> str:
        with self.hub.db.read() as conn:
            row = conn.execute(select(orders.c.state).where(orders.c.external_id == str(order["id"])))
            return str(row.scalar_one())

    def holds(self, order: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        with self.hub.db.read() as conn:
            rows = conn.execute(
                select(order_reasons.c.code, order_reasons.c.value, order_reasons.c.message, order_reasons.c.fix)
                .join(orders, orders.c.id == order_reasons.c.order_id)
                .where(orders.c.external_id == str(order["id"]), order_reasons.c.released_at.is_(None))
            ).all()
        return {(r.code, r.value): {"message": r.message, "fix": r.fix} for r in rows}

    def timeline(self, order: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        with self.hub.db.read() as conn:
            rows = conn.execute(
                select(events.c.message, events.c.data)
                .join(orders, orders.c.id == events.c.order_id)
                .where(orders.c.external_id == str(order["id"]), events.c.kind == kind)
                .order_by(events.c.id)
            ).all()
        return [{"message": r.message, **(r.data or {})} for r in rows]

    def sales(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        with self.pos.lock:
            return [o for o in self.pos.orders.values() if o["public_id"] == order["name"]]


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    shop, shop_app = shopify_sandbox(orders=0, limits=False)
    pos, pos_app = heartland_sandbox()
    hub.sleep = lambda _seconds: None
    with run_in_thread(shop_app) as shop_http, run_in_thread(pos_app) as pos_http:
        add_connection(tenant(hub), "shop", "shopify", shop_http.base_url, {"access_token": "shpat_sandbox"})
        add_connection(
            tenant(hub),
            "pos",
            "heartland",
            pos_http.base_url,
            {"api_token": "hl_sandbox_token"},
            {"station_id": next(iter(pos.stations)), "timeout_settle_s": 0.1},
        )
        yield World(hub, shop, pos)
    shop.close()


def test_each_shopify_order_becomes_one_invoiced_sale_in_heartland_and_stock_moves_once(world: World) -> None:
    placed = [world.order() for _ in range(2)]
    report = world.run()
    assert report.posted == 2 and report.preflight.checks and all(c.ok for c in report.preflight.checks)
    assert world.run().posted == 0  # nothing more
    for order in placed:
        [sale] = world.sales(order)
        assert sale["status"] == "closed" and [li["qty"] for li in sale["lines"]] == [1, 2]
        assert world.pos.order_total(sale) == Decimal(order["total_price"])
        assert world.state(order) == "posted"
        told = world.timeline(order, "pos_document")
        assert [(e["state"], e["stock_moved"]) for e in told] == [("invoiced", True)]
    assert world.pos.stock("SKU-1")["on_hand"] == 98 and world.pos.stock("SKU-2")["on_hand"] == 96
    assert len(world.pos.entries("order_created")) == 2 and len(world.pos.entries("invoice_completed")) == 2


def test_an_archived_acting_user_holds_the_orders_with_the_fix_until_it_is_reactivated(world: World) -> None:
    world.pos.set_user_active("online-orders", False)
    order = world.order()
    world.run()
    assert world.state(order) == "held" and world.sales(order) == []
    hold = world.holds(order)[("pos_employee_inactive", "pos: employee 'online-orders'")]
    assert "archived" in hold["message"]
    fix = hold["fix"]
    assert fix.action is FixAction.SET_SETTING and fix.param("connection") == "pos"
    assert fix.param("setting") == "acting_user" and "a dedicated member such as 'Online orders'" in fix.text

    world.run()  # checked again: still archived, still nothing sent
    assert world.sales(order) == [] and world.state(order) == "held"
    world.pos.set_user_active("online-orders", True)  # the fix, made in Heartland
    report = world.run()
    assert report.posted == 1 and report.preflight.released == 1
    assert world.state(order) == "posted" and world.holds(order) == {} and len(world.sales(order)) == 1


def test_missing_helper_items_hold_the_orders_and_the_create_action_makes_them_and_releases_the_orders(
    world: World,
) -> None:
    for sku in ("Shopify Shipping", "Shopify Discount"):
        item = world.pos.item_by_public_id(sku)
        assert item is not None
        item["active"] = False  # archived in Heartland
    del world.pos.items[world.pos.item_by_public_id("Shopify Refund")["id"]]  # type: ignore[index]
    order = world.order()
    world.run()
    hold = world.holds(order)[("pos_required_product_missing", "pos: helper items")]
    assert "'Shopify Shipping'" in hold["message"] and "'Shopify Refund'" in hold["message"]
    assert hold["fix"].action is FixAction.CREATE_HELPER_ITEMS and hold["fix"].param("connection") == "pos"
    assert world.sales(order) == []

    result = create_helper_items(tenant(world.hub), cid(world.hub, "pos"), by=Actor.cli(tenant(world.hub)))
    assert sorted(result.created) == ["Shopify Discount", "Shopify Refund", "Shopify Shipping"]
    assert result.released == 1 and all(c.ok for c in result.checks)
    again = create_helper_items(tenant(world.hub), cid(world.hub, "pos"), by=Actor.cli(tenant(world.hub)))
    assert again.created == [] and len(world.pos.entries("item_created")) == 1  # only the deleted one was made
    assert world.run().posted == 1 and world.state(order) == "posted"


def test_a_required_custom_field_holds_the_orders_until_the_connection_gives_it_a_default(world: World) -> None:
    world.pos.add_custom_field("pickup_note", "sales.transaction", required=True, on_missing="block")
    order = world.order()
    world.run()
    hold = world.holds(order)[("required_field_missing", "pickup_note")]
    assert "Settings › Custom fields › Pickup Note: required" in hold["message"]
    assert hold["fix"].action is FixAction.SET_SETTING and hold["fix"].param("setting") == "custom_field_defaults"
    assert world.sales(order) == []

    update_connection(
        tenant(world.hub), cid(world.hub, "pos"), settings={"custom_field_defaults": {"pickup_note": "web"}}
    )
    report = world.run()
    assert report.posted == 1 and report.preflight.released == 1
    [sale] = world.sales(order)
    assert sale["custom"] == {"pickup_note": "web"} and sale["status"] == "closed"


def test_a_sale_heartland_leaves_pending_holds_the_order_saying_inventory_is_not_adjusted_until_completed(
    world: World,
) -> None:
    # the merchant switches a field to required (leaving orders pending) after OrderBridge checked the
    # order and before its sale reached Heartland
    def switch_on(method: str, path: str) -> None:
        if method == "POST" and path == "/api/sales/orders" and not world.pos.custom_fields:
            world.pos.add_custom_field("pickup_date", "sales.transaction", required=True, on_missing="pending")

    world.pos.before_call = switch_on
    order = world.order()
    report = world.run()
    assert report.posted == 1
    [sale] = world.sales(order)
    assert sale["status"] == "pending" and world.pos.stock("SKU-1") == {"on_hand": 100, "committed": 0}
    assert world.state(order) == "held"
    hold = world.holds(order)[("pos_order_incomplete", "pos")]
    assert "inventory is not yet adjusted there" in hold["message"] and "pending" in hold["message"]
    assert [(e["state"], e["stock_moved"]) for e in world.timeline(order, "pos_document")] == [("pending", False)]
    assert any("pickup_date" in e["message"] for e in world.timeline(order, "field_shortened")), world.timeline(
        order, "field_shortened"
    )

    world.run()  # read again: still pending, still held, no second sale
    assert world.state(order) == "held" and len(world.pos.orders) == 1

    # someone completes it in Heartland: fills the field, opens and invoices the order
    world.pos.update_order(sale["id"], {"custom": {"pickup_date": "tomorrow"}, "status": "open"})
    invoice = world.pos.create_invoice({"order_id": sale["id"]})
    for line in sale["lines"]:
        world.pos.add_invoice_line(invoice["id"], {"item_id": line["item_id"], "qty": line["qty"]})
    world.pos.update_invoice(invoice["id"], {"status": "complete"})
    world.run()
    assert world.state(order) == "posted" and world.holds(order) == {}
    told = [(e["state"], e["stock_moved"]) for e in world.timeline(order, "pos_document")]
    assert told == [("pending", False), ("invoiced", True)]
    assert len(world.pos.orders) == 1 and world.pos.stock("SKU-1")["on_hand"] == 99


def test_an_inactive_station_holds_the_orders_until_it_is_active_again(world: World) -> None:
    station = next(iter(world.pos.stations.values()))
    station["active"] = False
    order = world.order()
    world.run()
    hold = world.holds(order)[("pos_location_inactive", f"pos: location station {station['id']}")]
    assert hold["fix"].action is FixAction.SET_SETTING and hold["fix"].param("setting") == "station_id"
    assert world.sales(order) == []
    station["active"] = True
    assert world.run().posted == 1 and world.state(order) == "posted"


def test_in_ticket_mode_each_order_is_one_completed_ticket(world: World) -> None:
    update_connection(tenant(world.hub), cid(world.hub, "pos"), settings={"posting_mode": "ticket"})
    order = world.order()
    assert world.run().posted == 1 and world.run().posted == 0
    [ticket] = [t for t in world.pos.tickets.values() if t["public_id"] == order["name"]]
    assert ticket["status"] == "complete" and ticket["total"] == Decimal(order["total_price"])
    assert world.pos.orders == {} and world.pos.stock("SKU-2")["on_hand"] == 98
    told = world.timeline(order, "pos_document")
    assert [(e["state"], e["stock_moved"]) for e in told] == [("completed", True)]
