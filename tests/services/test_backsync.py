"""Back-sync against both sandboxes on both databases: shipment lines that match nothing, lost
``fulfillmentCreate`` answers, and orders the channel had partly fulfilled before the hub saw them.

Every assertion about what the channel holds reads the Shopify sandbox's own state and ledger; what
the warehouse was asked to ship is the ShipStation sandbox's document.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from orderbridge.sandboxes.base import Fault, in_process_client, run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.backsync import BackSyncReport, poll_shipments, push_fulfilments
from orderbridge.services.connections import add_connection, update_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import OrderDetail, holds, show_order
from orderbridge.services.sync import sync_channel
from tests.scoped import cid, tenant

TOKEN = "shpat_sandbox"
TRACKED = "fulfillmentCreate"
LINES = [
    {"sku": "TEE-BLK-S", "quantity": 3, "price": "24.00"},
    {"sku": "MUG-12OZ", "quantity": 2, "price": "16.00"},
]


@dataclass
class World:
    hub: Hub
    shop: ShopifyState
    ss: ShipStationState

    def order(self, **overrides: Any) -> str:
        return str(self.shop.add_order(line_items=LINES, **overrides)["id"])

    def key(self, external_id: str) -> str:
        with self.hub.db.read() as conn:
            return f"ob-{tenant(self.hub).connection_named(conn, 'shop').id}-{external_id}"

    def sync_and_post(self) -> None:
        assert sync_channel(tenant(self.hub), cid(self.hub, "shop")).ok
        assert post_ready(tenant(self.hub), cid(self.hub, "warehouse")).error is None

    def ship(self, external_id: str, items: list[dict[str, Any]] | None = None) -> str:
        """Ship the order in the 3PL now (with these shipment items instead, when given); its tracking."""
        (doc,) = self.ss.ship_now(self.key(external_id))
        if items is not None:
            doc["shipmentItems"] = items
        assert poll_shipments(tenant(self.hub), cid(self.hub, "warehouse")).error is None
        return str(doc["trackingNumber"])

    def line_ids(self, external_id: str) -> list[int]:
        order = self.shop.order(int(external_id))
        assert order is not None
        return [li["id"] for li in order["line_items"]]

    def fulfilments(self, external_id: str, tracking: str | None = None) -> list[dict[str, Any]]:
        return [
            f for f in self.shop.fulfillments(int(external_id)) if tracking is None or f["tracking_number"] == tracking
        ]

    def detail(self, external_id: str) -> OrderDetail:
        return show_order(tenant(self.hub), external_id)


def _world(hub: Hub, shop: ShopifyState, apps: dict[str, Any], base: dict[str, str]) -> World:
    add_connection(tenant(hub), "shop", "shopify", base["shopify"], {"access_token": TOKEN}, {"bulk_backfill": False})
    add_connection(
        tenant(hub), "warehouse", "shipstation", base["shipstation"], {"api_key": "ss_key", "api_secret": "ss_secret"}
    )
    for line in LINES:
        set_mapping(tenant(hub), "sku", line["sku"], line["sku"], cid(hub, "warehouse"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "warehouse"))
    return World(hub, shop, apps["ss_state"])


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    """Both sandboxes in-process (the hub's real httpx clients over an ASGI transport)."""
    shop, shop_app = shopify_sandbox(orders=0, limits=False)
    ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)  # ships only when told
    apps = {"shopify": shop_app, "shipstation": ss_app}
    hub.http_factory = lambda row: in_process_client(apps[row.kind], row.base_url)
    hub.sleep = lambda _seconds: None  # retries back off without waiting
    yield _world(hub, shop, {"ss_state": ss}, {"shopify": "http://shop.local", "shipstation": "http://ss.local"})
    shop.close()


def _push(world: World) -> BackSyncReport:
    return push_fulfilments(tenant(world.hub), cid(world.hub, "shop"))


# --- a shipment line that matches no order line ---------------------------------------------------


