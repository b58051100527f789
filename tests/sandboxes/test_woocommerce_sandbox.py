"""The WooCommerce sandbox answers as WooCommerce does: parameters it refuses, its time filters, its
paging headers, the batch limit, strict status moves, and webhooks that are pinged, signed, disabled
after 5 consecutive failures and never redelivered."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge.sandboxes.base import in_process_client, run_in_thread
from orderbridge.sandboxes.woocommerce import WooState, create_sandbox

API = "/wp-json/wc/v3"


@pytest.fixture
def store() -> Iterator[tuple[WooState, httpx.Client]]:
    state, app = create_sandbox(orders=25, timezone="Europe/Paris")
    client = in_process_client(app, "https://sandbox.local")
    client.auth = ("ck_sandbox", "cs_sandbox")
    yield state, client
    client.close()


def test_refused_parameters_have_woocommerces_error_shape(store: tuple[WooState, httpx.Client]) -> None:
    state, client = store
    for params, name in (({"per_page": 101}, "per_page"), ({"orderby": "modified"}, "orderby"),
                         ({"status": "shipped"}, "status"), ({"order": "up"}, "order")):  # fmt: skip
        answer = client.get(f"{API}/orders", params=params)
        assert answer.status_code == 400
        body = answer.json()
        assert body["code"] == "rest_invalid_param" and body["data"]["status"] == 400 and name in body["data"]["params"]
    assert [e.data["code"] for e in state.entries("rejected")] == ["rest_invalid_param"] * 4
    missing = client.get(f"{API}/orders/424242")
    assert missing.status_code == 404 and missing.json()["code"] == "woocommerce_rest_shop_order_invalid_id"


def test_paging_headers_and_links(store: tuple[WooState, httpx.Client]) -> None:
    _state, client = store
    page = client.get(f"{API}/orders", params={"per_page": 10, "page": 2})
    assert (page.headers["X-WP-Total"], page.headers["X-WP-TotalPages"]) == ("25", "3")
    assert 'rel="prev"' in page.headers["Link"] and 'rel="next"' in page.headers["Link"]
    assert "page=3" in page.headers["Link"] and len(page.json()) == 10
    last = client.get(f"{API}/orders", params={"per_page": 10, "page": 3})
    assert 'rel="next"' not in last.headers["Link"] and len(last.json()) == 5


def test_modified_after_is_exclusive_and_read_in_the_sites_timezone_unless_dates_are_gmt(
    store: tuple[WooState, httpx.Client],
) -> None:
    state, client = store
    target = state.orders[min(state.orders)]
    modified: datetime = target["date_modified"]
    gmt = modified.strftime("%Y-%m-%dT%H:%M:%S")
    ids = lambda answer: {o["id"] for o in answer.json()}  # noqa: E731
    params = {"per_page": 100, "dates_are_gmt": "true"}
    assert target["id"] not in ids(client.get(f"{API}/orders", params={**params, "modified_after": gmt}))
    before = (modified - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert target["id"] in ids(client.get(f"{API}/orders", params={**params, "modified_after": before}))
    # the same wall time without dates_are_gmt is Paris time: an hour (or two) earlier in UTC
    local = client.get(f"{API}/orders", params={"per_page": 100, "modified_after": gmt})
    assert target["id"] in ids(local)
    assert {o["date_modified_gmt"] for o in client.get(f"{API}/orders", params={"_fields": "date_modified_gmt"}).json()}


def test_status_any_leaves_out_the_trash_and_the_batch_takes_at_most_100(
    store: tuple[WooState, httpx.Client],
) -> None:
    state, client = store
    trashed = min(state.orders)
    state.trash(trashed)
    listed = {o["id"] for o in client.get(f"{API}/orders", params={"per_page": 100}).json()}
    assert trashed not in listed and len(listed) == 24
    assert trashed in {o["id"] for o in client.get(f"{API}/orders", params={"status": "trash"}).json()}
    too_many = client.post(
        f"{API}/orders/batch", json={"update": [{"id": i, "status": "completed"} for i in range(101)]}
    )
    assert too_many.status_code == 413 and too_many.json()["code"] == "woocommerce_rest_request_entity_too_large"


def test_strict_mode_refuses_an_unusual_move_permissive_mode_allows_it_as_woocommerce_does() -> None:
    for rules, expected in (("strict", 400), ("permissive", 200)):
        state, app = create_sandbox(orders=0, status_rules=rules)
        client = in_process_client(app, "https://sandbox.local")
        client.auth = ("ck_sandbox", "cs_sandbox")
        oid = state.add_order(status="completed")["id"]
        answer = client.put(f"{API}/orders/{oid}", json={"status": "pending"})
        assert answer.status_code == expected, answer.text
        if expected == 200:
            note = state.notes[oid][-1]
            assert note["note"] == "Order status changed from Completed to Pending." and not note["customer_note"]


class Receiver:
    """A delivery URL that fails the first ``failing`` deliveries, then answers 200."""

    def __init__(self, failing: int) -> None:
        self.failing = failing
        self.seen: list[tuple[dict[str, str], bytes]] = []

    def app(self) -> Any:
        async def hook(request: Request) -> Response:
            self.seen.append((dict(request.headers), await request.body()))
            if request.headers.get("x-wc-webhook-topic") and self.failing > 0:
                self.failing -= 1
                return Response(status_code=503)
            return Response(status_code=200)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def _hook(state: WooState, url: str, topic: str = "order.created") -> int:
    return state.create_webhook({"topic": topic, "delivery_url": url, "secret": "s3cret"}).id


def test_deliveries_are_pinged_signed_disabled_after_five_failures_and_never_redelivered() -> None:
    receiver = Receiver(failing=7)
    state, _app = create_sandbox(orders=0)
    with run_in_thread(receiver.app()) as served:
        hook_id = _hook(state, f"{served.base_url}/hook")
        for _ in range(4):
            state.add_order()
        assert state.wait_idle()
        headers, body = receiver.seen[0]
        assert body == f"webhook_id={hook_id}".encode() and "x-wc-webhook-signature" not in headers
        assert state.webhooks[hook_id].status == "active" and state.webhooks[hook_id].failures == 4
        for _ in range(3):
            state.add_order()
        assert state.wait_idle()
        assert state.webhooks[hook_id].status == "disabled"
        assert len([e for e in state.entries("webhook_delivery") if not e.data["ok"]]) == 5
        assert len(state.entries("webhook_not_sent")) == 2, "queued before the disable: dropped, not sent"
        state.add_order()
        assert state.wait_idle()
        assert len(receiver.seen) == 1 + 5, "nothing after the disable, and nothing is redelivered"
        _headers, signed = receiver.seen[1]
        sent = receiver.seen[1][0]
        expected = base64.b64encode(hmac.new(b"s3cret", signed, hashlib.sha256).digest()).decode()
        assert sent["x-wc-webhook-signature"] == expected and sent["x-wc-webhook-topic"] == "order.created"
        assert sent["x-wc-webhook-delivery-id"] and sent["x-wc-webhook-id"] == str(hook_id)


def test_a_success_resets_the_failure_count_and_re_enabling_pings_again() -> None:
    receiver = Receiver(failing=4)
    state, _app = create_sandbox(orders=0)
    with run_in_thread(receiver.app()) as served:
        hook_id = _hook(state, f"{served.base_url}/hook")
        for _ in range(6):
            state.add_order()
        assert state.wait_idle()
        assert state.webhooks[hook_id].status == "active" and state.webhooks[hook_id].failures == 0
        state.disable_webhooks()
        state.update_webhook(hook_id, {"status": "active"})
        assert state.wait_idle()
        assert [e.data["status"] for e in state.entries("webhook_ping")] == [200, 200]


def test_the_sandbox_clock_decides_the_dates(store: tuple[WooState, httpx.Client]) -> None:
    state, client = store
    order = client.get(f"{API}/orders/{min(state.orders)}").json()
    gmt = datetime.fromisoformat(order["date_modified_gmt"]).replace(tzinfo=UTC)
    local = datetime.fromisoformat(order["date_modified"])
    assert local != gmt.replace(tzinfo=None), "site-local and GMT differ in Paris"
