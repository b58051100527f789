"""The Shopify sandbox sends webhooks as Shopify does: signed, retried, given up, lost, in order per order.

Deliveries go over real HTTP to :class:`Receiver`, a tiny threaded ``http.server`` that records the
raw body and headers of every POST and answers 200, or 500 when told to.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from orderbridge.connectors.shopify.webhooks import verify_signature
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox
from orderbridge.sandboxes.shopify.webhooks import MAX_ATTEMPTS, RETRY_DELAYS
from tests.sandboxes.conftest import TOKEN, gql

SECRET = "shpss_webhook_test"
ALL_TOPICS = (
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_CANCELLED",
    "ORDERS_FULFILLED",
    "ORDERS_PARTIALLY_FULFILLED",
    "ORDERS_PAID",
    "ORDERS_EDITED",
    "ORDERS_DELETE",
)
CREATE = """mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id topic endpoint { ... on WebhookHttpEndpoint { callbackUrl } } }
    userErrors { field message } } }"""
LIST = """query($first: Int!, $after: String) { webhookSubscriptions(first: $first, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { id topic endpoint { ... on WebhookHttpEndpoint { callbackUrl } } } } }"""
DELETE = """mutation($id: ID!) { webhookSubscriptionDelete(id: $id) {
  deletedWebhookSubscriptionId userErrors { field message } } }"""


# --- the receiving end ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int  # what the receiver answered
    at: float  # time.monotonic() on arrival

    @property
    def webhook_id(self) -> str:
        return self.headers["x-shopify-webhook-id"]

    @property
    def topic(self) -> str:
        return self.headers["x-shopify-topic"]

    @property
    def order(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        return payload


class Receiver:
    """Records every POST; answers 500 to the first ``fail_first[path]`` requests on a path,
    always on ``down`` paths, and at random (seeded) with ``flaky`` probability."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.fail_first: dict[str, int] = {}
        self.down: set[str] = set()
        self.flaky = 0.0
        self._rng = random.Random(7)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._answer(self.path)
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            status,
                            time.monotonic(),
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def _answer(self, path: str) -> int:
        with self._lock:
            if path in self.down:
                return 500
            if self.fail_first.get(path, 0) > 0:
                self.fail_first[path] -= 1
                return 500
            return 500 if self.flaky and self._rng.random() < self.flaky else 200

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def on(self, path: str = "/hooks") -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def accepted(self, path: str = "/hooks") -> list[Received]:
        return [r for r in self.on(path) if r.status == 200]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@dataclass
class Store:
    state: ShopifyState
    client: httpx.Client

    def subscribe(self, url: str, *topics: str) -> list[dict[str, Any]]:
        out = []
        for topic in topics or ALL_TOPICS:
            body = gql(self.client, CREATE, {"topic": topic, "sub": {"callbackUrl": url, "format": "JSON"}})
            payload = body["data"]["webhookSubscriptionCreate"]
            assert payload["userErrors"] == [], payload
            out.append(payload["webhookSubscription"])
        return out

    def idle(self, timeout: float = 4.0) -> None:
        assert self.state.webhook_dispatcher.wait_idle(timeout), "deliveries still pending"

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [{"key": e.key, **e.data} for e in self.state.entries(kind)]


def make_store(**options: Any) -> Iterator[Store]:
    state, app = create_sandbox(
        orders=options.pop("orders", 0),
        seed=options.pop("seed", 3),
        limits=False,
        api_secret=SECRET,
        webhook_retry_scale=options.pop("webhook_retry_scale", 0.001),
        **options,
    )
    client = in_process_client(app)
    client.headers["X-Shopify-Access-Token"] = TOKEN
    try:
        yield Store(state, client)
    finally:
        state.close()
        client.close()


@pytest.fixture
def store() -> Iterator[Store]:
    yield from make_store()


# --- subscriptions -------------------------------------------------------------------------------


