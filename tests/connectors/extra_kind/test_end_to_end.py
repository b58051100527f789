"""The test kinds end to end through the hub — sync, post, audit, a webhook — with no change outside
tests/: the hub reads everything it needs from their declarations (settings and their defaults,
download rules, mapping kinds, document key, webhook adapter, capabilities)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from orderbridge.errors import InvalidInput
from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import RunningSandbox, run_in_thread
from orderbridge.services.connections import add_connection, update_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import accounting
from orderbridge.services.reconcile import due_audits, reconcile
from orderbridge.services.webhooks import check_subscriptions, register_webhooks
from orderbridge.storage.tables import orders
from orderbridge.web.app import create_app
from tests.connectors.extra_kind.sandbox import (
    BOOKS_KEY,
    SHOP_SECRET,
    SHOP_TOKEN,
    START,
    TinyBooksState,
    TinyShopState,
    books_app,
    shop_app,
)
from tests.scoped import cid, tenant

SRC = Path(__file__).parents[3] / "src"


@dataclass
class World:
    hub: Hub
    shop: TinyShopState
    books: TinyBooksState
    hub_http: RunningSandbox
    shop_id: int

    def key(self, external_id: str) -> str:
        return f"tiny-{external_id}@{self.shop_id}"

    def states(self) -> dict[str, str]:
        with self.hub.db.read() as conn:
            return {
                external_id: state for external_id, state in conn.execute(select(orders.c.external_id, orders.c.state))
            }


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    shop, books = TinyShopState(), TinyBooksState()
    with (
        run_in_thread(shop_app(shop)) as shop_http,
        run_in_thread(books_app(books)) as books_http,
        run_in_thread(create_app(hub)) as hub_http,  # type: ignore[arg-type]
    ):
        hub.settings = hub.settings.model_copy(update={"public_url": hub_http.base_url})
        credentials = {"token": SHOP_TOKEN, "signing_secret": SHOP_SECRET}
        row = add_connection(tenant(hub), "tiny", "tinyshop", shop_http.base_url, credentials)
        add_connection(tenant(hub), "books", "tinybooks", books_http.base_url, {"api_key": BOOKS_KEY})
        yield World(hub, shop, books, hub_http, row.id)


def test_the_test_kinds_sync_post_and_audit_through_the_hub_by_their_declarations(world: World) -> None:
    hub, shop, books = world.hub, world.shop, world.books
    mapped = shop.add_order()
    unmapped = shop.add_order(items=[{"id": "1", "sku": "LAMP-7", "title": "Lamp", "qty": 1, "price": "30.00"}])
    pending = shop.add_order(paid=False)  # TinyShop's declared default rules take paid orders only
    odd_method = shop.add_order(shipping={"method": "carrier pigeon", "price": "1.00"})
    no_email = shop.add_order(email="")  # TinyBooks declares the e-mail a required field
    set_mapping(tenant(hub), "sku", "MUG-1", "ITEM-MUG", cid(hub, "books"))
    with pytest.raises(InvalidInput, match="takes no shipping mapping"):
        set_mapping(tenant(hub), "shipping", "colissimo", "laposte:colissimo", cid(hub, "books"))

    report = run_cycle(tenant(hub))

    assert report.crashed == [] and report.busy == []
    assert [s["connection"] for s in report.syncs] == ["tiny"]
    assert [p["destination"] for p in report.posts] == ["books"]
    # neither kind declares them: no shipment poll of TinyBooks, no push to TinyShop
    assert report.shipments == [] and report.pushes == []
    states = world.states()
    assert states[mapped["id"]] == states[odd_method["id"]] == "posted"  # no shipping mapping needed
    assert states[unmapped["id"]] == states[no_email["id"]] == "held"
    assert states[pending["id"]] == "skipped"
    acct = accounting(tenant(hub))
    assert acct["held_by_reason"] == {"required_field_missing": 1, "sku_unmapped": 1}
    assert acct["skipped_by_reason"] == {"financial_status_not_downloaded": 1}
    # filed under the key TinyBooks declares, in the book its declared default names, with the mapped SKU
    assert set(books.invoices) == {world.key(mapped["id"]), world.key(odd_method["id"])}
    invoice = books.invoices[world.key(mapped["id"])]
    assert invoice["book"] == "sales" and invoice["lines"] == [{"sku": "ITEM-MUG", "qty": 2, "price": "9.50"}]

    # a connector setting reaches the connector; a setting the kind does not declare is refused
    update_connection(tenant(hub), cid(hub, "books"), settings={"book": "online"})
    with pytest.raises(InvalidInput, match="no setting"):
        update_connection(tenant(hub), cid(hub, "books"), settings={"shop_domain": "x.myshopify.com"})
    set_mapping(tenant(hub), "sku", "LAMP-7", "ITEM-LAMP", cid(hub, "books"))  # releases the held order
    run_cycle(tenant(hub))
    assert books.invoices[world.key(unmapped["id"])]["book"] == "online"

    # the audit: TinyShop declares order stamps, so it is due, and it recovers what polls missed
    assert [channel for channel, _kind, _since in due_audits(tenant(hub))] == [cid(hub, "tiny")] * 2
    late = shop.add_order()  # not polled yet
    audit = reconcile(tenant(hub), cid(hub, "tiny"), since=START - timedelta(days=1))
    assert audit.ok, audit.error
    assert (audit.channel_count, audit.ledger_count, audit.missing, audit.recovered) == (6, 6, 0, 1)
    post_ready(tenant(hub), cid(hub, "books"))
    assert world.key(late["id"]) in books.invoices

    run_cycle(tenant(hub))  # nothing new: nothing is filed twice
    assert all(n == 1 for n in books.creates.values()) and len(books.creates) == 4


def test_a_test_kind_webhook_is_verified_and_ingested_by_the_kind_agnostic_receiver(world: World) -> None:
    hub, shop, books = world.hub, world.shop, world.books
    set_mapping(tenant(hub), "sku", "MUG-1", "ITEM-MUG", cid(hub, "books"))
    subs = register_webhooks(tenant(hub), cid(hub, "tiny"))
    address = f"{world.hub_http.base_url}/webhooks/tinyshop/{cid(hub, 'tiny')}"
    assert {(s.topic, s.address) for s in subs} == {("order.created", address), ("order.updated", address)}
    assert check_subscriptions(tenant(hub)) == []  # every declared topic is subscribed

    order = shop.add_order()
    assert shop.deliver(order["id"], "order.created") == [200]
    assert world.states()[order["id"]] == "ready"
    post_ready(tenant(hub), cid(hub, "books"))
    assert world.key(order["id"]) in books.invoices

    # forged: signed with another secret — refused, nothing stored
    other = shop.add_order()
    headers, body = shop.delivery(other["id"], secret="not the secret")
    forged = httpx.post(address, content=body, headers=headers, timeout=10)
    assert forged.status_code == 401 and "forged: X-Tiny-Signature" in forged.json()["message"]
    assert other["id"] not in world.states()
    # an adapter that checks no length: the receiver still refuses an id the ledger cannot keep
    headers, body = shop.delivery(other["id"])
    headers["x-tiny-delivery"] = "D" * 1000
    too_long = httpx.post(address, content=body, headers=headers, timeout=10)
    assert too_long.status_code == 400 and "delivery id is not a valid value" in too_long.json()["message"]
    assert other["id"] not in world.states()
    # a topic the kind does not subscribe to is answered and ignored
    headers, body = shop.delivery(other["id"], "order.archived")
    ignored = httpx.post(address, content=body, headers=headers, timeout=10)
    assert ignored.status_code == 200 and ignored.json()["outcome"] == "ignored"


def test_nothing_outside_tests_names_the_test_kinds() -> None:
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "tinyshop" not in text.lower() and "tinybooks" not in text.lower(), path
