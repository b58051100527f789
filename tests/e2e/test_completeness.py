"""Completeness, end to end over real HTTP: lost webhooks are recovered by the audit, and an expired
token is loud (one alert e-mail) and loses nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from orderbridge.connectors.shopify.client import estimate_cost
from orderbridge.connectors.shopify.connector import ORDER_QUERY
from orderbridge.runtime.worker import serve
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.reconcile import reconcile
from orderbridge.services.webhooks import register_webhooks
from orderbridge.storage.tables import orders, webhook_deliveries
from orderbridge.web.app import create_app
from tests.e2e.helpers import TOKEN, downloadable
from tests.scoped import cid, tenant
from tests.smtp import SmtpSink

SECRET = "shpss_e2e"


def wait(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def map_all(hub: Hub) -> tuple[set[str], set[str]]:
    skus = {sku for sku, _t, _p in generator.CATALOG if sku not in generator.UNSTOCKED_SKUS}
    for sku in skus:
        set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "*", "ups:ups_ground", cid(hub, "wh"))
    return skus, {"*"}


def ledger_count(hub: Hub) -> int:
    with hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(orders)).scalar_one())


def test_dropped_and_disabled_webhooks_are_recovered_by_the_audit_and_posted_once(hub: Hub) -> None:
    shop_state, shop_app = shopify_sandbox(
        orders=0, seed=21, limits=False, api_secret=SECRET, webhook_drop_rate=0.1, webhook_retry_scale=0.001
    )
    ss_state, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600)
    server = create_app(hub)
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss, run_in_thread(server) as hub_http:  # type: ignore[arg-type]
        hub.settings = hub.settings.model_copy(update={"public_url": hub_http.base_url})
        add_connection(tenant(hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN, "api_secret": SECRET})
        add_connection(tenant(hub), "wh", "shipstation", ss.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"})
        skus, _methods = map_all(hub)
        subs = register_webhooks(tenant(hub), cid(hub, "shop"))
        assert {s.topic for s in subs} >= {"orders/create", "orders/updated", "orders/cancelled"}
        created: list[dict[str, Any]] = []
        for i in range(120):
            if i == 60:
                shop_state.disable_webhooks()  # halfway: the subscription vanishes, as when an app is reinstalled
            overrides: dict[str, Any] = {}
            if i % 15 == 7:
                overrides = {"financial_status": "pending"}  # not downloadable: stays skipped, never posted
            created.append(shop_state.add_order(**overrides))
        shop_state.webhook_dispatcher.wait_idle(10)
        received = ledger_count(hub)
        dropped = [e.key for e in shop_state.entries("webhook_dropped")]
        assert dropped, "the sandbox dropped nothing: the test proves nothing"
        assert received < 120 - 60  # half came after the disable, plus the dropped ones

        report = reconcile(tenant(hub), cid(hub, "shop"), since=hub.now() - timedelta(hours=1))

        assert report.ok, report.error
        assert (report.channel_count, report.ledger_count, report.missing) == (120, 120, 0)
        assert report.recovered == 120 - received
        recovered_ids = {f["external_id"] for f in report.findings if f["action"] == "recovered"}
        assert recovered_ids == {str(o["id"]) for o in created} - _ids_with_delivery(hub)
        assert {f["cause"] for f in report.findings} == {"no_webhook"}
        assert all(f["number"] for f in report.findings)
        assert report.api_requests >= 1 + report.recovered
        assert ledger_count(hub) == 120

        post_ready(tenant(hub), cid(hub, "wh"))
        with hub.db.read() as conn:
            shop_id = tenant(hub).connection_named(conn, "shop").id
        expected = {f"ob-{shop_id}-{o['id']}" for o in created if downloadable(o, skus, {"Standard"} | {"*"})}
        assert expected, "no downloadable orders: the oracle is wrong"
        assert set(ss_state.orders_by_key()) == expected
        assert all(ss_state.create_count(k) == 1 for k in expected)
        again = reconcile(tenant(hub), cid(hub, "shop"), since=hub.now() - timedelta(hours=1))
        assert (again.recovered, again.missing) == (0, 0)
        # the same listing both times; the first audit also paid for each order it fetched
        per_fetch = estimate_cost(ORDER_QUERY, {"id": "gid://shopify/Order/1"})
        assert report.api_cost - again.api_cost == report.recovered * per_fetch > 0


def _ids_with_delivery(hub: Hub) -> set[str]:
    with hub.db.read() as conn:
        return {str(x) for x in conn.execute(select(webhook_deliveries.c.external_id)).scalars()}


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def _alert_mails(smtp: SmtpSink) -> list[Any]:
    """The alert e-mails, without the digest: a digest falls due when a period starts (00:00 UTC by
    default), so a run just after midnight receives one too, which is not what this test counts."""
    return [m for m in smtp.messages if "Digest:" not in str(m["Subject"])]


def test_expired_credentials_fail_within_one_interval_send_one_email_and_lose_nothing(hub: Hub, smtp: SmtpSink) -> None:
    shop_state, shop_app = shopify_sandbox(orders=20, seed=4, limits=False, realistic=False)
    ss_state, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600)
    hub.settings = hub.settings.model_copy(
        update={
            "poll_interval_s": 0.5,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "alert_recipients": "ops@example.com",
            "public_url": "http://hub.example.com",
        }
    )
    with serving(hub, shop_app, ss_app):
        assert wait(lambda: len(ss_state.orders_by_key()) == 20), "the store was not posted"
        shop_state.revoke()
        revoked_at = time.monotonic()
        backlog = [shop_state.add_order()["id"] for _ in range(7)]
        assert wait(lambda: _health(hub) == "failing", timeout=10)
        assert time.monotonic() - revoked_at < 0.5 + 1.0  # one interval (+ a tick and a request)
        assert wait(lambda: len(_alert_mails(smtp)) >= 1, timeout=10), "no alert e-mail arrived"
        time.sleep(2.0)  # several more failed polls and dispatches
        assert len(_alert_mails(smtp)) == 1
        msg = _alert_mails(smtp)[0]
        assert msg["To"] == "ops@example.com"
        assert "shop" in msg["Subject"] and "failing" in msg["Subject"]
        body = msg.get_content()
        assert "orderbridge connections update shop --credential" in body
        assert "http://hub.example.com/connections/by-name/shop" in body
        assert len(ss_state.orders_by_key()) == 20  # nothing new could be read

        shop_state.restore()
        assert wait(lambda: len(ss_state.orders_by_key()) == 27), "the backlog was not caught up"
        # the poster may post the backlog's batch before the sync that read it records its success
        assert wait(lambda: _health(hub) in ("healthy", "silent"), timeout=10), _health(hub)
    with hub.db.read() as conn:
        shop_id = tenant(hub).connection_named(conn, "shop").id
    assert all(ss_state.create_count(f"ob-{shop_id}-{i}") == 1 for i in backlog)
    assert all(v == 1 for v in (ss_state.create_count(k) for k in ss_state.orders_by_key()))
    assert len(_alert_mails(smtp)) == 1


@contextmanager
def serving(hub: Hub, shop_app: Any, ss_app: Any) -> Iterator[None]:
    """Both sandboxes on real ports, connected (``shop``, ``wh``) and mapped, and ``serve`` running
    (0.1 s ticks, housekeeping every 0.2 s) until the block ends; then it must stop."""
    stop = threading.Event()
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss:
        add_connection(tenant(hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN})
        add_connection(tenant(hub), "wh", "shipstation", ss.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"})
        map_all(hub)
        worker = threading.Thread(
            target=serve, args=(hub, stop), kwargs={"tick_s": 0.1, "housekeeping_every_s": 0.2}, daemon=True
        )
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join(timeout=30)
    assert not worker.is_alive(), "serve did not stop"


def _health(hub: Hub) -> str:
    with hub.db.read() as conn:
        return tenant(hub).connection_named(conn, "shop").health


def test_vanished_webhook_subscriptions_are_noticed_restored_and_alerted_once(hub: Hub) -> None:
    from orderbridge.services.notify import list_alerts
    from orderbridge.services.webhooks import check_subscriptions

    shop_state, shop_app = shopify_sandbox(orders=0, seed=2, limits=False, api_secret=SECRET)
    with run_in_thread(shop_app) as shop:
        add_connection(tenant(hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN, "api_secret": SECRET})
        hub.settings = hub.settings.model_copy(update={"public_url": "http://hub.example.com"})
        register_webhooks(tenant(hub), cid(hub, "shop"))
        assert check_subscriptions(tenant(hub)) == []
        shop_state.disable_webhooks()  # the channel dropped them, and said nothing
        assert check_subscriptions(tenant(hub)) == ["shop"]
        assert len(shop_state.webhook_dispatcher.subscriptions()) == len(
            register_webhooks(tenant(hub), cid(hub, "shop"))
        )
        (alert,) = list_alerts(tenant(hub))
        assert alert.kind == "webhooks_missing" and alert.state == "open" and "orders/create" in alert.subject
        assert check_subscriptions(tenant(hub)) == []
        assert [a.state for a in list_alerts(tenant(hub))] == ["resolved"]


class BlackHoleSmtp:
    """A TCP port that accepts connections and never says a word: a mail relay that hangs."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[Any] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_mail_relay_that_hangs_does_not_hold_up_polls(hub: Hub) -> None:
    from orderbridge.services import notify

    relay = BlackHoleSmtp()
    shop_state, shop_app = shopify_sandbox(orders=3, seed=6, limits=False, realistic=False)
    ss_state, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600)
    hub.settings = hub.settings.model_copy(
        update={
            "poll_interval_s": 0.3,
            "http_timeout_s": 8.0,  # smtplib waits this long for the relay's greeting, every pass
            "smtp_host": "127.0.0.1",
            "smtp_port": relay.port,
            "alert_recipients": "ops@example.com",
        }
    )
    with hub.db.transaction() as conn:  # an alert waiting to go out: the housekeeper tries to send it
        notify.raise_alert(
            conn, tenant(hub).tenant_id, key="test:hang", kind="test", subject="s", body="b", now=hub.now()
        )
    try:
        with serving(hub, shop_app, ss_app):
            assert wait(lambda: len(ss_state.orders_by_key()) == 3, timeout=20)
            assert wait(lambda: len(relay.held) >= 1, timeout=5), "the housekeeper never tried the relay"
            created = time.monotonic()
            shop_state.add_order()
            # while the housekeeper waits on the relay (8 s), the scheduler still polls and posts
            assert wait(lambda: len(ss_state.orders_by_key()) == 4, timeout=4.0)
            assert time.monotonic() - created < 4.0
            relay.close()  # the housekeeper's wait ends, so serve can stop promptly
    finally:
        relay.close()
