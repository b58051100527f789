"""Shopify order identity (one id form, an id-less record refused) and bulk children by ``__typename``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from orderbridge.connectors.base import UnreadableOrder
from orderbridge.connectors.shopify.connector import BULK_QUERY
from orderbridge.connectors.shopify.mapper import order_from_bulk, order_from_graphql, order_from_rest, order_id
from orderbridge.domain.canonical import content_hash
from orderbridge.domain.order import Order, PaymentStatus
from orderbridge.errors import UnusableId
from orderbridge.sandboxes.shopify.nodes import order_node
from tests.connectors.test_shopify_connector import _bulk_lines, make_env


@pytest.mark.parametrize("given", [5100000001, "5100000001", "gid://shopify/Order/5100000001", "05100000001"])
def test_the_number_and_the_gid_of_an_order_are_one_id(given: object) -> None:
    assert order_id(given) == "5100000001"


@pytest.mark.parametrize(
    "given", [None, "", "None", "gid://shopify/Product/5", "12; DROP", -4, 0, True, 1.5, "9" * 101, 2**63, "١٢٣"]
)
def test_anything_else_is_not_a_usable_id(given: object) -> None:
    with pytest.raises(UnusableId, match="no usable Shopify id"):
        order_id(given)


def test_a_rest_payload_with_its_gid_maps_to_the_same_order_as_with_its_number() -> None:
    env, _http = make_env(1)
    rest = env.state.order(int(next(iter(env.state.orders))))
    assert rest is not None
    by_number, by_gid = order_from_rest(rest), order_from_rest({**rest, "id": rest["admin_graphql_api_id"]})
    assert isinstance(by_number, Order) and by_number.external_id == str(rest["id"]) == by_gid.external_id
    assert content_hash(by_number) == content_hash(by_gid)  # type: ignore[arg-type]


def test_a_record_without_a_usable_id_is_unreadable_with_an_empty_id_never_none() -> None:
    env, _http = make_env(1)
    rest = env.state.order(int(next(iter(env.state.orders))))
    assert rest is not None
    for record in (
        order_from_rest({**rest, "id": None}),
        order_from_rest({k: v for k, v in rest.items() if k != "id"}),
        order_from_graphql({**order_node(rest), "id": None, "legacyResourceId": None}),
    ):
        assert isinstance(record, UnreadableOrder)
        assert record.external_id == "" and "no usable Shopify id" in record.problem


def test_an_unknown_status_keeps_the_channels_value_in_both_shapes() -> None:
    env, _http = make_env(1)
    rest = env.state.order(int(next(iter(env.state.orders))))
    assert rest is not None
    rest = {**rest, "financial_status": "under_review"}
    for record in (order_from_rest(rest), order_from_graphql(order_node(rest))):
        assert isinstance(record, Order) and record.payment_status is PaymentStatus.UNKNOWN
        assert record.unknown_values == (("financial_status", "under_review"),)


def test_the_bulk_query_selects_the_typename_of_every_child_and_the_sandbox_emits_it() -> None:
    assert BULK_QUERY.count("__typename") == 2
    env, _http = make_env(2)
    children = [json.loads(line) for line in _bulk_lines(env) if b"__parentId" in line]
    assert children and {c["__typename"] for c in children} == {"LineItem", "ShippingLine"}


def test_a_shipping_line_without_an_id_is_a_shipping_line_not_a_line_item() -> None:
    env, _http = make_env(1)
    (oid,) = env.state.orders
    env.state.update_order(oid, shipping_lines=[{"title": "Standard", "code": "Standard", "price": "5.00"}])
    lines = _bulk_lines(env)
    assert b'"__typename":"ShippingLine","id":null' in b"".join(lines).replace(b" ", b"")
    record = order_from_bulk(lines[0], lines[1:])
    assert isinstance(record, Order), record
    assert [s.title for s in record.shipping_lines] == ["Standard"]
    assert all(li.sku for li in record.lines)


@pytest.mark.parametrize("typename", ["DiscountApplication", None])
def test_a_child_of_an_unknown_type_makes_its_order_unreadable_naming_it(typename: str | None) -> None:
    env, _http = make_env(1)
    lines = _bulk_lines(env)
    child = orjson.loads(lines[1])
    if typename is None:
        child.pop("__typename")
    else:
        child["__typename"] = typename
    record = order_from_bulk(lines[0], [orjson.dumps(child), *lines[2:]])
    assert isinstance(record, UnreadableOrder) and record.external_id
    assert (repr(typename) if typename else "no __typename") in record.problem
    assert child in record.raw["unclassifiedChildren"]


def test_fetch_order_and_audit_stamps_use_the_one_id_form() -> None:
    env, _http = make_env(3)
    oid = str(next(iter(env.state.orders)))
    fetched = env.connector.fetch_order(f"gid://shopify/Order/{oid}")
    assert isinstance(fetched, Order) and fetched.external_id == oid
    stamps = [
        s
        for b in env.connector.list_order_stamps(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
        for s in b.stamps
    ]
    assert oid in {s.external_id for s in stamps} and all(s.external_id.isdigit() for s in stamps)


def test_an_audit_lists_every_order_but_one_without_a_usable_id_or_update_time() -> None:
    env, _http = make_env(4)
    first, second, *rest = env.state.orders
    env.state.update_order(first, id=None)
    env.state.update_order(second, updated_at=None)
    batches = list(env.connector.list_order_stamps(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC)))
    assert sorted(s.external_id for b in batches for s in b.stamps) == sorted(str(i) for i in rest)


@pytest.mark.parametrize("given", [None, "", "None", True, "gid://shopify/LineItem/", "-4"])
def test_a_rest_line_without_a_usable_id_makes_the_order_unreadable_never_a_line_called_none(given: object) -> None:
    # found by the adversarial suite: a line whose id was null was stored as line "None" and posted
    env, _http = make_env(1)
    rest = env.state.order(int(next(iter(env.state.orders))))
    assert rest is not None
    rest["line_items"][0]["id"] = given
    record = order_from_rest(rest)
    assert isinstance(record, UnreadableOrder)
    assert record.problem in ("a line item has no id", f"id {str(given)!r} is not a Shopify id")


def test_a_rest_line_with_its_gid_is_the_line_graphql_reads_by_number() -> None:
    env, _http = make_env(1)
    rest = env.state.order(int(next(iter(env.state.orders))))
    assert rest is not None
    by_gid = json.loads(json.dumps(rest))
    for li in by_gid["line_items"]:
        li["id"] = li["admin_graphql_api_id"]
    numbered, gids = order_from_rest(rest), order_from_rest(by_gid)
    assert isinstance(numbered, Order) and isinstance(gids, Order)
    assert [li.external_id for li in gids.lines] == [str(li["id"]) for li in rest["line_items"]]
    assert content_hash(numbered) == content_hash(gids)
