"""The Shopify sandbox answers as the Admin API does: REST, GraphQL, limits, bulk, fulfilments, faults."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx

from orderbridge.sandboxes.base import Fault, build_app, in_process_client
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox
from orderbridge.sandboxes.shopify.app import routes
from orderbridge.sandboxes.shopify.generator import (
    CATALOG,
    UNKNOWN_SHIPPING_METHODS,
    UNSTOCKED_SKUS,
    generate,
)
from tests.sandboxes.conftest import TOKEN, gql

Store = tuple[ShopifyState, httpx.Client]
ORDERS = "/admin/api/2026-07/orders.json"


def test_the_generator_is_deterministic_fast_and_realistic() -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    start = time.perf_counter()
    seeds = generate(100_000, seed=3, now=now)
    assert time.perf_counter() - start < 5
    again = generate(1000, seed=3, now=now)
    assert [(s.id, s.updated, s.financial) for s in seeds[:1000]] != [] and [s.lines for s in again] == [
        s.lines for s in generate(1000, seed=3, now=now)
    ]
    paid_open = sum(1 for s in seeds if s.financial == "paid" and s.fulfillment is None) / len(seeds)
    assert 0.7 < paid_open < 0.9
    skus = {item[0] for s in seeds for item, _ in s.lines}
    assert set(UNSTOCKED_SKUS) <= skus and None in skus
    assert {s.shipping for s in seeds} >= set(UNKNOWN_SHIPPING_METHODS)
    assert {s.currency for s in seeds} == {"USD", "EUR", "GBP", "CAD"}
    assert all(s.updated >= s.created for s in seeds)
    assert seeds[-1].created - seeds[0].created > 45 * 86400
    plain = generate(500, seed=3, realistic=False, lines_per_order=3, now=now)
    assert all(s.financial == "paid" and s.shipping == "Standard" and len(s.lines) == 3 for s in plain)
    assert all(item in CATALOG for s in plain for item, _ in s.lines)


def test_rest_pages_through_every_open_order_with_link_headers(shopify: Store) -> None:
    state, client = shopify
    seen: list[int] = []
    url: str | None = f"{ORDERS}?limit=25"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["X-Shopify-Shop-Api-Call-Limit"].endswith("/40")
        seen += [o["id"] for o in response.json()["orders"]]
        url = response.links.get("next", {}).get("url")
        pages += 1
    open_ids = [s.id for s in state.orders.values() if not s.closed and not s.cancelled]
    assert sorted(seen) == sorted(open_ids) and len(seen) == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    assert pages == -(-len(open_ids) // 25)


def test_rest_previous_links_return_the_previous_page(shopify: Store) -> None:
    _, client = shopify
    first = client.get(f"{ORDERS}?limit=10&status=any")
    second = client.get(first.links["next"]["url"])
    back = client.get(second.links["previous"]["url"])
    assert [o["id"] for o in back.json()["orders"]] == [o["id"] for o in first.json()["orders"]]


def test_rest_filters_and_limits(shopify: Store) -> None:
    state, client = shopify
    assert client.get(f"{ORDERS}?limit=251").status_code == 400
    page = client.get(f"{ORDERS}?limit=5")
    assert client.get(f"{page.links['next']['url']}&status=any").status_code == 400
    shipped = client.get(f"{ORDERS}?status=any&fulfillment_status=shipped&limit=250").json()["orders"]
    assert shipped and all(o["fulfillment_status"] == "fulfilled" for o in shipped)
    cancelled = client.get(f"{ORDERS}?status=cancelled&limit=250").json()["orders"]
    assert all(o["cancelled_at"] for o in cancelled)
    pending = client.get(f"{ORDERS}?financial_status=pending&limit=250").json()["orders"]
    assert pending and all(o["financial_status"] == "pending" for o in pending)
    some = list(state.orders)[5:8]
    by_ids = client.get(f"{ORDERS}?status=any&ids={','.join(map(str, some))}").json()["orders"]
    assert sorted(o["id"] for o in by_ids) == some
    since = client.get(f"{ORDERS}?status=any&since_id={some[0]}&limit=3").json()["orders"]
    assert [o["id"] for o in since] == list(state.orders)[6:9]
    middle = datetime.now(UTC) - timedelta(days=25)
    params = {"status": "any", "limit": "250", "updated_at_min": middle.isoformat()}
    recent = client.get(ORDERS, params=params).json()["orders"]
    assert recent and all(datetime.fromisoformat(o["updated_at"]) >= middle for o in recent)
    count = client.get("/admin/api/2026-07/orders/count.json?status=any").json()["count"]
    assert count == len(state.orders)
    one = client.get(f"/admin/api/2026-07/orders/{some[0]}.json?fields=id,name").json()["order"]
    assert set(one) == {"id", "name"}


def test_rest_leaky_bucket_answers_429_with_retry_after_when_full() -> None:
    _state, app = create_sandbox(orders=3, limits=True)
    with in_process_client(app) as client:
        codes = [client.get(ORDERS, headers={"X-Shopify-Access-Token": TOKEN}).status_code for _ in range(41)]
        assert codes[:40] == [200] * 40 and codes[40] == 429
        refused = client.get(ORDERS, headers={"X-Shopify-Access-Token": TOKEN})
        assert float(refused.headers["Retry-After"]) > 0


def test_graphql_filters_sorts_and_reports_cost(shopify: Store) -> None:
    state, client = shopify
    since = datetime.now(UTC) - timedelta(days=10)
    query = """query($q: String, $after: String) { orders(first: 20, after: $after, sortKey: UPDATED_AT, query: $q) {
        pageInfo { hasNextPage endCursor }
        edges { cursor node { id updatedAt lineItems(first: 3) { nodes { sku } } } } } }"""
    seen: list[str] = []
    after = None
    while True:
        body = gql(client, query, {"q": f"updated_at:>='{since.isoformat()}'", "after": after})
        cost = body["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 2 + 20 * (1 + 2 + 3 * 1)
        assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
        orders = body["data"]["orders"]
        seen += [e["node"]["updatedAt"] for e in orders["edges"]]
        if not orders["pageInfo"]["hasNextPage"]:
            break
        after = orders["pageInfo"]["endCursor"]
    expected = [s for s in state.orders.values() if s.updated >= int(since.timestamp())]
    assert len(seen) == len(expected) and seen == sorted(seen)
    open_only = gql(client, '{ orders(first: 250, query: "status:open") { nodes { closed cancelledAt } } }')
    assert all(not n["closed"] for n in open_only["data"]["orders"]["nodes"])
    everything = gql(client, "{ orders(first: 250) { nodes { id } } }")
    assert len(everything["data"]["orders"]["nodes"]) == len(state.orders)


def test_graphql_supports_aliases_fragments_and_variables(shopify: Store) -> None:
    state, client = shopify
    order_id = next(iter(state.orders))
    body = gql(
        client,
        """query($id: ID!, $skip: Boolean!) { first: order(id: $id) { ...F total: totalPriceSet {
        shopMoney { amount } } note @skip(if: $skip) } }
        fragment F on Order { __typename legacyResourceId ... on Order { name } }""",
        {"id": f"gid://shopify/Order/{order_id}", "skip": True},
    )
    node = body["data"]["first"]
    assert node["__typename"] == "Order" and node["legacyResourceId"] == str(order_id)
    assert node["name"].startswith("#") and "note" not in node and node["total"]["shopMoney"]["amount"]
    bad = gql(client, "{ orders(first: 1) { nodes { noSuchField } } }")
    assert "noSuchField" in bad["errors"][0]["message"] and "data" not in bad


def test_graphql_refuses_queries_over_the_max_cost_and_throttles_when_the_bucket_is_short() -> None:
    state, app = create_sandbox(orders=5, limits=True)
    with in_process_client(app) as client:
        client.headers["X-Shopify-Access-Token"] = TOKEN
        big = gql(client, "{ orders(first: 250) { nodes { id lineItems(first: 10) { nodes { id } } } } }")
        assert big["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
        state.drain_points(990)
        throttled = gql(client, "{ orders(first: 50) { nodes { id customer { id } } } }")
        assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert throttled["extensions"]["cost"]["requestedQueryCost"] == 102
        assert throttled["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 102


class SandboxClock:
    """The sandbox's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_a_bulk_operation_runs_then_completes_with_jsonl_children_carrying_parent_ids(shopify: Store) -> None:
    state, client = shopify
    state.monotonic = clock = SandboxClock()
    state.bulk_seconds = 2.0
    bulk = "{ orders { edges { node { id name lineItems { edges { node { id sku } } } } } } }"
    run = gql(
        client,
        """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
        bulkOperation { id status } userErrors { message } } }""",
        {"q": bulk},
    )
    assert run["data"]["bulkOperationRunQuery"]["bulkOperation"]["status"] == "CREATED"
    second = gql(
        client,
        'mutation { bulkOperationRunQuery(query: "{ orders { edges { node { id } } } }") { userErrors { message } } }',
    )
    assert "already in progress" in second["data"]["bulkOperationRunQuery"]["userErrors"][0]["message"]
    poll = "{ currentBulkOperation { id status objectCount url } }"
    assert gql(client, poll)["data"]["currentBulkOperation"]["status"] == "RUNNING"
    clock.now += 2.0  # the sandbox's clock runs the operation, whether anyone polls or not
    done = gql(client, poll)["data"]["currentBulkOperation"]
    assert done["status"] == "COMPLETED"
    rows = [json.loads(line) for line in client.get(done["url"]).text.splitlines()]
    assert int(done["objectCount"]) == len(rows)
    parents = [r for r in rows if "__parentId" not in r]
    children = [r for r in rows if "__parentId" in r]
    assert len(parents) == len(state.orders)
    assert len(children) == sum(len(s.lines) for s in state.orders.values())
    assert all("lineItems" not in p for p in parents)
    current = None
    for row in rows:
        if "__parentId" in row:
            assert row["__parentId"] == current
        else:
            current = row["id"]


