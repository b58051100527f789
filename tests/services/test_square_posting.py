"""Square through the hub: Shopify sandbox → sync → pre-flight → post → Square sandbox, both served on
real local ports, asserting what the Square seller account holds and what the ledger says.

Each seed-001 trap is reproduced in the Square sandbox (an archived team member, helper items the
connection's settings need, a custom attribute the connection requires, a tax Square cannot
reproduce), shows as its typed hold with the fix, and is released by itself once the cause is fixed
— never posted while held, posted exactly once after.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.fixes import FixAction
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.sandboxes.square import SquareState
from orderbridge.sandboxes.square import create_sandbox as square_sandbox
from orderbridge.sandboxes.square.app import ACCESS_TOKEN, LOCATION_ID, TEAM_MEMBER_ID
from orderbridge.services.connections import add_connection, update_connection
from orderbridge.services.hub import Hub
from orderbridge.services.posting import PostReport, post_ready
from orderbridge.services.preflight import check_connection, create_helper_items
from orderbridge.services.principals import Actor
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import events, order_reasons, orders
from tests.scoped import cid, tenant

LINES = [{"sku": "SKU-1", "quantity": 1, "price": "20.99"}, {"sku": "SKU-2", "quantity": 2, "price": "21.99"}]


@dataclass
class World:
    hub: Hub
    shop: ShopifyState
    square: SquareState

    def run(self) -> PostReport:
        sync_channel(tenant(self.hub), cid(self.hub, "shop"))
        return post_ready(tenant(self.hub), cid(self.hub, "pos"))

    def order(self, **overrides: Any) -> str:
        return str(self.shop.add_order(line_items=LINES, **overrides)["id"])

    def state(self, external_id: str) -> str:
        with self.hub.db.read() as conn:
            return str(conn.execute(select(orders.c.state).where(orders.c.external_id == external_id)).scalar_one())

    def holds(self, external_id: str) -> dict[tuple[str, str], dict[str, Any]]:
        with self.hub.db.read() as conn:
            rows = conn.execute(
                select(order_reasons.c.code, order_reasons.c.value, order_reasons.c.message, order_reasons.c.fix)
                .join(orders, orders.c.id == order_reasons.c.order_id)
                .where(orders.c.external_id == external_id, order_reasons.c.released_at.is_(None))
            ).all()
        return {(r.code, r.value): {"message": r.message, "fix": r.fix} for r in rows}

    def pos_documents(self, external_id: str) -> list[dict[str, Any]]:
        with self.hub.db.read() as conn:
            rows = conn.execute(
                select(events.c.data)
                .join(orders, orders.c.id == events.c.order_id)
                .where(orders.c.external_id == external_id, events.c.kind == "pos_document")
                .order_by(events.c.id)
            ).all()
        return [dict(r.data or {}) for r in rows]

    def square_orders(self, number: str | None = None) -> list[dict[str, Any]]:
        with self.square.lock:
            return [o for o in self.square.orders.values() if number is None or o.get("reference_id") == number]

    def number(self, external_id: str) -> str:
        return str(self.shop.orders[int(external_id)].overlay["name"])  # type: ignore[index]

    def settings(self, **values: Any) -> None:
        update_connection(tenant(self.hub), cid(self.hub, "pos"), settings=values)


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    shop, shop_app = shopify_sandbox(orders=0, limits=False)
    square, square_app = square_sandbox()
    hub.sleep = lambda _seconds: None
    with run_in_thread(shop_app) as shop_running, run_in_thread(square_app) as square_running:
        add_connection(tenant(hub), "shop", "shopify", shop_running.base_url, {"access_token": "shpat_sandbox"})
        add_connection(
            tenant(hub),
            "pos",
            "square",
            square_running.base_url,
            {"access_token": ACCESS_TOKEN},
            {"location_id": LOCATION_ID, "team_member_id": TEAM_MEMBER_ID},
        )
        yield World(hub, shop, square)
    shop.close()


def test_each_shopify_order_becomes_one_paid_square_order_and_its_document_state_is_on_the_timeline(
    world: World,
) -> None:
    ids = [world.order() for _ in range(3)]
    report = world.run()
    assert report.posted == 3
    assert world.run().posted == 0  # a second run sends nothing
    assert [world.state(i) for i in ids] == ["posted"] * 3
    created = world.square.entries("order_created")
    assert len(created) == 3 and len(world.square.entries("payment_created")) == 3
    for i in ids:
        (placed,) = world.square_orders(world.number(i))
        assert placed["net_amount_due_money"]["amount"] == 0
        shopify_total = world.shop.orders[int(i)].overlay["total_price"]  # type: ignore[index]
        assert placed["total_money"]["amount"] == round(float(shopify_total) * 100)
        (document,) = world.pos_documents(i)
        assert document["state"] == "open" and document["stock_moved"] is True


def test_an_archived_team_member_holds_the_orders_with_the_fix_and_they_post_once_it_is_active(
    world: World,
) -> None:
    world.square.team_members[TEAM_MEMBER_ID]["status"] = "INACTIVE"
    ext = world.order()
    report = world.run()
    assert report.posted == 0 and world.state(ext) == "held"
    ((code, value), hold), *_ = world.holds(ext).items()
    assert code == "pos_employee_inactive" and value.startswith("pos: employee 'Online orders'")
    assert "inactive" in hold["message"]
    assert hold["fix"].action is FixAction.SET_SETTING and hold["fix"].param("setting") == "team_member_id"
    assert hold["fix"].param("connection") == "pos" and "'Online orders'" in hold["fix"].text
    assert world.square_orders() == [] and world.square.payments == {}
    failing = [c.name for c in check_connection(tenant(world.hub), cid(world.hub, "pos")) if not c.ok]
    assert failing == ["employee"]

    world.run()  # re-checked, still inactive: still held, still nothing in Square
    assert world.state(ext) == "held" and world.square_orders() == []

    world.square.team_members[TEAM_MEMBER_ID]["status"] = "ACTIVE"
    report = world.run()
    assert report.posted == 1 and world.state(ext) == "posted" and world.holds(ext) == {}
    assert len(world.square_orders(world.number(ext))) == 1 and len(world.square.payments) == 1


def test_helper_items_the_connection_needs_hold_the_orders_until_created_now(world: World) -> None:
    world.settings(shipping_as="helper_item")
    ext = world.order()
    world.run()
    assert world.state(ext) == "held"
    hold = world.holds(ext)[("pos_required_product_missing", "pos: helper items")]
    assert "Shopify Shipping" in hold["message"]
    assert hold["fix"].action is FixAction.CREATE_HELPER_ITEMS and hold["fix"].param("connection") == "pos"
    assert world.square_orders() == []

    scope = tenant(world.hub)
    result = create_helper_items(scope, cid(world.hub, "pos"), by=Actor.cli(scope))
    assert result.created == ["Shopify Shipping"] and result.released == 1
    assert len(world.square.entries("catalog_object_upserted")) == 1
    report = world.run()
    assert report.posted == 1 and world.state(ext) == "posted"
    (placed,) = world.square_orders(world.number(ext))
    assert "service_charges" not in placed and placed["line_items"][-1]["name"] == "Standard"
    again = create_helper_items(scope, cid(world.hub, "pos"), by=Actor.cli(scope))
    assert again.created == []


def test_a_required_custom_attribute_holds_the_order_until_a_default_is_set_then_square_carries_it(
    world: World,
) -> None:
    world.settings(custom_attributes={"pickup-note": "note"}, required_attributes=["pickup-note"])
    ext = world.order(note="")
    world.run()
    assert world.state(ext) == "held"
    hold = world.holds(ext)[("required_field_missing", "pickup-note")]
    assert "Square itself marks no custom attribute required" in hold["message"]
    assert hold["fix"].param("setting") == "attribute_defaults" and hold["fix"].param("connection") == "pos"
    assert world.square_orders() == []

    world.settings(attribute_defaults={"pickup-note": "ship it"})
    report = world.run()
    assert report.posted == 1 and world.state(ext) == "posted"
    (placed,) = world.square_orders(world.number(ext))
    assert world.square.attributes[(placed["id"], "pickup-note")]["value"] == "ship it"


def test_a_tax_square_cannot_reproduce_is_held_with_both_figures_and_nothing_reaches_square(world: World) -> None:
    # the store charged 9.375 % (93.75 on 1000.00) but its tax line says 9.38 %: Square would charge 93.80
    lines = [{"sku": "SKU-1", "quantity": 1, "price": "1000.00"}]
    tax = [{"title": "NYC", "rate": 0.0938, "price": "93.75"}]
    ext = str(
        world.shop.add_order(
            line_items=lines, tax_lines=tax, total_tax="93.75", total_price="1098.75", shipping_method="Standard"
        )["id"]
    )
    report = world.run()
    assert report.posted == 0 and world.state(ext) == "held"
    ((code, _), hold), *_ = world.holds(ext).items()
    assert code == "pos_total_mismatch"
    assert "93.75 USD" in hold["message"] and "93.80 USD" in hold["message"]
    assert world.square_orders() == [] and world.square.entries("order_created") == []
    world.run()
    assert world.state(ext) == "held" and world.square.entries("payment_created") == []


def test_an_inactive_location_holds_the_orders_until_it_is_reactivated(world: World) -> None:
    world.square.locations[LOCATION_ID]["status"] = "INACTIVE"
    ext = world.order()
    world.run()
    ((code, value), hold), *_ = world.holds(ext).items()
    assert code == "pos_location_inactive" and value.startswith("pos: location 'Main store'")
    assert hold["fix"].param("setting") == "location_id" and world.square_orders() == []
    world.square.locations[LOCATION_ID]["status"] = "ACTIVE"
    assert world.run().posted == 1 and world.state(ext) == "posted"


def test_a_sku_square_does_not_have_is_held_by_name_and_released_once_the_variation_exists(world: World) -> None:
    ext = str(world.shop.add_order(line_items=[{"sku": "MUG-12OZ", "quantity": 1, "price": "9.00"}])["id"])
    world.run()
    hold = world.holds(ext)[("sku_unmapped", "MUG-12OZ")]
    assert "Square has no item variation with SKU 'MUG-12OZ'" in hold["message"]
    assert hold["fix"].action is FixAction.MAP_SKU and hold["fix"].param("destination") == "pos"
    assert world.square_orders() == []
    world.square.add_item("MUG-12OZ", "Mug 12 oz", 900)  # the merchant adds it in Square
    assert world.run().posted == 1 and world.state(ext) == "posted"
    (placed,) = world.square_orders(world.number(ext))
    assert placed["line_items"][0]["name"] == "Mug 12 oz"
