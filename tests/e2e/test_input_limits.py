"""Hostile and careless orders through the real path — Shopify sandbox → sync (bulk export and
pages) or the signed webhook receiver → the ledger → the ShipStation sandbox — on SQLite and
PostgreSQL: each is stored and posted once, held with a reason naming the field and the value,
skipped by its rule, or refused with a 4xx and nothing stored; the other orders are unaffected."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from orderbridge.connectors.shopify.webhooks import signature
from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import RunningSandbox, run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.connections import add_connection
from orderbridge.services.health import health_report
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import events, order_reasons, orders
from orderbridge.web.app import create_app
from tests.e2e.helpers import TOKEN
from tests.scoped import cid, tenant

SECRET = "shpss_limits_secret"


@dataclass
class World:
    hub: Hub
    shop: ShopifyState
    ss: Any
    receiver: str
    client: httpx.Client

    def posted(self) -> Counter[str]:
        """orderNumber → how many times the ShipStation sandbox created it (its own ledger)."""
        return Counter(str(e.data["orderNumber"]) for e in self.ss.entries("order_created"))

    def rows(self) -> dict[str, Any]:
        with self.hub.db.read() as conn:
            return {r.external_id: r for r in conn.execute(select(orders))}

    def reasons(self, external_id: str) -> list[tuple[str, str, str]]:
        with self.hub.db.read() as conn:
            return [
                (r.code, r.value, r.message)
                for r in conn.execute(
                    select(order_reasons)
                    .join(orders, orders.c.id == order_reasons.c.order_id)
                    .where(orders.c.external_id == external_id, order_reasons.c.released_at.is_(None))
                )
            ]

    def deliver(
        self,
        payload: dict[str, Any],
        topic: str = "orders/updated",
        *,
        body: bytes | None = None,
        webhook_id: str | None = None,
    ) -> httpx.Response:
        body = json.dumps(payload).encode() if body is None else body
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": "sandbox.myshopify.com",
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
            "X-Shopify-Hmac-Sha256": signature(SECRET, body),
        }
        return self.client.post(f"{self.receiver}/webhooks/shopify/shop", content=body, headers=headers)


def _world(hub: Hub, *, bulk: bool) -> Iterator[World]:
    shop, shop_app = shopify_sandbox(orders=0, seed=11, limits=False, api_secret=SECRET)
    ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    with run_in_thread(shop_app) as s, run_in_thread(ss_app) as w:
        _connect(hub, s, w, bulk=bulk)
        app = create_app(hub, wake=lambda: None)
        with run_in_thread(app) as receiver, httpx.Client(timeout=10) as client:
            yield World(hub, shop, ss, receiver.base_url, client)


def _connect(hub: Hub, shop: RunningSandbox, wh: RunningSandbox, *, bulk: bool) -> None:
    credentials = {"access_token": TOKEN, "api_secret": SECRET}
    add_connection(tenant(hub), "shop", "shopify", shop.base_url, credentials, {"bulk_backfill": bulk})
    add_connection(
        tenant(hub), "warehouse", "shipstation", wh.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
    )
    for sku, _t, _p in generator.CATALOG:
        set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
    set_mapping(tenant(hub), "shipping", "*", "ups:ups_ground", cid(hub, "warehouse"))


@pytest.fixture
def bulk_world(hub: Hub) -> Iterator[World]:
    yield from _world(hub, bulk=True)


@pytest.fixture
def page_world(hub: Hub) -> Iterator[World]:
    yield from _world(hub, bulk=False)


def _no_id_shipping(method: str = "Standard") -> list[dict[str, Any]]:
    """A shipping line without an id (``ShippingLine.id`` is nullable in Shopify's schema)."""
    return [{"title": method, "code": method, "price": "5.00", "source": "shopify"}]


LINE = {"sku": "TEE-BLK-M", "quantity": 2, "price": "24.00"}


def test_a_first_bulk_sync_reads_shipping_lines_without_ids_and_skips_test_and_cancelled_orders(
    bulk_world: World,
) -> None:
    w = bulk_world
    live = w.shop.add_order(line_items=[LINE], shipping_lines=_no_id_shipping())
    test = w.shop.add_order(line_items=[LINE], shipping_lines=_no_id_shipping(), test=True)
    cancelled = w.shop.add_order(
        line_items=[LINE], shipping_lines=_no_id_shipping(), cancelled_at=live["created_at"], cancel_reason="customer"
    )
    report = sync_channel(tenant(w.hub), cid(w.hub, "shop"))
    assert report.ok, report.error
    rows = w.rows()
    assert rows[str(live["id"])].state == "ready"
    assert rows[str(live["id"])].canonical["shipping_lines"][0]["title"] == "Standard"
    assert rows[str(live["id"])].canonical["lines"][0]["sku"] == "TEE-BLK-M"
    assert rows[str(test["id"])].state == "skipped"
    assert [c for c, _v, _m in w.reasons(str(test["id"]))] == ["test_order"]
    assert rows[str(cancelled["id"])].state == "skipped"
    assert [c for c, _v, _m in w.reasons(str(cancelled["id"]))] == ["cancelled_order"]
    run_cycle(tenant(w.hub))
    assert w.posted() == Counter({live["name"]: 1})


def test_hostile_values_are_held_by_name_on_both_databases_and_the_rest_of_the_store_is_posted_once(
    bulk_world: World,
) -> None:
    w = bulk_world
    long_name = "#" + "N" * 300  # the corpus case: longer than orders.number used to allow
    long_sku = "S" * 400  # no mapping can be keyed by it (mappings.source_value is 300)
    fine = w.shop.add_order(line_items=[LINE])
    named = w.shop.add_order(line_items=[LINE], name=long_name)
    zero = w.shop.add_order(line_items=[LINE, {"sku": "CAP-NVY", "quantity": 0, "price": "19.50"}])
    refund = w.shop.add_order(line_items=[LINE, {"sku": "CAP-NVY", "quantity": 1, "price": "-19.50"}])
    status = w.shop.add_order(line_items=[LINE], financial_status="under_review")
    sku = w.shop.add_order(line_items=[LINE, {"sku": long_sku, "quantity": 1, "price": "5.00"}])
    after = w.shop.add_order(line_items=[LINE])
    report = sync_channel(tenant(w.hub), cid(w.hub, "shop"))
    assert report.ok, report.error
    assert report.counts.inserted == 7
    rows = w.rows()
    # stored whole and ready in the ledger; ShipStation's orderNumber cannot carry it (decision 47)
    assert rows[str(named["id"])].number == long_name and rows[str(named["id"])].state == "ready"
    held = {
        str(zero["id"]): "invalid_quantity",
        str(refund["id"]): "invalid_amount",
        str(status["id"]): "unknown_status",
        str(sku["id"]): "value_too_long",
    }
    for ext, code in held.items():
        assert rows[ext].state == "held", (ext, code)
        assert code in [c for c, _v, _m in w.reasons(ext)]
    (status_reason,) = [r for r in w.reasons(str(status["id"])) if r[0] == "unknown_status"]
    assert status_reason[1] == "financial_status=under_review" and "'under_review'" in status_reason[2]
    (sku_reason,) = w.reasons(str(sku["id"]))  # not also "unmapped": no mapping could ever be keyed by it
    assert sku_reason[0] == "value_too_long" and sku_reason[1].startswith("lines.sku=SSS")
    assert len(sku_reason[1]) <= 300 and "400 characters" in sku_reason[2]
    run_cycle(tenant(w.hub))
    assert w.posted() == Counter({fine["name"]: 1, after["name"]: 1})
    assert w.rows()[str(named["id"])].state == "held"
    assert [c for c, _v, _m in w.reasons(str(named["id"]))] == ["destination_field_too_long"]
    again = sync_channel(tenant(w.hub), cid(w.hub, "shop"))  # nothing blocks a later sync either
    assert again.ok and again.counts.inserted == 0


def test_an_order_delivered_with_its_gid_is_the_order_already_polled_and_is_posted_once(page_world: World) -> None:
    w = page_world
    placed = w.shop.add_order(line_items=[LINE])
    assert sync_channel(tenant(w.hub), cid(w.hub, "shop")).ok
    run_cycle(tenant(w.hub))
    assert w.posted() == Counter({placed["name"]: 1})
    as_gid = {**placed, "id": f"gid://shopify/Order/{placed['id']}"}
    response = w.deliver(as_gid)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "unchanged"
    edited = {**as_gid, "note": "leave at the door", "updated_at": "2099-01-01T00:00:00-05:00"}
    assert w.deliver(edited).json()["outcome"] == "changed"
    run_cycle(tenant(w.hub))
    assert list(w.rows()) == [str(placed["id"])]
    assert w.posted() == Counter({placed["name"]: 1})


def test_webhooks_without_a_usable_id_are_refused_with_the_reason_and_store_nothing(page_world: World) -> None:
    w = page_world
    template = w.shop.add_order(line_items=[LINE])
    bodies = [
        {k: v for k, v in template.items() if k != "id"},
        {**template, "id": None},
        {**template, "id": ""},
        {**template, "id": "gid://shopify/Product/5"},
        {**template, "id": "12; DROP TABLE orders"},
        {**template, "id": "9" * 101},
        {**template, "id": -4},
        {**template, "id": True},
    ]
    responses = [w.deliver(b) for b in bodies]
    assert [r.status_code for r in responses] == [400] * len(bodies)
    assert all("no usable Shopify id" in r.json()["message"] for r in responses)
    assert w.rows() == {}
    with w.hub.db.read() as conn:
        assert conn.execute(select(events)).first() is None


def test_a_page_with_an_order_without_an_id_stores_the_others_and_reports_the_refusal(page_world: World) -> None:
    w = page_world
    first = w.shop.add_order(line_items=[LINE])
    broken = w.shop.add_order(line_items=[LINE], id=None)  # the store serves it without an id
    last = w.shop.add_order(line_items=[LINE])
    report = sync_channel(tenant(w.hub), cid(w.hub, "shop"))
    assert report.ok, report.error
    assert report.counts.unidentified == 1 and "no usable Shopify id" in report.counts.unidentified_records[0]
    assert report.as_dict()["unidentified"] == 1
    assert set(w.rows()) == {str(first["id"]), str(last["id"])}
    with w.hub.db.read() as conn:
        (event,) = conn.execute(select(events).where(events.c.kind == "record_refused")).all()
    assert event.order_id is None and "nothing stored" in event.message and broken["name"] in event.message
    shop = next(c for c in health_report(tenant(w.hub))["connections"] if c["name"] == "shop")
    assert shop["unidentified_last_sync"] == 1
    run_cycle(tenant(w.hub))
    assert w.posted() == Counter({first["name"]: 1, last["name"]: 1})


def test_a_mapping_that_no_column_can_hold_is_refused_by_name_not_by_the_database(page_world: World) -> None:
    from orderbridge.errors import InvalidInput

    for source, target in (("S" * 301, "W-1"), ("TEE-BLK-M", "W" * 301), ("TEE\x00", "W-1")):
        with pytest.raises(InvalidInput, match="not storable"):
            set_mapping(tenant(page_world.hub), "sku", source, target, cid(page_world.hub, "warehouse"))


def test_a_webhook_with_values_no_column_could_hold_is_answered_200_stored_and_held_by_name(page_world: World) -> None:
    w = page_world
    placed = w.shop.add_order(line_items=[LINE])
    hostile = {
        **placed,
        "name": "#" + "N" * 300 + "\x00",
        "line_items": [{**placed["line_items"][0], "sku": "K" * 400}],
        "tags": "vip, " + "t" * 300,
    }
    response = w.deliver(hostile, topic="orders/create")
    assert response.status_code == 200, response.text
    row = w.rows()[str(placed["id"])]
    assert row.state == "held" and row.number == "#" + "N" * 300 + "\ufffd"
    assert row.raw["name"] == hostile["name"]  # the raw payload keeps the value as sent
    codes = sorted(c for c, _v, _m in w.reasons(str(placed["id"])))
    assert codes == ["invalid_text", "value_too_long", "value_too_long"]
    later = w.shop.add_order(line_items=[LINE])
    assert w.deliver(later, topic="orders/create").status_code == 200  # nothing blocks the next delivery
    run_cycle(tenant(w.hub), sync=False)  # (a poll would settle the forged copy with the store's own)
    assert w.posted() == Counter({later["name"]: 1})


def test_a_webhook_body_no_column_could_store_or_too_deep_to_read_is_a_4xx_and_stores_nothing(
    page_world: World,
) -> None:
    w = page_world
    placed = w.shop.add_order(line_items=[LINE])
    text = json.dumps(placed)
    surrogate = text.replace('"name": "', '"name": "\\ud800', 1).encode()
    deep = text[:-1].encode() + b', "note_attributes": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    not_a_number = text.replace('"total_price": "', '"x": NaN, "total_price": "', 1).encode()
    for body in (surrogate, not_a_number):  # not JSON the receiver reads: 400
        response = w.deliver({}, body=body)
        assert response.status_code == 400, response.text
        assert "unreadable delivery" in response.json()["message"]
    response = w.deliver({}, body=deep)  # well-formed, beyond the depth limit: 422 naming it
    assert response.status_code == 422 and "max_depth" in response.json()["message"], response.text
    assert w.rows() == {}


def test_a_page_with_an_order_whose_update_time_is_missing_holds_it_and_stores_the_others(page_world: World) -> None:
    w = page_world
    first = w.shop.add_order(line_items=[LINE])
    broken = w.shop.add_order(line_items=[LINE])
    w.shop.update_order(broken["id"], updated_at=None)
    report = sync_channel(tenant(w.hub), cid(w.hub, "shop"))
    assert report.ok, report.error
    rows = w.rows()
    assert rows[str(first["id"])].state == "ready"
    assert rows[str(broken["id"])].state == "held"
    assert [c for c, _v, _m in w.reasons(str(broken["id"]))] == ["invalid_order"]


def test_a_mapping_that_releases_one_reason_leaves_an_order_held_by_the_limits_it_breaks(page_world: World) -> None:
    w = page_world
    both = w.shop.add_order(line_items=[LINE, {"sku": "NEW-SKU", "quantity": 1, "price": "-3.00"}])
    assert sync_channel(tenant(w.hub), cid(w.hub, "shop")).ok
    codes = {c for c, _v, _m in w.reasons(str(both["id"]))}
    assert {"invalid_amount", "sku_unmapped"} <= codes
    result = set_mapping(tenant(w.hub), "sku", "NEW-SKU", "NEW-SKU", cid(w.hub, "warehouse"))
    assert result.released == 0  # re-evaluated from the stored canonical order: the price is still negative
    after = {c for c, _v, _m in w.reasons(str(both["id"]))}
    assert "sku_unmapped" not in after and "invalid_amount" in after
    run_cycle(tenant(w.hub))
    assert w.posted() == Counter()


def test_a_bulk_export_with_an_order_without_an_id_stores_the_others_and_reports_the_refusal(
    bulk_world: World,
) -> None:
    w = bulk_world
    first = w.shop.add_order(line_items=[LINE])
    broken = w.shop.add_order(line_items=[LINE, LINE], id=None)
    last = w.shop.add_order(line_items=[LINE])
    report = sync_channel(tenant(w.hub), cid(w.hub, "shop"))
    assert report.ok, report.error
    assert (report.counts.unidentified, report.counts.inserted) == (1, 2)
    assert broken["name"] in report.counts.unidentified_records[0]
    assert set(w.rows()) == {str(first["id"]), str(last["id"])}
    run_cycle(tenant(w.hub))
    assert w.posted() == Counter({first["name"]: 1, last["name"]: 1})


def test_a_webhook_whose_headers_no_column_holds_is_a_400_not_a_database_error(page_world: World) -> None:
    w = page_world
    placed = w.shop.add_order(line_items=[LINE])
    long_id = w.deliver(placed, webhook_id="w" * 121)
    long_topic = w.deliver(placed, topic="orders/" + "x" * 60)
    assert [long_id.status_code, long_topic.status_code] == [400, 400]
    assert "X-Shopify-Webhook-Id" in long_id.json()["message"]
    assert w.rows() == {}
