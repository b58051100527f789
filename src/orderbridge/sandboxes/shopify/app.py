"""The Shopify Admin API sandbox: one store served over REST and GraphQL, in every version it serves.

Built to the facts in ``shared/api-facts.md`` and Shopify's own published schema, and checked with
real clients (``tests/sandboxes/test_shopify_official_client.py``, ``test_shopify_real_clients.py``).
The parts, one module per concept:

- :mod:`.schema` — the published Admin GraphQL schemas and API version routing;
- :mod:`.model` — what the sandbox answers for each field (data, a rule, null, empty, or refused);
- :mod:`.executor` — validation, plans, cost and the fast projector;
- :mod:`.graphql_api` — ``graphql.json``: root fields, throttling, introspection;
- :mod:`.rest` / :mod:`.restview` — REST routes and the full REST order;
- :mod:`.bulk` — bulk operations on the sandbox's clock;
- :mod:`.webhooks` — subscriptions and signed deliveries;
- :mod:`.state` / :mod:`.generator` / :mod:`.nodes` — the store, its generated orders, their GraphQL nodes.

Control routes under ``/_sandbox`` (no credentials; only sandboxes have them) add, change and
delete orders, list fulfilments, and steer webhooks (drop rate, disable), besides the ledger and
fault injection every sandbox has (:mod:`orderbridge.sandboxes.base`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge.sandboxes.base import ASGIApp, build_app
from orderbridge.sandboxes.shopify.bulk import BulkRunner
from orderbridge.sandboxes.shopify.executor import Executor
from orderbridge.sandboxes.shopify.graphql_api import matching_seeds, run_graphql
from orderbridge.sandboxes.shopify.model import MODEL
from orderbridge.sandboxes.shopify.rest import AUTH_ERROR, RestApi, json_response, versioned
from orderbridge.sandboxes.shopify.schema import schema, served_versions
from orderbridge.sandboxes.shopify.state import ShopifyState


def create_sandbox(
    *,
    orders: int = 0,
    seed: int = 1,
    realistic: bool = True,
    lines_per_order: int | None = None,
    limits: bool = True,
    plan: str = "standard",
    access_token: str = "shpat_sandbox",
    maximum_available: float = 1000.0,
    restore_rate: float | None = None,
    max_query_cost: int = 1000,
    api_secret: str = "shpss_sandbox",
    webhook_retry_scale: float = 1.0,
    webhook_drop_rate: float = 0.0,
    bulk_seconds: float = 0.05,
    deprecated_versions: dict[str, str] | None = None,
) -> tuple[ShopifyState, ASGIApp]:
    """A Shopify store with ``orders`` generated orders, and the ASGI app that serves it.

    ``api_secret`` signs webhooks; ``webhook_retry_scale`` multiplies Shopify's retry delays
    (tests use 0.001); ``webhook_drop_rate`` is the share of deliveries silently lost;
    ``bulk_seconds`` is how long a bulk query runs (on the sandbox's clock) before it completes;
    ``deprecated_versions`` (served version → reason) flags responses of those versions with
    ``X-Shopify-API-Deprecated-Reason``, as Shopify does for a version near its end of support.
    """
    state = ShopifyState(
        orders=orders,
        seed=seed,
        realistic=realistic,
        lines_per_order=lines_per_order,
        limits=limits,
        plan=plan,
        access_token=access_token,
        maximum_available=maximum_available,
        restore_rate=restore_rate,
        max_query_cost=max_query_cost,
        api_secret=api_secret,
        webhook_retry_scale=webhook_retry_scale,
        webhook_drop_rate=webhook_drop_rate,
        bulk_seconds=bulk_seconds,
    )
    state.deprecated_versions.update(deprecated_versions or {})
    return state, build_app(state, routes(state))


def routes(state: ShopifyState) -> list[Route]:
    executors: dict[str, Executor] = {}

    def executor(version: str) -> Executor:
        found = executors.get(version)
        if found is None:
            found = executors[version] = Executor(schema(version), MODEL)
        return found

    for version in served_versions():  # built now, not on a first request that a benchmark may time
        executor(version)
    bulk = BulkRunner(state, executor, lambda args: [seed.id for seed in matching_seeds(state, args)])
    rest = RestApi(state)

    async def graphql(request: Request) -> Response:
        if not rest.authorised(request):
            return Response(AUTH_ERROR, status_code=401, media_type="application/json")
        try:
            body = await request.json()
            query = body["query"]
        except (ValueError, KeyError, TypeError):
            return json_response({"errors": [{"message": "Parse error: the body must be JSON with a 'query'."}]}, 400)
        version = request.path_params["version"]
        result = run_graphql(
            state,
            executor(version),
            query,
            body.get("variables"),
            body.get("operationName"),
            str(request.base_url),
            api_version=version,
            bulk=bulk,
        )
        return json_response(result)

    async def bulk_result(request: Request) -> Response:
        data = state.bulk_results.get(int(request.path_params["op_id"]))
        if data is None:
            return Response(b"NoSuchKey", status_code=404)
        return Response(data, media_type="application/jsonl")

    # --- control ---------------------------------------------------------------------------------
    async def control_add(request: Request) -> Response:
        overrides = await request.json() if await request.body() else {}
        return json_response(state.add_order(**overrides))

    async def control_update(request: Request) -> Response:
        try:
            order = state.update_order(int(request.path_params["order_id"]), **(await request.json()))
        except KeyError as exc:
            return json_response({"error": str(exc)}, 404)
        return json_response(order)

    async def control_delete(request: Request) -> Response:
        try:
            state.delete_order(int(request.path_params["order_id"]))
        except KeyError as exc:
            return json_response({"error": str(exc)}, 404)
        return json_response({"deleted": True})

    async def control_fulfillments(request: Request) -> Response:
        order_id = request.query_params.get("order_id")
        return json_response(state.fulfillments(int(order_id) if order_id else None))

    dispatcher = state.webhook_dispatcher

    async def control_webhooks(request: Request) -> Response:
        return json_response(
            {
                "subscriptions": [s.rest() for s in dispatcher.subscriptions()],
                "queued": dispatcher.queued(),
                "drop_rate": dispatcher.drop_rate,
                "retry_scale": dispatcher.retry_scale,
                "counts": dict(dispatcher.counts),
            }
        )

    async def control_webhooks_drop(request: Request) -> Response:
        try:
            state.set_webhook_drop_rate(float((await request.json())["rate"]))
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": f'expected {{"rate": 0 … 1}}: {exc}'}, 422)
        return json_response({"drop_rate": dispatcher.drop_rate})

    async def control_webhooks_disable(request: Request) -> Response:
        return json_response({"removed": state.disable_webhooks()})

    def api(path: str, handler: Any, methods: list[str]) -> Route:
        return Route(f"/admin/api/{{version}}/{path}", versioned(state, handler), methods=methods)

    return [
        api("shop.json", rest.shop_json, ["GET"]),
        Route("/admin/oauth/access_scopes.json", rest.access_scopes_json, methods=["GET"]),
        api("orders.json", rest.orders_json, ["GET"]),
        api("orders/count.json", rest.count_json, ["GET"]),
        api("orders/{order_id}.json", rest.order_json, ["GET"]),
        api("events.json", rest.events_json, ["GET"]),
        api("graphql.json", graphql, ["POST"]),
        api("webhooks.json", rest.webhooks_json, ["GET", "POST"]),
        api("webhooks/count.json", rest.webhooks_count, ["GET"]),
        api("webhooks/{webhook_id:int}.json", rest.webhook_json, ["GET", "DELETE"]),
        Route("/bulk-results/{op_id:int}.jsonl", bulk_result, methods=["GET"]),
        Route("/_sandbox/orders", control_add, methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/update", control_update, methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/delete", control_delete, methods=["POST"]),
        Route("/_sandbox/fulfillments", control_fulfillments, methods=["GET"]),
        Route("/_sandbox/webhooks", control_webhooks, methods=["GET"]),
        Route("/_sandbox/webhooks/drop", control_webhooks_drop, methods=["POST"]),
        Route("/_sandbox/webhooks/disable", control_webhooks_disable, methods=["POST"]),
    ]
