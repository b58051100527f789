"""ShipStation destination: the shared destination contract plus ShipStation-specific behaviour.

Everything runs against the ShipStation sandbox under a real ``httpx.Client`` (in-process
transport, and one test over a real port), asserting what the sandbox recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge.connectors.base import DestinationConnector
from orderbridge.connectors.shipstation import ShipStationDestination
from orderbridge.errors import SettingsError
from orderbridge.sandboxes.base import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    in_process_client,
    run_in_thread,
)
from orderbridge.sandboxes.shipstation import create_sandbox
from tests.connectors._shipstation_fixtures import CREDENTIALS, ShipStationEnv, build_env, shipstation_env
from tests.connectors.contract_destination import DestinationContract, make_order, outgoing

__all__ = ["shipstation_env"]  # the imported fixture is used by the tests below


class TestShipStationDestinationContract(DestinationContract):
    @pytest.fixture
    def destination_env(self, shipstation_env: ShipStationEnv) -> ShipStationEnv:
        return shipstation_env


@pytest.fixture
def env_factory() -> Iterator[Any]:
    opened: list[tuple[ShipStationEnv, httpx.Client]] = []

    def make(**sandbox: Any) -> ShipStationEnv:
        env, http = build_env(**sandbox)
        opened.append((env, http))
        return env

    yield make
    for env, http in opened:
        env.connector.close()
        http.close()


def test_the_connector_satisfies_the_destination_protocol(shipstation_env: ShipStationEnv) -> None:
    assert isinstance(shipstation_env.connector, DestinationConnector)
    assert ShipStationDestination.declaration.kind == "shipstation"
    assert ShipStationDestination.max_batch == 100


def test_the_posted_order_carries_destination_skus_exact_prices_and_the_mapped_service(
    shipstation_env: ShipStationEnv,
) -> None:
    order = outgoing(make_order(1, lines=2))
    (result,) = shipstation_env.connector.post_orders([order])
    (doc,) = shipstation_env.received(order.order_key)
    assert result.document_id == str(doc["orderId"])
    assert doc["orderNumber"] == "#1001" and doc["orderKey"] == order.order_key
    assert doc["orderStatus"] == "awaiting_shipment"
    assert [i["sku"] for i in doc["items"]] == ["WH-TEE-001", "SKU-1"]
    assert [i["lineItemKey"] for i in doc["items"]] == ["1-L0", "1-L1"]
    assert [i["unitPrice"] for i in doc["items"]] == [Decimal("19.99"), Decimal("20.99")]
    assert doc["amountPaid"] == order.resolved.order.total.amount
    assert doc["shippingAmount"] == Decimal("4.95") and doc["taxAmount"] == Decimal("1.10")
    assert (doc["carrierCode"], doc["serviceCode"]) == ("usps", "usps_priority_mail")
    assert doc["requestedShippingService"] == "standard"
    assert doc["shipTo"]["postalCode"] == "97201" and doc["billTo"]["name"] == "Ada Lovelace"
    # 2025-03-01 12:01 UTC is 04:01 in Los Angeles (PST): dates are sent the way ShipStation reads them
    assert doc["orderDate"] == "2025-03-01 04:01:00.000000"


def test_reposting_a_new_version_updates_the_order_and_the_ledger_shows_one_create(
    shipstation_env: ShipStationEnv,
) -> None:
    first = outgoing(make_order(1))
    shipstation_env.connector.post_orders([first, outgoing(make_order(2))])
    changed = make_order(1, lines=3)
    shipstation_env.connector.post_orders([outgoing(changed), outgoing(make_order(2))])
    state = shipstation_env.state
    assert state.create_count(first.order_key) == 1
    assert state.update_count(first.order_key) == 1
    assert len(state.orders_by_key()[first.order_key]["items"]) == 3
    assert len(state.entries("order_created")) == 2


def test_a_whole_batch_400_is_split_so_only_the_bad_order_is_refused(env_factory: Any) -> None:
    clock_env: ShipStationEnv = env_factory()
    refusing_app = _refuse_first_createorders(clock_env.app)
    http = in_process_client(refusing_app, timeout=2)
    connector = ShipStationDestination("http://sandbox.local", CREDENTIALS, {}, http=http, sleep=lambda s: None)
    try:
        batch = [outgoing(make_order(1)), clock_env.refused_order(2), outgoing(make_order(3))]
        results = connector.post_orders(batch)
    finally:
        http.close()
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error is not None and "orderNumber" in results[1].error.message
    assert clock_env.state.create_count(batch[0].order_key) == 1


def test_the_connector_paces_itself_to_the_rate_limit_and_every_order_arrives(env_factory: Any) -> None:
    env: ShipStationEnv = env_factory(limits=True, requests_per_minute=3)
    orders = [outgoing(make_order(n)) for n in range(10)]
    results = [env.connector.post_orders([o])[0] for o in orders]
    assert all(r.ok for r in results)
    assert all(env.state.create_count(o.order_key) == 1 for o in orders)
    assert env.sleeps, "the connector should have waited for the next rate window"
    # it paused on X-Rate-Limit-Remaining: 0 instead of running into 429s
    assert env.state.requests_seen == 10


def test_a_429_from_the_rate_limit_is_waited_out_using_the_reset_header(env_factory: Any) -> None:
    env: ShipStationEnv = env_factory(limits=True, requests_per_minute=2)
    other = ShipStationDestination(
        "http://sandbox.local", CREDENTIALS, {}, http=in_process_client(env.app), sleep=lambda s: None
    )
    try:
        other.check()
        other.check()  # the window is now used up by another client of the same key pair
    finally:
        other.close()
    (result,) = env.connector.post_orders([outgoing(make_order(1))])
    assert result.ok
    assert env.sleeps and env.sleeps[0] >= 1


def test_the_connector_waits_for_real_rate_windows_on_a_live_sandbox() -> None:
    state, app = create_sandbox(limits=True, requests_per_minute=2, window_seconds=1.0)
    with run_in_thread(app) as running:
        connector = ShipStationDestination(running.base_url, CREDENTIALS, {})
        started = time.monotonic()
        try:
            results = [connector.post_orders([outgoing(make_order(n))])[0] for n in range(4)]
        finally:
            connector.close()
    assert all(r.ok for r in results)
    assert len(state.entries("order_created")) == 4
    assert time.monotonic() - started >= 1.0


def test_shipments_map_tracking_carrier_lines_and_an_aware_utc_ship_date(
    shipstation_env: ShipStationEnv,
) -> None:
    order = outgoing(make_order(1))
    shipstation_env.connector.post_orders([order])
    shipstation_env.clock.advance(10)
    (batch,) = shipstation_env.connector.list_shipments(None)
    (shipment,) = batch.shipments
    assert shipment.order_key == order.order_key
    assert shipment.carrier == "usps" and shipment.service == "usps_priority_mail"
    assert shipment.tracking_number
    assert shipment.ship_date == datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
    assert {(line.line_key, line.sku, line.quantity) for line in shipment.lines} == {
        ("1-L0", "WH-TEE-001", 1),
        ("1-L1", "SKU-1", 2),
    }
    assert batch.cursor_after == datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)


def test_a_partial_shipment_and_a_voided_label_with_reshipment_are_listed(env_factory: Any) -> None:
    partial: ShipStationEnv = env_factory(partial_rate=1.0)
    order = outgoing(make_order(1, lines=3))
    partial.connector.post_orders([order])
    partial.clock.advance(60)
    shipments = [s for b in partial.connector.list_shipments(None) for s in b.shipments]
    assert len(shipments) == 2
    assert sorted(line.line_key or "" for s in shipments for line in s.lines) == ["1-L0", "1-L1", "1-L2"]

    voiding: ShipStationEnv = env_factory(void_rate=1.0)
    order = outgoing(make_order(2))
    voiding.connector.post_orders([order])
    voiding.clock.advance(60)
    first, second = [s for b in voiding.connector.list_shipments(None) for s in b.shipments]
    assert first.voided and not second.voided
    assert first.tracking_number != second.tracking_number


def test_a_shipment_without_tracking_number_maps_to_none(shipstation_env: ShipStationEnv) -> None:
    order = outgoing(make_order(1))
    shipstation_env.connector.post_orders([order])
    shipstation_env.state.ship_now(order.order_key, tracking_number=None, carrier_code="")
    (shipment,) = [s for b in shipstation_env.connector.list_shipments(None) for s in b.shipments]
    assert shipment.tracking_number is None and shipment.carrier is None


def test_shipment_listing_pages_through_more_than_one_page(shipstation_env: ShipStationEnv) -> None:
    orders = [outgoing(make_order(n, lines=1)) for n in range(520)]
    shipstation_env.connector.post_orders(orders)
    shipstation_env.ship_all()
    batches = list(shipstation_env.connector.list_shipments(None))
    assert [len(b.shipments) for b in batches] == [500, 20]
    assert len({s.external_id for b in batches for s in b.shipments}) == 520
    assert batches[0].cursor_after is not None and batches[1].cursor_after is not None
    assert batches[0].cursor_after <= batches[1].cursor_after


def test_a_listing_from_a_cursor_uses_the_pacific_time_convention(shipstation_env: ShipStationEnv) -> None:
    early = outgoing(make_order(1))
    shipstation_env.connector.post_orders([early])
    shipstation_env.clock.advance(10)  # ships at 12:00:05 UTC
    late = outgoing(make_order(2))
    shipstation_env.connector.post_orders([late])
    shipstation_env.clock.advance(3600)  # ships at 12:00:15 UTC
    since = datetime(2025, 3, 1, 12, 0, 10, tzinfo=UTC)
    keys = [s.order_key for b in shipstation_env.connector.list_shipments(since) for s in b.shipments]
    assert keys == [late.order_key]


def test_check_describes_the_account(shipstation_env: ShipStationEnv) -> None:
    assert "ShipStation" in shipstation_env.connector.check()


def test_missing_credentials_or_an_unknown_timezone_are_settings_errors() -> None:
    with pytest.raises(SettingsError):
        ShipStationDestination("http://x", {"api_key": "k"}, {})
    with pytest.raises(SettingsError):
        ShipStationDestination("http://x", CREDENTIALS, {"timezone": "Mars/Olympus"})


def test_a_wrong_base_url_is_a_settings_error(shipstation_env: ShipStationEnv) -> None:
    http = in_process_client(shipstation_env.app)
    connector = ShipStationDestination("http://sandbox.local/nope", CREDENTIALS, {}, http=http, sleep=lambda s: None)
    try:
        with pytest.raises(SettingsError):
            connector.check()
    finally:
        http.close()


def test_batches_post_over_real_http(shipstation_env: ShipStationEnv) -> None:
    state, app = create_sandbox(limits=False)
    with run_in_thread(app) as running:
        connector = ShipStationDestination(running.base_url, CREDENTIALS, {})
        try:
            results = connector.post_orders([outgoing(make_order(n)) for n in range(150)])
        finally:
            connector.close()
    assert len(results) == 150 and all(r.ok for r in results)
    assert len(state.orders_by_key()) == 150


# --- helpers -------------------------------------------------------------------------------------


def _refuse_first_createorders(app: ASGIApp) -> ASGIApp:
    """Answer the first ``createorders`` with a whole-request 400, as ShipStation can."""
    refused = False

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal refused
        if scope["type"] == "http" and scope["path"] == "/orders/createorders" and not refused:
            refused = True
            body = b'{"Message":"The request is invalid.","ExceptionMessage":"Malformed order in batch."}'
            start: Message = {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapper
