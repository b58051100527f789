"""The Mirakl sandbox behaves like Mirakl's seller API: auth, OR11 paging, the state machine and its
errors, the operator's debit, auto-refusal, can_cancel, the back office and the call ledger.

Requests go through a real ``httpx.Client`` (in-process transport; one test over a real port).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from orderbridge.sandboxes.base import Fault, in_process_client, run_in_thread
from orderbridge.sandboxes.mirakl import MiraklState, create_sandbox

KEY = "mirakl-shop-key"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


Sandbox = tuple[MiraklState, httpx.Client, Clock]


@pytest.fixture
def make() -> Iterator[Callable[..., Sandbox]]:
    clients: list[httpx.Client] = []

    def build(**options: Any) -> Sandbox:
        clock = Clock()
        state, app = create_sandbox(clock=clock, **options)
        client = in_process_client(app)
        client.headers["Authorization"] = KEY
        clients.append(client)
        return state, client, clock

    yield build
    for client in clients:
        client.close()


def accept_all(client: httpx.Client, state: MiraklState, order_id: str, accepted: bool = True) -> httpx.Response:
    lines = [{"id": ln["order_line_id"], "accepted": accepted} for ln in state.orders[order_id]["order_lines"]]
    return client.put(f"/api/orders/{order_id}/accept", json={"order_lines": lines})


def test_the_shop_key_is_the_authorization_header_itself(make: Callable[..., Sandbox]) -> None:
    state, client, _ = make()
    assert client.get("/api/account").status_code == 200
    assert client.get("/api/account", headers={"Authorization": f"Bearer {KEY}"}).status_code == 401
    state.revoke()
    refused = client.get("/api/orders")
    assert refused.status_code == 401 and refused.json() == {"status": 401, "message": "Unauthorized"}


def test_or11_pages_with_max_offset_and_total_count_and_caps_max(make: Callable[..., Sandbox]) -> None:
    state, client, clock = make()
    for _ in range(7):
        state.create_order()
        clock.advance(1)
    first = client.get("/api/orders", params={"max": 3, "offset": 0, "sort": "dateUpdated"}).json()
    last = client.get("/api/orders", params={"max": 3, "offset": 6, "sort": "dateUpdated"}).json()
    assert first["total_count"] == 7 and len(first["orders"]) == 3 and len(last["orders"]) == 1
    assert len(client.get("/api/orders").json()["orders"]) == 7  # default max 10
    too_many = client.get("/api/orders", params={"max": 101})
    assert too_many.status_code == 400 and "at most 100" in too_many.json()["message"]
    middle = state.orders["100004-A"]["last_updated_date"]
    newer = client.get("/api/orders", params={"start_update_date": middle, "sort": "dateUpdated"}).json()
    assert [o["order_id"] for o in newer["orders"]] == ["100004-A", "100005-A", "100006-A", "100007-A"]
    one = client.get("/api/orders", params={"order_ids": "100002-A"}).json()
    assert [o["order_id"] for o in one["orders"]] == ["100002-A"]


def test_illegal_calls_are_refused_with_miraklss_error_body_and_change_nothing(make: Callable[..., Sandbox]) -> None:
    state, client, _ = make(debit_delay_s=3600)
    order_id = state.create_order()["order_id"]
    for path in ("ship", "cancel"):
        refused = client.put(f"/api/orders/{order_id}/{path}")
        assert refused.status_code == 400
        assert set(refused.json()) == {"status", "message"} and "WAITING_ACCEPTANCE" in refused.json()["message"]
    tracked = client.put(f"/api/orders/{order_id}/tracking", json={"carrier_code": "ups", "tracking_number": "1"})
    assert tracked.status_code == 400
    assert state.orders[order_id]["order_state"] == "WAITING_ACCEPTANCE"
    assert accept_all(client, state, order_id).status_code == 204
    assert accept_all(client, state, order_id).status_code == 400, "a line accepted already cannot be accepted again"
    assert [c["rejected"] for c in state.calls(order_id)] == ["illegal_transition"] * 3 + ["", "illegal_transition"]


def test_or21_needs_every_line_decided_and_refusing_all_refuses_the_order(make: Callable[..., Sandbox]) -> None:
    state, client, _ = make()
    lines = [{"offer_sku": "A", "quantity": 1}, {"offer_sku": "B", "quantity": 1}]
    order_id = state.create_order(lines=lines)["order_id"]
    one = [{"id": state.orders[order_id]["order_lines"][0]["order_line_id"], "accepted": True}]
    assert client.put(f"/api/orders/{order_id}/accept", json={"order_lines": one}).status_code == 400
    assert accept_all(client, state, order_id, accepted=False).status_code == 204
    assert state.orders[order_id]["order_state"] == "REFUSED"


def test_after_acceptance_the_operator_debits_on_its_own_after_the_delay(make: Callable[..., Sandbox]) -> None:
    state, client, clock = make(debit_delay_s=120)
    order_id = state.create_order()["order_id"]
    accept_all(client, state, order_id)
    assert (
        client.get("/api/orders", params={"order_ids": order_id}).json()["orders"][0]["order_state"] == "WAITING_DEBIT"
    )
    clock.advance(121)
    order = client.get("/api/orders", params={"order_ids": order_id}).json()["orders"][0]
    assert order["order_state"] == "SHIPPING" and order["shipping_deadline"]
    path = [e.data["target"] for e in state.entries("transition") if e.key == order_id]
    assert path == ["WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING"]
    instant, client0, _ = make(debit_delay_s=0, debit_payment_step=False)
    other = instant.create_order()["order_id"]
    accept_all(client0, instant, other)
    assert instant.orders[other]["order_state"] == "SHIPPING"


def test_an_order_not_accepted_by_its_deadline_is_refused_automatically(make: Callable[..., Sandbox]) -> None:
    state, client, clock = make(acceptance_window_s=3600)
    order_id = state.create_order()["order_id"]
    clock.advance(3599)
    assert state.get(order_id)["order_state"] == "WAITING_ACCEPTANCE"
    clock.advance(2)
    order = client.get("/api/orders", params={"order_ids": order_id}).json()["orders"][0]
    assert order["order_state"] == "REFUSED"
    assert {ln["order_line_state"] for ln in order["order_lines"]} == {"REFUSED"}
    assert accept_all(client, state, order_id).status_code == 400


def test_cancel_needs_can_cancel_and_the_back_office_can_cancel_by_hand(make: Callable[..., Sandbox]) -> None:
    state, client, _ = make(can_cancel=False)
    order_id = state.create_order(state="SHIPPING")["order_id"]
    refused = client.put(f"/api/orders/{order_id}/cancel")
    assert refused.status_code == 400 and "can_cancel" in refused.json()["message"]
    client.post(f"/_sandbox/orders/{order_id}/can_cancel", json={"value": True})
    assert client.put(f"/api/orders/{order_id}/cancel").status_code == 204
    second = state.create_order(state="SHIPPING")["order_id"]
    moved = client.post(f"/_sandbox/orders/{second}/move", json={"state": "CANCELED"})
    assert moved.status_code == 200 and state.orders[second]["order_state"] == "CANCELED"
    assert client.post(f"/_sandbox/orders/{second}/move", json={"state": "SHIPPING"}).status_code == 400


def test_tracking_needs_a_registered_carrier_or_a_name_and_full_url(make: Callable[..., Sandbox]) -> None:
    state, client, _ = make()
    order_id = state.create_order(state="SHIPPING")["order_id"]
    url = f"/api/orders/{order_id}/tracking"
    assert client.put(url, json={"carrier_code": "colis-prive", "tracking_number": "1"}).status_code == 400
    assert client.put(url, json={"carrier_name": "Colis Privé", "tracking_number": "1"}).status_code == 400
    ok = client.put(
        url, json={"carrier_name": "Colis Privé", "carrier_url": "https://cp.example/1", "tracking_number": "1"}
    )
    assert ok.status_code == 204 and state.orders[order_id]["shipping_tracking_url"] == "https://cp.example/1"


def test_refunds_only_from_shipped_or_received_and_within_the_line_price(make: Callable[..., Sandbox]) -> None:
    state, client, _ = make()
    order = state.create_order(state="SHIPPED", lines=[{"offer_sku": "A", "quantity": 1, "price_unit": "10.00"}])
    line = order["order_lines"][0]["order_line_id"]
    too_much = client.put("/api/orders/refund", json={"refunds": [{"order_line_id": line, "amount": 11}]})
    assert too_much.status_code == 400
    made = client.put("/api/orders/refund", json={"refunds": [{"order_line_id": line, "amount": 4.5}]})
    assert made.status_code == 200 and made.json()["refunds"][0]["refund_id"]
    state.move(order["order_id"], "RECEIVED")
    state.move(order["order_id"], "CLOSED")
    assert client.put("/api/orders/refund", json={"refunds": [{"order_line_id": line, "amount": 1}]}).status_code == 400


def test_the_admin_api_creates_orders_in_any_state_and_faults_are_in_the_ledger(make: Callable[..., Sandbox]) -> None:
    state, client, _ = make()
    created = client.post("/_sandbox/orders", json={"state": "SHIPPED", "can_cancel": True})
    assert created.status_code == 200 and created.json()["order_state"] == "SHIPPED"
    assert created.json()["can_cancel"] is False, "a shipped order cannot be cancelled"
    state.add_fault(Fault("429", path="/api", retry_after=0.01))
    assert client.get("/api/orders").status_code == 429
    assert client.get("/api/orders").status_code == 200
    assert [c["status"] for c in client.get("/_sandbox/calls").json()["calls"]] == [429, 200]


def test_the_sandbox_serves_over_a_real_port() -> None:
    state, app = create_sandbox(orders=2)
    with run_in_thread(app) as running, httpx.Client(base_url=running.base_url, headers={"Authorization": KEY}) as c:
        client = c
        assert client.get("/api/orders").json()["total_count"] == 2
    assert [c["status"] for c in state.calls()] == [200]


def test_orderbridge_sandbox_mirakl_is_a_command_with_the_sandbox_settings() -> None:
    from typer.testing import CliRunner

    from orderbridge.cli.sandbox import app

    result = CliRunner().invoke(app, ["mirakl", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--debit-delay", "--acceptance-window", "--can-cancel", "--max-page", "--shop-key"):
        assert option in result.output
