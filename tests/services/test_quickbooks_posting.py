"""QuickBooks Online through the hub: Shopify sandbox → sync → post → QuickBooks sandbox, both served
on real local ports, asserting what the QuickBooks company holds and what the ledger says.

Covers seed 002 (QuickBooks rejects an order for an unknown item: the order page carries QBO's
message and the fix; once the SKU is mapped, a reset posts it exactly once), the rotated refresh
token surviving a restart, and a refused refresh turning the connection ``failing`` with the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from orderbridge.connectors.quickbooks import mapper as qmapper
from orderbridge.domain.roles import Role
from orderbridge.fixes import FixAction
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.quickbooks import QuickBooksState
from orderbridge.sandboxes.quickbooks import create_sandbox as quickbooks_sandbox
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.auth import Actor, Principal
from orderbridge.services.connections import add_connection, list_connections
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.order_actions import reset_to_pending
from orderbridge.services.order_story import order_story
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import find_order_id
from orderbridge.services.sync import sync_channel
from orderbridge.settings import Settings
from tests.scoped import cid, tenant

KNOWN = [{"sku": "SKU-1", "quantity": 1, "price": "24.00"}, {"sku": "SKU-2", "quantity": 2, "price": "16.00"}]


@dataclass
class World:
    hub: Hub
    shop: ShopifyState
    qbo: QuickBooksState
    qbo_url: str

    @property
    def realm(self) -> str:
        return next(iter(self.qbo.companies))

    def receipts(self) -> list[dict[str, Any]]:
        return self.qbo.documents(self.realm, "SalesReceipt")

    def stored_credentials(self, hub: Hub | None = None) -> dict[str, str]:
        h = hub or self.hub
        with h.db.read() as conn:
            row = tenant(h).connection(conn, cid(h, "books"))
        return dict(h.box.open(row.credentials_token, what="test"))


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    shop, shop_app = shopify_sandbox(orders=0, limits=False)
    qbo, qbo_app = quickbooks_sandbox(limits=False)
    hub.sleep = lambda _seconds: None
    with run_in_thread(shop_app) as shop_running, run_in_thread(qbo_app) as qbo_running:
        add_connection(tenant(hub), "shop", "shopify", shop_running.base_url, {"access_token": "shpat_sandbox"})
        add_connection(
            tenant(hub),
            "books",
            "quickbooks",
            qbo_running.base_url,
            {
                "client_id": qbo.client_id,
                "client_secret": qbo.client_secret,
                "refresh_token": qbo.initial_refresh_token,
                "realm_id": next(iter(qbo.companies)),
            },
            {"token_url": f"{qbo_running.base_url}/oauth2/v1/tokens/bearer"},
        )
        yield World(hub, shop, qbo, qbo_running.base_url)
    shop.close()


def operator(hub: Hub) -> Actor:
    scope = tenant(hub)
    return Actor(Principal("user", 3, scope.tenant_id, Role.OPERATOR, "Olu", "en"), scope, "198.51.100.4")


def test_each_shopify_order_becomes_exactly_one_sales_receipt_in_the_quickbooks_company(world: World) -> None:
    hub = world.hub
    numbers = [world.shop.add_order(line_items=KNOWN)["name"] for _ in range(3)]
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert post_ready(tenant(hub), cid(hub, "books")).posted == 3
    assert post_ready(tenant(hub), cid(hub, "books")).posted == 0  # a second run sends nothing
    receipts = world.receipts()
    assert sorted(r["DocNumber"] for r in receipts) == sorted(n.lstrip("#") for n in numbers)
    assert len(world.qbo.entries("SalesReceipt_created")) == 3
    keys = {qmapper.marked_key(r)[0] for r in receipts}  # type: ignore[index]
    assert len(keys) == 3


def test_seed_002_an_unknown_item_shows_quickbooks_message_and_the_fix_then_a_reset_posts_it_once(
    world: World,
) -> None:
    hub = world.hub
    ext = str(world.shop.add_order(line_items=[{"sku": "MUG-12OZ", "quantity": 1, "price": "9.00"}])["id"])
    sync_channel(tenant(hub), cid(hub, "shop"))
    report = post_ready(tenant(hub), cid(hub, "books"))
    assert (report.posted, report.rejected) == (0, 1)
    oid = find_order_id(tenant(hub), ext)
    story = order_story(tenant(hub), oid)
    assert story.state == "held"
    (problem,) = [p for p in story.problems if p.kind == "hold"]
    assert problem.code == "destination_rejected" and problem.value == "books"
    assert "QuickBooks has no item 'MUG-12OZ'" in problem.message
    assert problem.fix.action is FixAction.MAP_SKU
    assert (problem.fix.param("sku"), problem.fix.param("destination")) == ("MUG-12OZ", "books")
    assert world.receipts() == []

    set_mapping(tenant(hub), "sku", "MUG-12OZ", "SKU-3", cid(hub, "books"))
    reset_to_pending(operator(hub), oid)
    assert post_ready(tenant(hub), cid(hub, "books")).posted == 1
    assert post_ready(tenant(hub), cid(hub, "books")).posted == 0
    (receipt,) = world.receipts()
    assert order_story(tenant(hub), oid).state == "posted"
    assert receipt["DocNumber"] == story.number.lstrip("#")


def test_a_rotated_refresh_token_is_stored_encrypted_and_a_restarted_hub_uses_it(
    world: World, settings: Settings
) -> None:
    hub = world.hub
    first = world.stored_credentials()["refresh_token"]
    world.shop.add_order(line_items=KNOWN)
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert post_ready(tenant(hub), cid(hub, "books")).posted == 1
    stored = world.stored_credentials()["refresh_token"]
    assert stored != first
    with hub.db.read() as conn:
        sealed = tenant(hub).connection(conn, cid(hub, "books")).credentials_token
    assert stored not in sealed  # encrypted, not in clear

    world.qbo.expire_access_tokens()
    world.shop.add_order(line_items=KNOWN)
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert post_ready(tenant(hub), cid(hub, "books")).posted == 1  # the same connector refreshed again
    latest = world.stored_credentials()["refresh_token"]
    assert latest not in (first, stored)

    restarted = Hub.from_settings(settings, migrate=False)
    restarted.sleep = hub.sleep
    try:
        world.qbo.expire_access_tokens()
        world.shop.add_order(line_items=KNOWN)
        sync_channel(tenant(restarted), cid(restarted, "shop"))
        report = post_ready(tenant(restarted), cid(restarted, "books"))
        assert report.error is None and report.posted == 1
    finally:
        restarted.close()
    assert len(world.receipts()) == 3
    assert world.qbo.entries("token_refused") == []


def test_a_refused_refresh_turns_the_connection_failing_with_the_fix_to_reconnect(world: World) -> None:
    hub = world.hub
    world.shop.add_order(line_items=KNOWN)
    sync_channel(tenant(hub), cid(hub, "shop"))
    world.qbo.revoke_refresh_tokens()  # the user disconnected the app in QuickBooks
    report = post_ready(tenant(hub), cid(hub, "books"))
    assert report.error is not None and report.error.code == "connection_auth_failed"
    (books,) = [c for c in list_connections(tenant(hub)) if c.name == "books"]
    assert books.health == "failing" and "reconnect QuickBooks" in books.health_message
    assert world.receipts() == []


def test_the_official_python_quickbooks_client_reads_back_the_sales_receipt_the_hub_posted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python-quickbooks`` (with ``intuit-oauth``) pointed at the sandbox: the discovery document
    is the sandbox's (intuit-oauth takes a URL for its environment), the API base is the sandbox's
    (the client's ``api_url_v3``), and it refreshes with the refresh token the hub stored. The
    sandbox speaks plain HTTP on localhost, which oauthlib refuses unless told it is a test."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    from intuitlib.client import AuthClient
    from quickbooks import QuickBooks
    from quickbooks.objects.salesreceipt import SalesReceipt

    hub = world.hub
    order = world.shop.add_order(line_items=KNOWN)
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert post_ready(tenant(hub), cid(hub, "books")).posted == 1
    stored = world.stored_credentials()
    auth = AuthClient(
        stored["client_id"],
        stored["client_secret"],
        "http://localhost/callback",
        f"{world.qbo_url}/.well-known/openid_configuration",
    )
    client = QuickBooks(
        auth_client=auth,
        refresh_token=stored["refresh_token"],
        company_id=stored["realm_id"],
        minorversion=75,
        use_decimal=True,
    )
    client.api_url_v3 = f"{world.qbo_url}/v3"  # the production URL is a class attribute: this one is the sandbox's
    (receipt,) = SalesReceipt.filter(DocNumber=order["name"].lstrip("#"), qb=client)
    (ours,) = world.receipts()
    assert receipt.Id == ours["Id"] and receipt.DocNumber == ours["DocNumber"]
    assert receipt.TotalAmt == ours["TotalAmt"]
    sales = [line for line in receipt.Line if line.DetailType == "SalesItemLineDetail"]
    assert [line.Amount for line in sales[:2]] == [Decimal("24.00"), Decimal("32.00")]
    assert receipt.CustomerRef.value == ours["CustomerRef"]["value"]
    again = SalesReceipt.get(ours["Id"], qb=client)
    assert again.SyncToken == "0"


def test_adding_a_connection_stores_the_refresh_token_the_test_rotated_not_the_one_typed(world: World) -> None:
    from orderbridge.services.connections import create_connection

    hub = world.hub
    typed = world.qbo.issue_refresh_token(frozenset({world.realm}))
    row, check = create_connection(
        tenant(hub),
        "books2",
        "quickbooks",
        world.qbo_url,
        {
            "client_id": world.qbo.client_id,
            "client_secret": world.qbo.client_secret,
            "refresh_token": typed,
            "realm_id": world.realm,
        },
        {"token_url": f"{world.qbo_url}/oauth2/v1/tokens/bearer"},
        by=operator(hub),
    )
    assert check.ok and "Sandbox Company" in check.description
    stored = dict(hub.box.open(row.credentials_token, what="test"))["refresh_token"]
    assert stored != typed and stored == check.rotated["refresh_token"]
    world.qbo.expire_access_tokens()
    world.shop.add_order(line_items=KNOWN)
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert post_ready(tenant(hub), row.id).posted == 1  # the stored one works: the hub was not locked out