def test_a_topic_and_address_can_be_subscribed_once_listed_and_deleted(store: Store, receiver: Receiver) -> None:
    url = receiver.url()
    first = gql(store.client, CREATE, {"topic": "ORDERS_CREATE", "sub": {"callbackUrl": url, "format": "JSON"}})
    created = first["data"]["webhookSubscriptionCreate"]
    assert created["userErrors"] == []
    sub = created["webhookSubscription"]
    assert sub["topic"] == "ORDERS_CREATE" and sub["endpoint"] == {"callbackUrl": url}
    assert sub["id"].startswith("gid://shopify/WebhookSubscription/")
    assert first["extensions"]["cost"]["requestedQueryCost"] == 10

    again = gql(store.client, CREATE, {"topic": "ORDERS_CREATE", "sub": {"callbackUrl": url}})
    assert again["data"]["webhookSubscriptionCreate"] == {
        "webhookSubscription": None,
        "userErrors": [
            {
                "field": ["webhookSubscription", "callbackUrl"],
                "message": "Address for this topic has already been taken",
            }
        ],
    }
    other_topic = gql(store.client, CREATE, {"topic": "ORDERS_UPDATED", "sub": {"callbackUrl": url}})
    assert other_topic["data"]["webhookSubscriptionCreate"]["userErrors"] == []
    bad = gql(store.client, CREATE, {"topic": "ORDERS_PAID", "sub": {"callbackUrl": "not a url"}})
    assert bad["data"]["webhookSubscriptionCreate"]["userErrors"][0]["message"] == "Address is invalid"

    page = gql(store.client, LIST, {"first": 1})["data"]["webhookSubscriptions"]
    assert [n["id"] for n in page["nodes"]] == [sub["id"]] and page["pageInfo"]["hasNextPage"]
    rest = gql(store.client, LIST, {"first": 1, "after": page["pageInfo"]["endCursor"]})["data"]
    assert [n["topic"] for n in rest["webhookSubscriptions"]["nodes"]] == ["ORDERS_UPDATED"]
    assert not rest["webhookSubscriptions"]["pageInfo"]["hasNextPage"]

    deleted = gql(store.client, DELETE, {"id": sub["id"]})["data"]["webhookSubscriptionDelete"]
    assert deleted == {"deletedWebhookSubscriptionId": sub["id"], "userErrors": []}
    twice = gql(store.client, DELETE, {"id": sub["id"]})["data"]["webhookSubscriptionDelete"]
    assert twice["deletedWebhookSubscriptionId"] is None and twice["userErrors"]
    left = gql(store.client, LIST, {"first": 10})["data"]["webhookSubscriptions"]["nodes"]
    assert [n["topic"] for n in left] == ["ORDERS_UPDATED"]


def test_rest_webhooks_json_creates_lists_refuses_duplicates_and_deletes(store: Store, receiver: Receiver) -> None:
    base = "/admin/api/2026-04/webhooks"
    made = store.client.post(f"{base}.json", json={"webhook": {"topic": "orders/create", "address": receiver.url()}})
    assert made.status_code == 201
    hook = made.json()["webhook"]
    assert hook["topic"] == "orders/create" and hook["address"] == receiver.url() and hook["api_version"] == "2026-04"
    duplicate = store.client.post(
        f"{base}.json", json={"webhook": {"topic": "orders/create", "address": receiver.url()}}
    )
    assert duplicate.status_code == 422
    assert duplicate.json() == {"errors": {"address": ["for this topic has already been taken"]}}
    assert [w["id"] for w in store.client.get(f"{base}.json").json()["webhooks"]] == [hook["id"]]
    assert store.client.get(f"{base}/count.json").json() == {"count": 1}
    assert store.client.delete(f"{base}/{hook['id']}.json").status_code == 200
    assert store.client.delete(f"{base}/{hook['id']}.json").status_code == 404
    assert store.client.get(f"{base}.json").json() == {"webhooks": []}


# --- deliveries ----------------------------------------------------------------------------------


