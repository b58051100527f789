"""``orderbridge worker`` processes on PostgreSQL: syncs and posts run as procrastinate jobs, a worker
killed with SIGKILL leaves a stalled job that another worker's periodic recovery retries, and every
downloadable order reaches the 3PL exactly once — proven from the ShipStation sandbox's own ledger."""

from __future__ import annotations

import itertools
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from orderbridge.bench.procs import sandbox_process
from orderbridge.runtime.engine import ProcrastinateNudges
from orderbridge.runtime.tasks import SYNC
from orderbridge.sandboxes.shopify import generator
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.settings import Settings
from orderbridge.storage.tables import orders, sync_runs
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


def _sync_runs(hub: Hub, connection_id: int) -> list[tuple[str, datetime, datetime | None]]:
    with hub.db.read() as conn:
        rows = conn.execute(
            select(sync_runs.c.outcome, sync_runs.c.started_at, sync_runs.c.finished_at)
            .where(sync_runs.c.connection_id == connection_id)
            .order_by(sync_runs.c.started_at)
        ).all()
    return [(r.outcome, r.started_at, r.finished_at) for r in rows]


@pytest.mark.slow
def test_two_workers_never_sync_one_connection_at_once(pg_hub: Hub, pg_settings: Settings, tmp_path: Path) -> None:
    """Eight syncs of one channel deferred at once (no queueing lock: all eight stay pending) onto
    two workers of four threads: procrastinate's per-connection ``lock`` runs them one after the
    other — none skipped at a lease, none overlapping another in time."""
    with (
        sandbox_process("shopify", "--orders", "400", "--seed", "6", "--no-limits") as shop,
        sandbox_process("shipstation", "--no-limits") as ss,
    ):
        _world(pg_hub, shop, ss, bulk_backfill=False)
        channel = cid(pg_hub, "shop")
        nudges = pg_hub.nudges
        assert isinstance(nudges, ProcrastinateNudges)
        with pg_hub.db.transaction() as conn:
            for _ in range(8):
                nudges.defer(
                    conn, "sync", lock=SYNC.lock(channel), queue="syncs", tenant_id=tenant(pg_hub).tenant_id,
                    connection_id=channel,
                )  # fmt: skip
        env = worker_env(pg_settings, ORDERBRIDGE_POLL_INTERVAL_S="3600", ORDERBRIDGE_WORKER_CONCURRENCY="4")
        with running_workers(env, tmp_path) as workers:
            workers.start("w1")
            workers.start("w2")
            url = pg_settings.resolved_database_url
            wait_for(
                lambda: len(jobs(url, "task_name = 'orderbridge.sync' AND status = 'succeeded'")) >= 8, 120, "8 syncs"
            )
        runs = _sync_runs(pg_hub, channel)
        ran = jobs(url, "task_name = 'orderbridge.sync' AND status = 'succeeded'")  # ours, and the dispatcher's first
        assert len(runs) == len(ran) >= 8, "each job ran its sync (none skipped at a lease another held)"
        assert {r[0] for r in runs} == {"ok"}
        for (_o, _s, end), (_o2, start, _e) in itertools.pairwise(runs):
            assert end is not None and end <= start, "two syncs of one connection overlapped"
        workers_used = {j["worker_id"] for j in jobs(url, "task_name = 'orderbridge.sync'")}
        assert len(workers_used) >= 1


@pytest.mark.slow
def test_a_worker_killed_mid_post_leaves_a_stalled_job_another_worker_retries_and_each_order_is_posted_once(
    pg_hub: Hub, pg_settings: Settings, tmp_path: Path
) -> None:
    with (
        sandbox_process("shopify", "--orders", "80", "--seed", "8", "--no-limits") as shop,
        sandbox_process("shipstation", "--no-limits") as ss,
    ):
        keys = _world(pg_hub, shop, ss, bulk_backfill=False)
        url = pg_settings.resolved_database_url
        # leases that outlive the test: the retry runs only because recovery frees the dead attempt's
        env = worker_env(pg_settings, ORDERBRIDGE_LEASE_TTL_S="600")
        with running_workers(env, tmp_path) as workers:
            # killed once ShipStation has taken its first batch, before the hub recorded it
            doomed = workers.start("doomed", crash_at="post.after_send:1")
            assert doomed.wait(timeout=90) == -signal.SIGKILL, workers.log("doomed")[-3000:]
            assert _created(ss), "the batch reached the 3PL before the kill"
            [stalled] = jobs(url, "status = 'doing' AND task_name = 'orderbridge.post'")
            assert stalled["lock"] == f"post:{cid(pg_hub, 'warehouse')}", "the dead worker still holds the lock"

            workers.start("rescuer")
            try:
                wait_for(lambda: set(_created(ss)) >= keys, 60, "every downloadable order at the 3PL")
            except AssertionError:  # what the rescuer did, and the jobs it left
                left = jobs(url, "status <> 'succeeded'")
                print(workers.log("rescuer")[-6000:], [(j["id"], j["task_name"], j["status"]) for j in left])
                raise
            wait_for(lambda: jobs(url, "id = %s AND status <> 'doing'", (stalled["id"],)), 30, "the recovered job")
            time.sleep(2)
        created = _created(ss)
        assert set(created) == keys
        assert max(created.values()) == 1, f"posted twice: {[k for k, n in created.items() if n > 1]}"
        # retried, or — when a post of that destination was already pending behind its lock — ended
        # so that the pending one runs: either way it no longer holds the lock
        [recovered] = jobs(url, "id = %s", (stalled["id"],))
        assert recovered["status"] in ("succeeded", "aborted") and recovered["attempts"] == 1, recovered
        assert "job.stalled_recovered" in workers.log("rescuer")
        assert not jobs(url, "status IN ('doing', 'failed')"), "nothing left stalled or failed"


