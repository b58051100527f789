"""The official ``ShopifyAPI`` client reads the sandbox over real HTTP (REST pagination and GraphQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import shopify

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox
from tests.sandboxes.conftest import TOKEN


@pytest.fixture
def official() -> Iterator[ShopifyState]:
    state, app = create_sandbox(orders=130, seed=21, limits=False)
    with run_in_thread(app) as sandbox:
        # ShopifyAPI builds https://<shop>.myshopify.com URLs from a Session; point the resource
        # layer at the sandbox directly instead (what Session.site would have produced).
        shopify.ShopifyResource.set_site(f"{sandbox.base_url}/admin/api/2026-07")
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
    while True:
        body = json.loads(shopify.GraphQL().execute(query, {"after": after}))
        orders = body["data"]["orders"]
        names += [e["node"]["name"] for e in orders["edges"]]
        if not orders["pageInfo"]["hasNextPage"]:
            break
        after = orders["pageInfo"]["endCursor"]
    assert len(names) == len(official.orders) == len(set(names))
