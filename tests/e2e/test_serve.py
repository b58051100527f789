"""``orderbridge serve``: scheduler, poster and HTTP server in one process until stopped — polls on its
interval, receives the channel's webhooks, and answers /healthz and /metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
from sqlalchemy import select

from orderbridge.sandboxes.base import free_port, run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.settings import Settings
from orderbridge.storage.tables import webhook_deliveries
from tests.e2e.helpers import TOKEN
from tests.scoped import cid, tenant


def test_serve_posts_orders_created_after_it_started_and_stops_on_sigterm(hub: Hub, settings: Settings) -> None:
    shop_state, shop_app = shopify_sandbox(orders=20, seed=3, limits=False, realistic=False)
    ss_state, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=0.0)
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss:
        add_connection(
            tenant(hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN, "api_secret": "shpss_sandbox"}
        )
        add_connection(
            tenant(hub), "warehouse", "shipstation", ss.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
        )
        for sku, _t, _p in generator.CATALOG:
            set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
        set_mapping(tenant(hub), "shipping", "*", "ups:ups_ground", cid(hub, "warehouse"))
        port = free_port()
        env = {
            **os.environ,
            "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
            "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
            "ORDERBRIDGE_POLL_INTERVAL_S": "3600",
            "ORDERBRIDGE_SHIPMENT_POLL_INTERVAL_S": "0.5",
            "ORDERBRIDGE_CURSOR_OVERLAP_S": "5",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "orderbridge.cli.main", "serve", "--tick", "0.2", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert _wait(lambda: len(ss_state.orders_by_key()) == 20), "the first sync did not post the store"
            # every topic is registered one call at a time: an order placed before orders/create's
            # subscription exists sends no webhook (the next poll would bring it, an hour away)
            hooks = shop_state.webhook_dispatcher
            assert _wait(lambda: hooks.has_subscribers("orders/create")), "webhooks were not registered"
            new_id = shop_state.add_order()["id"]
            # the next poll is an hour away: only the webhook can bring this order in
            assert _wait(lambda: len(ss_state.orders_by_key()) == 21, 10), (
                "a webhook order was not posted",
                hooks.counts,
                [e for k in ("webhook_retrying", "webhook_failed") for e in shop_state.entries(k)],
            )
            # webhooks are subscribed once the receiver listens: no delivery was ever refused
            assert not shop_state.entries("webhook_retrying"), shop_state.entries("webhook_retrying")
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            assert health.status_code == 200, health.text
            assert {c["name"]: c["health"] for c in health.json()["connections"]}["shop"] == "healthy"
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert 'orderbridge_orders{connection="shop",state="posted",tenant="default"}' in metrics
            assert 'orderbridge_webhook_deliveries_total{connection="shop",outcome=' in metrics
            assert "orderbridge_post_latency_seconds_bucket" in metrics
            assert _wait(lambda: len(shop_state.entries("fulfillment")) >= 21), "shipments were not pushed back"
        except AssertionError as exc:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            raise AssertionError(f"{exc}\n--- serve's output ---\n{out[-3000:]}\n{err[-6000:]}") from exc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-2000:]
        with hub.db.read() as conn:
            shop_id = tenant(hub).connection_named(conn, "shop").id
        assert ss_state.create_count(f"ob-{shop_id}-{new_id}") == 1
        with hub.db.read() as conn:
            outcomes = set(
                conn.execute(
                    select(webhook_deliveries.c.outcome).where(webhook_deliveries.c.external_id == str(new_id))
                ).scalars()
            )
        assert "inserted" in outcomes, outcomes  # it came by webhook (the next poll was an hour away)


def _wait(predicate: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False
