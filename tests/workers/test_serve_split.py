"""The split deployment: ``orderbridge serve`` on the procrastinate engine is web and webhooks only,
``orderbridge worker`` runs the jobs. An order placed after both started arrives by webhook (the
next poll is an hour away), its post job is written with it, and a worker posts it — once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from orderbridge.crypto import generate_key
from orderbridge.errors import SettingsError
from orderbridge.runtime.engine import install
from orderbridge.sandboxes.base import free_port, run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.nudges import NoNudges
from orderbridge.settings import Settings
from orderbridge.storage.tables import sync_runs, webhook_deliveries
from tests.e2e.helpers import TOKEN
from tests.scoped import cid, tenant
from tests.workers.conftest import jobs, running_workers, wait_for, worker_env


def test_the_procrastinate_engine_refuses_sqlite_with_a_fix(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=generate_key(), job_engine="procrastinate")
    hub = Hub.from_settings(settings)
    try:
        with pytest.raises(SettingsError) as refused:
            install(hub)
    finally:
        hub.close()
    assert "needs PostgreSQL" in str(refused.value) and "ORDERBRIDGE_JOB_ENGINE=embedded" in refused.value.hint
    assert isinstance(hub.nudges, NoNudges), "a refused engine installs nothing"


@pytest.mark.slow
def test_serve_no_workers_takes_webhooks_and_a_worker_posts_what_they_brought(
    pg_hub: Hub, pg_settings: Settings, tmp_path: Path
) -> None:
    shop_state, shop_app = shopify_sandbox(orders=5, seed=3, limits=False, realistic=False)
    ss_state, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=0.0)
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss:
        add_connection(
            tenant(pg_hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN, "api_secret": "shpss_sandbox"}
        )
        add_connection(
            tenant(pg_hub), "warehouse", "shipstation", ss.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
        )
        for sku, _t, _p in generator.CATALOG:
            set_mapping(tenant(pg_hub), "sku", sku, sku, cid(pg_hub, "warehouse"))
        set_mapping(tenant(pg_hub), "shipping", "*", "ups:ups_ground", cid(pg_hub, "warehouse"))
        port = free_port()
        env = worker_env(pg_settings, ORDERBRIDGE_POLL_INTERVAL_S="3600", ORDERBRIDGE_WEBHOOK_SYNC_DELAY_S="3600")
        web = subprocess.Popen(
            [sys.executable, "-m", "orderbridge.cli.main", "serve", "--no-workers", "--port", str(port)],
            env={**os.environ, **env, "ORDERBRIDGE_WEBHOOKS": "true"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = pg_settings.resolved_database_url
        try:
            hooks = shop_state.webhook_dispatcher
            wait_for(lambda: hooks.has_subscribers("orders/create"), 30, "webhooks registered by serve")
            assert jobs(url) == [], "serve --no-workers runs no jobs and defers none by itself"
            with running_workers(env, tmp_path) as workers:
                workers.start("w1")
                # the first sync (the dispatcher's: the channel never synced) posts the store
                wait_for(lambda: len(ss_state.orders_by_key()) == 5, 60, "the first sync's orders at the 3PL")
                new_id = shop_state.add_order()["id"]
                wait_for(lambda: len(ss_state.orders_by_key()) == 6, 20, "the webhook order at the 3PL")
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            assert health.status_code == 200, health.text
        finally:
            web.send_signal(signal.SIGTERM)
            out, err = web.communicate(timeout=30)
        assert web.returncode == 0, err[-3000:]
        assert "no jobs run here" in out, out
        shop_id = cid(pg_hub, "shop")
        assert ss_state.create_count(f"ob-{shop_id}-{new_id}") == 1
        with pg_hub.db.read() as conn:
            outcomes = set(
                conn.execute(
                    select(webhook_deliveries.c.outcome).where(webhook_deliveries.c.external_id == str(new_id))
                ).scalars()
            )
            n_syncs = len(conn.execute(select(sync_runs.c.id).where(sync_runs.c.connection_id == shop_id)).all())
        # it came by webhook (the one sync ran before it was placed): stored queued by serve, ingested
        # by the worker's ingest job (decision 241)
        assert "ingested" in outcomes, outcomes
        assert n_syncs == 1
        ingested = jobs(url, "task_name = 'orderbridge.ingest'")
        assert ingested and {j["status"] for j in ingested} == {"succeeded"}, ingested
        # its webhook-driven sync is pending an hour out (one, however many deliveries came)
        pending = jobs(url, "status = 'todo' AND task_name = 'orderbridge.sync'")
        assert len(pending) == 1 and pending[0]["scheduled_at"] is not None


def test_serve_no_workers_on_the_embedded_engine_serves_http_and_runs_no_job(hub: Hub, settings: Settings) -> None:
    """Web and webhooks only: a channel due every 0.2 s is never synced by this process (a ``serve
    --no-http`` beside it would run the jobs), and SIGTERM stops it with 0."""
    _state, shop_app = shopify_sandbox(orders=3, seed=3, limits=False, realistic=False)
    with run_in_thread(shop_app) as shop:
        add_connection(tenant(hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN})
        port = free_port()
        env = {
            **os.environ,
            "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
            "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
            "ORDERBRIDGE_POLL_INTERVAL_S": "0.2",
            "ORDERBRIDGE_WEBHOOKS": "false",
        }
        web = subprocess.Popen(
            [sys.executable, "-m", "orderbridge.cli.main", "serve", "--no-workers", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            health = wait_for(lambda: _healthz(port), 30, "serve listening")
            assert health.status_code == 200
            time.sleep(2)  # ten poll intervals
        finally:
            web.send_signal(signal.SIGTERM)
            out, err = web.communicate(timeout=30)
        assert web.returncode == 0, err[-3000:]
        assert "no jobs run here" in out
        with hub.db.read() as conn:
            assert conn.execute(select(sync_runs.c.id)).all() == [], "a web-only process synced"


def _healthz(port: int) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.HTTPError:
        return None
