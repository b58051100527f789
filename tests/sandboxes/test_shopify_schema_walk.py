"""Acceptance (issue #12): every field of the order types in Shopify's published schema resolves.

For each API version the sandbox serves, the test walks the published schema: every field of
``Order``, ``LineItem``, ``ShippingLine``, ``Fulfillment``, ``FulfillmentOrder``, ``Customer``,
``MailingAddress``, ``MoneyBag``, ``Refund`` and ``OrderTransaction`` is selected (objects with
``__typename``, connections with edges, nodes and pageInfo, required arguments filled in) against
a generated store, and must answer without an error — and non-null fields with a value — on every
order of a store that has refunds, transactions, discounts, fulfilments and cancellations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    get_named_type,
    is_non_null_type,
)

from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox
from orderbridge.sandboxes.shopify.model import COVERED
from orderbridge.sandboxes.shopify.schema import schema, served_versions
from tests.sandboxes.conftest import TOKEN

#: how to reach each covered type from an order (a selection wrapping ``{}``)
PATHS = {
    "Order": "{}",  # the order's own fields
    "LineItem": "lineItems(first: 10) {{ nodes {} }}",
    "ShippingLine": "shippingLines(first: 5) {{ nodes {} }}",
    "Fulfillment": "fulfillments {}",
    "FulfillmentOrder": "fulfillmentOrders(first: 5) {{ nodes {} }}",
    "Customer": "customer {}",
    "MailingAddress": "shippingAddress {}",
    "MoneyBag": "totalPriceSet {}",
    "Refund": "refunds {}",
    "OrderTransaction": "transactions {}",
}
CONNECTION = "{ edges { cursor node { __typename } } nodes { __typename } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }"  # noqa: E501


def _argument(field: GraphQLField) -> str:
    given = []
    for name, arg in field.args.items():
        if name == "first":
            given.append("first: 3")
        elif is_non_null_type(arg.type) and arg.default_value is Undefined:
            named = get_named_type(arg.type)
            if isinstance(named, GraphQLInputObjectType):  # pragma: no cover - none on these types
                raise AssertionError(f"{field} needs an input object")
            given.append(f'{name}: "sandbox"' if named.name in ("String", "ID") else f"{name}: 1")
    return f"({', '.join(given)})" if given else ""


def selection(s: GraphQLSchema, type_name: str) -> tuple[str, dict[str, bool]]:
    """Every field of ``type_name`` (aliased by name), and which of them are non-null."""
    type_ = s.get_type(type_name)
    assert isinstance(type_, GraphQLObjectType)
    parts, required = [], {}
    for name, field in type_.fields.items():
        named = get_named_type(field.type)
        sub = ""
        if named.name.endswith("Connection"):
            sub = " " + CONNECTION
        elif isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
            sub = " { __typename }"
        parts.append(f"{name}{_argument(field)}{sub}")
        required[name] = is_non_null_type(field.type)
    return "{ " + " ".join(parts) + " }", required


@pytest.fixture(scope="module")
def store() -> Iterator[tuple[ShopifyState, httpx.Client]]:
    state, app = create_sandbox(orders=400, seed=5, limits=False)
    # the generator's rarer states, made certain: each kind of payment and a discounted order
    ids = sorted(state.orders)
    for order_id, status in zip(
        ids, ("refunded", "partially_refunded", "authorized", "voided", "partially_paid"), strict=False
    ):
        state.update_order(order_id, financial_status=status)
    state.update_order(ids[5], discount_codes=[{"code": "TEN", "amount": "3.00", "type": "fixed_amount"}])
    client = in_process_client(app)
    client.headers["X-Shopify-Access-Token"] = TOKEN
    yield state, client
    client.close()


def _objects(value: Any, path: list[str]) -> list[dict[str, Any]]:
    """The objects at ``path`` below ``value`` (lists and connection ``nodes`` flattened)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [o for v in value for o in _objects(v, path)]
    if not path:
        return [value]
    return _objects(value.get(path[0]), path[1:])


_NODES = {
    "Order": [],
    "LineItem": ["lineItems", "nodes"],
    "ShippingLine": ["shippingLines", "nodes"],
    "Fulfillment": ["fulfillments"],
    "FulfillmentOrder": ["fulfillmentOrders", "nodes"],
    "Customer": ["customer"],
    "MailingAddress": ["shippingAddress"],
    "MoneyBag": ["totalPriceSet"],
    "Refund": ["refunds"],
    "OrderTransaction": ["transactions"],
}


@pytest.mark.parametrize("version", served_versions())
@pytest.mark.parametrize("type_name", COVERED)
def test_every_field_of_the_order_types_resolves(
    store: tuple[ShopifyState, httpx.Client], version: str, type_name: str
) -> None:
    _state, client = store
    fields, required = selection(schema(version), type_name)
    inner = fields if type_name == "Order" else "{ id " + PATHS[type_name].format(fields) + " }"
    query = f"query Walk($after: String) {{ orders(first: 100, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {inner} }} }}"  # noqa: E501
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        response = client.post(
            f"/admin/api/{version}/graphql.json", json={"query": query, "variables": {"after": after}}
        )
        body = response.json()
        assert "errors" not in body, body.get("errors")
        page = body["data"]["orders"]
        seen += _objects(page["nodes"], _NODES[type_name])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) >= 5, f"the store has too few {type_name} values to show anything"
    missing = sorted({name for obj in seen for name, non_null in required.items() if non_null and obj[name] is None})
    assert not missing, f"non-null {type_name} fields answered null: {missing}"
    assert len(required) == len(schema(version).get_type(type_name).fields)  # type: ignore[union-attr]


def test_the_walk_covers_every_field_of_every_served_version() -> None:
    counts = {v: sum(len(schema(v).get_type(t).fields) for t in COVERED) for v in served_versions()}  # type: ignore[union-attr]
    assert len(counts) >= 2 and all(n > 380 for n in counts.values()), counts