RUN_BULK = """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
    bulkOperation { id status createdAt } userErrors { field message code } } }"""
CANCEL_BULK = """mutation($id: ID!) { bulkOperationCancel(id: $id) {
    bulkOperation { id status } userErrors { field message } } }"""
CURRENT_BULK = "{ currentBulkOperation { id status query createdAt completedAt url rootObjectCount } }"


def test_a_bulk_operation_outlives_its_requester_and_completes_on_the_sandbox_clock(shopify: Store) -> None:
    state, client = shopify
    state.monotonic = clock = SandboxClock()
    state.bulk_seconds = 30.0
    query = "{ orders { edges { node { id } } } }"
    started = gql(client, RUN_BULK, {"q": query})["data"]["bulkOperationRunQuery"]["bulkOperation"]
    client.close()  # the requester goes away; nobody polls
    clock.now += 29.0
    with in_process_client(build_app(state, routes(state))) as other:
        other.headers["X-Shopify-Access-Token"] = TOKEN
        current = gql(other, CURRENT_BULK)["data"]["currentBulkOperation"]
        assert (current["id"], current["status"], current["query"]) == (started["id"], "RUNNING", query)
        refused = gql(other, RUN_BULK, {"q": query})["data"]["bulkOperationRunQuery"]
        assert refused["bulkOperation"] is None
        assert refused["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
        assert started["id"] in refused["userErrors"][0]["message"]
        clock.now += 1.0
        done = gql(other, CURRENT_BULK)["data"]["currentBulkOperation"]
        assert done["status"] == "COMPLETED" and done["createdAt"] == started["createdAt"]
        assert int(done["rootObjectCount"]) == len(state.orders) and other.get(done["url"]).status_code == 200
        clock.now += 7 * 24 * 3600.0  # results are kept a week
        expired = gql(other, CURRENT_BULK)["data"]["currentBulkOperation"]
        assert expired["status"] == "EXPIRED" and expired["url"] is None
        assert other.get(done["url"]).status_code == 404
    assert [e.key for e in state.entries("bulk_operation")] == [started["id"]], "one operation, started once"


def test_a_cancelled_bulk_operation_holds_the_slot_while_canceling_then_frees_it(shopify: Store) -> None:
    state, client = shopify
    state.monotonic = clock = SandboxClock()
    state.bulk_seconds, state.bulk_cancel_seconds = 60.0, 2.0
    first = gql(client, RUN_BULK, {"q": "{ orders { edges { node { id name } } } }"})["data"]["bulkOperationRunQuery"]
    op_id = first["bulkOperation"]["id"]
    cancel = gql(client, CANCEL_BULK, {"id": op_id})["data"]["bulkOperationCancel"]
    assert cancel == {"bulkOperation": {"id": op_id, "status": "CANCELING"}, "userErrors": []}
    again = gql(client, CANCEL_BULK, {"id": op_id})["data"]["bulkOperationCancel"]
    assert again["userErrors"][0]["message"] == "A bulk operation cannot be canceled when it is canceling."
    busy = gql(client, RUN_BULK, {"q": "{ orders { edges { node { id } } } }"})["data"]["bulkOperationRunQuery"]
    assert busy["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
    clock.now += 2.0
    assert gql(client, CURRENT_BULK)["data"]["currentBulkOperation"]["status"] == "CANCELED"
    second = gql(client, RUN_BULK, {"q": "{ orders { edges { node { id } } } }"})["data"]["bulkOperationRunQuery"]
    assert second["userErrors"] == [] and second["bulkOperation"]["id"] != op_id
    clock.now += 60.0
    late = gql(client, CANCEL_BULK, {"id": second["bulkOperation"]["id"]})["data"]["bulkOperationCancel"]
    assert late["userErrors"][0]["message"] == "A bulk operation cannot be canceled when it is completed."
    missing = gql(client, CANCEL_BULK, {"id": "gid://shopify/BulkOperation/999"})["data"]["bulkOperationCancel"]
    assert missing == {
        "bulkOperation": None,
        "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist."}],
    }
    assert len(state.entries("bulk_operation")) == 2
    assert [e.key for e in state.entries("bulk_operation_cancel")] == [op_id]


