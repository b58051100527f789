"""The Heartland Retail sandbox answers as api-facts describes: bearer auth, paged and filtered lists,
201 + Location on create, Heartland's validation errors, the sales-order and ticket flows with their
effect on inventory, and the seed-001 traps as admin calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.heartland import HeartlandState, create_sandbox

AUTH = {"Authorization": "Bearer hl_sandbox_token"}


@pytest.fixture
def sandbox() -> Iterator[tuple[HeartlandState, httpx.Client]]:
    state, app = create_sandbox()
    with in_process_client(app) as client:
        yield state, client


def _filter(condition: dict[str, Any]) -> dict[str, str]:
    return {"_filter": json.dumps(condition)}


def _created(response: httpx.Response) -> int:
    assert response.status_code == 201, response.text
    assert response.content == b""  # fetch the record with GET (create_returns_body is off)
    return int(response.headers["location"].rsplit("/", 1)[-1])


def test_a_missing_or_wrong_token_is_401_and_an_unknown_record_404(
    sandbox: tuple[HeartlandState, httpx.Client],
) -> None:
    _, client = sandbox
    assert client.get("/api/users").status_code == 401
    assert client.get("/api/users", headers={"Authorization": "Bearer nope"}).json()["error"] == "unauthorized"
    assert client.get("/api/sales/orders/999", headers=AUTH).status_code == 404


def test_lists_are_paged_and_filtered_as_heartland_does(sandbox: tuple[HeartlandState, httpx.Client]) -> None:
    _, client = sandbox
    page = client.get("/api/items", headers=AUTH, params={"per_page": 3, "page": 2}).json()
    assert set(page) == {"results", "total", "pages"} and page["total"] == 11 and page["pages"] == 4
    assert len(page["results"]) == 3
    found = client.get("/api/items", headers=AUTH, params=_filter({"public_id": {"$in": ["SKU-1", "SKU-9"]}})).json()
    assert [i["public_id"] for i in found["results"]] == ["SKU-1"]
    either = _filter({"$or": [{"login": "manager"}, {"login": "online-orders"}], "active": True})
    assert client.get("/api/users", headers=AUTH, params=either).json()["total"] == 2
    locations = client.get("/api/locations", headers=AUTH, params={"_include[]": "stations"}).json()["results"]
    assert locations[0]["stations"][0]["name"] == "Register 1"


def test_the_sales_order_flow_moves_inventory_only_once_open_and_invoiced(
    sandbox: tuple[HeartlandState, httpx.Client],
) -> None:
    state, client = sandbox
    station = next(iter(state.stations))
    item = state.item_by_public_id("SKU-1")
    assert item is not None
    oid = _created(client.post("/api/sales/orders", headers=AUTH, json={"public_id": "#1", "station_id": station}))
    _created(client.post(f"/api/sales/orders/{oid}/lines", headers=AUTH, json={"item_id": item["id"], "qty": 2}))
    _created(client.post(f"/api/sales/orders/{oid}/taxes", headers=AUTH, json={"description": "Tax", "value": "1.10"}))
    assert state.stock("SKU-1") == {"on_hand": Decimal(100), "committed": Decimal(0)}  # pending: nothing moves
    opened = client.put(f"/api/sales/orders/{oid}", headers=AUTH, json={"status": "open"}).json()
    assert opened["status"] == "open" and Decimal(str(opened["total"])) == Decimal("43.08")
    assert state.stock("SKU-1") == {"on_hand": Decimal(100), "committed": Decimal(2)}  # committed, still on hand
    refused = client.post(f"/api/sales/orders/{oid}/lines", headers=AUTH, json={"item_id": item["id"], "qty": 1})
    assert refused.status_code == 422 and refused.json()["error"] == "validation_error"
    inv = _created(client.post("/api/sales/invoices", headers=AUTH, json={"order_id": oid}))
    too_many = client.post(f"/api/sales/invoices/{inv}/lines", headers=AUTH, json={"item_id": item["id"], "qty": 3})
    assert too_many.status_code == 422 and "qty" in too_many.json()["details"]
    _created(client.post(f"/api/sales/invoices/{inv}/lines", headers=AUTH, json={"item_id": item["id"], "qty": 2}))
    assert client.put(f"/api/sales/invoices/{inv}", headers=AUTH, json={"status": "complete"}).status_code == 200
    assert state.stock("SKU-1") == {"on_hand": Decimal(98), "committed": Decimal(0)}
    assert client.get(f"/api/sales/orders/{oid}", headers=AUTH).json()["status"] == "closed"


def test_validation_errors_name_the_field_in_heartlands_shape(sandbox: tuple[HeartlandState, httpx.Client]) -> None:
    _, client = sandbox
    answer = client.post("/api/sales/orders", headers=AUTH, json={"public_id": "#1", "station_id": 999})
    assert answer.status_code == 422
    assert answer.json() == {
        "error": "validation_error",
        "message": "Station not found",
        "details": {"station_id": ["is invalid"]},
    }
    customer = client.post("/api/customers", headers=AUTH, json={"first_name": "Ada"}).json()
    assert (
        customer["details"] == {"email": ["is required"], "last_name": ["is required"]}
        or "email" in customer["details"]
    )
    cid = _created(client.post("/api/customers", headers=AUTH, json={"last_name": "L", "email": "a@example.com"}))
    address = client.post(f"/api/customers/{cid}/addresses", headers=AUTH, json={"line_1": "1 Way", "city": "X"})
    assert address.status_code == 422 and set(address.json()["details"]) == {"postal_code", "country"}


def test_required_custom_fields_block_or_leave_pending_and_a_ticket_left_pending_moves_no_stock(
    sandbox: tuple[HeartlandState, httpx.Client],
) -> None:
    state, client = sandbox
    station = next(iter(state.stations))
    item = state.item_by_public_id("SKU-2")
    assert item is not None
    state.add_custom_field("season", "sales.transaction", required=True, on_missing="block")
    blocked = client.post("/api/sales/orders", headers=AUTH, json={"public_id": "#1", "station_id": station})
    assert blocked.status_code == 422 and blocked.json()["details"] == {"custom@season": ["is required"]}
    field = next(iter(state.custom_fields.values()))
    listed = client.get(
        "/api/custom_fields",
        headers=AUTH,
        params=_filter(
            {"$or": [{"group_id": "sales.transaction"}, {"group_id": "sales.transaction.line_item"}], "required": True}
        ),
    ).json()
    assert [f["key"] for f in listed["results"]] == ["season"] and "on_missing" not in listed["results"][0]
    client.put(f"/api/custom_fields/{field['id']}", headers=AUTH, json={"required": False})
    state.add_custom_field("pickup", "sales.transaction", required=True, on_missing="pending")
    ticket = {
        "public_id": "#2",
        "station_id": station,
        "status": "complete",
        "item_lines": [{"type": "ItemLine", "item_id": item["id"], "qty": 1, "unit_price": "21.99"}],
    }
    tid = _created(client.post("/api/sales/tickets", headers=AUTH, json=ticket))
    assert client.get(f"/api/sales/tickets/{tid}", headers=AUTH).json()["status"] == "pending"
    assert state.stock("SKU-2")["on_hand"] == 100
    client.put(f"/api/sales/tickets/{tid}", headers=AUTH, json={"status": "complete", "custom": {"pickup": "now"}})
    assert state.stock("SKU-2")["on_hand"] == 99


def test_the_traps_are_admin_calls(sandbox: tuple[HeartlandState, httpx.Client]) -> None:
    state, client = sandbox
    assert client.post("/_sandbox/heartland/users/online-orders", json={"active": False}).json()["active"] is False
    assert client.post("/_sandbox/heartland/items/Shopify Shipping/archive").json()["active"] is False
    client.post("/_sandbox/heartland/items/Shopify Refund/delete")
    assert state.item_by_public_id("Shopify Refund") is None
    client.post("/_sandbox/heartland/settings", json={"pos.tickets.customer_required": True})
    assert client.get("/api/settings/pos.tickets.customer_required", headers=AUTH).json()["value"] is True
    client.put("/api/settings/pos.tickets.customer_required", headers=AUTH, json={"value": False})
    assert (
        client.post("/_sandbox/heartland/options", json={"unique_public_id": True}).json()["unique_public_id"] is True
    )
    station = next(iter(state.stations))
    client.post("/api/sales/orders", headers=AUTH, json={"public_id": "#9", "station_id": station})
    again = client.post("/api/sales/orders", headers=AUTH, json={"public_id": "#9", "station_id": station})
    assert again.json()["details"] == {"public_id": ["has already been taken"]}
    calls = [e.key for e in state.entries("call")]
    assert "POST /api/sales/orders" in calls and all(not k.startswith("POST /_sandbox") for k in calls)
