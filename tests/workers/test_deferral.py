"""Jobs are written in the transaction of the state change that needs them (PostgreSQL, the
procrastinate engine): an ingested order and its post job commit together — a crash before the
commit leaves neither — and a storm of webhook deliveries leaves one pending sync per channel and
one pending post per destination (procrastinate's ``queueing_lock``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from orderbridge import seams
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify import create_sandbox, generator
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import orders
from orderbridge.web.app import create_app
from orderbridge.web.metrics import HubMetrics
from tests.fakes import standard_world
from tests.scoped import cid, tenant
from tests.web.conftest import SECRET, Server
from tests.workers.conftest import jobs


def _orders(hub: Hub) -> int:
    with hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(orders)).scalar_one())


def test_an_ingested_order_and_its_post_job_commit_together_and_a_crash_before_the_commit_leaves_neither(
    pg_hub: Hub,
) -> None:
    standard_world(pg_hub, 3)
    url = pg_hub.settings.resolved_database_url
    seams.inject("sync.before_commit", 1)  # the batch and its nudge are written, the commit never comes
    try:
        with pytest.raises(seams.InjectedCrash):
            sync_channel(tenant(pg_hub), cid(pg_hub, "shop"))
    finally:
        seams.inject(None)
    assert _orders(pg_hub) == 0
    assert jobs(url) == [], "a job without its order: the crash separated them"

    report = sync_channel(tenant(pg_hub), cid(pg_hub, "shop"))
    assert report.counts.inserted == 3 and _orders(pg_hub) == 3
    wh = cid(pg_hub, "wh")
    [job] = jobs(url)
    assert (job["task_name"], job["status"], job["queue_name"]) == ("orderbridge.post", "todo", "posts")
    assert job["lock"] == job["queueing_lock"] == f"post:{wh}"
    assert job["args"] == {"tenant_id": tenant(pg_hub).tenant_id, "connection_id": wh}


@pytest.fixture
def pg_server(pg_hub: Hub) -> Iterator[Server]:
    for name in ("shop", "shop2"):
        add_connection(
            tenant(pg_hub), name, "shopify", "http://127.0.0.1:9", {"access_token": "shpat_x", "api_secret": SECRET}
        )
    add_connection(tenant(pg_hub), "wh", "shipstation", "http://127.0.0.1:9", {"api_key": "k", "api_secret": "s"})
    for sku, _t, _p in generator.CATALOG:
        set_mapping(tenant(pg_hub), "sku", sku, sku, cid(pg_hub, "wh"))
    set_mapping(tenant(pg_hub), "shipping", "*", "ups:ups_ground", cid(pg_hub, "wh"))
    metrics = HubMetrics(pg_hub)
    pg_hub.observer = metrics
    app = create_app(pg_hub, metrics=metrics)
    with run_in_thread(app) as running, httpx.Client(timeout=10) as client:  # type: ignore[arg-type]
        yield Server(pg_hub, running.base_url, client, metrics, [])


def test_a_webhook_storm_leaves_one_pending_sync_per_channel_and_one_pending_post_per_destination(
    pg_server: Server,
) -> None:
    hub = pg_server.hub
    state, _app = create_sandbox(orders=0, seed=7, limits=False)
    n = 25
    for _ in range(n):
        order = state.add_order()
        for shop in ("shop", "shop2"):
            assert pg_server.deliver(order, topic="orders/create", connection=shop).status_code == 200
    assert _orders(hub) == 2 * n
    pending = jobs(hub.settings.resolved_database_url, "status = 'todo'")
    by_lock = Counter((j["task_name"], j["lock"]) for j in pending)
    assert by_lock == {
        ("orderbridge.sync", f"sync:{cid(hub, 'shop')}"): 1,
        ("orderbridge.sync", f"sync:{cid(hub, 'shop2')}"): 1,
        ("orderbridge.post", f"post:{cid(hub, 'wh')}"): 1,
    }, "a storm of 50 deliveries must collapse into one pending job per connection"
    # a delivery whose job collapsed into the pending one still stored its order (the savepoint)
    with hub.db.read() as conn:
        states = Counter(conn.execute(select(orders.c.state)).scalars())
    assert states == {"ready": 2 * n}
