"""The Square sandbox on its own: Square's idempotency, arithmetic, refusals and error shape, spoken to
over HTTP as any client would (no OrderBridge connector in between)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orderbridge.sandboxes.base import Fault, in_process_client, run_in_thread
from orderbridge.sandboxes.square import SquareState, create_sandbox
from orderbridge.sandboxes.square.app import ACCESS_TOKEN, INACTIVE_TEAM_MEMBER_ID, LOCATION_ID, TEAM_MEMBER_ID

AUTH = {"Authorization": f"Bearer {ACCESS_TOKEN}"}


@pytest.fixture
def square() -> Iterator[tuple[SquareState, httpx.Client]]:
    state, app = create_sandbox()
    client = in_process_client(app)
    client.headers.update(AUTH)
    yield state, client
    client.close()


def _variation(state: SquareState, sku: str) -> str:
    return next(
        o["id"]
        for o in state.catalog.values()
        if o["type"] == "ITEM_VARIATION" and o["item_variation_data"]["sku"] == sku
    )


def _order(lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"location_id": LOCATION_ID, "line_items": lines, **extra}


def _ad_hoc(cents: int, quantity: str = "1", **extra: Any) -> dict[str, Any]:
    return {"name": "Thing", "quantity": quantity, "base_price_money": {"amount": cents, "currency": "USD"}, **extra}


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    error: dict[str, Any] = body["errors"][0]
    assert {"category", "code", "detail"} <= set(error)
    return error


# --- idempotency -------------------------------------------------------------------------------------


def test_the_same_key_and_body_answer_the_first_order_byte_for_byte_and_make_nothing(square: Any) -> None:
    state, client = square
    body = {"idempotency_key": "k-1", "order": _order([_ad_hoc(1000)])}
    first, again = client.post("/v2/orders", json=body), client.post("/v2/orders", json=body)
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert len(state.orders) == 1 and len(state.entries("order_created")) == 1
    assert len(state.entries("idempotent_replay")) == 1


def test_the_same_key_with_another_body_is_refused_as_reused(square: Any) -> None:
    state, client = square
    client.post("/v2/orders", json={"idempotency_key": "k-2", "order": _order([_ad_hoc(1000)])})
    refused = client.post("/v2/orders", json={"idempotency_key": "k-2", "order": _order([_ad_hoc(1001)])})
    assert refused.status_code == 400
    error = _error(refused)
    assert error["code"] == "IDEMPOTENCY_KEY_REUSED" and error["category"] == "INVALID_REQUEST_ERROR"
    assert len(state.orders) == 1


def test_a_refused_request_does_not_use_up_its_key(square: Any) -> None:
    state, client = square
    bad = client.post("/v2/orders", json={"idempotency_key": "k-3", "order": {"line_items": [_ad_hoc(100)]}})
    assert bad.status_code == 400 and _error(bad)["code"] == "MISSING_REQUIRED_PARAMETER"
    good = client.post("/v2/orders", json={"idempotency_key": "k-3", "order": _order([_ad_hoc(100)])})
    assert good.status_code == 200 and len(state.orders) == 1


def test_keys_are_per_endpoint_unless_the_sandbox_is_told_they_are_per_seller() -> None:
    for scope, expected in (("endpoint", 200), ("seller", 400)):
        _state, app = create_sandbox(idempotency_scope=scope)
        with in_process_client(app) as client:
            client.headers.update(AUTH)
            order = client.post("/v2/orders", json={"idempotency_key": "same", "order": _order([_ad_hoc(500)])})
            payment = client.post(
                "/v2/payments",
                json={
                    "idempotency_key": "same",
                    "source_id": "EXTERNAL",
                    "external_details": {"type": "OTHER", "source": "Shop"},
                    "amount_money": {"amount": 500, "currency": "USD"},
                    "order_id": order.json()["order"]["id"],
                    "location_id": LOCATION_ID,
                },
            )
            assert payment.status_code == expected


# --- Square's arithmetic ---------------------------------------------------------------------------


def _taxed(client: httpx.Client, cents: list[int], pct: str, **tax: Any) -> dict[str, Any]:
    body = {
        "idempotency_key": f"t-{cents}-{pct}-{sorted(tax.items())}",
        "order": _order(
            [_ad_hoc(c) for c in cents],
            taxes=[{"uid": "tax", "name": "Tax", "percentage": pct, "scope": "ORDER", **tax}],
        ),
    }
    response = client.post("/v2/orders", json=body)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()["order"]
    return order


def test_a_half_cent_of_tax_rounds_to_even(square: Any) -> None:
    _, client = square
    assert _taxed(client, [600], "9.75")["total_tax_money"]["amount"] == 58  # 58.5 → 58
    assert _taxed(client, [600], "11.75")["total_tax_money"]["amount"] == 70  # 70.5 → 70
    assert _taxed(client, [3020], "11.75")["total_tax_money"]["amount"] == 355  # 354.85 → 355


def test_a_tax_is_rounded_once_over_the_order_not_per_line() -> None:
    lines = [1500, 800, 695, 695]
    for rounding, expected in (("per_tax", 327), ("per_line", 328)):
        _state, app = create_sandbox(tax_rounding=rounding)
        with in_process_client(app) as client:
            client.headers.update(AUTH)
            order = _taxed(client, lines, "8.875")
            assert order["total_tax_money"]["amount"] == expected
            assert sum(i["total_tax_money"]["amount"] for i in order["line_items"]) == expected
            assert order["total_money"]["amount"] == sum(lines) + expected


def test_an_inclusive_tax_is_carved_out_of_the_price_and_not_added(square: Any) -> None:
    _, client = square
    order = _taxed(client, [1100], "10", type="INCLUSIVE")
    assert order["total_tax_money"]["amount"] == 100 and order["total_money"]["amount"] == 1100


def test_discounts_come_before_taxes_and_taxable_service_charges_are_taxed(square: Any) -> None:
    _state, client = square
    body = {
        "idempotency_key": "mix",
        "order": _order(
            [_ad_hoc(3000), _ad_hoc(1000)],
            discounts=[
                {
                    "uid": "d",
                    "name": "Spring",
                    "type": "FIXED_AMOUNT",
                    "amount_money": {"amount": 400, "currency": "USD"},
                    "scope": "ORDER",
                }
            ],
            service_charges=[
                {
                    "name": "Shipping",
                    "amount_money": {"amount": 500, "currency": "USD"},
                    "calculation_phase": "SUBTOTAL_PHASE",
                    "taxable": True,
                }
            ],
            taxes=[{"uid": "t", "name": "Tax", "percentage": "10", "scope": "ORDER"}],
        ),
    }
    order = client.post("/v2/orders", json=body).json()["order"]
    assert [i["total_discount_money"]["amount"] for i in order["line_items"]] == [300, 100]  # by gross
    assert order["total_tax_money"]["amount"] == 410  # 10 % of (3600 + 500)
    assert order["total_money"]["amount"] == 3600 + 500 + 410


def test_a_catalog_line_takes_its_variation_s_name_and_price(square: Any) -> None:
    state, client = square
    line = {"catalog_object_id": _variation(state, "SKU-1"), "quantity": "2"}
    order = client.post("/v2/orders", json={"idempotency_key": "cat", "order": _order([line])}).json()["order"]
    assert order["line_items"][0]["name"] == "Item 1" and order["total_money"]["amount"] == 2 * 2099


def test_an_item_id_where_a_variation_belongs_refuses_the_whole_order(square: Any) -> None:
    state, client = square
    item_id = next(o["id"] for o in state.catalog.values() if o["type"] == "ITEM")
    body = {"idempotency_key": "x", "order": _order([_ad_hoc(100), {"catalog_object_id": item_id, "quantity": "1"}])}
    refused = client.post("/v2/orders", json=body)
    error = _error(refused)
    assert (
        refused.status_code == 400 and error["code"] == "INVALID_VALUE" and "not an item variation" in error["detail"]
    )
    assert error["field"] == "order.line_items[1].catalog_object_id" and state.orders == {}


def test_order_limits_reference_id_fulfillments_and_an_inactive_location(square: Any) -> None:
    state, client = square
    long_ref = client.post("/v2/orders", json={"order": _order([_ad_hoc(1)], reference_id="x" * 41)})
    assert _error(long_ref)["code"] == "VALUE_TOO_LONG"
    two = client.post("/v2/orders", json={"order": _order([_ad_hoc(1)], fulfillments=[{"type": "SHIPMENT"}] * 2)})
    assert _error(two)["field"] == "order.fulfillments"
    state.locations[LOCATION_ID]["status"] = "INACTIVE"
    closed = client.post("/v2/orders", json={"order": _order([_ad_hoc(1)])})
    assert closed.status_code == 400 and "not active" in _error(closed)["detail"]


# --- payments --------------------------------------------------------------------------------------


def _pay(client: httpx.Client, order: dict[str, Any], amount: int, key: str, **extra: Any) -> httpx.Response:
    return client.post(
        "/v2/payments",
        json={
            "idempotency_key": key,
            "source_id": "EXTERNAL",
            "external_details": {"type": "OTHER", "source": "Shopify"},
            "amount_money": {"amount": amount, "currency": "USD"},
            "order_id": order["id"],
            "location_id": LOCATION_ID,
            **extra,
        },
    )


def test_a_payment_that_is_not_the_order_total_is_refused(square: Any) -> None:
    state, client = square
    order = _taxed(client, [600], "9.75")
    refused = _pay(client, order, 659, "p-1")
    assert refused.status_code == 400 and "does not match the order total" in _error(refused)["detail"]
    assert state.payments == {}
    assert _pay(client, order, 658, "p-2").status_code == 200


def test_paying_in_full_completes_an_order_without_fulfillment_and_moves_tracked_stock(square: Any) -> None:
    state, client = square
    variation = _variation(state, "SKU-2")
    before = state.inventory[variation]
    body = {"idempotency_key": "stock", "order": _order([{"catalog_object_id": variation, "quantity": "3"}])}
    order = client.post("/v2/orders", json=body).json()["order"]
    assert state.inventory[variation] == before  # an open order moves nothing
    assert _pay(client, order, order["total_money"]["amount"], "p-stock").status_code == 200
    assert state.orders[order["id"]]["state"] == "COMPLETED" and state.inventory[variation] == before - 3


def test_a_shipment_order_stays_open_once_paid_so_the_pos_shows_it_to_fulfil(square: Any) -> None:
    state, client = square
    body = {"idempotency_key": "ship", "order": _order([_ad_hoc(900)], fulfillments=[{"type": "SHIPMENT"}])}
    order = client.post("/v2/orders", json=body).json()["order"]
    assert _pay(client, order, 900, "p-ship").status_code == 200
    assert (
        state.orders[order["id"]]["state"] == "OPEN"
        and state.orders[order["id"]]["net_amount_due_money"]["amount"] == 0
    )


def test_an_inactive_team_member_is_refused_on_the_payment_unless_the_sandbox_lets_it_through() -> None:
    for reject, expected in ((True, 400), (False, 200)):
        _state, app = create_sandbox(reject_inactive_team_member=reject)
        with in_process_client(app) as client:
            client.headers.update(AUTH)
            order = _taxed(client, [100], "0")
            answer = _pay(client, order, 100, "p", team_member_id=INACTIVE_TEAM_MEMBER_ID)
            assert answer.status_code == expected
            if not reject:
                assert answer.json()["payment"]["team_member_id"] == INACTIVE_TEAM_MEMBER_ID


def test_a_payment_key_over_45_characters_is_refused(square: Any) -> None:
    _, client = square
    order = _taxed(client, [100], "0")
    assert _error(_pay(client, order, 100, "k" * 46))["code"] == "VALUE_TOO_LONG"


# --- catalog -----------------------------------------------------------------------------------------


def _search(client: httpx.Client, types: list[str], query: dict[str, Any]) -> list[str]:
    answer = client.post("/v2/catalog/search", json={"object_types": types, "query": query})
    assert answer.status_code == 200
    return [o["item_variation_data"]["sku"] for o in answer.json().get("objects", []) if o["type"] == "ITEM_VARIATION"]


def test_a_sku_is_found_only_by_an_item_variation_search(square: Any) -> None:
    _, client = square
    exact = {"exact_query": {"attribute_name": "sku", "attribute_value": "sku-1"}}
    assert _search(client, ["ITEM"], exact) == []
    assert _search(client, ["ITEM_VARIATION"], exact) == ["SKU-1"]  # case ignored
    prefix = {"exact_query": {"attribute_name": "sku", "attribute_value": "sku"}}
    assert _search(client, ["ITEM_VARIATION"], prefix) == ["SKU-1", "SKU-2", "SKU-3"]  # a word prefix matches
    many = {"set_query": {"attribute_name": "sku", "attribute_values": ["sku-1", "WH-TEE-001", "NOPE"]}}
    assert sorted(_search(client, ["ITEM_VARIATION"], many)) == ["SKU-1", "WH-TEE-001"]


def test_a_catalog_update_needs_the_current_version(square: Any) -> None:
    state, client = square
    variation = dict(state.catalog[_variation(state, "SKU-3")])
    stale = {**variation, "version": variation["version"] - 1}
    refused = client.post("/v2/catalog/object", json={"idempotency_key": "u1", "object": stale})
    assert _error(refused)["code"] == "VERSION_MISMATCH"
    accepted = client.post("/v2/catalog/object", json={"idempotency_key": "u2", "object": variation})
    assert accepted.status_code == 200 and accepted.json()["catalog_object"]["version"] > variation["version"]


def test_catalog_writes_happen_one_at_a_time_per_seller() -> None:
    state, app = create_sandbox(catalog_write_seconds=1.5)
    with run_in_thread(app) as running:
        answers: list[int] = []
        together = threading.Barrier(3)

        def write(n: int) -> None:
            body = {
                "idempotency_key": f"c{n}",
                "object": {"type": "ITEM", "id": "#new", "item_data": {"name": f"New {n}"}},
            }
            together.wait()
            answers.append(
                httpx.post(f"{running.base_url}/v2/catalog/object", json=body, headers=AUTH, timeout=5).status_code
            )

        threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(answers) == [200, 429, 429]
    assert len(state.entries("catalog_object_upserted")) == 1


# --- team, locations, custom attributes, versions, errors ----------------------------------------


def test_team_members_and_locations_show_their_status(square: Any) -> None:
    _, client = square
    assert client.get(f"/v2/team-members/{TEAM_MEMBER_ID}").json()["team_member"]["status"] == "ACTIVE"
    assert client.get(f"/v2/team-members/{INACTIVE_TEAM_MEMBER_ID}").json()["team_member"]["status"] == "INACTIVE"
    assert _error(client.get("/v2/team-members/nobody"))["code"] == "NOT_FOUND"
    statuses = {loc["id"]: loc["status"] for loc in client.get("/v2/locations").json()["locations"]}
    assert statuses[LOCATION_ID] == "ACTIVE" and "INACTIVE" in statuses.values()


def test_order_custom_attributes_need_square_version_2022_11_16(square: Any) -> None:
    _, client = square
    old = client.get("/v2/orders/custom-attribute-definitions", headers={"Square-Version": "2022-10-19"})
    assert old.status_code == 400 and _error(old)["code"] == "API_VERSION_INCOMPATIBLE"
    made = client.post(
        "/v2/orders/custom-attribute-definitions",
        json={"custom_attribute_definition": {"key": "gift", "schema": {}}},
        headers={"Square-Version": "2022-11-16"},
    )
    assert made.status_code == 200 and "required" not in made.json()["custom_attribute_definition"]


def test_a_malformed_square_version_is_refused_and_each_call_records_its_version(square: Any) -> None:
    state, client = square
    refused = client.get("/v2/locations", headers={"Square-Version": "latest"})
    assert _error(refused)["code"] == "INVALID_SQUARE_VERSION_FORMAT"
    client.get("/v2/locations")
    assert state.entries("call")[-1].data["square_version"] == state.pinned_version


def test_credentials_and_injected_faults_answer_in_square_s_error_shape(square: Any) -> None:
    state, client = square
    assert (
        _error(client.get("/v2/locations", headers={"Authorization": "Bearer nope"}))["category"]
        == "AUTHENTICATION_ERROR"
    )
    state.revoke()
    assert _error(client.get("/v2/locations"))["code"] == "ACCESS_TOKEN_REVOKED"
    state.restore()
    for kind, status, category in (
        ("429", 429, "RATE_LIMIT_ERROR"),
        ("503", 503, "API_ERROR"),
        ("403", 403, "INVALID_REQUEST_ERROR"),
    ):
        state.add_fault(Fault(kind))
        answer = client.get("/v2/locations")
        assert answer.status_code == status and _error(answer)["category"] == category


def test_a_5xx_after_apply_keeps_what_was_applied_and_a_resend_answers_it(square: Any) -> None:
    state, client = square
    client.post("/_sandbox/square/after-apply", json={"path": "/v2/orders", "status": 500, "count": 1})
    body = {"idempotency_key": "after", "order": _order([_ad_hoc(250)])}
    assert client.post("/v2/orders", json=body).status_code == 500
    assert len(state.orders) == 1
    again = client.post("/v2/orders", json=body)
    assert again.status_code == 200 and again.json()["order"]["id"] in state.orders and len(state.orders) == 1
