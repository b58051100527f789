"""A worker killed (SIGKILL) at many points during sync, posting and pushes loses nothing and
posts nothing twice — proven from the ShipStation sandbox's own ledger, not from ours."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from sqlalchemy import select

from orderbridge.bench.procs import sandbox_process
from orderbridge.sandboxes.shopify import generator
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.settings import Settings
from tests.e2e.helpers import TOKEN, all_shopify_orders, cli, downloadable, ledger_entries
from tests.scoped import cid, tenant

CRASH_POINTS = [
    "sync.after_fetch:2",
    "sync.before_commit:2",
    "sync.after_commit:1",
    "post.before_send:1",
    "post.after_send:1",
    "post.after_send:2",
    "post.after_commit:1",
    "push.before_send:1",
    "push.after_send:1",
    "push.after_send:3",
]


@pytest.mark.slow
def test_a_worker_killed_at_any_point_posts_every_downloadable_order_exactly_once(hub: Hub, settings: Settings) -> None:
    with (
        sandbox_process("shopify", "--orders", "400", "--seed", "11", "--no-limits") as shop,
        sandbox_process("shipstation", "--no-limits", "--ship-after", "0", "--partial-rate", "0.2") as ss,
    ):
        add_connection(tenant(hub), "shop", "shopify", shop, {"access_token": TOKEN}, {"bulk_backfill": False})
        add_connection(tenant(hub), "warehouse", "shipstation", ss, {"api_key": "ss_key", "api_secret": "ss_secret"})
        skus = {sku for sku, _t, _p in generator.CATALOG} - set(generator.UNSTOCKED_SKUS)
        for sku in skus:
            set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
        methods = set(generator.SHIPPING_METHODS)
        for method in methods:
            set_mapping(tenant(hub), "shipping", method, "ups:ups_ground", cid(hub, "warehouse"))
        # the oracle, read before anything runs (pushes later fulfil orders in the channel)
        expected = {str(o["id"]) for o in all_shopify_orders(shop) if downloadable(o, skus, methods)}
        env = {
            "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
            "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
            "ORDERBRIDGE_LEASE_TTL_S": "2",
            "ORDERBRIDGE_CURSOR_OVERLAP_S": "1",
        }
        killed = 0
        for point in CRASH_POINTS:
            result = cli(env, "sync", "--json", crash_at=point)
            if result.returncode == -signal.SIGKILL:
                killed += 1
            else:
                assert result.returncode in (0, 1), result.stderr[-2000:]
            time.sleep(2.1)  # the killed worker's lease expires
        assert killed >= 6, "the crash points were not reached: the test would prove nothing"
        for _ in range(3):  # run to completion: pull, post, shipments, pushes
            result = cli(env, "sync", "--json")
            assert result.returncode in (0, 1), result.stderr[-2000:]

        created = Counter(e["key"] for e in ledger_entries(ss, "order_created"))
        assert len(expected) > 100
        with hub.db.read() as conn:
            shop_id = tenant(hub).connection_named(conn, "shop").id
        keys = {f"ob-{shop_id}-{ext}" for ext in expected}
        assert set(created) == keys, "the 3PL must hold exactly the downloadable orders"
        assert max(created.values()) == 1, f"posted twice: {[k for k, n in created.items() if n > 1]}"
        # every fulfilment pushed back once per shipment, none twice
        fulfilments = ledger_entries(shop, "fulfillment")
        tracking = Counter(e["data"].get("tracking_number") or e["key"] for e in fulfilments)
        assert fulfilments and max(tracking.values()) == 1


@pytest.mark.parametrize("point", ["push.after_send:1", "push.before_send:1"])
def test_a_worker_killed_around_a_fulfilment_push_settles_it_from_shopify_and_never_creates_it_twice(
    hub: Hub, settings: Settings, point: str
) -> None:
    """Killed after Shopify applied the fulfilment (``after_send``) the restart finds it in Shopify
    and records it; killed before it was sent, the restart finds nothing, waits out the settle window
    and sends it once. Either way Shopify's ledger holds one fulfilment per tracking number."""
    with (
        sandbox_process("shopify", "--orders", "30", "--seed", "4", "--no-limits") as shop,
        sandbox_process("shipstation", "--no-limits", "--ship-after", "0") as ss,
    ):
        add_connection(tenant(hub), "shop", "shopify", shop, {"access_token": TOKEN}, {"bulk_backfill": False})
        add_connection(tenant(hub), "warehouse", "shipstation", ss, {"api_key": "ss_key", "api_secret": "ss_secret"})
        for sku, _t, _p in generator.CATALOG:
            set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
        for method in generator.SHIPPING_METHODS:
            set_mapping(tenant(hub), "shipping", method, "ups:ups_ground", cid(hub, "warehouse"))
        env = {
            "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
            "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
            "ORDERBRIDGE_LEASE_TTL_S": "2",
            "ORDERBRIDGE_UNKNOWN_OUTCOME_SETTLE_S": "1",
        }
        killed = cli(env, "sync", "--json", crash_at=point)  # posted, shipped at once, killed at the push
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        time.sleep(2.1)  # the killed worker's lease expires, and the settle window with it
        for _ in range(2):
            assert cli(env, "sync", "--json").returncode in (0, 1)
        fulfilments = ledger_entries(shop, "fulfillment")
        tracking = Counter(e["data"]["tracking_number"] for e in fulfilments)
        assert fulfilments and max(tracking.values()) == 1
        with hub.db.read() as conn:
            from orderbridge.storage.tables import fulfilment_pushes

            statuses = Counter(conn.execute(select(fulfilment_pushes.c.status)).scalars())
        assert set(statuses) == {"pushed"} and statuses["pushed"] == len(fulfilments)