def test_a_delivery_is_the_order_json_signed_over_the_raw_body_with_every_header(
    store: Store, receiver: Receiver
) -> None:
    store.subscribe(receiver.url(), "ORDERS_CREATE")
    order = store.state.add_order()
    store.idle()

    [got] = receiver.on()
    assert verify_signature(SECRET, got.body, got.headers["x-shopify-hmac-sha256"])
    assert not verify_signature("shpss_another_app", got.body, got.headers["x-shopify-hmac-sha256"])
    assert not verify_signature(SECRET, got.body + b" ", got.headers["x-shopify-hmac-sha256"])
    # the order's REST JSON as REST serves it (Shopify's full order), and every field the store was given
    assert got.order == json.loads(store.state.rest_json(order["id"]))
    assert {
        k: got.order[k]
        for k in order
        if k not in ("billing_address", "shipping_address", "line_items", "shipping_lines")
    } == {
        k: v
        for k, v in json.loads(json.dumps(order)).items()
        if k not in ("billing_address", "shipping_address", "line_items", "shipping_lines")
    }
    assert got.topic == "orders/create"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-shopify-shop-domain"] == "orderbridge-sandbox.myshopify.com"
    assert got.headers["x-shopify-api-version"] == "2026-07"
    assert got.headers["x-shopify-webhook-id"] and got.headers["x-shopify-event-id"]
    triggered = datetime.fromisoformat(got.headers["x-shopify-triggered-at"])
    assert triggered.utcoffset() is not None and abs((datetime.now(UTC) - triggered).total_seconds()) < 30
    [sent] = store.kinds("webhook_sent")
    assert sent == {
        "key": str(order["id"]),
        "webhook_id": got.webhook_id,
        "topic": "orders/create",
        "attempt": 1,
        "status": 200,
    }


def test_writes_fire_the_topics_shopify_fires(store: Store, receiver: Receiver) -> None:
    store.subscribe(receiver.url())
    state = store.state
    unpaid = state.add_order(financial_status="pending")
    paid = state.add_order(line_items=[{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}])
    state.update_order(unpaid["id"], financial_status="paid")
    state.update_order(unpaid["id"], cancelled_at=datetime.now(UTC).isoformat(), cancel_reason="customer")
    line_a, line_b = (li["id"] for li in paid["line_items"])
    fo = f"gid://shopify/FulfillmentOrder/{paid['id']}"

    def fulfil(line_id: int, quantity: int) -> None:
        item = {"id": f"gid://shopify/FulfillmentOrderLineItem/{line_id}", "quantity": quantity}
        _, errors = state.create_fulfillment(
            [{"fulfillmentOrderId": fo, "fulfillmentOrderLineItems": [item]}], {"number": f"1Z{line_id}"}
        )
        assert errors == []

    fulfil(line_a, 1)
    fulfil(line_b, 2)
    store.idle()

    def topics(order_id: int) -> list[str]:
        return [r.topic for r in receiver.on() if r.order["id"] == order_id]

    assert topics(unpaid["id"]) == [
        "orders/create",
        "orders/paid",
        "orders/updated",
        "orders/cancelled",
        "orders/updated",
    ]
    assert topics(paid["id"]) == [
        "orders/create",
        "orders/paid",
        "orders/partially_fulfilled",
        "orders/updated",
        "orders/fulfilled",
        "orders/updated",
    ]
    assert [r.order["fulfillment_status"] for r in receiver.on() if r.order["id"] == paid["id"]][-1] == "fulfilled"


def test_retries_resend_the_original_payload_with_the_same_webhook_id_until_accepted(
    store: Store, receiver: Receiver
) -> None:
    receiver.fail_first["/hooks"] = 3
    store.subscribe(receiver.url(), "ORDERS_CREATE", "ORDERS_UPDATED")
    order = store.state.add_order()
    store.state.update_order(order["id"], note="changed while the create was failing")
    store.idle()

    creates = [r for r in receiver.on() if r.topic == "orders/create"]
    assert [r.status for r in creates] == [500, 500, 500, 200]
    assert len({r.webhook_id for r in creates}) == 1
    assert (
        len({r.body for r in creates}) == 1 and creates[0].order.get("note") != "changed while the create was failing"
    )
    assert len({r.headers["x-shopify-triggered-at"] for r in creates}) == 1
    [update] = [r for r in receiver.on() if r.topic == "orders/updated"]
    assert update.order["note"] == "changed while the create was failing"
    assert update.at > creates[-1].at and update.webhook_id != creates[0].webhook_id
    assert [e["attempt"] for e in store.kinds("webhook_retrying")] == [1, 2, 3]
    assert [(e["topic"], e["attempt"]) for e in store.kinds("webhook_sent")] == [
        ("orders/create", 4),
        ("orders/updated", 1),
    ]


