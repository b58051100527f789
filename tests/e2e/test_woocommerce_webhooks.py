"""WooCommerce → the hub over real HTTP: signed webhooks in, forgeries out, the unsigned ping answered,
and the acceptance test of issue #16 item 4 — the store disables the webhook after 5 failed
deliveries mid-stream; the hub re-enables it, raises one alert, and the audit recovers every order
lost meanwhile, each posted exactly once (from the ShipStation sandbox's own ledger)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from orderbridge.connectors.woocommerce.webhooks import signature
from orderbridge.sandboxes.base import RunningSandbox, free_port, run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.woocommerce import WooState, create_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.notify import list_alerts
from orderbridge.services.posting import post_ready
from orderbridge.services.reconcile import reconcile
from orderbridge.services.webhooks import check_subscriptions, register_webhooks
from orderbridge.storage.tables import order_versions, orders, webhook_deliveries
from orderbridge.web.app import create_app
from tests.scoped import cid, tenant

HOOK_SECRET = "whsec_e2e_0123456789"
SKUS = ("MUG-1", "TEE-M", "CAP-2", "POSTER-A2")


@dataclass
class World:
    hub: Hub
    shop: WooState
    ss: ShipStationState
    port: int
    address: str = ""
    server: AbstractContextManager[RunningSandbox] | None = None
    created: list[str] = field(default_factory=list)

    def start_hub(self) -> None:
        self.server = run_in_thread(create_app(self.hub), port=self.port)  # type: ignore[arg-type]
        self.server.__enter__()

    def stop_hub(self) -> None:
        assert self.server is not None
        self.server.__exit__(None, None, None)
        self.server = None

    def ledger_ids(self) -> set[str]:
        with self.hub.db.read() as conn:
            return {str(x) for x in conn.execute(select(orders.c.external_id)).scalars()}

    def deliveries(self) -> int:
        with self.hub.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one())

    def order(self) -> str:
        external_id = str(self.shop.add_order(status="processing")["id"])
        self.created.append(external_id)
        return external_id


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    shop, shop_app = create_sandbox(orders=0)
    ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600)
    port = free_port()
    w = World(hub, shop, ss, port)
    hub.settings = hub.settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    with run_in_thread(shop_app) as shop_http, run_in_thread(ss_app) as ss_http:
        shop.site_url = shop_http.base_url
        credentials = {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox", "webhook_secret": HOOK_SECRET}
        add_connection(tenant(hub), "shop", "woocommerce", shop_http.base_url, credentials)
        ss_credentials = {"api_key": "ss_key", "api_secret": "ss_secret"}
        add_connection(tenant(hub), "wh", "shipstation", ss_http.base_url, ss_credentials)
        for sku in SKUS:
            set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "wh"))
        set_mapping(tenant(hub), "shipping", "*", "ups:ups_ground", cid(hub, "wh"))
        w.start_hub()
        w.address = f"http://127.0.0.1:{port}/webhooks/woocommerce/{cid(hub, 'shop')}"
        try:
            yield w
        finally:
            if w.server is not None:
                w.stop_hub()


def _signed(body: dict[str, Any], secret: str = HOOK_SECRET, delivery: str = "d-1") -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "content-type": "application/json",
        "x-wc-webhook-topic": "order.created",
        "x-wc-webhook-resource": "order",
        "x-wc-webhook-event": "created",
        "x-wc-webhook-id": "1",
        "x-wc-webhook-delivery-id": delivery,
        "x-wc-webhook-signature": signature(secret, raw),
    }
    return headers, raw


def test_signed_deliveries_are_stored_forgeries_refused_and_the_ping_answered_without_storing(world: World) -> None:
    subs = register_webhooks(tenant(world.hub), cid(world.hub, "shop"))
    assert {s.topic for s in subs} == {"order.created", "order.updated", "order.deleted"}
    assert all(s.active and s.address == world.address for s in subs)
    assert world.shop.wait_idle()
    pings = world.shop.entries("webhook_ping")
    assert len(pings) == 3 and all(p.data["status"] == 200 for p in pings), "the unsigned ping is answered 200"
    assert world.deliveries() == 0 and world.ledger_ids() == set(), "a ping stores nothing"

    delivered = world.order()
    assert world.shop.wait_idle()
    (sent,) = world.shop.entries("webhook_delivery")
    assert sent.data["status"] == 200 and sent.data["order"] == int(delivered)
    assert world.ledger_ids() == {delivered}

    ghost = {**world.shop.view(int(delivered)), "id": 990001, "number": "990001"}
    headers, body = _signed(ghost)
    forgeries = {
        "bad signature": {**headers, "x-wc-webhook-signature": "AAAA" + headers["x-wc-webhook-signature"][4:]},
        "missing signature": {k: v for k, v in headers.items() if k != "x-wc-webhook-signature"},
        "wrong secret": _signed(ghost, secret="not-the-secret")[0],
    }
    for why, forged in forgeries.items():
        answer = httpx.post(world.address, content=body, headers=forged, timeout=10)
        assert answer.status_code == 401, why
    tampered = httpx.post(world.address, content=body + b" ", headers=headers, timeout=10)
    assert tampered.status_code == 401
    assert world.ledger_ids() == {delivered} and world.deliveries() == 1, "nothing forged is stored"

    first = httpx.post(world.address, content=body, headers=headers, timeout=10)
    replay = httpx.post(world.address, content=body, headers=headers, timeout=10)
    assert (first.status_code, first.json()["outcome"]) == (200, "inserted")
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    with world.hub.db.read() as conn:
        versions = conn.execute(
            select(func.count())
            .select_from(order_versions)
            .join(orders, orders.c.id == order_versions.c.order_id)
            .where(orders.c.external_id == "990001")
        ).scalar_one()
    assert versions == 1 and world.deliveries() == 2, "the replay stored nothing"


def test_a_webhook_disabled_after_5_failures_is_re_enabled_alerted_once_and_the_audit_recovers_the_rest(
    world: World,
) -> None:
    hub, shop = world.hub, world.shop
    register_webhooks(tenant(hub), cid(hub, "shop"))
    before = [world.order() for _ in range(6)]
    assert shop.wait_idle()
    assert world.ledger_ids() == set(before)

    world.stop_hub()  # the hub is unreachable: every delivery fails
    outage = [world.order() for _ in range(8)]
    assert shop.wait_idle(30)
    failed = [e for e in shop.entries("webhook_delivery") if not e.data["ok"]]
    assert len(failed) == 5, "deliveries stop at the fifth failure"
    (disabled,) = shop.entries("webhook_disabled")
    assert shop.webhooks[int(disabled.key)].topic == "order.created"
    assert len(shop.entries("webhook_not_sent")) == 3
    world.start_hub()
    after = [world.order() for _ in range(2)]  # disabled: never delivered, never redelivered
    assert shop.wait_idle()
    assert world.ledger_ids() == set(before)

    assert check_subscriptions(tenant(hub)) == ["shop"]  # noticed, re-enabled (and pinged)
    (alert,) = list_alerts(tenant(hub))
    assert alert.kind == "webhooks_missing" and alert.state == "open" and "order.created" in alert.subject
    assert {h.status for h in shop.webhooks.values()} == {"active"}
    assert check_subscriptions(tenant(hub)) == []
    assert [a.state for a in list_alerts(tenant(hub))] == ["resolved"], "one alert, resolved once re-enabled"
    live = world.order()  # delivered again
    assert shop.wait_idle()
    assert live in world.ledger_ids()

    report = reconcile(tenant(hub), cid(hub, "shop"), since=hub.now() - timedelta(hours=1))
    assert report.ok, report.error
    lost = set(outage) | set(after)
    assert (report.channel_count, report.ledger_count, report.missing, report.recovered) == (17, 17, 0, len(lost))
    assert {f["external_id"] for f in report.findings if f["action"] == "recovered"} == lost

    post_ready(tenant(hub), cid(hub, "wh"))
    shop_id = cid(hub, "shop")
    expected = {f"ob-{shop_id}-{i}" for i in world.created}
    assert set(world.ss.orders_by_key()) == expected
    assert all(world.ss.create_count(k) == 1 for k in expected), "each posted exactly once"
    again = reconcile(tenant(hub), cid(hub, "shop"), since=hub.now() - timedelta(hours=1))
    assert (again.recovered, again.missing) == (0, 0)
    post_ready(tenant(hub), cid(hub, "wh"))
    assert all(world.ss.create_count(k) == 1 for k in expected)
