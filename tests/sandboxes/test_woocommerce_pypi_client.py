"""WooCommerce's own Python client (the ``woocommerce`` package on PyPI, written by Automattic and
independent of this project) reads and writes the WooCommerce sandbox correctly: over plain HTTP
with its own OAuth 1.0a signatures, and over HTTPS with Basic auth and with query-string keys.
A sandbox this client reads unchanged is faithful to the real API's shapes and authentication."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

woocommerce = pytest.importorskip("woocommerce")

from orderbridge.sandboxes.base import run_in_thread  # noqa: E402
from orderbridge.sandboxes.woocommerce import WooState, create_sandbox, tls  # noqa: E402

KEY, SECRET = "ck_sandbox", "cs_sandbox"


@pytest.fixture
def store() -> Iterator[tuple[WooState, str]]:
    state, app = create_sandbox(orders=23)
    with run_in_thread(app) as served:
        yield state, served.base_url


def test_the_client_lists_pages_and_reads_orders_over_oauth(store: tuple[WooState, str]) -> None:
    state, url = store
    api = woocommerce.API(url=url, consumer_key=KEY, consumer_secret=SECRET, version="wc/v3", timeout=10)
    first = api.get("orders", params={"per_page": 10, "orderby": "id", "order": "asc"})
    assert first.status_code == 200, first.text
    assert first.headers["X-WP-Total"] == "23" and first.headers["X-WP-TotalPages"] == "3"
    assert 'rel="next"' in first.headers["Link"]
    ids: list[int] = []
    for page in (1, 2, 3):
        answer = api.get("orders", params={"per_page": 10, "page": page, "orderby": "id", "order": "asc"})
        assert answer.status_code == 200, answer.text
        ids.extend(o["id"] for o in answer.json())
    assert ids == sorted(state.orders)
    one = api.get(f"orders/{ids[0]}").json()
    raw = state.orders[ids[0]]
    assert one["number"] == raw["number"] and one["status"] == raw["status"]
    assert Decimal(one["total"]) == Decimal(raw["total"]) and one["currency"] == "EUR"
    assert one["date_modified_gmt"] == raw["date_modified"].strftime("%Y-%m-%dT%H:%M:%S")
    assert {i["sku"] for i in one["line_items"]} == {i["sku"] for i in raw["line_items"]}
    assert {e.data["auth"] for e in state.entries("request")} == {"oauth1"}
    assert state.entries("rejected") == []
    # what the independent client read is the order OrderBridge's connector reads
    from orderbridge.connectors.woocommerce import WooCommerceChannel
    from orderbridge.connectors.woocommerce.mapper import order_from_json
    from orderbridge.domain.canonical import content_hash

    connector = WooCommerceChannel(url, {"consumer_key": KEY, "consumer_secret": SECRET}, {})
    try:
        fetched = connector.fetch_order(str(ids[0]))
    finally:
        connector.close()
    assert content_hash(order_from_json(one)) == content_hash(fetched)  # type: ignore[arg-type]


def test_the_clients_date_filters_and_writes_are_signed_and_honoured(store: tuple[WooState, str]) -> None:
    state, url = store
    api = woocommerce.API(url=url, consumer_key=KEY, consumer_secret=SECRET, version="wc/v3", timeout=10)
    newest = max(o["date_modified"] for o in state.orders.values())
    after = api.get(
        "orders",
        params={"modified_after": (newest.replace(microsecond=0)).strftime("%Y-%m-%dT%H:%M:%S"),
                "dates_are_gmt": "true", "per_page": 100},
    )  # fmt: skip
    assert after.status_code == 200, after.text
    assert after.json() == [], "modified_after is exclusive"
    target = min(oid for oid, o in state.orders.items() if o["status"] == "processing")
    done = api.put(f"orders/{target}", {"status": "completed"})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    note = api.post(f"orders/{target}/notes", {"note": "Shipped with UPS: tracking number 1Z", "customer_note": True})
    assert note.status_code == 201 and note.json()["customer_note"] is True
    batch = api.post("orders/batch", {"update": [{"id": target, "status": "completed"}]})
    assert batch.status_code == 200 and batch.json()["update"][0]["id"] == target
    assert state.entries("rejected") == []
    wrong = woocommerce.API(url=url, consumer_key=KEY, consumer_secret="cs_wrong", version="wc/v3", timeout=10)
    refused = wrong.get("orders")
    assert refused.status_code == 401 and refused.json()["code"] == "woocommerce_rest_authentication_error"


def test_the_client_over_https_with_basic_auth_and_with_query_string_keys(tmp_path: Path) -> None:
    state, app = create_sandbox(orders=4)
    cert = tls.self_signed(tmp_path)
    with tls.run_in_thread(app, cert) as served:
        for query_string_auth in (False, True):
            api = woocommerce.API(
                url=served.base_url, consumer_key=KEY, consumer_secret=SECRET, version="wc/v3",
                verify_ssl=str(cert.cert_file), query_string_auth=query_string_auth, timeout=10,
            )  # fmt: skip
            answer = api.get("orders")
            assert answer.status_code == 200, answer.text
            assert sorted(o["id"] for o in answer.json()) == sorted(state.orders)
    assert {e.data["auth"] for e in state.entries("request")} == {"basic"}