def test_a_delivery_is_given_up_after_eight_retries_and_the_failing_subscription_removed(receiver: Receiver) -> None:
    scale = 0.00005  # the 13,900 s schedule in 0.7 s
    for store in make_store(webhook_retry_scale=scale):
        receiver.down.add("/down")
        [sub] = store.subscribe(receiver.url("/down"), "ORDERS_CREATE")
        order = store.state.add_order()
        store.idle()

        attempts = receiver.on("/down")
        assert len(attempts) == MAX_ATTEMPTS == 9
        assert len({a.webhook_id for a in attempts}) == 1
        gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
        assert all(gap >= delay * scale * 0.9 for gap, delay in zip(gaps, RETRY_DELAYS, strict=True))
        [failed] = store.kinds("webhook_failed")
        assert failed["key"] == str(order["id"]) and failed["attempt"] == 9 and failed["status"] == 500
        [removed] = store.kinds("webhook_subscription_removed")
        assert removed["key"] == sub["id"] and removed["address"] == receiver.url("/down")
        assert gql(store.client, LIST, {"first": 10})["data"]["webhookSubscriptions"]["nodes"] == []
        store.state.add_order()
        store.idle()
        assert len(receiver.on("/down")) == 9  # nobody is subscribed any more


def test_a_failing_endpoint_does_not_hold_up_the_others(receiver: Receiver) -> None:
    for store in make_store(webhook_retry_scale=0.01):
        receiver.down.add("/down")
        store.subscribe(receiver.url("/down"), "ORDERS_CREATE")
        store.subscribe(receiver.url("/up"), "ORDERS_CREATE")
        ids = [store.state.add_order()["id"] for _ in range(5)]
        deadline = time.monotonic() + 3
        while len(store.kinds("webhook_sent")) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(r.order["id"] for r in receiver.accepted("/up")) == ids
        assert store.state.webhook_dispatcher.queued() == 5  # the /down ones, waiting for retries
        assert not store.kinds("webhook_failed")


def test_wait_idle_does_not_wait_for_retries_due_after_its_timeout(receiver: Receiver) -> None:
    for store in make_store(webhook_retry_scale=1.0):
        receiver.down.add("/down")
        store.subscribe(receiver.url("/down"), "ORDERS_CREATE")
        store.state.add_order()
        started = time.monotonic()
        assert store.state.webhook_dispatcher.wait_idle(1.0)
        assert time.monotonic() - started < 1.0
        assert len(receiver.on("/down")) == 1 and store.state.webhook_dispatcher.queued() == 1
        assert [e["retry_in"] for e in store.kinds("webhook_retrying")] == [RETRY_DELAYS[0]]


def test_an_orders_deliveries_arrive_in_event_order_even_through_retries(store: Store, receiver: Receiver) -> None:
    # 1 in 5 answers fail; a lane's 8th straight failure (0.2**8) would outlast the wait below
    receiver.flaky = 0.2
    store.subscribe(receiver.url())
    state = store.state
    expected: dict[int, list[str]] = {}
    orders = [state.add_order() for _ in range(15)]
    for o in orders:
        expected[o["id"]] = ["orders/create", "orders/paid"]
    for round_ in range(3):
        for o in orders:
            state.update_order(o["id"], note=f"round {round_}")
            expected[o["id"]].append("orders/updated")
    for o in orders[::3]:
        state.update_order(o["id"], cancelled_at=datetime.now(UTC).isoformat())
        expected[o["id"]] += ["orders/cancelled", "orders/updated"]
    store.idle(30)

    assert any(r.status == 500 for r in receiver.on()), "nothing failed: the test proves nothing about retries"
    for order_id, topics in expected.items():
        mine = [r for r in receiver.accepted() if r.order["id"] == order_id]
        assert [r.topic for r in mine] == topics
        notes = [r.order.get("note") for r in mine if r.topic == "orders/updated"][:3]
        assert notes == ["round 0", "round 1", "round 2"]
    assert len(store.kinds("webhook_sent")) == sum(len(t) for t in expected.values())


# --- lost and switched-off webhooks -------------------------------------------------------------


def test_a_drop_rate_of_one_delivers_nothing_and_records_every_drop(store: Store, receiver: Receiver) -> None:
    store.subscribe(receiver.url(), "ORDERS_CREATE")
    store.state.set_webhook_drop_rate(1.0)
    ids = [str(store.state.add_order()["id"]) for _ in range(5)]
    store.idle()
    time.sleep(0.05)
    assert receiver.on() == []
    assert [e["key"] for e in store.kinds("webhook_dropped")] == ids
    assert not store.kinds("webhook_sent") and not store.kinds("webhook_retrying")


