"""The first end-to-end path over real HTTP: Shopify sandbox → OrderBridge → ShipStation sandbox,
and shipments back as Shopify fulfilments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import RunningSandbox, run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.services.connections import add_connection, list_connections
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping, unmapped
from orderbridge.services.queries import accounting, holds, show_order
from orderbridge.services.sync import sync_channel
from tests.e2e.helpers import TOKEN
from tests.scoped import cid, tenant


@dataclass
class World:
    hub: Hub
    shop_state: Any
    shop: RunningSandbox
    ss_state: Any
    ss: RunningSandbox


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    shop_state, shop_app = shopify_sandbox(orders=150, seed=5, limits=False)
    ss_state, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=0.0)
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss:
        add_connection(tenant(hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN}, {"bulk_backfill": False})
        add_connection(
            tenant(hub), "warehouse", "shipstation", ss.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
        )
        yield World(hub, shop_state, shop, ss_state, ss)


def map_stocked(hub: Hub) -> None:
    for sku, _t, _p in generator.CATALOG:
        if sku not in generator.UNSTOCKED_SKUS:
            set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
    for method in generator.SHIPPING_METHODS:
        set_mapping(tenant(hub), "shipping", method, "ups:ups_ground", cid(hub, "warehouse"))


def test_every_channel_order_ends_posted_held_or_skipped_and_the_3pl_has_each_once(world: World) -> None:
    map_stocked(world.hub)
    run_cycle(tenant(world.hub))
    acct = accounting(tenant(world.hub))
    assert acct["ledger_orders"] == 150
    assert acct["posted"] + acct["held"] + acct["skipped"] == 150
    assert acct["posted"] > 0 and acct["held"] > 0 and acct["skipped"] > 0
    created = Counter(e.key for e in world.ss_state.entries("order_created"))
    assert len(created) == acct["posted"] and max(created.values()) == 1


def test_a_mapping_added_after_the_fact_releases_and_posts_the_held_orders(world: World) -> None:
    map_stocked(world.hub)
    run_cycle(tenant(world.hub))
    sku = generator.UNSTOCKED_SKUS[0]
    blocked = {u.value: u.orders for u in unmapped(tenant(world.hub))}
    assert blocked.get(sku, 0) > 0
    before = len(world.ss_state.orders_by_key())
    result = set_mapping(tenant(world.hub), "sku", sku, f"WH-{sku}", cid(world.hub, "warehouse"))
    assert result.released + result.still_held == blocked[sku]
    run_cycle(tenant(world.hub), sync=False)
    after = world.ss_state.orders_by_key()
    assert len(after) == before + result.released
    skus_sent = {item["sku"] for doc in after.values() for item in doc["items"]}
    assert f"WH-{sku}" in skus_sent


def test_shipments_come_back_as_fulfilments_with_tracking(world: World) -> None:
    map_stocked(world.hub)
    run_cycle(tenant(world.hub))
    run_cycle(tenant(world.hub), sync=False)
    fulfilments = world.shop_state.entries("fulfillment")
    assert len(fulfilments) > 0
    acct = accounting(tenant(world.hub))
    assert acct["fulfilled"] > 0
    fulfilled = [o for o in show_order_states(world.hub) if o == "fulfilled"]
    assert len(fulfilled) == acct["fulfilled"]


def show_order_states(hub: Hub) -> list[str]:
    from orderbridge.services.queries import list_orders

    return [o.state for o in list_orders(tenant(hub), limit=1000)]


def test_a_shipment_without_tracking_is_held_with_that_reason(world: World) -> None:
    map_stocked(world.hub)
    world.ss_state.ship_after = timedelta(hours=1)  # nothing ships by itself
    run_cycle(tenant(world.hub))
    key = next(iter(world.ss_state.orders_by_key()))
    world.ss_state.ship_now(key, tracking_number=None)
    run_cycle(tenant(world.hub), sync=False)
    with world.hub.db.read() as conn:
        shop_id = tenant(world.hub).connection_named(conn, "shop").id
    detail = show_order(tenant(world.hub), key.removeprefix(f"ob-{shop_id}-"))
    assert [p["status"] for p in detail.pushes] == ["held"]
    assert "no tracking number" in detail.pushes[0]["message"]
    assert any(e["kind"] == "fulfilment_push_held" for e in detail.timeline)


def test_a_revoked_token_mid_sync_marks_the_connection_failing_and_loses_nothing(hub: Hub) -> None:
    shop_state, shop_app = shopify_sandbox(orders=400, seed=9, limits=False)
    with run_in_thread(shop_app) as shop:
        add_connection(
            tenant(hub),
            "shop",
            "shopify",
            shop.base_url,
            {"access_token": TOKEN},
            {"bulk_backfill": False, "max_page_size": 50},
        )
        pages = []

        def revoke_after_two(report: Any) -> None:
            pages.append(report.batches)
            if report.batches == 2:
                shop_state.revoke()

        first = sync_channel(tenant(hub), cid(hub, "shop"), progress=revoke_after_two)
        assert first.error is not None and first.error.code == "connection_auth_failed"
        stored = accounting(tenant(hub))["ledger_orders"]
        assert 0 < stored < 400
        (info,) = list_connections(tenant(hub))
        assert info.health == "failing" and "credentials" in info.health_message
        assert info.cursor is not None
        shop_state.restore()
        second = sync_channel(tenant(hub), cid(hub, "shop"))
        assert second.ok
        assert accounting(tenant(hub))["ledger_orders"] == 400
        (info,) = list_connections(tenant(hub))
        assert info.health == "healthy"
        assert second.counts.inserted == 400 - stored


def test_holds_name_the_value_and_the_fix(world: World) -> None:
    map_stocked(world.hub)
    run_cycle(tenant(world.hub))
    groups = holds(tenant(world.hub))
    assert groups and all(g.fix for g in groups)
    sku_group = next(g for g in groups if g.code == "sku_unmapped")
    assert sku_group.value in generator.UNSTOCKED_SKUS and sku_group.value in sku_group.message


def test_download_rules_on_the_channel_connection_change_what_is_skipped(hub: Hub) -> None:
    _shop_state, shop_app = shopify_sandbox(orders=120, seed=5, limits=False)
    _ss_state, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss:
        rules = {"include_test": True, "financial_statuses": ["paid", "pending", "authorized"]}
        add_connection(
            tenant(hub),
            "shop",
            "shopify",
            shop.base_url,
            {"access_token": TOKEN},
            {"bulk_backfill": False, "download_rules": rules},
        )
        add_connection(
            tenant(hub), "warehouse", "shipstation", ss.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
        )
        report = sync_channel(tenant(hub), cid(hub, "shop"))
        assert report.ok and report.counts.inserted == 120
        skipped = accounting(tenant(hub))["skipped_by_reason"]
        assert "test_order" not in skipped
        assert "financial_status_not_downloaded" not in skipped or all(
            g.value not in ("pending", "authorized")
            for g in holds(tenant(hub), include_skipped=True)
            if g.code == "financial_status_not_downloaded"
        )
