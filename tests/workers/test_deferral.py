"""Jobs are written in the transaction of the state change that needs them (PostgreSQL, the
procrastinate engine): an ingested order and its post job commit together — a crash before the
commit leaves neither — and a storm of webhook deliveries leaves one pending sync per channel and
one pending post per destination (procrastinate's ``queueing_lock``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import func, select, update

from orderbridge import seams
from orderbridge.connectors import registry
from orderbridge.runtime.engine import ProcrastinateNudges, ProcrastinateSyncRunner, backsync, dispatch
from orderbridge.runtime.tasks import KINDS
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify import create_sandbox, generator
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.nudges import NoNudges
from orderbridge.services.sync import sync_channel
from orderbridge.services.sync_now import QueuedSync
from orderbridge.services.webhooks import ingest_queued
from orderbridge.storage.tables import orders, sync_runs, webhook_deliveries
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
    url = hub.settings.resolved_database_url
    # the receiver only checked and stored them (decision 241): every delivery queued, one pending
    # ingest job per channel, no order yet
    assert _orders(hub) == 0
    assert _outcomes(hub) == {"queued": 2 * n}
    by_lock = Counter((j["task_name"], j["lock"]) for j in jobs(url, "status = 'todo'"))
    assert by_lock == {
        ("orderbridge.ingest", f"ingest:{cid(hub, 'shop')}"): 1,
        ("orderbridge.ingest", f"ingest:{cid(hub, 'shop2')}"): 1,
    }, "a storm of 50 deliveries must collapse into one pending ingest job per channel"
    for shop in ("shop", "shop2"):  # what the two ingest jobs run
        report = ingest_queued(tenant(hub), cid(hub, shop))
        assert (report.deliveries, report.inserted, report.failed) == (n, n, 0)
    assert _outcomes(hub) == {"ingested": 2 * n}
    with hub.db.read() as conn:
        assert conn.execute(select(func.count()).where(webhook_deliveries.c.body.is_not(None))).scalar_one() == 0
    by_lock = Counter((j["task_name"], j["lock"]) for j in jobs(url, "status = 'todo'"))
    assert by_lock == {
        ("orderbridge.ingest", f"ingest:{cid(hub, 'shop')}"): 1,
        ("orderbridge.ingest", f"ingest:{cid(hub, 'shop2')}"): 1,
        ("orderbridge.sync", f"sync:{cid(hub, 'shop')}"): 1,
        ("orderbridge.sync", f"sync:{cid(hub, 'shop2')}"): 1,
        ("orderbridge.post", f"post:{cid(hub, 'wh')}"): 1,
    }, "one pending job per connection (the ingest jobs, called here directly, are still pending)"
    with hub.db.read() as conn:
        states = Counter(conn.execute(select(orders.c.state)).scalars())
    assert states == {"ready": 2 * n}
    # the jobs themselves, run again, find nothing queued: nothing twice
    assert ingest_queued(tenant(hub), cid(hub, "shop")).deliveries == 0
    assert _orders(hub) == 2 * n


def test_a_replayed_delivery_is_a_duplicate_and_one_unreadable_delivery_never_holds_back_the_others(
    pg_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = pg_server.hub
    state, _app = create_sandbox(orders=0, seed=8, limits=False)
    placed = [state.add_order() for _ in range(5)]
    for i, order in enumerate(placed):
        assert pg_server.deliver(order, topic="orders/create", webhook_id=f"w-{i}").json()["outcome"] == "queued"
    replay = pg_server.deliver(placed[0], topic="orders/create", webhook_id="w-0")
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    adapter = registry.declaration("shopify").webhooks
    assert adapter is not None
    real = adapter.parse
    poison = str(placed[2]["id"])

    def parse(headers: Any, body: bytes) -> Any:  # a bug of the hub's for one order, not the delivery's
        if poison.encode() in body:
            raise RuntimeError("a bug met while ingesting")
        return real(headers, body)

    monkeypatch.setattr(adapter, "parse", parse)
    report = ingest_queued(tenant(hub), cid(hub, "shop"))
    assert (report.deliveries, report.inserted, report.failed) == (4, 4, 1)
    assert _outcomes(hub) == {"ingested": 4, "failed": 1}
    assert _orders(hub) == 4
    monkeypatch.undo()
    assert ingest_queued(tenant(hub), cid(hub, "shop")).deliveries == 0  # failed is final: the poll brings it


def _outcomes(hub: Hub) -> Counter[str]:
    with hub.db.read() as conn:
        return Counter(conn.execute(select(webhook_deliveries.c.outcome)).scalars())


def _context(hub: Hub) -> Any:
    """What a procrastinate task is given, as far as the periodic tasks read it."""
    return SimpleNamespace(additional_context={"hub": hub})


def test_the_dispatcher_defers_each_due_job_once_however_often_it_runs(pg_hub: Hub) -> None:
    """Orders made ready without a nudge (here: synced by a hub with none) get a post from the
    periodic dispatcher; the channel that never synced gets its sync, the tenant its housekeeping;
    running it again (two workers' overlapping periods, say) leaves the same one pending job each."""
    standard_world(pg_hub, 2)
    nudges = pg_hub.nudges
    pg_hub.nudges = NoNudges()
    try:
        sync_channel(tenant(pg_hub), cid(pg_hub, "shop"))
    finally:
        pg_hub.nudges = nudges
    url = pg_hub.settings.resolved_database_url
    assert jobs(url) == []
    with pg_hub.db.transaction() as conn:  # the channel's last sync is long ago: a sync is due
        conn.execute(update(sync_runs).values(started_at=pg_hub.now() - timedelta(hours=1)))
    for stamp in (1000, 1001, 1002):
        dispatch(_context(pg_hub), stamp)
    locks = Counter(j["lock"] for j in jobs(url, "status = 'todo'"))
    t = tenant(pg_hub).tenant_id
    assert locks == {f"post:{cid(pg_hub, 'wh')}": 1, f"sync:{cid(pg_hub, 'shop')}": 1, f"housekeeping:{t}": 1}

    backsync(_context(pg_hub), 1003)
    backsync(_context(pg_hub), 1004)
    kinds = Counter(j["task_name"] for j in jobs(url, "status = 'todo'"))
    # the fakes declare shipments and pushes; a post for the destination was pending already
    assert kinds == {
        "orderbridge.post": 1,
        "orderbridge.sync": 1,
        "orderbridge.housekeeping": 1,
        "orderbridge.shipments": 1,
        "orderbridge.push": 1,
    }


def test_a_sync_now_request_is_a_job_under_the_channels_sync_lock_deferred_once(pg_hub: Hub) -> None:
    standard_world(pg_hub, 1)
    nudges = pg_hub.nudges
    assert isinstance(nudges, ProcrastinateNudges)
    runner = ProcrastinateSyncRunner(pg_hub, nudges)
    request = QueuedSync(tenant(pg_hub).tenant_id, cid(pg_hub, "shop"), 99)
    runner.submit(request)
    runner.submit(request)  # the dispatcher re-deferring a request nobody took yet: still one job
    [job] = jobs(pg_hub.settings.resolved_database_url)
    assert (job["task_name"], job["queue_name"]) == ("orderbridge.sync_now", "syncs")
    assert job["lock"] == f"sync:{request.connection_id}"
    assert job["queueing_lock"] == "sync_now:99"
    assert job["args"] == {"tenant_id": request.tenant_id, "connection_id": request.connection_id, "run_id": 99}


def test_a_sync_now_request_is_not_held_back_by_a_webhooks_sync_scheduled_later(pg_hub: Hub) -> None:
    """procrastinate takes same-lock jobs by priority, then id, whatever their ``scheduled_at``: a
    webhook's sync deferred 10 s out would otherwise make a person's Sync now wait for it. Asked of
    procrastinate's own fetch function, the request is the job a worker takes now."""
    standard_world(pg_hub, 1)
    nudges = pg_hub.nudges
    assert isinstance(nudges, ProcrastinateNudges)
    shop = cid(pg_hub, "shop")
    with pg_hub.db.transaction() as conn:
        delayed = nudges.connection_job(conn, KINDS["sync"], tenant(pg_hub).tenant_id, shop, schedule_in=600)
    ProcrastinateSyncRunner(pg_hub, nudges).submit(QueuedSync(tenant(pg_hub).tenant_id, shop, 5))
    url = pg_hub.settings.resolved_database_url
    with psycopg.connect(url) as conn:
        fetch = "SELECT id, task_name FROM procrastinate_fetch_job_v2(ARRAY['syncs']::varchar[], NULL)"
        row = conn.execute(fetch).fetchone()
    assert row is not None and row[1] == "orderbridge.sync_now", (row, delayed)


def test_a_delivery_stored_while_an_ingest_job_is_pending_holds_that_job_until_it_commits(pg_hub: Hub) -> None:
    """No lost wake-up: the receiver writes no second ingest job while one is pending; it holds the
    pending job's row until its transaction commits, so no worker can start that job before the
    delivery it must take is visible — procrastinate's fetch skips the locked row."""
    standard_world(pg_hub, 1)
    nudges = pg_hub.nudges
    assert isinstance(nudges, ProcrastinateNudges)
    shop, tenant_id = cid(pg_hub, "shop"), tenant(pg_hub).tenant_id
    url = pg_hub.settings.resolved_database_url
    with pg_hub.db.transaction() as conn:
        nudges.deliveries_queued(conn, tenant_id, shop)
    (pending,) = jobs(url, "task_name = 'orderbridge.ingest'")
    fetch = "SELECT id FROM procrastinate_fetch_job_v2(ARRAY['posts']::varchar[], NULL)"
    with pg_hub.db.transaction() as conn:
        nudges.deliveries_queued(conn, tenant_id, shop)  # a second delivery, not yet committed
        with psycopg.connect(url, autocommit=True) as worker:
            assert worker.execute(fetch).fetchone() == (None,), "a worker started the job before the commit"
    assert [j["id"] for j in jobs(url, "task_name = 'orderbridge.ingest'")] == [pending["id"]]
    with psycopg.connect(url, autocommit=True) as worker:
        assert worker.execute(fetch).fetchone() == (pending["id"],)