def test_a_tenth_is_dropped_the_same_way_every_run(receiver: Receiver) -> None:
    runs: list[list[str]] = []
    for path in ("/one", "/two"):
        for store in make_store(seed=9, webhook_drop_rate=0.1):
            store.subscribe(receiver.url(path), "ORDERS_CREATE")
            created = [str(store.state.add_order()["id"]) for _ in range(200)]
            store.idle(8)
            dropped = [e["key"] for e in store.kinds("webhook_dropped")]
            got = {str(r.order["id"]) for r in receiver.accepted(path)}
            assert 10 <= len(dropped) <= 32
            assert got == set(created) - set(dropped) and len(receiver.on(path)) == 200 - len(dropped)
            runs.append(dropped)
    assert runs[0] == runs[1]


def test_disabled_webhooks_deliver_nothing_more(store: Store, receiver: Receiver) -> None:
    store.subscribe(receiver.url(), "ORDERS_CREATE", "ORDERS_UPDATED")
    before = [store.state.add_order()["id"] for _ in range(3)]
    store.idle()
    assert store.state.disable_webhooks() == 2
    after = [store.state.add_order()["id"] for _ in range(3)]
    store.state.update_order(before[0], note="after the disable")
    store.idle()
    time.sleep(0.05)
    assert sorted(r.order["id"] for r in receiver.on()) == before  # different orders travel in parallel
    assert not {r.order["id"] for r in receiver.on()} & set(after)
    assert gql(store.client, LIST, {"first": 10})["data"]["webhookSubscriptions"]["nodes"] == []


def test_control_routes_switch_drops_and_disable_and_report(store: Store, receiver: Receiver) -> None:
    store.subscribe(receiver.url(), "ORDERS_CREATE")
    assert store.client.post("/_sandbox/webhooks/drop", json={"rate": 0.25}).json() == {"drop_rate": 0.25}
    assert store.client.post("/_sandbox/webhooks/drop", json={"rate": 2}).status_code == 422
    store.client.post("/_sandbox/webhooks/drop", json={"rate": 0})
    store.client.post("/_sandbox/orders", json={})
    store.idle()
    report = store.client.get("/_sandbox/webhooks").json()
    assert [s["topic"] for s in report["subscriptions"]] == ["orders/create"]
    assert report["counts"]["sent"] == 1 and report["queued"] == 0
    assert store.client.get("/_sandbox/state").json()["webhook_subscriptions"] == 1
    assert store.client.post("/_sandbox/webhooks/disable").json() == {"removed": 1}
    assert store.client.get("/_sandbox/webhooks").json()["subscriptions"] == []
    assert [e.kind for e in store.state.entries("webhook_sent")] == ["webhook_sent"]


# --- the audit listing's fast path ---------------------------------------------------------------


def test_a_stamp_only_orders_page_answers_exactly_as_the_full_order_path() -> None:
    state, app = create_sandbox(orders=300, seed=4, limits=False)
    state.update_order(next(iter(state.orders)), note="changed", name="#X-1")
    client = in_process_client(app)
    client.headers["X-Shopify-Access-Token"] = TOKEN
    fields = "id legacyResourceId name createdAt updatedAt"
    query = (
        "query($after: String) { orders(first: 250, after: $after, sortKey: UPDATED_AT) {"
        " pageInfo { hasNextPage endCursor } nodes { %s } } }"
    )

    def listing(selection: str) -> tuple[list[dict[str, Any]], list[int]]:
        nodes: list[dict[str, Any]] = []
        costs: list[int] = []
        after = None
        while True:
            body = gql(client, query % selection, {"after": after})
            page = body["data"]["orders"]
            nodes += page["nodes"]
            costs.append(body["extensions"]["cost"]["requestedQueryCost"])
            if not page["pageInfo"]["hasNextPage"]:
                return nodes, costs
            after = page["pageInfo"]["endCursor"]

    fast, fast_costs = listing(fields)
    full, full_costs = listing(fields + " email")  # one more field: every node is built in full
    client.close()
    assert len(fast) == 300 and fast == [{k: n[k] for k in fast[0]} for n in full]
    assert fast_costs == full_costs == [252, 252]
    assert any(n["name"] == "#X-1" for n in fast)