def test_a_shipment_line_matching_no_order_line_holds_the_push_naming_the_line(world: World) -> None:
    order = world.order()
    world.sync_and_post()
    tee, _mug = world.line_ids(order)
    world.ship(
        order,
        [
            {"lineItemKey": str(tee), "sku": "TEE-BLK-S", "quantity": 3},
            {"lineItemKey": "L-GHOST-9", "sku": "GHOST-1", "quantity": 1},
        ],
    )
    report = _push(world)
    assert (report.pushed, report.held) == (0, 1)
    (push,) = world.detail(order).pushes
    assert push["status"] == "held"
    assert "'L-GHOST-9'" in push["message"] and "'GHOST-1'" in push["message"]
    assert "matches no line" in push["message"]
    assert world.fulfilments(order) == []  # not the matched line alone, and not the order
    events = [e for e in world.detail(order).timeline if e["kind"] == "fulfilment_push_held"]
    assert events and "shipment_line_unmatched" not in events[0]["message"]  # said in words, with the fix
    assert "Correct the shipment's items in the 3PL" in events[0]["message"]


def test_a_shipment_whose_only_line_matches_nothing_never_fulfils_the_whole_order(world: World) -> None:
    order = world.order()
    world.sync_and_post()
    world.ship(order, [{"lineItemKey": None, "sku": "NOT-ON-THE-ORDER", "quantity": 2}])
    assert _push(world).held == 1
    assert world.fulfilments(order) == []
    shop_order = world.shop.order(int(order))
    assert shop_order is not None and shop_order["fulfillment_status"] is None
    assert all(li["fulfillable_quantity"] == li["quantity"] for li in shop_order["line_items"])
    assert world.detail(order).state == "posted"


def test_a_shipment_without_items_is_held_and_fulfils_nothing(world: World) -> None:
    order = world.order()
    world.sync_and_post()
    world.ship(order, [])
    assert _push(world).held == 1
    (push,) = world.detail(order).pushes
    assert push["status"] == "held" and "lists no items" in push["message"]
    assert world.fulfilments(order) == []


# --- held pushes are holds like held orders --------------------------------------------------------


def test_held_pushes_are_listed_by_cause_with_the_fix_and_leave_holds_once_pushed(world: World) -> None:
    orders = [world.order(), world.order()]
    world.sync_and_post()
    shipped = []
    for order in orders:
        (doc,) = world.ss.ship_now(world.key(order))
        shipped.append((doc, list(doc["shipmentItems"])))
        doc["shipmentItems"] = [{"lineItemKey": "L-GHOST-9", "sku": "GHOST-1", "quantity": 1}]
    assert poll_shipments(tenant(world.hub), cid(world.hub, "warehouse")).error is None
    assert _push(world).held == 2
    (group,) = [g for g in holds(tenant(world.hub)) if g.kind == "push"]  # one cause, however many shipments
    assert (group.code, group.value, group.pushes, group.orders) == ("shipment_line_unmatched", "shop", 2, 2)
    assert group.fix.action == "edit_shipment_at_destination"
    assert group.fix.text.startswith("Correct the shipment's items in the 3PL")
    assert sorted(group.examples) == sorted(
        f"{world.detail(o).number} (shipment {doc['shipmentId']})" for o, (doc, _) in zip(orders, shipped, strict=True)
    )
    reasons = world.detail(orders[0]).reasons  # the order's page names what holds its fulfilment
    assert [(r["kind"], r["code"]) for r in reasons] == [("push", "shipment_line_unmatched")]

    for doc, items in shipped:  # the 3PL corrects the shipments: checked again, pushed, out of holds
        doc["shipmentItems"] = items
    assert poll_shipments(tenant(world.hub), cid(world.hub, "warehouse")).shipments_updated == 2
    assert _push(world).pushed == 2
    assert [g for g in holds(tenant(world.hub)) if g.kind == "push"] == []
    assert world.detail(orders[0]).reasons == []
    assert all(world.detail(o).state == "fulfilled" for o in orders)


# --- a lost fulfillmentCreate answer ----------------------------------------------------------------


