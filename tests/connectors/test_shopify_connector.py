"""The Shopify channel against the Shopify sandbox: the shared contract, bulk backfill, throttling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from orderbridge.cli.fixes import sentence
from orderbridge.connectors.base import ChannelConnector, FulfilmentLine, FulfilmentRequest, UnreadableOrder
from orderbridge.connectors.shopify import ShopifyChannel
from orderbridge.connectors.shopify.client import estimate_cost
from orderbridge.connectors.shopify.mapper import is_bulk_child, order_from_bulk, order_from_graphql, order_from_rest
from orderbridge.connectors.shopify.webhooks import signature
from orderbridge.domain.canonical import content_hash
from orderbridge.domain.order import Order, RawJson
from orderbridge.errors import HoldOrder, RemoteUnavailable
from orderbridge.sandboxes.base import Fault, in_process_client
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox
from orderbridge.sandboxes.shopify.nodes import order_node
from tests.connectors.conftest import FakeClock
from tests.connectors.contract_channel import ChannelContract

BASE = "http://sandbox.local"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class ShopifyEnv:
    state: ShopifyState
    connector: ShopifyChannel
    sleeps: list[float]

    def add_order(self, **overrides: Any) -> str:
        return str(self.state.add_order(**overrides)["id"])

    def update_order(self, external_id: str, **changes: Any) -> None:
        self.state.update_order(int(external_id), **changes)

    def add_unreadable_order(self) -> str:
        return self.add_order(total_price="12,50")

    def order_count(self) -> int:
        return len(self.state.orders)

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, path="/admin", retry_after=0.01, **kw))

    def fulfillments(self, external_id: str) -> list[dict[str, Any]]:
        return self.state.fulfillments(int(external_id))

    base_url = BASE
    webhook_secret = "shpss_contract"

    def signed_delivery(self, external_id: str, *, signed: bool = True) -> tuple[dict[str, str], bytes]:
        """The order as Shopify's ``orders/updated`` delivery carries it (REST JSON), signed."""
        body = self.state.rest_json(int(external_id))
        headers = {
            "x-shopify-topic": "orders/updated",
            "x-shopify-webhook-id": f"contract-{external_id}",
            "x-shopify-triggered-at": datetime.now(UTC).isoformat(),
        }
        if signed:
            headers["x-shopify-hmac-sha256"] = signature(self.webhook_secret, body)
        return headers, body


def make_env(
    orders: int = 40, *, limits: bool = False, clock: FakeClock | None = None, **settings: Any
) -> tuple[ShopifyEnv, Any]:
    state, app = create_sandbox(orders=orders, seed=5, limits=limits)
    sleeps: list[float] = []
    sleep = clock.sleep if clock else sleeps.append
    http = in_process_client(app, BASE)
    connector = ShopifyChannel(
        BASE,
        {"access_token": "shpat_sandbox"},
        {"lines_per_order_hint": 4, **settings},
        http=http,
        sleep=sleep,
    )
    if clock is not None:
        state.monotonic = clock.monotonic
        connector.client.monotonic = clock.monotonic
    return ShopifyEnv(state, connector, clock.sleeps if clock else sleeps), http


class TestShopifyChannelContract(ChannelContract):
    @pytest.fixture
    def channel_env(self) -> Iterator[ShopifyEnv]:
        env, http = make_env(40, bulk_backfill=False)
        yield env
        http.close()


def test_shopify_channel_implements_the_channel_interface() -> None:
    env, http = make_env(1)
    assert isinstance(env.connector, ChannelConnector)
    assert env.connector.declaration.kind == "shopify"
    http.close()


def test_a_bulk_backfill_reassembles_children_and_puts_the_cursor_only_on_the_last_batch() -> None:
    env, http = make_env(30, bulk_batch_size=8)
    env.add_order(line_items=[{"sku": f"SKU-{i}", "quantity": 1, "price": "2.00"} for i in range(7)])
    every = list(env.connector.list_changed(None))
    waits = [b for b in every if not b.records]
    assert all(b.cursor_after is None for b in waits), "lease-renewal ticks while polling carry no cursor"
    batches = [b for b in every if b.records]
    records = [r for b in batches for r in b.records]
    assert [len(b.records) for b in batches] == [8, 8, 8, 7]
    assert [b.cursor_after is not None for b in batches] == [False, False, False, True]
    assert len({r.external_id for r in records}) == 31
    by_id = {r.external_id: r for r in records}
    for external_id in list(by_id)[:10]:
        assert by_id[external_id] == env.connector.fetch_order(external_id)
    big = records[-1]
    assert isinstance(big, Order) and [line.sku for line in big.lines] == [f"SKU-{i}" for i in range(7)]
    assert env.sleeps, "the connector polls currentBulkOperation with the injected sleep"
    assert [e.kind for e in env.state.entries("bulk_operation")] == ["bulk_operation"]
    http.close()


