"""Seed 002 on the order page and the API, against the QuickBooks and Shopify sandboxes on real
ports: QuickBooks refuses an order for an item it does not have; the order page shows QuickBooks'
message and the fix at the top, the API gives them as data; once the SKU is mapped, a reset posts
the order exactly once (counted in the QuickBooks company)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.quickbooks import QuickBooksState
from orderbridge.sandboxes.quickbooks import create_sandbox as quickbooks_sandbox
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import find_order_id
from orderbridge.services.sync import sync_channel
from tests.scoped import cid
from tests.web.portal.conftest import Portal


@pytest.fixture
def rejected(portal: Portal) -> Iterator[tuple[int, QuickBooksState]]:
    hub, scope = portal.hub, portal.default
    shop, shop_app = shopify_sandbox(orders=0, limits=False)
    qbo, qbo_app = quickbooks_sandbox(limits=False)
    hub.sleep = lambda _seconds: None
    with run_in_thread(shop_app) as shop_http, run_in_thread(qbo_app) as qbo_http:
        add_connection(scope, "shop", "shopify", shop_http.base_url, {"access_token": "shpat_sandbox"})
        add_connection(
            scope,
            "books",
            "quickbooks",
            qbo_http.base_url,
            {
                "client_id": qbo.client_id,
                "client_secret": qbo.client_secret,
                "refresh_token": qbo.initial_refresh_token,
                "realm_id": next(iter(qbo.companies)),
            },
            {"token_url": f"{qbo_http.base_url}/oauth2/v1/tokens/bearer"},
        )
        ext = str(shop.add_order(line_items=[{"sku": "MUG-12OZ", "quantity": 1, "price": "9.00"}])["id"])
        sync_channel(scope, cid(hub, "shop"))
        assert post_ready(scope, cid(hub, "books")).rejected == 1
        yield find_order_id(scope, ext), qbo
    shop.close()


def test_seed_002_the_quickbooks_message_and_the_fix_are_at_the_top_and_a_reset_after_mapping_posts_once(
    portal: Portal, rejected: tuple[int, QuickBooksState]
) -> None:
    oid, qbo = rejected
    html = portal.signed_in("viewer").get(f"/orders/{oid}").text
    top = html[html.index('id="problem-title"') : html.index('id="lines-title"')]  # before the lines
    assert "QuickBooks has no item &#39;MUG-12OZ&#39;" in top  # QuickBooks' words, escaped
    assert "Map the SKU" in top

    body = portal.api("viewer").get(f"/api/v1/orders/{oid}").json()
    (hold,) = [p for p in body["problems"] if p["kind"] == "hold"]
    assert hold["code"] == "destination_rejected" and "QuickBooks has no item 'MUG-12OZ'" in hold["message"]
    assert hold["fix"]["action"] == "map_sku" and hold["fix"]["params"] == {"sku": "MUG-12OZ", "destination": "books"}

    set_mapping(portal.default, "sku", "MUG-12OZ", "SKU-3", cid(portal.hub, "books"))
    reset = portal.api("operator").post(f"/api/v1/orders/{oid}/reset")
    assert reset.status_code == 200, reset.text
    assert post_ready(portal.default, cid(portal.hub, "books")).posted == 1
    assert post_ready(portal.default, cid(portal.hub, "books")).posted == 0
    realm = next(iter(qbo.companies))
    assert len(qbo.documents(realm, "SalesReceipt")) == 1
    assert portal.api("viewer").get(f"/api/v1/orders/{oid}").json()["state"] == "posted"
