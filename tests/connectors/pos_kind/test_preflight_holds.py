"""Seed 001's traps through the hub, each reproduced in the TinyPOS sandbox: held with its typed
reason and fix, nothing posted while held, released by itself once the cause is fixed."""

from __future__ import annotations

from decimal import Decimal

from orderbridge.fixes import FixAction
from orderbridge.runtime.worker import run_cycle
from orderbridge.services.connections import update_connection
from orderbridge.services.posting import post_ready
from orderbridge.services.preflight import create_helper_items
from orderbridge.services.principals import Actor
from tests.connectors.pos_kind.sandbox import HELPERS
from tests.connectors.pos_kind.world import World
from tests.connectors.pos_kind.world import world as world
from tests.scoped import tenant


def test_a_sale_the_pos_completes_is_posted_once_with_its_document_state_on_the_timeline(world: World) -> None:
    order = world.shop.add_order()
    report = world.post_report(world.cycle())
    assert report["posted"] == 1 and report["preflight"]["failed_checks"] == []
    assert world.state(order["id"]) == "posted"
    sale = world.sale(order["id"])
    assert sale is not None and sale["state"] == "completed" and sale["total"] == "27.70"
    assert [e["state"] for e in world.timeline(order["id"], "pos_document")] == ["completed"]
    assert world.timeline(order["id"], "pos_document")[0]["stock_moved"] is True
    world.cycle()  # nothing more: one sale in the POS's own ledger
    assert len(world.pos.entries("sale")) == 1


def test_an_archived_employee_holds_every_order_with_one_cause_until_it_is_active_again(world: World) -> None:
    world.pos.employees["E1"]["active"] = False
    first, second = world.shop.add_order(), world.shop.add_order()
    run_cycle(tenant(world.hub), post=False)  # downloaded, ready
    report = post_ready(tenant(world.hub), world.pos_id)
    assert report.posted == 0 and report.held == 2
    assert [c.name for c in report.preflight.checks if not c.ok] == ["employee"]
    assert report.preflight.connection_reads == 1  # one connection check per run, not per order
    cause = ("pos_employee_inactive", "pos: employee 'Online orders'")
    for o in (first, second):
        assert world.state(o["id"]) == "held"
        hold = world.holds(o["id"])[cause]
        assert "Online orders" in hold["message"] and "archived" in hold["message"]
        fix = hold["fix"]
        assert fix.action is FixAction.SET_SETTING and fix.param("connection") == "pos"
        assert fix.param("setting") == "employee" and "a dedicated member such as 'Online orders'" in fix.text
    assert world.pos.sales == {}  # nothing posted while held

    world.cycle()  # re-checked, still archived: still held, still nothing sent
    assert world.state(first["id"]) == "held" and world.pos.sales == {}

    world.pos.employees["E1"]["active"] = True  # the fix: the member reactivated in the POS
    report = world.post_report(world.cycle())
    assert report["posted"] == 2 and report["preflight"]["released"] == 2
    assert world.state(first["id"]) == world.state(second["id"]) == "posted"
    assert world.holds(first["id"]) == {}


def test_another_active_member_selected_in_the_settings_releases_the_orders(world: World) -> None:
    world.pos.employees["E1"]["active"] = False
    world.pos.employees["E2"] = {"id": "E2", "name": "Commandes en ligne", "active": True}
    order = world.shop.add_order()
    world.cycle()
    assert world.state(order["id"]) == "held"
    update_connection(tenant(world.hub), world.pos_id, settings={"employee": "E2"})
    world.cycle()
    assert world.state(order["id"]) == "posted"


def test_missing_helper_items_hold_the_orders_and_creating_them_now_releases_them(world: World) -> None:
    for sku in HELPERS:
        world.pos.remove_item(sku)
    order = world.shop.add_order()
    world.cycle()
    hold = world.holds(order["id"])[("pos_required_product_missing", "pos: helper items")]
    assert "ONLINE-SHIPPING" in hold["message"] and "ONLINE-DISCOUNT" in hold["message"]
    assert hold["fix"].action is FixAction.CREATE_HELPER_ITEMS and hold["fix"].param("connection") == "pos"
    assert world.pos.sales == {}

    result = create_helper_items(tenant(world.hub), world.pos_id, by=Actor.cli(tenant(world.hub)))
    assert result.created == list(HELPERS) and result.released == 1
    assert all(c.ok for c in result.checks)
    assert world.state(order["id"]) == "ready"
    again = create_helper_items(tenant(world.hub), world.pos_id, by=Actor.cli(tenant(world.hub)))
    assert again.created == []  # idempotent: what exists is left as it is
    assert [e.key for e in world.pos.entries("item")].count("ONLINE-SHIPPING") == 2
    assert sum(1 for i in world.pos.items.values() if i["sku"] == "ONLINE-SHIPPING") == 1
    world.cycle()
    assert world.state(order["id"]) == "posted"


