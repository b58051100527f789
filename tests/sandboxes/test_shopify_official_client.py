"""The official ``ShopifyAPI`` client (12.7.0) reads the sandbox over real HTTP (REST pagination and GraphQL,
with Shopify's limits on: the GraphQL reader waits out ``THROTTLED`` as a real client does)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import shopify

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox
from orderbridge.sandboxes.shopify.schema import newest_version
from tests.sandboxes.conftest import TOKEN


@pytest.fixture
def official() -> Iterator[ShopifyState]:
    state, app = create_sandbox(orders=130, seed=21, limits=True, restore_rate=300.0)
    with run_in_thread(app) as sandbox:
        # ShopifyAPI builds https://<shop>.myshopify.com URLs from a Session; point the resource
        # layer at the sandbox directly instead (what Session.site would have produced).
        shopify.ShopifyResource.set_site(f"{sandbox.base_url}/admin/api/{newest_version()}")
        shopify.ShopifyResource.set_headers({"X-Shopify-Access-Token": TOKEN})
        try:
            yield state
        finally:
            shopify.ShopifyResource.clear_session()


def test_the_official_client_pages_through_orders_over_rest(official: ShopifyState) -> None:
    page = shopify.Order.find(limit=50, status="any")
    ids: list[int] = [o.id for o in page]
    while page.has_next_page():
        page = page.next_page()
        ids += [o.id for o in page]
    assert sorted(ids) == sorted(official.orders) and len(ids) == len(set(ids))
    first = shopify.Order.find(ids[0])
    assert (first.name.startswith("#") and first.line_items[0].sku is not None) or first.line_items[0].title
    assert isinstance(first.total_price, str)


def test_the_official_client_reads_orders_over_graphql(official: ShopifyState) -> None:
    query = """query($after: String) { orders(first: 100, after: $after) { pageInfo { hasNextPage endCursor }
        edges { node { id name totalPriceSet { shopMoney { amount currencyCode } } } } } }"""
    names: list[str] = []
    after = None
    official.drain_points(1000)  # another app spent the bucket: the first page is throttled
    throttled = 0
    while True:
        body = json.loads(shopify.GraphQL().execute(query, {"after": after}))
        if any(e.get("extensions", {}).get("code") == "THROTTLED" for e in body.get("errors") or []):
            throttled += 1  # wait for the points the query lacks, as Shopify's docs tell a client to
            cost = body["extensions"]["cost"]
            status = cost["throttleStatus"]
            time.sleep((cost["requestedQueryCost"] - status["currentlyAvailable"]) / status["restoreRate"])
            continue
        orders = body["data"]["orders"]
        names += [e["node"]["name"] for e in orders["edges"]]
        if not orders["pageInfo"]["hasNextPage"]:
            break
        after = orders["pageInfo"]["endCursor"]
    assert len(names) == len(official.orders) == len(set(names))
    assert throttled >= 1