def _registered_workers(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.slow
def test_periodic_tasks_run_once_per_period_with_two_workers_up(
    pg_hub: Hub, pg_settings: Settings, tmp_path: Path
) -> None:
    url = pg_settings.resolved_database_url
    with running_workers(worker_env(pg_settings), tmp_path) as workers:
        workers.start("w1")
        workers.start("w2")
        wait_for(lambda: _registered_workers(url) == 2, 30, "both workers registered (heartbeating)")
        first = max([j["id"] for j in jobs(url)], default=0)
        wait_for(
            lambda: (
                len(jobs(url, "task_name = 'orderbridge.dispatch' AND status = 'succeeded' AND id > %s", (first,))) >= 6
            ),
            60,
            "6 dispatcher periods with both workers up",
        )
        assert _registered_workers(url) == 2
    for task in ("orderbridge.dispatch", "orderbridge.recover_stalled"):
        ran = jobs(url, "task_name = %s", (task,))
        stamps = Counter(j["args"]["timestamp"] for j in ran)
        assert len(stamps) >= 5 and max(stamps.values()) == 1, f"{task} deferred twice for one period: {stamps}"
        assert {j["status"] for j in ran} <= {"succeeded", "todo", "doing"}
        # one per second (worker_tick_s=1): consecutive periods, none skipped twice in a row
        ordered = sorted(stamps)
        assert all(b - a <= 2 for a, b in itertools.pairwise(ordered)), ordered
    both = {j["worker_id"] for j in jobs(url, "task_name = 'orderbridge.dispatch'")}
    assert len(both) >= 1


@pytest.mark.slow
def test_a_worker_killed_during_the_first_bulk_backfill_is_replaced_and_the_store_is_healthy_within_one_poll(
    pg_hub: Hub, pg_settings: Settings, tmp_path: Path
) -> None:
    """The acceptance test of issue #18: the first sync of a store is a Shopify bulk export; the
    worker running it is SIGKILLed once Shopify took the export's start. Its job is stalled (its
    heartbeat stops); another worker's periodic recovery retries it, and that sync *adopts* the
    export still running at Shopify (one export in the sandbox's ledger, none cancelled). Every
    order is downloaded and the store's sync is healthy within one poll interval of the rescue."""
    poll = 20.0
    with sandbox_process("shopify", "--orders", "300", "--seed", "21", "--no-limits", "--bulk-seconds", "8") as shop:
        add_connection(tenant(pg_hub), "shop", "shopify", shop, {"access_token": TOKEN})  # bulk_backfill by default
        channel = cid(pg_hub, "shop")
        url = pg_settings.resolved_database_url
        env = worker_env(pg_settings, ORDERBRIDGE_POLL_INTERVAL_S=str(poll), ORDERBRIDGE_LEASE_TTL_S="600")
        with running_workers(env, tmp_path) as workers:
            doomed = workers.start("doomed", crash_at="bulk.after_start:1")
            assert doomed.wait(timeout=60) == -signal.SIGKILL, workers.log("doomed")[-3000:]
            assert len(ledger_entries(shop, "bulk_operation")) == 1
            [stalled] = jobs(url, "status = 'doing' AND task_name = 'orderbridge.sync'")
            rescued = time.monotonic()
            workers.start("rescuer")

            def healthy() -> bool:
                runs = _sync_runs(pg_hub, channel)
                return bool(runs) and runs[-1][0] == "ok"

            wait_for(healthy, poll, "the store's sync healthy again within one poll interval")
            took = time.monotonic() - rescued
        assert took <= poll
        assert len(ledger_entries(shop, "bulk_operation")) == 1, "the running export was adopted, not restarted"
        assert ledger_entries(shop, "bulk_operation_cancel") == []
        expected = {str(o["id"]) for o in all_shopify_orders(shop)}
        with pg_hub.db.read() as conn:
            stored = set(conn.execute(select(orders.c.external_id).where(orders.c.connection_id == channel)).scalars())
        assert stored == expected and len(expected) == 300
        outcomes = [r[0] for r in _sync_runs(pg_hub, channel)]
        assert outcomes[0] == "interrupted" and outcomes[-1] == "ok", outcomes
        [retried] = jobs(url, "id = %s", (stalled["id"],))
        assert retried["status"] in ("succeeded", "aborted"), retried
        assert "job.stalled_recovered" in workers.log("rescuer")


@pytest.mark.slow
def test_sigterm_lets_the_running_sync_finish_then_the_worker_exits_0(
    pg_hub: Hub, pg_settings: Settings, tmp_path: Path
) -> None:
    with sandbox_process("shopify", "--orders", "60", "--seed", "9", "--no-limits", "--bulk-seconds", "4") as shop:
        add_connection(tenant(pg_hub), "shop", "shopify", shop, {"access_token": TOKEN})  # a bulk export: 4 s
        channel = cid(pg_hub, "shop")
        url = pg_settings.resolved_database_url
        with running_workers(worker_env(pg_settings), tmp_path) as workers:
            proc = workers.start("w1")
            wait_for(lambda: ledger_entries(shop, "bulk_operation"), 30, "the export started")
            [running] = jobs(url, "status = 'doing' AND task_name = 'orderbridge.sync'")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, workers.log("w1")[-3000:]
        [done] = jobs(url, "id = %s", (running["id"],))
        assert done["status"] == "succeeded", "the job in progress finished before the worker stopped"
        assert [r[0] for r in _sync_runs(pg_hub, channel)] == ["ok"]
        with pg_hub.db.read() as conn:
            n = len(conn.execute(select(orders.c.id).where(orders.c.connection_id == channel)).all())
        assert n == 60
        assert jobs(url, "status = 'doing'") == []
