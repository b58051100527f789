"""The Shopify channel manages webhook subscriptions and lists order stamps for audits, against the sandbox."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orderbridge.connectors.base import AuditableChannel, Capability, OrderStamp, WebhookChannel
from orderbridge.connectors.shopify import ShopifyChannel
from orderbridge.connectors.shopify.mapper import order_from_rest
from orderbridge.connectors.shopify.webhooks import ENUM_TO_TOPIC, TOPIC_TO_ENUM, verify_signature
from orderbridge.domain.order import Order
from orderbridge.errors import FixConfiguration
from orderbridge.sandboxes.base import ASGIApp, build_app, in_process_client, run_in_thread
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox
from orderbridge.sandboxes.shopify.app import routes
from orderbridge.sandboxes.shopify.state import local_iso
from tests.sandboxes.test_shopify_webhooks import Receiver

BASE = "http://sandbox.local"
SECRET = "shpss_connector_test"
HUB = "https://hub.example.com/webhooks/shopify/shop"
OTHER = "https://other.example.com/hooks"


def sandbox_channel(app: ASGIApp, **settings: Any) -> ShopifyChannel:
    http = in_process_client(app, BASE)
    return ShopifyChannel(BASE, {"access_token": "shpat_sandbox"}, settings, http=http, sleep=lambda _s: None)


@dataclass
class Env:
    state: ShopifyState
    app: ASGIApp
    connector: ShopifyChannel

    def channel(self, **settings: Any) -> ShopifyChannel:
        return sandbox_channel(self.app, **settings)


def make_env(state: ShopifyState) -> Env:
    app = build_app(state, routes(state))
    return Env(state, app, sandbox_channel(app))


@pytest.fixture
def env() -> Iterator[Env]:
    e = make_env(ShopifyState(orders=0, seed=2, limits=True, api_secret=SECRET))
    yield e
    e.connector.close()
    e.state.close()


# --- the signature helper ------------------------------------------------------------------------


def test_a_signature_verifies_only_for_the_same_secret_and_the_same_bytes() -> None:
    body = b'{"id":5100000001,"note":"caf\xc3\xa9"}'
    good = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert verify_signature(SECRET, body, good)
    assert verify_signature(SECRET, body, f" {good}\n")  # header whitespace is not part of the value
    assert not verify_signature("shpss_other", body, good)
    assert not verify_signature(SECRET, body.replace(b"5100000001", b"5100000002"), good)
    assert not verify_signature(SECRET, b'{"note":"caf\xc3\xa9","id":5100000001}', good)  # same JSON, other bytes
    for garbage in (None, "", "not base64 at all", good[:-4], "é" * 44, good.lower()):
        assert not verify_signature(SECRET, body, garbage)
    assert not verify_signature("", body, good)


def test_topic_names_translate_both_ways_for_every_topic_the_channel_subscribes() -> None:
    assert set(ShopifyChannel.webhook_topics) == set(TOPIC_TO_ENUM) - {"orders/edited"}  # edits carry no order
    assert all(ENUM_TO_TOPIC[TOPIC_TO_ENUM[t]] == t for t in ShopifyChannel.webhook_topics)
    assert TOPIC_TO_ENUM["orders/partially_fulfilled"] == "ORDERS_PARTIALLY_FULFILLED"


# --- subscriptions -------------------------------------------------------------------------------


def test_the_channel_declares_and_implements_webhooks_and_stamp_listing(
    env: Env,
) -> None:
    connector = env.connector
    assert {Capability.WEBHOOKS, Capability.LIST_ORDER_STAMPS} <= connector.declaration.capabilities
    assert isinstance(connector, WebhookChannel) and isinstance(connector, AuditableChannel)


def test_registering_twice_subscribes_every_topic_once(env: Env) -> None:
    state, connector = env.state, env.connector
    first = connector.register_webhooks(HUB)
    assert [s.topic for s in first] == list(connector.webhook_topics)
    assert {s.address for s in first} == {HUB} and len({s.id for s in first}) == 7
    again = connector.register_webhooks(HUB)
    assert again == first
    assert sorted(connector.list_webhooks(), key=lambda s: s.topic) == sorted(first, key=lambda s: s.topic)
    assert len(state.webhook_dispatcher.subscriptions()) == 7


def test_registering_recreates_only_what_shopify_lost(env: Env) -> None:
    state, connector = env.state, env.connector
    first = {s.topic: s for s in connector.register_webhooks(HUB)}
    lost = first["orders/paid"]
    assert state.webhook_dispatcher.unsubscribe(int(lost.id.rsplit("/", 1)[-1]))
    again = {s.topic: s for s in connector.register_webhooks(HUB)}
    assert again["orders/paid"].id != lost.id
    assert {t: s.id for t, s in again.items() if t != "orders/paid"} == {
        t: s.id for t, s in first.items() if t != "orders/paid"
    }
    state.disable_webhooks()
    assert len(connector.register_webhooks(HUB)) == 7


def test_removing_by_address_leaves_other_addresses_and_none_removes_all(
    env: Env,
) -> None:
    connector = env.connector
    connector.register_webhooks(HUB)
    connector.register_webhooks(OTHER)
    assert len(connector.list_webhooks()) == 14
    assert connector.remove_webhooks(HUB) == 7
    assert {s.address for s in connector.list_webhooks()} == {OTHER}
    assert connector.remove_webhooks(HUB) == 0
    assert connector.remove_webhooks() == 7
    assert connector.list_webhooks() == []


def test_an_address_shopify_refuses_is_a_configuration_problem(env: Env) -> None:
    connector = env.connector
    with pytest.raises(FixConfiguration) as caught:
        connector.register_webhooks("hub.example.com/no-scheme")
    assert caught.value.code == "shopify_webhook_rejected" and "Address is invalid" in str(caught.value)


def test_a_registered_address_receives_signed_orders_the_hub_can_read() -> None:
    state, app = create_sandbox(orders=0, seed=2, limits=False, api_secret=SECRET)
    receiver = Receiver()
    receiver.thread.start()
    try:
        with run_in_thread(app) as sandbox:
            connector = ShopifyChannel(sandbox.base_url, {"access_token": "shpat_sandbox"}, {})
            connector.register_webhooks(receiver.url())
            order = state.add_order(note="over real HTTP")
            assert state.webhook_dispatcher.wait_idle(4)
            connector.close()
        got = {r.topic: r for r in receiver.accepted()}
        assert set(got) == {"orders/create", "orders/paid"}
        for delivery in got.values():
            assert verify_signature(SECRET, delivery.body, delivery.headers["x-shopify-hmac-sha256"])
        parsed = order_from_rest(got["orders/create"].order)
        assert isinstance(parsed, Order)
        assert parsed.external_id == str(order["id"]) and parsed.note == "over real HTTP"
    finally:
        state.close()
        receiver.server.shutdown()
        receiver.server.server_close()


# --- order stamps --------------------------------------------------------------------------------


def stamps(connector: ShopifyChannel, since: datetime, until: datetime) -> tuple[list[OrderStamp], int, list[int]]:
    found: list[OrderStamp] = []
    costs: list[int] = []
    requests = 0
    for batch in connector.list_order_stamps(since, until):
        found += batch.stamps
        requests += batch.requests
        costs.append(batch.cost)
    return found, requests, costs


def test_stamps_are_exactly_the_orders_updated_in_the_window_with_their_times() -> None:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    state = ShopifyState(orders=3000, seed=8, now=now, limits=True)
    state.clock = lambda: now
    moved = min(state.orders)  # the oldest order, changed so that its update is the window's end
    state.update_order(moved, note="touched", updated_at=local_iso(int((now - timedelta(days=2)).timestamp())))
    connector = make_env(state).connector

    since, until = now - timedelta(days=9, hours=3), now - timedelta(days=2)
    found, requests, costs = stamps(connector, since, until)
    connector.close()

    expected = {
        str(s.id): s.updated for s in state.orders.values() if since.timestamp() <= s.updated <= until.timestamp()
    }
    assert 300 < len(expected) < 750 and str(moved) in expected
    assert len(found) == len(expected) and {f.external_id for f in found} == set(expected)
    assert all(f.updated_at == datetime.fromtimestamp(expected[f.external_id], UTC) for f in found)
    assert all(f.updated_at.tzinfo is not None and f.number.startswith("#") for f in found)
    assert [f.updated_at for f in found] == sorted(f.updated_at for f in found)
    assert requests == len(costs) == math.ceil(len(expected) / 250)
    assert costs == [252] * requests


def test_stamp_bounds_are_inclusive_and_widened_to_whole_seconds() -> None:
    state = ShopifyState(orders=0, seed=2, limits=False)
    edge = datetime(2025, 5, 1, 8, 30, 15, tzinfo=UTC)
    inside = state.add_order(updated_at=local_iso(int(edge.timestamp())))
    state.add_order(updated_at=local_iso(int(edge.timestamp()) + 1))
    state.add_order(updated_at=local_iso(int(edge.timestamp()) - 1))
    connector = make_env(state).connector
    exact, _, _ = stamps(connector, edge, edge)
    # [edge + 0.0004 s, edge − 0.000001 s] widens to [edge, edge]: second precision, nothing at the edge lost
    fractional, _, _ = stamps(connector, edge + timedelta(microseconds=400), edge - timedelta(microseconds=1))
    empty, requests, costs = stamps(connector, edge + timedelta(hours=1), edge + timedelta(hours=2))
    connector.close()
    assert [s.external_id for s in exact] == [str(inside["id"])]
    assert [s.external_id for s in fractional] == [str(inside["id"])]
    assert (empty, requests, costs) == ([], 1, [252])


def test_the_stamp_page_is_the_largest_the_cost_cap_allows(env: Env) -> None:
    for _ in range(205):
        env.state.add_order()
    small = env.channel(max_query_cost=102, lines_per_order_hint=1)  # 2 + 100 × 1
    assert small.stamp_page_size == 100
    since = datetime.now(UTC) - timedelta(hours=1)
    found, requests, costs = stamps(small, since, datetime.now(UTC) + timedelta(seconds=1))
    small.close()
    assert len({f.external_id for f in found}) == len(found) == 205
    assert requests == 3 and costs == [102, 102, 102]
    assert env.connector.stamp_page_size == 250
    assert env.channel(max_query_cost=100_000).stamp_page_size == 250
    assert env.channel(max_page_size=2).stamp_page_size == 2


def test_a_hundred_thousand_stamps_in_sixty_days_list_in_seconds() -> None:
    now = datetime.now(UTC)
    env = make_env(ShopifyState(orders=100_000, seed=3, limits=False, now=now))
    started = time.perf_counter()
    found, requests, costs = stamps(env.connector, now - timedelta(days=60), now)
    elapsed = time.perf_counter() - started
    env.connector.close()
    assert len({s.external_id for s in found}) == len(found) == 100_000
    assert requests == 400 and sum(costs) == 400 * 252
    assert elapsed < 10, f"{elapsed:.1f} s"  # measured ≈ 1 s; the full-order path took ≈ 12 s