def test_fulfillment_create_moves_quantities_statuses_and_the_ledger(shopify: Store) -> None:
    state, client = shopify
    order = state.add_order(line_items=[{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}])
    gid = f"gid://shopify/Order/{order['id']}"
    fos = gql(
        client,
        """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { id status
        lineItems(first: 10) { nodes { id remainingQuantity lineItem { id sku } } } } } } }""",
        {"id": gid},
    )
    fo = fos["data"]["order"]["fulfillmentOrders"]["nodes"][0]
    line_a = fo["lineItems"]["nodes"][0]
    mutation = """mutation($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) {
        fulfillment { id status trackingInfo { number company url } } userErrors { field message } } }"""
    too_many = gql(
        client,
        mutation,
        {
            "f": {
                "lineItemsByFulfillmentOrder": [
                    {
                        "fulfillmentOrderId": fo["id"],
                        "fulfillmentOrderLineItems": [{"id": line_a["id"], "quantity": 3}],
                    }
                ]
            }
        },
    )
    assert too_many["data"]["fulfillmentCreate"]["userErrors"]
    ok = gql(
        client,
        mutation,
        {
            "f": {
                "lineItemsByFulfillmentOrder": [
                    {
                        "fulfillmentOrderId": fo["id"],
                        "fulfillmentOrderLineItems": [{"id": line_a["id"], "quantity": 2}],
                    }
                ],
                "trackingInfo": {"number": "TRK1", "company": "UPS"},
            }
        },
    )
    created = ok["data"]["fulfillmentCreate"]["fulfillment"]
    assert created["trackingInfo"] == [{"number": "TRK1", "company": "UPS", "url": None}]
    after = gql(client, "query($id: ID!) { order(id: $id) { displayFulfillmentStatus updatedAt } }", {"id": gid})
    assert after["data"]["order"]["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert [e.key for e in state.entries("fulfillment")] == [str(order["id"])]
    listed = client.get("/_sandbox/fulfillments").json()
    assert [f["tracking_number"] for f in listed] == ["TRK1"]


def test_missing_or_revoked_tokens_get_401_until_restored(shopify: Store) -> None:
    _state, client = shopify
    assert client.get(ORDERS, headers={"X-Shopify-Access-Token": "wrong"}).status_code == 401
    client.post("/_sandbox/credentials/revoke")
    refused = client.get(ORDERS)
    assert refused.status_code == 401 and "Invalid API key" in refused.json()["errors"]
    client.post("/_sandbox/credentials/restore")
    assert client.get(ORDERS).status_code == 200


def test_control_routes_create_and_update_orders(shopify: Store) -> None:
    _state, client = shopify
    created = client.post("/_sandbox/orders", json={"email": "a@b.example", "shipping_method": "Express"}).json()
    assert created["email"] == "a@b.example" and created["shipping_lines"][0]["code"] == "Express"
    updated = client.post(f"/_sandbox/orders/{created['id']}/update", json={"note": "hi"}).json()
    assert updated["note"] == "hi" and updated["updated_at"] >= created["updated_at"]
    newest = gql(client, "{ orders(first: 1, sortKey: UPDATED_AT, reverse: true) { nodes { legacyResourceId note } } }")
    assert newest["data"]["orders"]["nodes"][0] == {"legacyResourceId": str(created["id"]), "note": "hi"}


def test_a_deleted_order_leaves_every_listing_lookup_count_and_export(shopify: Store) -> None:
    state, client = shopify
    count = client.get("/admin/api/2026-07/orders/count.json", params={"status": "any"}).json()["count"]
    victim = client.post("/_sandbox/orders", json={"note": "to delete"}).json()["id"]
    assert str(victim) in exported_ids(client)  # the export's per-order cache now holds it …
    assert client.post(f"/_sandbox/orders/{victim}/delete").json() == {"deleted": True}
    assert client.get(f"/admin/api/2026-07/orders/{victim}.json").status_code == 404
    assert client.get("/admin/api/2026-07/orders/count.json", params={"status": "any"}).json()["count"] == count
    listed = {o["id"] for o in client.get(ORDERS, params={"limit": 250, "status": "any"}).json()["orders"]}
    assert victim not in listed
    lookup = gql(client, f'{{ order(id: "gid://shopify/Order/{victim}") {{ id }} }}')
    assert lookup["data"]["order"] is None
    newest = gql(client, "{ orders(first: 1, sortKey: UPDATED_AT, reverse: true) { nodes { legacyResourceId } } }")
    assert newest["data"]["orders"]["nodes"][0]["legacyResourceId"] != str(victim)
    assert str(victim) not in exported_ids(client)  # … and does not serve it any more
    assert [e.key for e in state.entries("order_deleted")] == [str(victim)]
    assert client.post(f"/_sandbox/orders/{victim}/delete").status_code == 404


def exported_ids(client: httpx.Client) -> set[str]:
    """Run a bulk export to completion; the legacy ids of the orders in it."""
    run = gql(
        client,
        'mutation { bulkOperationRunQuery(query: "{ orders { edges { node { id } } } }") { userErrors { message } } }',
    )
    assert run["data"]["bulkOperationRunQuery"]["userErrors"] == []
    while (op := gql(client, "{ currentBulkOperation { status url } }")["data"]["currentBulkOperation"])[
        "status"
    ] != "COMPLETED":
        assert op["status"] in ("CREATED", "RUNNING")
    rows = [json.loads(line) for line in client.get(op["url"]).text.splitlines()]
    return {str(r["id"]).rsplit("/", 1)[-1] for r in rows if "__parentId" not in r}


def test_faults_apply_to_api_calls(shopify: Store) -> None:
    state, client = shopify
    state.add_fault(Fault("503", path="/admin", count=1))
    assert client.get(ORDERS).status_code == 503
    state.add_fault(Fault("truncate", path="/admin", count=1))
    truncated = client.get(ORDERS)
    try:
        json.loads(truncated.content)
        raise AssertionError("body should be cut")
    except ValueError:
        pass
    assert client.get(ORDERS).status_code == 200
