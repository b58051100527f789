"""Reset and refresh against the sandboxes: a Shopify shop and two ShipStation accounts, each
keeping its own ledger of what it received — the proof that a reset sends the current version
only to the destination that has not accepted it, and that a refresh forgets no posting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.domain.roles import Role
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.auth import Actor, Principal
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.order_actions import refresh_from_channel, reset_to_pending
from orderbridge.services.order_story import order_story
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import find_order_id
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import postings
from tests.scoped import cid, tenant

LINES = [{"sku": "TEE-BLK-S", "quantity": 1, "price": "24.00"}, {"sku": "MUG-12OZ", "quantity": 2, "price": "16.00"}]
SS_CREDENTIALS = {"api_key": "ss_key", "api_secret": "ss_secret"}


@dataclass
class World:
    hub: Hub
    shop: ShopifyState
    ss: dict[str, ShipStationState]
    apps: dict[str, Any]

    def add_warehouse(self, name: str) -> ShipStationState:
        state, app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
        self.apps[f"http://{name}.local"] = app
        self.ss[name] = state
        add_connection(tenant(self.hub), name, "shipstation", f"http://{name}.local", SS_CREDENTIALS)
        for sku in ("TEE-BLK-S", "MUG-12OZ"):
            set_mapping(tenant(self.hub), "sku", sku, sku, cid(self.hub, name))
        set_mapping(tenant(self.hub), "shipping", "Standard", "ups:ups_ground", cid(self.hub, name))
        return state

    def received(self, name: str) -> list[tuple[str, str]]:
        """What the ShipStation account ``name`` recorded: (what happened, order key)."""
        return [(e.kind, e.key) for e in self.ss[name].ledger if e.kind in ("order_created", "order_updated")]


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    shop, shop_app = shopify_sandbox(orders=0, limits=False)
    w = World(hub, shop, {}, {"http://shop.local": shop_app})
    hub.http_factory = lambda row: in_process_client(w.apps[row.base_url], row.base_url)
    hub.sleep = lambda _seconds: None
    add_connection(tenant(hub), "shop", "shopify", "http://shop.local", {"access_token": "shpat_sandbox"})
    w.add_warehouse("wh")
    yield w
    shop.close()


def operator(hub: Hub) -> Actor:
    scope = tenant(hub)
    return Actor(Principal("user", 3, scope.tenant_id, Role.OPERATOR, "Olu", "en"), scope, "198.51.100.4")


def test_a_reset_sends_the_order_once_to_the_destination_that_lacked_it_and_nothing_to_the_one_that_had_it(
    world: World,
) -> None:
    hub = world.hub
    ext = str(world.shop.add_order(line_items=LINES)["id"])
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1
    oid = find_order_id(tenant(hub), ext)
    key = f"ob-{cid(hub, 'shop')}-{ext}"
    assert world.received("wh") == [("order_created", key)]

    world.add_warehouse("wh2")  # a second 3PL, connected after the order was posted to the first
    result = reset_to_pending(operator(hub), oid)
    assert (result.changed, result.state_before, result.state, result.to_post) == (True, "posted", "ready", ("wh2",))
    assert reset_to_pending(operator(hub), oid).changed is False  # a double click
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 0
    assert post_ready(tenant(hub), cid(hub, "wh2")).posted == 1
    assert world.received("wh") == [("order_created", key)]  # nothing new for the one that had it
    assert world.received("wh2") == [("order_created", key)]  # exactly one for the one that lacked it
    story = order_story(tenant(hub), oid)
    assert story.state == "posted" and [(d.destination, d.has_current) for d in story.destinations] == [
        ("wh", True),
        ("wh2", True),
    ]
    sent = story.destinations[1].postings[0].attempts[0].sent
    assert sent is not None and sent["orderKey"] == key and sent["orderNumber"] == story.number


def test_a_refresh_stores_the_channels_new_version_forgets_no_posting_and_a_reset_amends_the_same_document(
    world: World,
) -> None:
    hub = world.hub
    ext = str(world.shop.add_order(line_items=LINES)["id"])
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    oid = find_order_id(tenant(hub), ext)
    key = f"ob-{cid(hub, 'shop')}-{ext}"
    document = order_story(tenant(hub), oid).destinations[0].postings[0].document_id

    world.shop.update_order(int(ext), note="Please ring twice")
    result = refresh_from_channel(operator(hub), oid)
    assert (result.changed, result.version_before, result.version, result.state) == (True, 1, 2, "posted")
    assert refresh_from_channel(operator(hub), oid).changed is False
    story = order_story(tenant(hub), oid)
    (v1,) = story.destinations[0].postings
    assert (v1.version, v1.status, v1.document_id) == (1, "posted", document)  # never forgotten
    assert story.note == "Please ring twice" and story.waiting_for == ("wh",)
    assert world.received("wh") == [("order_created", key)]  # a refresh posts nothing

    assert reset_to_pending(operator(hub), oid).to_post == ("wh",)
    # an amendment of the posted document (issue #15): ShipStation's orderKey upsert, not a first post
    assert post_ready(tenant(hub), cid(hub, "wh")).amended == 1
    assert world.received("wh") == [("order_created", key), ("order_updated", key)]  # one document, amended
    assert world.ss["wh"].order_by_key(key)["customerNotes"] == "Please ring twice"  # type: ignore[index]
    with hub.db.read() as conn:
        rows = conn.execute(select(postings.c.order_version, postings.c.status, postings.c.document_id)).all()
    assert sorted(tuple(r) for r in rows) == [(1, "posted", document), (2, "posted", document)]