def test_a_required_custom_field_holds_the_order_until_a_default_is_set(world: World) -> None:
    world.pos.require("channel_ref")
    order = world.shop.add_order()
    world.cycle()
    hold = world.holds(order["id"])[("required_field_missing", "channel_ref")]
    assert "TinyPOS requires field 'channel_ref'" in hold["message"] and "required = yes" in hold["message"]
    assert hold["fix"].param("setting") == "field_defaults" and hold["fix"].param("connection") == "pos"
    assert world.pos.sales == {}

    update_connection(tenant(world.hub), world.pos_id, settings={"field_defaults": {"channel_ref": "web"}})
    world.cycle()
    assert world.state(order["id"]) == "posted"
    sale = world.sale(order["id"])
    assert sale is not None and sale["custom"] == {"channel_ref": "web"}


def test_a_required_field_mapped_from_an_order_field_takes_its_value(world: World) -> None:
    world.pos.require("buyer")
    update_connection(tenant(world.hub), world.pos_id, settings={"field_map": {"buyer": "email"}})
    order = world.shop.add_order()
    world.cycle()
    sale = world.sale(order["id"])
    assert sale is not None and sale["custom"] == {"buyer": order["email"]}


def test_a_sku_the_pos_does_not_have_is_held_with_the_sku_until_the_item_exists(world: World) -> None:
    order = world.shop.add_order(
        items=[{"id": "1", "sku": "VASE-3", "title": "Vase", "qty": 1, "price": "10.00"}], tax="2.00"
    )
    world.cycle()
    hold = world.holds(order["id"])[("sku_unmapped", "VASE-3")]
    assert hold["fix"].action is FixAction.MAP_SKU and hold["fix"].param("destination") == "pos"
    assert world.pos.sales == {}
    world.pos.add_item("VASE-3")
    world.cycle()
    assert world.state(order["id"]) == "posted"


def test_an_inactive_location_holds_the_orders_until_it_is_active(world: World) -> None:
    world.pos.locations["L1"]["active"] = False
    order = world.shop.add_order()
    world.cycle()
    assert ("pos_location_inactive", "pos: location 'Main store'") in world.holds(order["id"])
    world.pos.locations["L1"]["active"] = True
    world.cycle()
    assert world.state(order["id"]) == "posted"


def test_a_total_the_pos_would_compute_otherwise_is_held_with_both_figures(world: World) -> None:
    order = world.shop.add_order(tax="3.50")  # the POS's 20 % of 19.00 is 3.80
    world.cycle()
    hold = world.holds(order["id"])[("pos_total_mismatch", "pos")]
    assert "27.70 EUR" in hold["message"] and "27.40 EUR" in hold["message"]
    assert world.pos.sales == {}  # never posted with a wrong total
    world.pos.rate = Decimal("18.42105")  # the POS's rate now gives 3.50
    world.cycle()
    assert world.state(order["id"]) == "posted"


def test_a_cent_of_rounding_is_within_tolerance(world: World) -> None:
    order = world.shop.add_order(tax="3.79")
    world.cycle()
    assert world.state(order["id"]) == "posted"


def test_a_sku_the_pos_lacks_is_listed_as_unmapped_and_mapping_it_to_a_pos_item_releases_it(world: World) -> None:
    from orderbridge.services.mappings import set_mapping, unmapped_seen

    vase = [{"id": "1", "sku": "VASE-3", "title": "Vase", "qty": 1, "price": "10.00"}]
    order = world.shop.add_order(items=vase, tax="2.00")
    world.cycle()
    (seen,) = [u for u in unmapped_seen(tenant(world.hub)) if u.value == "VASE-3"]
    assert seen.kind == "sku" and seen.orders == 1
    set_mapping(tenant(world.hub), "sku", "VASE-3", "LAMP-7", world.pos_id)  # a POS item
    world.cycle()
    assert world.state(order["id"]) == "posted"
    sale = world.sale(order["id"])
    lamp = next(i["id"] for i in world.pos.items.values() if i["sku"] == "LAMP-7")
    assert sale is not None and [li["item_id"] for li in sale["lines"]] == [lamp]


def test_held_orders_are_checked_again_at_most_every_window_unless_a_cause_changed(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    clock = [datetime(2026, 12, 3, 8, 0, tzinfo=UTC)]
    world.hub.now = lambda: clock[0]
    world.hub.settings = world.hub.settings.model_copy(update={"preflight_recheck_s": 60.0})
    world.pos.employees["E1"]["active"] = False
    vase = [{"id": "1", "sku": "VASE-3", "title": "Vase", "qty": 1, "price": "10.00"}]
    employee_held, sku_held = world.shop.add_order(), world.shop.add_order(items=vase, tax="2.00")
    world.cycle()
    world.pos.employees["E1"]["active"] = True  # a connection check's outcome changes: checked again at once
    world.cycle()
    assert world.state(employee_held["id"]) == "posted"
    assert ("sku_unmapped", "VASE-3") in world.holds(sku_held["id"])

    world.pos.add_item("VASE-3")  # nothing the hub sees changed: it waits for the window
    world.cycle()
    assert world.state(sku_held["id"]) == "held"
    clock[0] += timedelta(seconds=61)
    world.cycle()
    assert world.state(sku_held["id"]) == "posted"
