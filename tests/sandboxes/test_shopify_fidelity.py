"""Issue #12: the Shopify sandbox answers as Shopify does — versions, REST start-up and order
endpoints, introspection, refusals that name the field, cost over the real schema, bulk rules, the
bulk clock and its webhook, and money that adds up across REST and GraphQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox
from orderbridge.sandboxes.shopify.schema import newest_version, route, served_versions, support_ends
from tests.sandboxes.conftest import TOKEN
from tests.sandboxes.test_shopify_webhooks import Receiver, receiver  # noqa: F401 - a fixture

NEW = newest_version()


@pytest.fixture
def shop() -> Iterator[tuple[ShopifyState, httpx.Client]]:
    state, app = create_sandbox(orders=150, seed=17, limits=False, bulk_seconds=0.05)
    client = in_process_client(app)
    client.headers["X-Shopify-Access-Token"] = TOKEN
    yield state, client
    state.close()
    client.close()


def gql(client: httpx.Client, query: str, variables: dict[str, Any] | None = None, version: str = NEW) -> Any:
    response = client.post(f"/admin/api/{version}/graphql.json", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    return response.json()


# --- versions ------------------------------------------------------------------------------------


def test_the_sandbox_serves_at_least_the_two_newest_stable_versions_and_routes_the_rest() -> None:
    versions = served_versions()
    assert len(versions) >= 2 and all(v[5:] in ("01", "04", "07", "10") for v in versions)
    assert route(versions[-1]) is not None and route(versions[-1]).served == versions[-1]  # type: ignore[union-attr]
    retired = route("2024-10")
    assert retired is not None and retired.served == versions[0] and "2024-10" in (retired.deprecated_reason or "")
    assert route("2099-01") is None and route("unstable") is None and route("latest") is None
    assert str(support_ends("2026-07")) == "2027-07-01"


def test_every_admin_response_says_which_version_answered(shop: tuple[ShopifyState, httpx.Client]) -> None:
    state, client = shop
    oldest = served_versions()[0]
    for path in ("orders.json", "shop.json", "orders/count.json", "events.json"):
        same = client.get(f"/admin/api/{NEW}/{path}")
        assert same.status_code == 200 and same.headers["x-shopify-api-version"] == NEW
        assert "x-shopify-api-deprecated-reason" not in same.headers
        old = client.get(f"/admin/api/2023-07/{path}")
        assert old.status_code == 200 and old.headers["x-shopify-api-version"] == oldest
        assert "2023-07" in old.headers["x-shopify-api-deprecated-reason"]
    graphql = client.post("/admin/api/2024-01/graphql.json", json={"query": "{ shop { name } }"})
    assert graphql.headers["x-shopify-api-version"] == oldest and graphql.json()["data"]["shop"]["name"]
    assert client.get("/admin/api/2099-01/orders.json").status_code == 404
    state.deprecated_versions[NEW] = "support ends soon"
    assert client.get(f"/admin/api/{NEW}/shop.json").headers["x-shopify-api-deprecated-reason"] == "support ends soon"


# --- REST ----------------------------------------------------------------------------------------


def test_rest_start_up_calls_answer_the_shop_and_the_tokens_scopes(shop: tuple[ShopifyState, httpx.Client]) -> None:
    _state, client = shop
    body = client.get(f"/admin/api/{NEW}/shop.json").json()["shop"]
    assert body["myshopify_domain"] == "orderbridge-sandbox.myshopify.com" and body["currency"] == "USD"
    scopes = client.get("/admin/oauth/access_scopes.json").json()["access_scopes"]
    assert {"handle": "read_orders"} in scopes and {"handle": "write_fulfillments"} in scopes
    assert client.get("/admin/oauth/access_scopes.json", headers={"X-Shopify-Access-Token": "x"}).status_code == 401


def test_rest_orders_carry_shopifys_full_order_fields(shop: tuple[ShopifyState, httpx.Client]) -> None:
    _state, client = shop
    orders = client.get(f"/admin/api/{NEW}/orders.json", params={"status": "any", "limit": 250}).json()["orders"]
    order = orders[0]
    for key in (
        "admin_graphql_api_id", "app_id", "browser_ip", "buyer_accepts_marketing", "confirmation_number",
        "current_subtotal_price", "current_total_price_set", "discount_applications", "order_status_url",
        "payment_gateway_names", "presentment_currency", "refunds", "source_name", "total_outstanding",
        "total_price_set", "total_shipping_price_set", "total_weight", "token",
    ):  # fmt: skip
        assert key in order, key
    line = order["line_items"][0]
    for key in ("price_set", "tax_lines", "discount_allocations", "current_quantity", "vendor", "grams"):
        assert key in line, key
    assert order["shipping_address"]["country"] and order["shipping_address"]["country_code"]
    refunded = [o for o in orders if o["financial_status"] == "refunded"]
    assert refunded and all(
        Decimal(o["refunds"][0]["transactions"][0]["amount"]) == Decimal(o["total_price"]) for o in refunded
    )


def test_rest_orders_filter_as_shopify_documents(shop: tuple[ShopifyState, httpx.Client]) -> None:
    state, client = shop
    url = f"/admin/api/{NEW}/orders.json"

    def ids(**params: Any) -> list[int]:
        return [o["id"] for o in client.get(url, params={"limit": 250, **params}).json()["orders"]]

    every = ids(status="any")
    assert sorted(every) == sorted(state.orders)
    assert set(ids()) == {i for i in every if not state.orders[i].closed and not state.orders[i].cancelled}
    assert set(ids(status="any", financial_status="paid")) == {i for i in every if state.orders[i].financial == "paid"}
    assert set(ids(status="any", fulfillment_status="shipped")) == {
        i for i in every if state.orders[i].fulfillment == "fulfilled"
    }
    assert set(ids(status="cancelled")) == {i for i in every if state.orders[i].cancelled}
    middle = sorted(every)[75]
    assert ids(status="any", since_id=middle) == sorted(i for i in every if i > middle)
    assert sorted(ids(status="any", ids=f"{every[0]},{every[1]}")) == sorted(every[:2])
    created = sorted(state.orders[i].created for i in every)[40]
    from orderbridge.sandboxes.shopify.state import local_iso

    assert set(ids(status="any", created_at_min=local_iso(created))) == {
        i for i in every if state.orders[i].created >= created
    }
    assert set(ids(status="any", updated_at_max=local_iso(created))) == {
        i for i in every if state.orders[i].updated <= created
    }
    only = client.get(url, params={"status": "any", "fields": "id,name,total_price", "limit": 3}).json()["orders"]
    assert [sorted(o) for o in only] == [["id", "name", "total_price"]] * 3
    count = client.get(f"/admin/api/{NEW}/orders/count.json", params={"status": "any"}).json()["count"]
    assert count == len(every)
    one = client.get(f"/admin/api/{NEW}/orders/{every[3]}.json").json()["order"]
    assert one["id"] == every[3] and one == json.loads(state.rest_json(every[3]))
    # page_info pages through everything, and excludes any other filter
    page = client.get(url, params={"status": "any", "limit": 40})
    seen = [o["id"] for o in page.json()["orders"]]
    while 'rel="next"' in page.headers.get("link", ""):
        next_url = page.headers["link"].split(", ")[-1].split(";")[0].strip("<>")
        assert "status" not in next_url
        page = client.get(next_url)
        seen += [o["id"] for o in page.json()["orders"]]
    assert sorted(seen) == sorted(every)
    token = next_url.split("page_info=")[1]
    assert client.get(url, params={"page_info": token, "status": "any"}).status_code == 400
    assert client.get(url, params={"limit": 251}).status_code == 400


def test_rest_events_list_deleted_orders(shop: tuple[ShopifyState, httpx.Client]) -> None:
    state, client = shop
    victims = sorted(state.orders)[:3]
    for order_id in victims:
        state.delete_order(order_id)
    url = f"/admin/api/{NEW}/events.json"
    events = client.get(url, params={"filter": "Order", "verb": "destroy"}).json()["events"]
    assert [e["subject_id"] for e in events] == victims
    assert all(e["subject_type"] == "Order" and e["verb"] == "destroy" for e in events)
    first = client.get(url, params={"filter": "Order", "verb": "destroy", "limit": 2})
    assert len(first.json()["events"]) == 2 and 'rel="next"' in first.headers["link"]
    rest = client.get(first.headers["link"].split(";")[0].strip("<>")).json()["events"]
    assert [e["subject_id"] for e in rest] == victims[2:]
    assert client.get(url, params={"filter": "Product"}).json()["events"] == []


# --- GraphQL -------------------------------------------------------------------------------------


def test_introspection_works_as_on_shopify(shop: tuple[ShopifyState, httpx.Client]) -> None:
    _state, client = shop
    body = gql(client, "{ __schema { queryType { name } types { name } } }")
    assert body["data"]["__schema"]["queryType"]["name"] == "QueryRoot"
    assert len(body["data"]["__schema"]["types"]) > 1000
    order = gql(client, '{ __type(name: "Order") { all: fields(includeDeprecated: true) { name } fields { name } } }')
    every, current = order["data"]["__type"]["all"], order["data"]["__type"]["fields"]
    assert len(every) > 140 and len(current) < len(every)  # deprecated fields only when asked for
    reason = gql(client, '{ __type(name: "OrderCancelReason") { enumValues { name } } }')["data"]["__type"]
    assert {"name": "CUSTOMER"} in reason["enumValues"]


def test_a_field_the_sandbox_does_not_model_is_refused_naming_it(shop: tuple[ShopifyState, httpx.Client]) -> None:
    _state, client = shop
    body = gql(client, "{ orders(first: 1) { nodes { id lineItems(first: 1) { nodes { product { vendor } } } } } }")
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "NOT_MODELLED", "field": "Product.vendor"}
    assert "Product.vendor" in error["message"]
    # under a field that is always null, nothing can be answered, so nothing is refused
    assert "errors" not in gql(client, "{ orders(first: 1) { nodes { app { name icon { url } } } } }")
    unknown = gql(client, "{ orders(first: 1) { nodes { noSuchField } } }")
    assert "Cannot query field 'noSuchField'" in unknown["errors"][0]["message"]


def test_cost_follows_shopifys_rules_over_the_real_schema(shop: tuple[ShopifyState, httpx.Client]) -> None:
    _state, client = shop

    def requested(query: str) -> int:
        return int(gql(client, query)["extensions"]["cost"]["requestedQueryCost"])

    assert requested("{ shop { name } }") == 1
    assert requested("{ orders(first: 10) { nodes { id name } } }") == 2 + 10 * 1
    assert requested("{ orders(first: 10) { nodes { id totalPriceSet { shopMoney { amount } } } } }") == 2 + 10 * 3
    nested = "{ orders(first: 5) { nodes { id lineItems(first: 4) { nodes { id } } } } }"
    assert requested(nested) == 2 + 5 * (1 + 2 + 4 * 1)
    # an abstract type costs its dearest selection
    union = (
        "{ orders(first: 2) { nodes { discountApplications(first: 3) { nodes { index value {"
        " ... on MoneyV2 { amount } ... on PricingPercentageValue { percentage } } } } } } }"
    )
    assert requested(union) == 2 + 2 * (1 + 2 + 3 * (1 + 1))
    mutation = 'mutation { bulkOperationCancel(id: "gid://shopify/BulkOperation/9") { userErrors { message } } }'
    assert requested(mutation) == 10


def test_money_adds_up_across_graphql_and_rest(shop: tuple[ShopifyState, httpx.Client]) -> None:
    state, client = shop
    query = """{ orders(first: 150, query: "status:any") { nodes { legacyResourceId displayFinancialStatus
      totalPriceSet { shopMoney { amount } } totalDiscountsSet { shopMoney { amount } }
      totalTaxSet { shopMoney { amount } }
      totalReceivedSet { shopMoney { amount } } totalRefundedSet { shopMoney { amount } }
      netPaymentSet { shopMoney { amount } } totalOutstandingSet { shopMoney { amount } } unpaid fullyPaid
      transactions { kind status amountSet { shopMoney { amount } } }
      discountApplications(first: 5) { nodes { ... on DiscountCodeApplication { code } } }
      lineItems(first: 20) { nodes { discountAllocations { allocatedAmountSet { shopMoney { amount } } }
        taxLines { priceSet { shopMoney { amount } } } } } } } }"""
    orders = gql(client, query)["data"]["orders"]["nodes"]

    def d(bag: Any) -> Decimal:
        return Decimal(bag["shopMoney"]["amount"])

    kinds_seen = set()
    for o in orders:
        rest = json.loads(state.rest_json(int(o["legacyResourceId"])))
        assert d(o["totalPriceSet"]) == Decimal(rest["total_price"])
        lines = o["lineItems"]["nodes"]
        allocated = sum((d(a["allocatedAmountSet"]) for li in lines for a in li["discountAllocations"]), Decimal(0))
        assert allocated == d(o["totalDiscountsSet"])
        assert sum((d(t["priceSet"]) for li in lines for t in li["taxLines"]), Decimal(0)) == d(o["totalTaxSet"])
        assert len(o["discountApplications"]["nodes"]) == len(rest["discount_codes"])
        assert d(o["netPaymentSet"]) == d(o["totalReceivedSet"]) - d(o["totalRefundedSet"])
        assert Decimal(rest["total_outstanding"]) == d(o["totalOutstandingSet"])
        kinds_seen |= {t["kind"] for t in o["transactions"]}
        if o["displayFinancialStatus"] == "PAID":
            assert o["fullyPaid"] and not o["unpaid"] and d(o["totalOutstandingSet"]) == 0
        if o["displayFinancialStatus"] == "PENDING":
            assert o["unpaid"] and not o["transactions"]
    assert {"SALE", "REFUND"} <= kinds_seen


# --- bulk ----------------------------------------------------------------------------------------

RUN = "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status } userErrors { code field message } } }"  # noqa: E501


def test_bulk_queries_are_validated_against_the_schema_and_the_bulk_rules(
    shop: tuple[ShopifyState, httpx.Client],
) -> None:
    _state, client = shop

    def errors(query: str) -> list[dict[str, Any]]:
        payload = gql(client, RUN, {"q": query})["data"]["bulkOperationRunQuery"]
        assert payload["bulkOperation"] is None
        return list(payload["userErrors"])

    assert "noSuchField" in errors("{ orders { edges { node { noSuchField } } } }")[0]["message"]
    assert (
        "Product.vendor"
        in errors("{ orders { edges { node { lineItems { edges { node { product { vendor } } } } } } } }")[0]["message"]
    )
    deep = (
        "{ orders { edges { node { fulfillmentOrders { edges { node { lineItems { edges { node { id } } } } } } } } } }"
    )
    assert "2 levels" in errors(deep)[0]["message"]
    six = " ".join(f"c{i}: lineItems {{ edges {{ node {{ id }} }} }}" for i in range(5))
    assert "5 connections" in errors(f"{{ orders {{ edges {{ node {{ id {six} }} }} }} }}")[0]["message"]
    assert "top-level" in errors("{ shop { name } }")[0]["message"]
    assert all(e["code"] == "INVALID" for e in errors("{ orders { edges { node { noSuchField } } } }"))


def test_a_bulk_export_completes_on_its_clock_unpolled_and_announces_itself(
    shop: tuple[ShopifyState, httpx.Client],
    receiver: Receiver,  # noqa: F811
) -> None:
    state, client = shop
    created = gql(
        client,
        "mutation($t: WebhookSubscriptionTopic!, $s: WebhookSubscriptionInput!) { webhookSubscriptionCreate(topic: $t, webhookSubscription: $s) { userErrors { message } } }",  # noqa: E501
        {"t": "BULK_OPERATIONS_FINISH", "s": {"callbackUrl": receiver.url(), "format": "JSON"}},
    )
    assert created["data"]["webhookSubscriptionCreate"]["userErrors"] == []
    query = "{ orders { edges { node { id name lineItems { edges { node { id sku } } } } } } }"
    started = gql(client, RUN, {"q": query})["data"]["bulkOperationRunQuery"]["bulkOperation"]
    deadline = time.monotonic() + 5
    while not receiver.on() and time.monotonic() < deadline:  # nobody polls: the sandbox's clock runs it
        time.sleep(0.02)
    [finish] = receiver.on()
    assert finish.topic == "bulk_operations/finish"
    assert finish.order == {**finish.order, "admin_graphql_api_id": started["id"], "status": "completed"}
    op = gql(client, "query($id: ID!) { bulkOperation(id: $id) { status url rootObjectCount } }", {"id": started["id"]})
    done = op["data"]["bulkOperation"]
    assert done["status"] == "COMPLETED" and int(done["rootObjectCount"]) == len(state.orders)
    assert gql(client, "{ currentBulkOperation { id status } }")["data"]["currentBulkOperation"]["id"] == started["id"]
    lines = [json.loads(x) for x in client.get(done["url"]).text.splitlines()]
    parents = {x["id"] for x in lines if "__parentId" not in x}
    children = [x for x in lines if "__parentId" in x]
    assert len(parents) == len(state.orders) and children and all(c["__parentId"] in parents for c in children)
    current_parent = None
    for x in lines:  # children follow their parent
        if "__parentId" not in x:
            current_parent = x["id"]
        else:
            assert x["__parentId"] == current_parent