def test_orders_with_more_lines_than_the_hint_get_all_their_lines() -> None:
    env, http = make_env(0, bulk_backfill=False)
    external_id = env.add_order(line_items=[{"sku": f"L{i}", "quantity": 2, "price": "1.50"} for i in range(11)])
    (batch,) = list(env.connector.list_changed(LONG_AGO))
    (order,) = batch.records
    assert isinstance(order, Order) and order.external_id == external_id
    assert [line.sku for line in order.lines] == [f"L{i}" for i in range(11)]
    http.close()


def test_page_size_keeps_every_query_under_the_cost_cap_and_the_connector_waits_instead_of_failing(
    clock: FakeClock,
) -> None:
    env, http = make_env(80, limits=True, clock=clock, bulk_backfill=False)
    batches = list(env.connector.list_changed(LONG_AGO))
    assert sum(len(b.records) for b in batches) == 80
    assert all(b.cost <= 1000 for b in batches)
    assert (
        env.connector.page_size * 0 + estimate_cost(env.connector.list_query, {"first": env.connector.page_size})
        <= 1000
    )
    assert clock.sleeps and all(s <= 10.0 for s in clock.sleeps), "standard plan: 100 points/s refill"
    http.close()


def test_a_throttled_answer_is_waited_out_for_exactly_the_missing_points(clock: FakeClock) -> None:
    env, http = make_env(10, limits=True, clock=clock, bulk_backfill=False)
    env.state.drain_points(1000)
    batches = list(env.connector.list_changed(LONG_AGO))
    assert sum(len(b.records) for b in batches) == 10
    assert clock.sleeps and 0 < clock.sleeps[0] <= 10.0
    http.close()


def test_over_quantity_fulfilment_is_held_with_shopifys_message() -> None:
    env, http = make_env(0)
    external_id = env.add_order(line_items=[{"sku": "A", "quantity": 1, "price": "3.00"}])
    order = env.connector.fetch_order(external_id)
    assert isinstance(order, Order)
    with pytest.raises(HoldOrder) as caught:
        env.connector.push_fulfilment(
            FulfilmentRequest(external_id, (FulfilmentLine(order.lines[0].external_id, 5),), "T1", "UPS")
        )
    assert caught.value.code == "channel_rejected"
    assert env.fulfillments(external_id) == []
    http.close()


def test_a_reshipment_updates_the_tracking_of_the_existing_fulfilment() -> None:
    env, http = make_env(0)
    external_id = env.add_order()
    order = env.connector.fetch_order(external_id)
    assert isinstance(order, Order)
    every_line = tuple(FulfilmentLine(line.external_id, line.quantity) for line in order.lines)
    fid = env.connector.push_fulfilment(FulfilmentRequest(external_id, every_line, "OLD-1", "UPS"))
    again = env.connector.push_fulfilment(
        FulfilmentRequest(external_id, (), "NEW-2", "FedEx", replaces_fulfilment_id=fid)
    )
    assert again == fid
    (seen,) = env.fulfillments(external_id)
    assert (seen["tracking_number"], seen["tracking_company"]) == ("NEW-2", "FedEx")
    http.close()


def test_rest_and_graphql_shapes_map_to_the_same_order() -> None:
    state, _ = create_sandbox(orders=60, seed=9)
    for order_id in list(state.orders)[:60]:
        rest = state.order(order_id)
        assert rest is not None
        from_rest, from_graphql = order_from_rest(rest), order_from_graphql(order_node(rest))
        assert isinstance(from_rest, Order) and isinstance(from_graphql, Order)
        assert content_hash(from_rest) == content_hash(from_graphql), order_id  # discounts included
    assert any(order_from_rest(state.order(i) or {}).discounts for i in list(state.orders)[:60])  # some have codes


def test_unreadable_payloads_name_the_problem() -> None:
    state, _ = create_sandbox(orders=1)
    rest = dict(state.order(next(iter(state.orders))) or {})
    rest["created_at"] = "yesterday"
    record = order_from_rest(rest)
    assert isinstance(record, UnreadableOrder)
    assert "created_at" in record.problem and record.external_id == str(rest["id"])