def test_a_truncated_fulfilment_answer_is_settled_from_shopify_not_resent_or_held(world: World) -> None:
    order = world.order()
    world.sync_and_post()
    tracking = world.ship(order)
    world.shop.add_fault(Fault("truncate", path="/admin", body_contains=TRACKED))
    report = _push(world)
    assert report.error is None and (report.pushed, report.held) == (1, 0)
    (fulfilment,) = world.fulfilments(order, tracking)
    assert sorted(ln["quantity"] for ln in fulfilment["line_items"]) == [2, 3]
    assert len(world.shop.entries("fulfillment")) == 1  # applied once
    detail = world.detail(order)
    assert [p["status"] for p in detail.pushes] == ["pushed"]
    assert detail.pushes[0]["fulfilment_id"] == str(fulfilment["id"])
    assert detail.reasons == [] and detail.state == "fulfilled"


def test_a_truncated_answer_for_part_of_a_line_leaves_one_fulfilment_with_that_tracking(world: World) -> None:
    order = world.order()
    world.sync_and_post()
    tee, _mug = world.line_ids(order)
    tracking = world.ship(order, [{"lineItemKey": str(tee), "sku": "TEE-BLK-S", "quantity": 1}])  # 1 of 3
    world.shop.add_fault(Fault("truncate", path="/admin", body_contains=TRACKED))
    assert _push(world).pushed == 1
    (fulfilment,) = world.fulfilments(order, tracking)
    assert fulfilment["line_items"] == [{"id": tee, "quantity": 1}]
    shop_order = world.shop.order(int(order))
    assert shop_order is not None
    assert [li["fulfillable_quantity"] for li in shop_order["line_items"]] == [2, 2]
    assert world.detail(order).state == "posted"  # the rest has not shipped


def test_a_fulfilment_answer_cut_on_every_try_stays_unknown_until_shopify_shows_it(world: World) -> None:
    """The create is applied, its answer cut and the read that would settle it refused: nothing is
    recorded as pushed or held, and nothing is sent again — the next run reads and records it."""
    order = world.order()
    world.sync_and_post()
    tracking = world.ship(order)
    world.shop.add_fault(Fault("truncate", path="/admin", body_contains=TRACKED))
    world.shop.add_fault(Fault("503", path="/admin", count=-1, body_contains="query FOs", after=1))
    first = _push(world)
    assert first.error is not None and first.error.code == "outcome_unknown"
    assert world.detail(order).pushes[0]["status"] == "unknown"
    world.shop.clear_faults()
    second = _push(world)
    assert second.error is None and second.pushed == 1
    assert len(world.fulfilments(order, tracking)) == 1 and len(world.shop.entries("fulfillment")) == 1
    detail = world.detail(order)
    assert [p["status"] for p in detail.pushes] == ["pushed"] and detail.reasons == []
    found = [e["message"] for e in detail.timeline if e["kind"] == "fulfilment_pushed"]
    assert found and "found in shop" in found[-1] and "not sent again" in found[-1]


def test_a_timed_out_fulfilment_is_found_once_it_lands_and_never_created_twice(hub: Hub) -> None:
    """Over real HTTP: Shopify runs the create after the client gave up. The hub does not send it
    again while the outcome may still land; it finds the fulfilment once it has, and records it."""
    shop, shop_app = shopify_sandbox(orders=0, limits=False)
    ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    hub.settings = hub.settings.model_copy(update={"http_timeout_s": 1.0, "unknown_outcome_settle_s": 30.0})
    with run_in_thread(shop_app) as shop_http, run_in_thread(ss_app) as ss_http:
        world = _world(hub, shop, {"ss_state": ss}, {"shopify": shop_http.base_url, "shipstation": ss_http.base_url})
        order = world.order()
        world.sync_and_post()
        tee, _mug = world.line_ids(order)
        tracking = world.ship(order, [{"lineItemKey": str(tee), "sku": "TEE-BLK-S", "quantity": 1}])
        shop.add_fault(Fault("timeout", path="/admin", delay=3.0, body_contains=TRACKED))
        started = time.monotonic()
        first = _push(world)
        assert first.error is not None and first.error.code == "outcome_unknown"
        again = _push(world)  # before the create has landed: read only, nothing sent
        assert again.error is None and again.unsettled == 1 and again.pushed == 0
        time.sleep(max(0.0, 3.6 - (time.monotonic() - started)))
        settled = _push(world)
        assert settled.pushed == 1 and settled.error is None
        (fulfilment,) = world.fulfilments(order, tracking)
        assert fulfilment["line_items"] == [{"id": tee, "quantity": 1}]
        assert len(shop.entries("fulfillment")) == 1
        detail = world.detail(order)
        assert [p["status"] for p in detail.pushes] == ["pushed"] and detail.reasons == []
    shop.close()


