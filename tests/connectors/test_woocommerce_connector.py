"""The WooCommerce channel against its sandbox: the shared contract (over OAuth 1.0a and over Basic on
HTTPS), WooCommerce's authentication rules, the listing window and its cursor, the batch endpoint."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from orderbridge.connectors.woocommerce import WooCommerceChannel
from orderbridge.connectors.woocommerce.client import WooClient
from orderbridge.connectors.woocommerce.webhooks import ADAPTER, signature
from orderbridge.domain.channel_rules import ChannelAction
from orderbridge.domain.order import Order
from orderbridge.domain.push_plan import PlannedCall
from orderbridge.errors import AuthFailed, HoldOrder, RemoteUnavailable, SettingsError
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.woocommerce import create_sandbox, tls
from tests.connectors._woocommerce_env import CREDENTIALS, KEY, LONG_AGO, SECRET, WooEnv, make_env
from tests.connectors.contract_channel import ChannelContract


class TestWooCommerceOverOAuth(ChannelContract):
    @pytest.fixture
    def channel_env(self) -> WooEnv:
        env = make_env()
        assert env.connector.client.auth_scheme == "oauth1"
        return env


class TestWooCommerceOverHttpsBasic(ChannelContract):
    @pytest.fixture
    def channel_env(self) -> WooEnv:
        env = make_env(base_url="https://sandbox.local")
        assert env.connector.client.auth_scheme == "basic"
        return env


# --- authentication ---------------------------------------------------------------------------------


def _raw_client(env: WooEnv, **kw: Any) -> WooClient:
    http = env.connector.client._http
    return WooClient(env.base_url, KEY, kw.pop("secret", SECRET), http=http, sleep=lambda _s: None, **kw)


def test_oauth_requests_are_verified_and_every_request_is_ledgered_with_its_auth() -> None:
    env = make_env(orders=3)
    assert "3 orders" in env.connector.check()
    (entry,) = env.state.entries("request")
    assert entry.data["auth"] == "oauth1" and entry.data["status"] == 200
    sha1 = make_env(orders=1, signature_method="HMAC-SHA1")
    assert "1 orders" in sha1.connector.check()


def test_a_bad_oauth_signature_is_refused_with_woocommerces_error_and_a_hint() -> None:
    env = make_env(orders=1)
    with pytest.raises(AuthFailed) as refused:
        _raw_client(env, secret="cs_wrong").get("/orders")
    assert "provided signature does not match" in refused.value.message
    assert "consumer secret" in refused.value.hint
    (rejected,) = env.state.entries("rejected")
    assert rejected.data["code"] == "woocommerce_rest_authentication_error"


def test_a_stale_timestamp_is_refused_naming_the_clock() -> None:
    env = make_env(orders=1)
    stale = datetime.now(UTC) - timedelta(minutes=16)
    client = _raw_client(env, clock=lambda: stale.timestamp())
    with pytest.raises(AuthFailed) as refused:
        client.get("/orders")
    assert "Invalid timestamp" in refused.value.message and "clock" in refused.value.hint
    within = _raw_client(env, clock=lambda: (datetime.now(UTC) - timedelta(minutes=14)).timestamp())
    assert within.get("/orders").status == 200


def test_a_reused_nonce_is_refused() -> None:
    env = make_env(orders=1)
    client = _raw_client(env)
    url = client.signed_url("GET", f"{env.base_url}/wp-json/wc/v3/orders", nonce="n" * 32)
    http = env.connector.client._http
    assert http.get(url).status_code == 200
    again = http.get(url)
    assert again.status_code == 401 and "nonce has already been used" in again.json()["message"]


def test_basic_credentials_over_plain_http_are_ignored_as_woocommerce_ignores_them() -> None:
    env = make_env(orders=1)
    http = env.connector.client._http
    answer = http.get(f"{env.base_url}/wp-json/wc/v3/orders", auth=(KEY, SECRET))
    assert answer.status_code == 401 and answer.json()["code"] == "woocommerce_rest_cannot_view"


def test_basic_auth_over_real_https_with_the_sandboxes_self_signed_certificate(tmp_path: Any) -> None:
    state, app = create_sandbox(orders=5)
    cert = tls.self_signed(tmp_path)
    with tls.run_in_thread(app, cert) as served:
        assert served.base_url.startswith("https://")
        untrusted = WooCommerceChannel(served.base_url, CREDENTIALS, {}, http=httpx.Client(), sleep=lambda _s: None)
        with pytest.raises(RemoteUnavailable, match=r"could not be reached.*CERTIFICATE_VERIFY_FAILED"):
            untrusted.check()
        trusted = WooCommerceChannel(served.base_url, CREDENTIALS, {"ca_file": str(cert.cert_file)})
        try:
            assert "5 orders" in trusted.check() and "basic auth" in trusted.check()
            assert len([r for b in trusted.list_changed(LONG_AGO) for r in b.records]) == 5
        finally:
            trusted.close()
    assert {e.data["auth"] for e in state.entries("request")} == {"basic"}


def test_settings_the_store_cannot_serve_are_refused() -> None:
    with pytest.raises(SettingsError, match="per_page"):
        WooCommerceChannel("http://x", CREDENTIALS, {"per_page": 250})
    with pytest.raises(SettingsError, match="consumer_key"):
        WooCommerceChannel("http://x", {"consumer_key": "ck"}, {})


# --- the listing window and its cursor -------------------------------------------------------------------


def test_orderby_modified_is_not_a_v3_option_so_the_connector_never_asks_for_it() -> None:
    env = make_env(orders=1)
    refused = _raw_client(env).get("/orders", {"orderby": "modified"})
    assert refused.status == 400 and refused.error is not None and refused.error.code == "rest_invalid_param"
    list(env.connector.list_changed(LONG_AGO))
    assert env.state.entries("rejected") == [env.state.entries("rejected")[0]]  # only the probe above


def test_batches_come_in_modification_order_though_pages_come_by_id() -> None:
    env = make_env(orders=30)
    # the oldest id becomes the newest change: page 1 by id holds the newest modification time
    first = min(env.state.orders)
    env.update_order(str(first), customer_note="changed")
    batches = list(env.connector.list_changed(LONG_AGO))
    records = [r for b in batches for r in b.records]
    assert records[-1].external_id == str(first)
    assert [r.updated_at for r in records] == sorted(r.updated_at for r in records)
    # a sync that stops after any batch never stored a cursor past an unread order
    for i, batch in enumerate(batches):
        later = [r for b in batches[i + 1 :] for r in b.records]
        assert all(r.updated_at >= batch.cursor_after for r in later)


def test_a_window_over_the_limit_is_halved_read_alone_and_nothing_is_lost_or_doubled() -> None:
    env = make_env(orders=60, window_max_orders=15)
    served: list[int] = []
    pages = env.connector._pages

    def counted(params: dict[str, Any]) -> Iterator[list[Any]]:
        for page in pages(params):
            served.append(len(page))
            yield page

    env.connector._pages = counted  # type: ignore[method-assign]
    listing = env.connector.list_changed(None)
    first = next(listing)
    held = sum(served)
    records = first.records + [r for b in listing for r in b.records]
    assert sorted(int(r.external_id) for r in records) == sorted(env.state.orders)
    assert [r.updated_at for r in records] == sorted(r.updated_at for r in records)
    assert held <= 15 and sum(served) == 60, "one window at a time is read and handed over"


def test_an_order_changed_while_the_listing_runs_is_listed_again_by_the_next_sync() -> None:
    env = make_env(orders=25)
    listing = env.connector.list_changed(LONG_AGO)
    first = next(listing)
    changed = str(max(env.state.orders))
    env.update_order(changed, customer_note="edited mid-sync")
    rest = list(listing)
    cursor = (rest[-1] if rest else first).cursor_after
    again = {r.external_id: r for b in env.connector.list_changed(cursor) for r in b.records}
    assert changed in again and isinstance(again[changed], Order) and again[changed].note == "edited mid-sync"


def test_the_mapper_reads_gmt_times_decimal_money_and_the_status() -> None:
    env = make_env(orders=0)
    external_id = env.add_order(status="on-hold")
    order = env.connector.fetch_order(external_id)
    assert isinstance(order, Order)
    raw = env.state.orders[int(external_id)]
    assert order.updated_at == raw["date_modified"] and order.updated_at.tzinfo is UTC
    assert order.channel_state == "on-hold" and order.total.amount == __import__("decimal").Decimal(raw["total"])
    skipped = env.connector.declaration.download_rules(None).skip_reasons(order)
    assert [(r.code, r.value) for r in skipped] == [("channel_state_not_downloaded", "on-hold")]
    assert "processing" in skipped[0].message


# --- webhooks: the ping and WooCommerce's repeating delivery ids ---------------------------------------------


def test_the_unsigned_ping_is_let_through_as_a_topic_the_hub_ignores_and_nothing_else_unsigned_is() -> None:
    from orderbridge.connectors.base import WebhookSource

    source = WebhookSource("shop", "http://sandbox.local", "s3cret", {})
    ping = {"content-type": "application/x-www-form-urlencoded"}
    assert ADAPTER.verify(source, ping, b"webhook_id=12") == ""
    delivery = ADAPTER.parse(ping, b"webhook_id=12")
    assert delivery.topic not in ADAPTER.topics and delivery.record is None
    assert ADAPTER.verify(source, ping, b'{"id": 12}')
    assert ADAPTER.verify(source, {"x-wc-webhook-topic": "order.created"}, b"webhook_id=12")


def test_two_events_in_one_second_with_one_delivery_id_are_two_deliveries_and_a_replay_is_one() -> None:
    env = make_env(orders=2)
    a, b = sorted(env.state.orders)
    ha, body_a = env.signed_delivery(str(a))
    hb, body_b = env.signed_delivery(str(b))
    hb["x-wc-webhook-delivery-id"] = ha["x-wc-webhook-delivery-id"]  # WooCommerce: hash(webhook id, second)
    da, db = ADAPTER.parse(ha, body_a), ADAPTER.parse(hb, body_b)
    assert da.webhook_id != db.webhook_id
    assert ADAPTER.parse(ha, body_a).webhook_id == da.webhook_id
    assert signature(env.webhook_secret, body_a) == ha["x-wc-webhook-signature"]


# --- the batch endpoint -----------------------------------------------------------------------------------


def test_many_completions_go_in_batch_requests_of_at_most_100() -> None:
    env = make_env(orders=0)
    ids = [env.add_order(status="processing") for _ in range(130)]
    ids.append(env.add_order(status="processing"))
    calls = [(i, PlannedCall(ChannelAction.SHIP, "PUT /orders/{id} status=completed")) for i in ids]
    calls.append(("999999", PlannedCall(ChannelAction.SHIP, "PUT /orders/{id} status=completed")))
    results = env.connector.perform_many(calls)
    assert results[:-1] == ids
    assert isinstance(results[-1], HoldOrder) and "Invalid ID" in results[-1].message
    assert all(env.state.orders[int(i)]["status"] == "completed" for i in ids)
    batches = env.state.entries("batch")
    assert [e.data["updates"] for e in batches] == [100, 32]
    assert [e for e in env.state.entries("request") if e.key.endswith("/orders/batch")] and not [
        e for e in env.state.entries("request") if e.data["method"] == "PUT"
    ]


@pytest.fixture
def served_env() -> Iterator[WooEnv]:
    yield make_env(orders=1)


def test_concurrent_signed_requests_never_share_a_nonce(served_env: WooEnv) -> None:
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(10):
                served_env.connector.check()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and not served_env.state.entries("rejected")
    _ = in_process_client  # the env's transport


def test_an_order_deleted_delivery_names_the_order_and_carries_no_record() -> None:
    body = b'{"id":4321}'
    headers = {"x-wc-webhook-topic": "order.deleted", "x-wc-webhook-delivery-id": "abc",
               "x-wc-webhook-signature": signature("s", body)}  # fmt: skip
    delivery = ADAPTER.parse(headers, body)
    assert (delivery.topic, delivery.external_id, delivery.record) == ("order.deleted", "4321", None)
    with pytest.raises(ValueError, match="Delivery-ID"):
        ADAPTER.parse({"x-wc-webhook-topic": "order.updated"}, body)