def _bulk_lines(env: ShopifyEnv) -> list[bytes]:
    """The sandbox's bulk export of the connector's own query, as JSONL lines."""
    list(env.connector.list_changed(None))
    op = env.state.bulk
    assert op is not None
    return [line for line in env.state.bulk_results[op.id].split(b"\n") if line]


def test_a_bulk_order_keeps_the_lines_it_came_from_as_its_raw_payload() -> None:
    env, http = make_env(3)
    lines = _bulk_lines(env)
    order_line = lines[0]
    children = []
    for line in lines[1:]:
        if not is_bulk_child(line):
            break
        children.append(line)
    record = order_from_bulk(order_line, children)
    assert isinstance(record, Order) and isinstance(record.raw, RawJson)
    raw = json.loads(record.raw)
    assert {k: v for k, v in raw.items() if k not in ("lineItems", "shippingLines")} == json.loads(order_line)
    assert [json.dumps(c) for c in raw["lineItems"] + raw["shippingLines"]] == sorted(
        (json.dumps(json.loads(c)) for c in children), key=lambda c: "ShippingLine/" in c
    )
    assert record == env.connector.fetch_order(record.external_id)
    http.close()


def test_a_bulk_order_with_a_value_of_the_wrong_type_is_unreadable_and_says_where() -> None:
    env, http = make_env(2)
    lines = _bulk_lines(env)
    child = json.loads(lines[2])
    assert "LineItem" in child["id"]
    child["quantity"] = "two"
    record = order_from_bulk(lines[0], [lines[1], json.dumps(child).encode()])
    assert isinstance(record, UnreadableOrder)
    assert "quantity" in record.problem and "int" in record.problem
    assert record.external_id == json.loads(lines[0])["legacyResourceId"]
    assert record.raw["lineItems"][0]["quantity"] == "two", "the payload is kept for the order page"
    http.close()


def test_a_custom_attribute_named_like_the_parent_key_does_not_make_an_order_a_child() -> None:
    env, http = make_env(2)
    env.add_order(note_attributes=[{"name": "__parentId", "value": "__parentId"}])
    batches = [b for b in env.connector.list_changed(None) if b.records]
    records = [r for b in batches for r in b.records]
    assert len(records) == 3 and all(isinstance(r, Order) for r in records)
    assert ("__parentId", "__parentId") in records[-1].custom_fields
    http.close()


def test_a_child_line_that_is_not_an_object_makes_its_order_unreadable_not_the_sync_fail() -> None:
    env, http = make_env(1)
    lines = _bulk_lines(env)
    record = order_from_bulk(lines[0], [*lines[1:], b"5"])
    assert isinstance(record, UnreadableOrder) and "object" in record.problem
    assert 5 in record.raw["unclassifiedChildren"]  # kept, under no connection it does not belong to
    http.close()


@pytest.mark.parametrize(
    ("mangle", "says"),
    [
        (lambda lines: [lines[0][:-5], *lines[1:]], "not JSON"),
        (lambda lines: [lines[1], *lines], "starts with a child"),
        (lambda lines: [lines[0], lines[6], *lines[1:6]], "outside its parent's block"),
    ],
)
def test_a_broken_bulk_export_fails_the_sync_instead_of_misfiling_lines(mangle: Any, says: str) -> None:
    env, http = make_env(3)
    lines = _bulk_lines(env)
    first_id = json.loads(lines[0])["id"]
    other_child = next(line for line in lines if is_bulk_child(line) and json.loads(line)["__parentId"] != first_id)
    lines = [*lines[:6], other_child, *lines[6:]]
    op = env.state.bulk
    assert op is not None and op.url is not None
    env.state.bulk_results[op.id] = b"\n".join(mangle(lines)) + b"\n"
    with pytest.raises(RemoteUnavailable, match=says):
        list(env.connector._read_bulk(op.url, datetime.now(UTC)))
    http.close()


def test_a_missing_scope_in_graphql_is_permission_denied_with_the_fix() -> None:
    from orderbridge.errors import AuthFailed, PermissionDenied

    env, http = make_env(2)
    external_id = str(next(iter(env.state.orders)))
    env.fault("access_denied", count=1)
    with pytest.raises(PermissionDenied) as refused:
        env.connector.fetch_order(external_id)
    assert not isinstance(refused.value, AuthFailed)
    assert "ACCESS_DENIED" in str(refused.value) and "access scope" in str(refused.value)
    assert refused.value.fix is not None and "connections update" in sentence(refused.value.fix)
    assert env.connector.fetch_order(external_id).external_id == external_id  # nothing else was affected
    http.close()
