"""The ShipStation sandbox behaves like ShipStation V1: upserts, validation, rate limit, warehouse, auth.

Requests go through a real ``httpx.Client`` (in-process transport; one test over a real port).
Time is a fake clock so rate windows and warehouse delays are exact and instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge import exactjson
from orderbridge.sandboxes.base import Fault, in_process_client, run_in_thread
from orderbridge.sandboxes.shipstation import ShipStationState, create_sandbox

AUTH = ("ss_key", "ss_secret")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # 04:00 in Los Angeles


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


Sandbox = tuple[ShipStationState, httpx.Client, Clock]


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    clients: list[httpx.Client] = []

    def make(**options: Any) -> Sandbox:
        clock = Clock()
        state, app = create_sandbox(clock=clock, **options)
        client = in_process_client(app)
        client.auth = httpx.BasicAuth(*AUTH)
        clients.append(client)
        return state, client, clock

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return make_sandbox(limits=False)


def order(n: int, *, lines: int = 2, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "orderNumber": f"#{1000 + n}",
        "orderKey": f"key-{n}",
        "orderDate": "2025-03-01 04:00:00",
        "orderStatus": "awaiting_shipment",
        "customerEmail": f"buyer{n}@example.com",
        "billTo": {"name": "Ada"},
        "shipTo": {
            "name": "Ada",
            "street1": "1 Way",
            "city": "Portland",
            "postalCode": "97201",
            "country": "US",
        },
        "items": [
            {
                "lineItemKey": f"{n}-L{i}",
                "sku": f"SKU-{i}",
                "name": f"Item {i}",
                "quantity": i + 1,
                "unitPrice": 19.99,
            }
            for i in range(lines)
        ],
        "carrierCode": "usps",
        "serviceCode": "usps_priority_mail",
    }
    body.update(overrides)
    return body


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, content=exactjson.dumps(body), headers={"content-type": "application/json"})


def shipments(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/shipments", params={"includeShipmentItems": "true", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = exactjson.loads(response.content)
    return body


# --- orders ---------------------------------------------------------------------------------------


def test_a_second_createorder_with_the_same_order_key_updates_the_order(sandbox: Sandbox) -> None:
    state, client, _ = sandbox
    first = post(client, "/orders/createorder", order(1)).json()
    second = post(client, "/orders/createorder", order(1, customerEmail="new@example.com")).json()
    assert second["orderId"] == first["orderId"] and second["orderKey"] == "key-1"
    assert state.create_count("key-1") == 1 and state.update_count("key-1") == 1
    assert [e.kind for e in state.entries()] == ["order_created", "order_updated"]
    assert state.orders_by_key()["key-1"]["customerEmail"] == "new@example.com"
    fetched = client.get(f"/orders/{first['orderId']}").json()
    assert fetched["customerEmail"] == "new@example.com"


def test_an_update_by_order_id_changes_the_same_order(sandbox: Sandbox) -> None:
    state, client, _ = sandbox
    created = post(client, "/orders/createorder", order(1)).json()
    body = order(1, orderKey=None, orderId=created["orderId"], orderStatus="on_hold")
    assert post(client, "/orders/createorder", body).json()["orderStatus"] == "on_hold"
    assert len(state.orders) == 1 and state.update_count("key-1") == 1


def test_money_arrives_exactly_as_sent(sandbox: Sandbox) -> None:
    state, client, _ = sandbox
    body = order(1)
    body["items"][0]["unitPrice"] = Decimal("19.99")
    body["amountPaid"] = Decimal("123.456789")
    post(client, "/orders/createorder", body)
    stored = state.orders_by_key()["key-1"]
    assert stored["items"][0]["unitPrice"] == Decimal("19.99")
    assert stored["amountPaid"] == Decimal("123.456789")


def test_createorders_reports_success_per_order_and_creates_only_the_valid_ones(sandbox: Sandbox) -> None:
    state, client, _ = sandbox
    batch = [order(1), order(2, orderNumber=""), order(3, shipTo=None)]
    response = post(client, "/orders/createorders", batch)
    assert response.status_code == 200
    body = response.json()
    assert body["hasErrors"] is True
    assert [r["success"] for r in body["results"]] == [True, False, False]
    assert [r["orderKey"] for r in body["results"]] == ["key-1", "key-2", "key-3"]
    assert "orderNumber" in body["results"][1]["errorMessage"]
    assert "shipTo" in body["results"][2]["errorMessage"]
    assert set(state.orders_by_key()) == {"key-1"}


def test_createorders_refuses_more_than_100_orders_as_a_whole(sandbox: Sandbox) -> None:
    state, client, _ = sandbox
    response = post(client, "/orders/createorders", [order(n) for n in range(101)])
    assert response.status_code == 400
    assert "100" in response.json()["ExceptionMessage"]
    assert state.orders == {}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"orderNumber": None}, "orderNumber field is required"),
        ({"orderDate": None}, "orderDate field is required"),
        ({"orderDate": "yesterday"}, "not valid for orderDate"),
        ({"orderStatus": "teleported"}, "Invalid orderStatus"),
        ({"billTo": "Ada"}, "billTo field is required"),
        ({"shipTo": None}, "shipTo field is required"),
        ({"items": [{"sku": "A", "quantity": -1}]}, "not valid for quantity"),
    ],
)
def test_createorder_refuses_invalid_orders_with_a_shipstation_error_body(
    sandbox: Sandbox, change: dict[str, Any], words: str
) -> None:
    state, client, _ = sandbox
    response = post(client, "/orders/createorder", order(1, **change))
    assert response.status_code == 400
    body = response.json()
    assert body["Message"] == "The request is invalid."
    assert words in body["ExceptionMessage"]
    assert state.orders == {} and state.entries() == []


def test_a_body_that_is_not_json_is_a_400(sandbox: Sandbox) -> None:
    _, client, _ = sandbox
    response = client.post("/orders/createorders", content=b"[{", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["ExceptionMessage"]


def test_orders_are_listed_by_order_number_with_paging(sandbox: Sandbox) -> None:
    _, client, _ = sandbox
    post(client, "/orders/createorders", [order(n) for n in range(1, 6)])
    page = client.get("/orders", params={"pageSize": 2, "page": 2}).json()
    assert (page["total"], page["page"], page["pages"], len(page["orders"])) == (5, 2, 3, 2)
    found = client.get("/orders", params={"orderNumber": "#1003"}).json()
    assert [o["orderKey"] for o in found["orders"]] == ["key-3"]
    assert client.get("/orders/999").status_code == 404


def test_the_orders_control_route_shows_create_and_update_counts(sandbox: Sandbox) -> None:
    _, client, _ = sandbox
    post(client, "/orders/createorders", [order(1), order(2)])
    post(client, "/orders/createorder", order(1))
    summary = {o["orderKey"]: o for o in client.get("/_sandbox/orders").json()["orders"]}
    assert (summary["key-1"]["creates"], summary["key-1"]["updates"]) == (1, 1)
    assert (summary["key-2"]["creates"], summary["key-2"]["updates"]) == (1, 0)


# --- rate limit -----------------------------------------------------------------------------------


def test_every_response_carries_rate_headers_and_the_41st_request_in_a_window_is_a_429(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    _, client, clock = make_sandbox()
    clock.advance(15)  # 45 s left in this 60 s window
    remaining = []
    for _ in range(40):
        response = client.get("/orders")
        assert response.status_code == 200
        assert response.headers["X-Rate-Limit-Limit"] == "40"
        assert response.headers["X-Rate-Limit-Reset"] == "45"
        remaining.append(int(response.headers["X-Rate-Limit-Remaining"]))
    assert remaining == list(range(39, -1, -1))
    refused = post(client, "/orders/createorder", order(1))
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Remaining"] == "0"
    assert refused.headers["Retry-After"] == refused.headers["X-Rate-Limit-Reset"] == "45"
    clock.advance(45)
    fresh = post(client, "/orders/createorder", order(1))
    assert fresh.status_code == 200 and fresh.headers["X-Rate-Limit-Remaining"] == "39"


def test_the_rate_limit_is_counted_per_key_pair(make_sandbox: Callable[..., Sandbox]) -> None:
    state, client, _ = make_sandbox(requests_per_minute=1)
    state.valid_credentials.add("other:pair")
    assert client.get("/orders").status_code == 200
    assert client.get("/orders").status_code == 429
    assert client.get("/orders", auth=("other", "pair")).status_code == 200


def test_a_configurable_window_rolls_over_sooner(make_sandbox: Callable[..., Sandbox]) -> None:
    _, client, clock = make_sandbox(requests_per_minute=2, window_seconds=2)
    assert [client.get("/orders").status_code for _ in range(3)] == [200, 200, 429]
    clock.advance(2)
    assert client.get("/orders").status_code == 200


# --- warehouse ------------------------------------------------------------------------------------


def test_orders_ship_after_the_delay_with_tracking_carrier_and_items(sandbox: Sandbox) -> None:
    _, client, clock = sandbox
    post(client, "/orders/createorders", [order(1), order(2, carrierCode=None, serviceCode=None)])
    clock.advance(4.9)
    assert shipments(client)["total"] == 0
    clock.advance(0.1)
    listed = shipments(client)
    assert (listed["total"], listed["page"], listed["pages"]) == (2, 1, 1)
    first, second = listed["shipments"]
    assert first["orderKey"] == "key-1" and first["orderNumber"] == "#1001"
    assert first["carrierCode"] == "usps" and first["serviceCode"] == "usps_priority_mail"
    assert second["carrierCode"] == "ups"  # the warehouse's default when the order names none
    assert first["trackingNumber"] and first["trackingNumber"] != second["trackingNumber"]
    assert first["voided"] is False and first["voidDate"] is None
    # ShipStation speaks naive Pacific time: 12:00:05 UTC is 04:00:05 in Los Angeles
    assert first["createDate"] == "2025-03-01T04:00:05.0000000" and first["shipDate"] == "2025-03-01"
    assert [(i["lineItemKey"], i["sku"], i["quantity"]) for i in first["shipmentItems"]] == [
        ("1-L0", "SKU-0", 1),
        ("1-L1", "SKU-1", 2),
    ]
    without_items = client.get("/shipments").json()["shipments"]
    assert without_items[0]["shipmentItems"] is None


def test_orders_not_awaiting_shipment_do_not_ship(sandbox: Sandbox) -> None:
    _, client, clock = sandbox
    post(
        client,
        "/orders/createorders",
        [order(1, orderStatus="on_hold"), order(2, orderStatus="awaiting_payment")],
    )
    clock.advance(60)
    assert shipments(client)["total"] == 0


def test_a_partial_order_ships_in_two_shipments_one_delay_apart(make_sandbox: Callable[..., Sandbox]) -> None:
    _, client, clock = make_sandbox(limits=False, partial_rate=1.0)
    post(client, "/orders/createorder", order(1, lines=3))
    clock.advance(5)
    (first,) = shipments(client)["shipments"]
    assert [i["lineItemKey"] for i in first["shipmentItems"]] == ["1-L0"]
    clock.advance(5)
    _, rest = shipments(client)["shipments"]
    assert [i["lineItemKey"] for i in rest["shipmentItems"]] == ["1-L1", "1-L2"]
    assert rest["trackingNumber"] != first["trackingNumber"]


def test_a_voided_label_is_followed_by_a_reshipment_with_a_new_tracking_number(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    _, client, clock = make_sandbox(limits=False, void_rate=1.0)
    post(client, "/orders/createorder", order(1))
    clock.advance(5)
    (label,) = shipments(client)["shipments"]
    assert label["voided"] is False
    clock.advance(5)
    voided, reship = shipments(client)["shipments"]
    assert voided["shipmentId"] == label["shipmentId"] and voided["voided"] is True and voided["voidDate"]
    assert reship["voided"] is False and reship["trackingNumber"] != voided["trackingNumber"]
    assert reship["createDate"] > voided["createDate"]


def test_partial_and_void_rates_pick_a_deterministic_fraction_of_orders(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    def run() -> list[tuple[str, int]]:
        _, client, clock = make_sandbox(limits=False, partial_rate=0.3, void_rate=0.3, seed=7)
        for start in range(0, 200, 100):
            post(client, "/orders/createorders", [order(n) for n in range(start, start + 100)])
        clock.advance(60)
        listed = shipments(client, pageSize=500)["shipments"]
        return [(s["orderKey"], s["voided"]) for s in listed]

    first = run()
    assert first == run()
    per_order: dict[str, int] = {}
    for key, _ in first:
        per_order[key] = per_order.get(key, 0) + 1
    assert 200 < len(first) < 400  # some orders shipped twice, most once
    assert sum(1 for _, voided in first if voided) in range(30, 90)


def test_the_ship_control_route_ships_one_order_now_with_overrides(sandbox: Sandbox) -> None:
    _, client, _ = sandbox
    post(client, "/orders/createorders", [order(1), order(2)])
    response = client.post("/_sandbox/ship", json={"orderKey": "key-1", "overrides": {"trackingNumber": None}})
    (shipped,) = response.json()["shipments"]
    assert shipped["orderKey"] == "key-1" and shipped["trackingNumber"] is None
    assert [s["orderKey"] for s in shipments(client)["shipments"]] == ["key-1"]
    everything = client.post("/_sandbox/ship", json={"all": True}).json()["shipments"]
    assert [s["orderKey"] for s in everything] == ["key-2"]
    assert client.post("/_sandbox/ship", json={"orderKey": "nope"}).status_code == 404


def test_shipments_filter_by_creation_date_in_pacific_time_and_page(sandbox: Sandbox) -> None:
    _, client, clock = sandbox
    post(client, "/orders/createorders", [order(n) for n in range(3)])
    clock.advance(3600)
    post(client, "/orders/createorders", [order(n) for n in range(3, 5)])
    clock.advance(10)
    # the first three shipped at 04:00:05 Pacific, the last two at 05:00:05
    later = shipments(client, createDateStart="2025-03-01 05:00:00")
    assert [s["orderKey"] for s in later["shipments"]] == ["key-3", "key-4"]
    same_in_utc = shipments(client, createDateStart="2025-03-01T13:00:00Z")
    assert same_in_utc["total"] == 2
    earlier = shipments(client, createDateEnd="2025-03-01 04:30:00", pageSize=2, page=2)
    assert (earlier["total"], earlier["pages"], len(earlier["shipments"])) == (3, 2, 1)
    assert shipments(client, orderNumber="#1004")["total"] == 1
    assert client.get("/shipments", params={"pageSize": 501}).status_code == 400
    assert client.get("/shipments", params={"createDateStart": "soon"}).status_code == 400


# --- auth -----------------------------------------------------------------------------------------


def test_requests_without_or_with_wrong_credentials_are_401(sandbox: Sandbox) -> None:
    _, client, _ = sandbox
    assert client.get("/orders", auth=("ss_key", "wrong")).status_code == 401
    bare = client.build_request("GET", "/orders")  # auth is applied on send, not here
    assert "authorization" not in bare.headers
    assert client.send(bare, auth=None).status_code == 401
    garbled = client.build_request("GET", "/orders", headers={"Authorization": "Basic !!!"})
    assert client.send(garbled, auth=None).status_code == 401


def test_revoked_credentials_are_refused_until_restored(sandbox: Sandbox) -> None:
    state, client, _ = sandbox
    assert client.post("/_sandbox/credentials/revoke").status_code == 200
    refused = post(client, "/orders/createorder", order(1))
    assert refused.status_code == 401 and "denied" in refused.json()["Message"]
    assert state.orders == {}
    client.post("/_sandbox/credentials/restore")
    assert post(client, "/orders/createorder", order(1)).status_code == 200


def test_a_revoke_fault_cuts_off_the_next_request(sandbox: Sandbox) -> None:
    state, client, _ = sandbox
    state.add_fault(Fault("revoke"))
    assert client.get("/orders").status_code == 401


def test_the_sandbox_serves_over_real_http() -> None:
    state, app = create_sandbox(limits=True)
    with run_in_thread(app) as running, httpx.Client(base_url=running.base_url, auth=AUTH) as client:
        response = post(client, "/orders/createorders", [order(n) for n in range(3)])
        assert response.status_code == 200 and not response.json()["hasErrors"]
        assert response.headers["X-Rate-Limit-Remaining"] == "39"
        info = client.get("/_sandbox/state").json()
    assert info["orders"] == 3 and len(state.entries("order_created")) == 3


def test_a_fault_with_a_probability_hits_about_that_share_and_is_counted() -> None:
    """The chaos run's standing faults (decision 237): ``count=-1`` with a probability, drawn
    from the state's seeded generator, each one applied counted by kind in /_sandbox/state."""
    from orderbridge.sandboxes.base import Fault, in_process_client
    from orderbridge.sandboxes.shipstation.app import create_sandbox

    state, app = create_sandbox(limits=False)
    state.add_fault(Fault("503", count=-1, probability=0.25))
    with in_process_client(app) as client:
        statuses = [client.get("/orders", auth=("ss_key", "ss_secret")).status_code for _ in range(400)]
        info = client.get("/_sandbox/state").json()
    failed = statuses.count(503)
    assert 60 <= failed <= 140 and statuses.count(200) == 400 - failed
    assert info["faults_applied"] == {"503": failed}
    assert state.faults, "a standing fault stays until cleared"
    with pytest.raises(ValueError, match="probability"):
        Fault("503", probability=0.0)
