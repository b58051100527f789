"""``POST /api/v1/orders``, its preview and the suggestions, over a real port on both databases —
the order placed once whatever the retries, proven in the ShipStation sandbox's own ledger."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.services.connections import add_connection
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.storage.tables import connections, idempotency_keys, orders
from tests.scoped import cid
from tests.web.portal.conftest import Portal

BODY: dict[str, Any] = {
    "currency": "EUR",
    "email": "ada@example.com",
    "customer_name": "Ada Lovelace",
    "shipping_address": {"name": "Ada", "address1": "1 rue de Rivoli", "city": "Paris", "country_code": "FR"},
    "shipping_method": "Standard",
    "shipping_price": "4.90",  # a string keeps its decimals; a JSON number (below) is read exactly too
    "lines": [{"sku": "TEE-BLK-S", "title": "T-shirt", "quantity": 2, "unit_price": 12.50}],
}


@pytest.fixture
def warehouse(portal: Portal) -> ShipStationState:
    state, app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    portal.hub.http_factory = lambda row: in_process_client(app, row.base_url)
    portal.hub.sleep = lambda _s: None
    add_connection(
        portal.default, "wh", "shipstation", "http://wh.local", {"api_key": "ss_key", "api_secret": "ss_secret"}
    )
    set_mapping(portal.default, "sku", "TEE-BLK-S", "TEE-BLK-S", cid(portal.hub, "wh"))
    set_mapping(portal.default, "shipping", "Standard", "ups:ups_ground", cid(portal.hub, "wh"))
    return state


def count(portal: Portal, table: Any) -> int:
    with portal.hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_an_operator_places_an_order_and_reads_it_back(portal: Portal, warehouse: ShipStationState) -> None:
    api = portal.api("operator")
    answer = api.post("/api/v1/orders", json={**BODY, "number": "WH-1001"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["number"], body["state"], body["outcome"], body["reasons"]) == ("WH-1001", "ready", "new", [])
    detail = api.get(f"/api/v1/orders/{body['id']}").json()
    assert detail["number"] == "WH-1001"
    assert detail["totals"]["total"] == {"amount": "29.90", "currency": "EUR"}  # 2 × 12.50 + 4.90, exactly
    assert [e["kind"] for e in detail["timeline"]][:2] == ["received", "submitted"]
    assert portal.wakes  # the poster was nudged


def test_every_problem_is_answered_at_once_in_the_one_error_shape(portal: Portal) -> None:
    bad = {**BODY, "currency": "euro", "lines": [{"sku": "", "quantity": "two", "unit_price": "1,5"}], "colour": 1}
    answer = portal.api("operator").post("/api/v1/orders", json=bad)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_order" and error["field"] == "colour"
    assert [(p["field"], p["value"], p["code"]) for p in error["problems"]] == [("colour", "", "unknown_field")]
    bad.pop("colour")
    answer = portal.api("operator").post("/api/v1/orders", json=bad)
    problems = answer.json()["error"]["problems"]
    assert [(p["field"], p["value"], p["code"]) for p in problems] == [
        ("currency", "euro", "not_a_currency"),
        ("lines[0].sku", "", "required"),
        ("lines[0].quantity", "two", "not_a_whole_number"),
        ("lines[0].unit_price", "1,5", "not_an_amount"),
    ]
    assert all(p["fix"] for p in problems)
    assert count(portal, orders) == 0


def test_a_body_that_is_not_json_is_refused_and_nothing_is_written(portal: Portal) -> None:
    api = portal.api("operator")
    for content in (b"", b"{", b"[1, 2]", b'{"lines": {"a": 1}}'):
        answer = api.post("/api/v1/orders", content=content, headers={"content-type": "application/json"})
        assert answer.status_code == 422, content
        assert answer.json()["error"]["code"] == "invalid_order"
    assert count(portal, orders) == 0 and count(portal, connections) == 0


def test_the_same_key_and_body_twice_is_one_order_posted_once_and_another_body_is_refused(
    portal: Portal, warehouse: ShipStationState
) -> None:
    api = portal.api("operator")
    headers = {"Idempotency-Key": "7f6c1d1e-retry"}
    first = api.post("/api/v1/orders", json=BODY, headers=headers)
    again = api.post("/api/v1/orders", json=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and first.json()["number"] == "M-1"
    other = api.post("/api/v1/orders", json={**BODY, "shipping_price": "9.90"}, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert count(portal, orders) == 1 and count(portal, idempotency_keys) == 1
    manual_id = cid(portal.hub, "manual")
    assert post_ready(portal.default, cid(portal.hub, "wh")).posted == 1
    again_later = api.post("/api/v1/orders", json=BODY, headers=headers)  # a retry after it was posted
    assert again_later.status_code == 200 and post_ready(portal.default, cid(portal.hub, "wh")).posted == 0
    created = [e.key for e in warehouse.ledger if e.kind == "order_created"]
    assert created == [f"ob-{manual_id}-M-1"]
    assert not [e for e in warehouse.ledger if e.kind == "order_updated"]


def test_only_an_operator_token_may_place_and_preview(portal: Portal) -> None:
    assert portal.api("viewer").post("/api/v1/orders", json=BODY).status_code == 403
    assert portal.api("viewer").post("/api/v1/orders/preview", json=BODY).status_code == 403
    assert portal.anonymous().post("/api/v1/orders", json=BODY).status_code == 401
    assert count(portal, orders) == 0


def test_a_preview_gives_the_totals_and_the_hold_to_come_and_writes_nothing(
    portal: Portal, warehouse: ShipStationState
) -> None:
    api = portal.api("operator")
    body = {**BODY, "number": "P-1", "lines": [*BODY["lines"], {"sku": "GHOST-9", "quantity": 1, "unit_price": "3"}]}
    answer = api.post("/api/v1/orders/preview", json=body)
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert (seen["valid"], seen["outcome"], seen["state"]) == (True, "new", "held")
    assert seen["totals"]["total"] == "32.90" and seen["totals"]["units"] == 3
    assert [(r["code"], r["value"]) for r in seen["reasons"]] == [("sku_unmapped", "GHOST-9")]
    bad = api.post("/api/v1/orders/preview", json={**body, "tax": "-1"}).json()
    assert bad["valid"] is False and [p["field"] for p in bad["problems"]] == ["tax"] and bad["totals"] is None
    assert count(portal, orders) == 0 and count(portal, connections) == 1  # the warehouse only


def test_suggestions_come_from_the_mappings_and_past_orders(portal: Portal, warehouse: ShipStationState) -> None:
    api = portal.api("operator")
    api.post("/api/v1/orders", json={**BODY, "lines": [{"sku": "TEA-GREEN", "quantity": 1, "unit_price": "2"}]})
    skus = portal.api("viewer").get("/api/v1/order-suggestions", params={"kind": "sku", "q": "te"}).json()
    assert skus["suggestions"] == [
        {"value": "TEE-BLK-S", "mapped": ["wh: TEE-BLK-S"]},
        {"value": "TEA-GREEN", "mapped": []},
    ]
    methods = api.get("/api/v1/order-suggestions", params={"kind": "shipping"}).json()
    assert methods["suggestions"] == [{"value": "Standard", "mapped": ["wh: ups:ups_ground"]}]
    assert api.get("/api/v1/order-suggestions", params={"kind": "colour"}).status_code == 422