def test_an_unknown_push_still_absent_after_the_settle_window_is_sent_once(world: World) -> None:
    order = world.order()
    world.sync_and_post()
    tracking = world.ship(order)
    # a 502 to the create: the hub cannot tell whether Shopify ran it (here it did not), and the read
    # that would tell fails too — unknown; once the window has passed and Shopify still shows nothing,
    # it is sent again, once
    world.shop.add_fault(Fault("502", path="/admin", body_contains=TRACKED))
    world.shop.add_fault(Fault("503", path="/admin", count=-1, body_contains="query FOs", after=1))
    assert _push(world).error is not None
    world.shop.clear_faults()
    world.hub.settings = world.hub.settings.model_copy(update={"unknown_outcome_settle_s": 0.0})
    assert _push(world).pushed == 1
    assert len(world.fulfilments(order, tracking)) == 1


# --- orders partly fulfilled in Shopify before the hub saw them ---------------------------------------


def _fulfil_in_admin(shop: ShopifyState, external_id: str, quantities: dict[int, int]) -> None:
    """What a merchant does in the Shopify admin before the hub syncs (not through the hub)."""
    items = [{"id": f"gid://shopify/FulfillmentOrderLineItem/{k}", "quantity": q} for k, q in quantities.items()]
    done, errors = shop.create_fulfillment(
        [{"fulfillmentOrderId": f"gid://shopify/FulfillmentOrder/{external_id}", "fulfillmentOrderLineItems": items}],
        {"number": "BY-HAND-1", "company": "Other"},
    )
    assert done is not None, errors


def test_lines_fulfilled_in_shopify_first_are_not_sent_to_the_3pl_and_the_rest_ships_without_a_hold(
    world: World,
) -> None:
    order = world.order()
    tee, mug = world.line_ids(order)
    _fulfil_in_admin(world.shop, order, {tee: 2, mug: 2})  # the tee: 1 of 3 left; the mug: nothing
    world.sync_and_post()
    document = world.ss.order_by_key(world.key(order))
    assert document is not None
    assert [(i["lineItemKey"], i["quantity"]) for i in document["items"]] == [(str(tee), 1)]
    detail = world.detail(order)
    posted = [e["message"] for e in detail.timeline if e["kind"] == "posted"]
    assert posted and "all 2 already fulfilled in the channel, not sent" in posted[0]
    assert "2 of 3 already fulfilled in the channel, 1 sent" in posted[0]
    tracking = world.ship(order)
    report = _push(world)
    assert (report.pushed, report.held) == (1, 0)
    (fulfilment,) = world.fulfilments(order, tracking)
    assert fulfilment["line_items"] == [{"id": tee, "quantity": 1}]
    shop_order = world.shop.order(int(order))
    assert shop_order is not None and shop_order["fulfillment_status"] == "fulfilled"
    assert world.detail(order).state == "fulfilled"


def test_an_order_with_nothing_left_to_fulfil_is_skipped_and_never_posted(world: World) -> None:
    update_connection(
        tenant(world.hub), cid(world.hub, "shop"), settings={"download_rules": {"fulfillment_statuses": ["any"]}}
    )
    order = world.order()
    tee, mug = world.line_ids(order)
    _fulfil_in_admin(world.shop, order, {tee: 3, mug: 2})
    world.sync_and_post()
    assert world.ss.order_by_key(world.key(order)) is None
    detail = world.detail(order)
    assert detail.state == "skipped"
    assert [(r["kind"], r["code"]) for r in detail.reasons] == [("skip", "nothing_to_fulfil")]
    assert "already fulfilled in the channel" in detail.reasons[0]["message"]
