"""The Shopify Admin API sandbox: REST ``orders.json`` and GraphQL ``graphql.json`` over one store.

Built to the facts in ``shared/api-facts.md`` and checked against the official ``ShopifyAPI``
client (``tests/sandboxes/test_shopify_official_client.py``). Decisions where the docs leave room:

- REST ``orders.json`` sorts by id descending unless ``order`` says otherwise (``since_id`` sorts
  ascending); ``status`` defaults to ``open``. ``page_info`` excludes every other filter (HTTP 400),
  as on Shopify; ``limit`` above 250 is refused with 400.
- GraphQL ``orders`` has no default status filter (``status:any``), like Shopify's GraphQL API:
  closed and cancelled orders are listed unless the ``query`` says ``status:open``. Query terms
  understood: ``updated_at``/``created_at``/``processed_at`` with ``>= > <= < :``, ``status``,
  ``financial_status``, ``fulfillment_status``, ``test``, ``id``, ``name``; unknown terms are
  ignored (Shopify treats them as free text).
- Throttling: the requested cost is static (see :mod:`.executor`); ``actualQueryCost`` is the cost
  of what was returned (unused points are refunded, as Shopify does). Bulk results are served at
  ``/bulk-results/{id}.jsonl`` without credentials (Shopify hands out a signed storage URL).
- Bulk operations belong to the store, not to a request: one per app and shop at a time, its
  status a function of the sandbox's clock (``bulk_seconds`` to complete, ``bulk_cancel_seconds``
  in CANCELING, a week until EXPIRED), brought up to date by whoever looks next — so one whose
  requester was killed goes on and completes on time. ``bulkOperationRunQuery`` refuses with
  ``OPERATION_IN_PROGRESS`` while one is CREATED, RUNNING or CANCELING; ``bulkOperationCancel``
  refuses an operation in any other state with a userError naming it (Shopify documents the
  mutation, not its messages: the wording is the sandbox's). The ledger records each start
  (``bulk_operation``) and each accepted cancel (``bulk_operation_cancel``).
- An ``orders`` page whose nodes select only ``id legacyResourceId name createdAt updatedAt``
  (an audit's listing) is built from the order seeds without expanding the orders
  (:meth:`ShopifyState.stamp_node`): same answer and cost, ~10x faster for the sandbox.
- Webhooks (:mod:`.webhooks`): GraphQL ``webhookSubscriptionCreate``/``Delete`` and
  ``webhookSubscriptions``, REST ``webhooks.json``; subscriptions record the API version of the
  request that created them and deliveries carry it. ``http://`` callback URLs are accepted (Shopify
  requires HTTPS) so a hub on localhost can subscribe.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from graphql import GraphQLSchema, build_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge.sandboxes.base import ASGIApp, build_app
from orderbridge.sandboxes.shopify.executor import (
    ExecutionError,
    Executor,
    PlanField,
    ValidationFailed,
    _wrap,
    compile_projector,
)
from orderbridge.sandboxes.shopify.generator import OrderSeed
from orderbridge.sandboxes.shopify.state import (
    FINANCIAL_FILTERS,
    FULFILLMENT_FILTERS,
    BulkOperation,
    Predicate,
    ShopifyState,
    dumps,
    epoch,
)
from orderbridge.sandboxes.shopify.webhooks import TOPICS

AUTH_ERROR = b'{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}'
REST_FILTERS = (
    "ids",
    "since_id",
    "created_at_min",
    "created_at_max",
    "updated_at_min",
    "updated_at_max",
    "processed_at_min",
    "processed_at_max",
    "status",
    "financial_status",
    "fulfillment_status",
    "name",
    "order",
)


@cache
def shopify_schema() -> GraphQLSchema:
    text = resources.files("orderbridge.sandboxes.shopify").joinpath("schema.graphql").read_text()
    return build_schema(text)


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
) -> tuple[ShopifyState, ASGIApp]:
    """A Shopify store with ``orders`` generated orders, and the ASGI app that serves it.

    ``api_secret`` signs webhooks; ``webhook_retry_scale`` multiplies Shopify's retry delays
    (tests use 0.001); ``webhook_drop_rate`` is the share of deliveries silently lost;
    ``bulk_seconds`` is how long a bulk query runs (on the sandbox's clock) before it completes.
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
    return state, build_app(state, routes(state))


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json", headers=headers)


def routes(state: ShopifyState) -> list[Route]:
    executor = Executor(shopify_schema())

    def authorised(request: Request) -> bool:
        return state.credentials_ok(request.headers.get("x-shopify-access-token"))

    def rest_gate(request: Request) -> Response | dict[str, str]:
        if not authorised(request):
            return Response(AUTH_ERROR, status_code=401, media_type="application/json")
        ok, used, retry = state.take_rest_call()
        limit_header = {"X-Shopify-Shop-Api-Call-Limit": f"{used}/40"}
        if not ok:
            return _json(
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                    "uninterrupted service."
                },
                429,
                {**limit_header, "Retry-After": f"{max(retry, 0.001):.3f}"},
            )
        return limit_header

    # --- REST ------------------------------------------------------------------------------------
    async def orders_json(request: Request) -> Response:
        gate = rest_gate(request)
        if isinstance(gate, Response):
            return gate
        params = dict(request.query_params)
        try:
            limit = int(params.pop("limit", "50"))
        except ValueError:
            return _json({"errors": {"limit": ["is not a number"]}}, 400, gate)
        if not 1 <= limit <= 250:
            return _json({"errors": {"limit": ["must be between 1 and 250"]}}, 400, gate)
        fields = params.pop("fields", None)
        page_info = params.pop("page_info", None)
        direction = "next"
        after: tuple[int, int] | None = None
        if page_info is not None:
            extra = [k for k in params if k in REST_FILTERS]
            if extra:
                return _json({"errors": {"page_info": [f"cannot be combined with {', '.join(extra)}"]}}, 400, gate)
            try:
                token = json.loads(base64.urlsafe_b64decode(page_info + "=" * (-len(page_info) % 4)))
                params, direction, after = token["f"], token["d"], (int(token["k"][0]), int(token["k"][1]))
            except (ValueError, KeyError, TypeError):
                return _json({"errors": {"page_info": ["Invalid value."]}}, 400, gate)
        try:
            predicate, sort, descending = rest_query(params)
        except ValueError as exc:
            return _json({"errors": str(exc)}, 400, gate)
        scan_desc = descending if direction == "next" else not descending
        with state.lock:
            found: list[tuple[tuple[int, int], Any]] = []
            more = False
            for key, seed in state.scan(sort, scan_desc, predicate, after):
                if len(found) == limit:
                    more = True
                    break
                found.append((key, seed))
            if direction == "prev":
                found.reverse()
            parts = (
                [state.rest_json(s.id) for _, s in found]
                if not fields
                else [dumps(_only(state.order(s.id) or {}, fields)) for _, s in found]
            )
        links = []
        base = str(request.url.remove_query_params(list(request.query_params.keys())))
        has_next = more if direction == "next" else bool(found)
        has_prev = (page_info is not None) if direction == "next" else more
        common = {"limit": str(limit), **({"fields": fields} if fields else {})}
        if found and has_prev:
            links.append(
                f'<{base}?{urlencode({**common, "page_info": _page(params, "prev", found[0][0])})}>; rel="previous"'
            )
        if found and has_next:
            links.append(
                f'<{base}?{urlencode({**common, "page_info": _page(params, "next", found[-1][0])})}>; rel="next"'
            )
        headers = dict(gate)
        if links:
            headers["Link"] = ", ".join(links)
        return Response(b'{"orders":[' + b",".join(parts) + b"]}", media_type="application/json", headers=headers)

    async def order_json(request: Request) -> Response:
        gate = rest_gate(request)
        if isinstance(gate, Response):
            return gate
        try:
            order_id = int(request.path_params["order_id"])
        except ValueError:
            return _json({"errors": "Not Found"}, 404, gate)
        with state.lock:
            if order_id not in state.orders:
                return _json({"errors": "Not Found"}, 404, gate)
            fields = request.query_params.get("fields")
            body = state.rest_json(order_id) if not fields else dumps(_only(state.order(order_id) or {}, fields))
        return Response(b'{"order":' + body + b"}", media_type="application/json", headers=gate)

    async def count_json(request: Request) -> Response:
        gate = rest_gate(request)
        if isinstance(gate, Response):
            return gate
        try:
            predicate, _sort, _descending = rest_query(dict(request.query_params))
        except ValueError as exc:
            return _json({"errors": str(exc)}, 400, gate)
        with state.lock:
            count = sum(1 for _ in state.scan("id", False, predicate))
        return _json({"count": count}, 200, gate)

    # --- GraphQL ---------------------------------------------------------------------------------
    async def graphql(request: Request) -> Response:
        if not authorised(request):
            return Response(AUTH_ERROR, status_code=401, media_type="application/json")
        try:
            body = await request.json()
            query = body["query"]
        except (ValueError, KeyError, TypeError):
            return _json({"errors": [{"message": "Parse error: the body must be JSON with a 'query'."}]}, 400)
        base_url = str(request.base_url)
        version = request.path_params["version"]
        return _json(
            run_graphql(
                state, executor, query, body.get("variables"), body.get("operationName"), base_url, api_version=version
            )
        )

    async def bulk_result(request: Request) -> Response:
        op_id = int(request.path_params["op_id"])
        data = state.bulk_results.get(op_id)
        if data is None:
            return Response(b"NoSuchKey", status_code=404)
        return Response(data, media_type="application/jsonl")

    # --- control ---------------------------------------------------------------------------------
    async def control_add(request: Request) -> Response:
        overrides = await request.json() if await request.body() else {}
        return _json(state.add_order(**overrides))

    async def control_update(request: Request) -> Response:
        try:
            order = state.update_order(int(request.path_params["order_id"]), **(await request.json()))
        except KeyError as exc:
            return _json({"error": str(exc)}, 404)
        return _json(order)

    async def control_delete(request: Request) -> Response:
        try:
            state.delete_order(int(request.path_params["order_id"]))
        except KeyError as exc:
            return _json({"error": str(exc)}, 404)
        return _json({"deleted": True})

    async def control_fulfillments(request: Request) -> Response:
        order_id = request.query_params.get("order_id")
        return _json(state.fulfillments(int(order_id) if order_id else None))

    # --- webhooks (REST) -------------------------------------------------------------------------
    dispatcher = state.webhook_dispatcher

    async def webhooks_json(request: Request) -> Response:
        gate = rest_gate(request)
        if isinstance(gate, Response):
            return gate
        if request.method == "POST":
            try:
                given = (await request.json())["webhook"]
                topic, address = str(given["topic"]), str(given["address"])
            except (ValueError, KeyError, TypeError):
                return _json({"errors": {"webhook": ["Required parameter missing or invalid"]}}, 400, gate)
            sub, errors = dispatcher.subscribe(
                topic, address, api_version=request.path_params["version"], format=str(given.get("format", "json"))
            )
            if sub is None:
                return _json({"errors": _rest_errors(errors)}, 422, gate)
            return _json({"webhook": sub.rest()}, 201, gate)
        wanted_address, wanted_topic = request.query_params.get("address"), request.query_params.get("topic")
        found = [
            s.rest()
            for s in dispatcher.subscriptions()
            if wanted_address in (None, s.callback_url) and wanted_topic in (None, s.topic)
        ]
        return _json({"webhooks": found}, 200, gate)

    async def webhooks_count(request: Request) -> Response:
        gate = rest_gate(request)
        if isinstance(gate, Response):
            return gate
        return _json({"count": len(dispatcher.subscriptions())}, 200, gate)

    async def webhook_json(request: Request) -> Response:
        gate = rest_gate(request)
        if isinstance(gate, Response):
            return gate
        sub_id = int(request.path_params["webhook_id"])
        if request.method == "DELETE":
            return _json({}, 200, gate) if dispatcher.unsubscribe(sub_id) else _json({"errors": "Not Found"}, 404, gate)
        sub = dispatcher.subscription(sub_id)
        return _json({"webhook": sub.rest()}, 200, gate) if sub else _json({"errors": "Not Found"}, 404, gate)

    # --- webhooks (control) ----------------------------------------------------------------------
    async def control_webhooks(request: Request) -> Response:
        return _json(
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
            return _json({"error": f'expected {{"rate": 0 … 1}}: {exc}'}, 422)
        return _json({"drop_rate": dispatcher.drop_rate})

    async def control_webhooks_disable(request: Request) -> Response:
        return _json({"removed": state.disable_webhooks()})

    return [
        Route("/admin/api/{version}/orders.json", orders_json, methods=["GET"]),
        Route("/admin/api/{version}/orders/count.json", count_json, methods=["GET"]),
        Route("/admin/api/{version}/orders/{order_id}.json", order_json, methods=["GET"]),
        Route("/admin/api/{version}/graphql.json", graphql, methods=["POST"]),
        Route("/bulk-results/{op_id:int}.jsonl", bulk_result, methods=["GET"]),
        Route("/_sandbox/orders", control_add, methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/update", control_update, methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/delete", control_delete, methods=["POST"]),
        Route("/_sandbox/fulfillments", control_fulfillments, methods=["GET"]),
        Route("/admin/api/{version}/webhooks.json", webhooks_json, methods=["GET", "POST"]),
        Route("/admin/api/{version}/webhooks/count.json", webhooks_count, methods=["GET"]),
        Route("/admin/api/{version}/webhooks/{webhook_id:int}.json", webhook_json, methods=["GET", "DELETE"]),
        Route("/_sandbox/webhooks", control_webhooks, methods=["GET"]),
        Route("/_sandbox/webhooks/drop", control_webhooks_drop, methods=["POST"]),
        Route("/_sandbox/webhooks/disable", control_webhooks_disable, methods=["POST"]),
    ]


def _rest_errors(user_errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    """GraphQL userErrors → REST's ``{"errors": {"address": ["for this topic has already been taken"]}}``."""
    out: dict[str, list[str]] = {}
    for e in user_errors:
        name = "address" if "callbackUrl" in (e.get("field") or []) else (e.get("field") or ["base"])[-1]
        message = str(e["message"])
        if message.startswith("Address "):
            message = message[len("Address ") :]
        out.setdefault(name, []).append(message)
    return out


def _page(filters: dict[str, Any], direction: str, key: tuple[int, int]) -> str:
    raw = json.dumps({"f": filters, "d": direction, "k": list(key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _only(order: dict[str, Any], fields: str) -> dict[str, Any]:
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    return {k: order[k] for k in wanted if k in order}


def _time_bound(value: str) -> float:
    ts = epoch(value.strip().strip("'\""))
    assert ts is not None
    return float(ts)


def rest_query(params: dict[str, Any]) -> tuple[Predicate, str, bool]:
    """REST list parameters → (predicate, sort index, descending)."""
    p = Predicate()
    p.status = params.get("status", "open")
    if p.status not in ("open", "closed", "cancelled", "any"):
        raise ValueError(f"status {p.status!r} is not one of open, closed, cancelled, any")
    if params.get("ids"):
        p.ids = {int(x) for x in str(params["ids"]).split(",") if x.strip()}
    if params.get("since_id"):
        p.min_id = int(params["since_id"])
    for name, attr in (("created_at", "created"), ("updated_at", "updated"), ("processed_at", "created")):
        lo, hi = getattr(p, attr)
        if params.get(f"{name}_min"):
            lo = max(lo, _time_bound(params[f"{name}_min"]))
        if params.get(f"{name}_max"):
            hi = min(hi, _time_bound(params[f"{name}_max"]))
        setattr(p, attr, (lo, hi))
    fin = params.get("financial_status")
    if fin:
        p.financial = FINANCIAL_FILTERS.get(fin, {fin})
    ful = params.get("fulfillment_status")
    if ful:
        if ful not in FULFILLMENT_FILTERS:
            raise ValueError(f"fulfillment_status {ful!r} is not one of {', '.join(FULFILLMENT_FILTERS)}")
        p.fulfillment = FULFILLMENT_FILTERS[ful]
    if params.get("name"):
        p.number = int(str(params["name"]).lstrip("#"))
    order = str(params.get("order", "id asc" if p.min_id is not None else "id desc")).split()
    sort = {"created_at": "created", "updated_at": "updated", "processed_at": "created"}.get(order[0], "id")
    return p, sort, len(order) > 1 and order[1].lower() == "desc"


def graphql_query_filter(text: str | None) -> Predicate:
    """Shopify search syntax (the subset in the module docstring) → predicate."""
    p = Predicate()
    if not text:
        return p
    for token in text.replace(" AND ", " ").split():
        name, sep, value = token.partition(":")
        if not sep:
            continue
        value = value.strip("'\"")
        op = ""
        for candidate in (">=", "<=", ">", "<"):
            if value.startswith(candidate):
                op, value = candidate, value[len(candidate) :].strip("'\"")
                break
        if name in ("updated_at", "created_at", "processed_at"):
            attr = "updated" if name == "updated_at" else "created"
            lo, hi = getattr(p, attr)
            try:
                bound = _time_bound(value)
            except ValueError:
                continue
            if op in (">=", ""):
                lo = max(lo, bound)
            if op in ("<=", ""):
                hi = min(hi, bound)
            if op == ">":
                lo = max(lo, bound + 1)
            if op == "<":
                hi = min(hi, bound - 1)
            setattr(p, attr, (lo, hi))
        elif name == "status" and value in ("open", "closed", "cancelled", "any"):
            p.status = value
        elif name == "financial_status":
            p.financial = FINANCIAL_FILTERS.get(value, {value})
        elif name == "fulfillment_status" and value in FULFILLMENT_FILTERS:
            p.fulfillment = FULFILLMENT_FILTERS[value]
        elif name == "test":
            p.test = value.lower() == "true"
        elif name == "id" and value.isdigit():
            p.ids = {int(value)}
        elif name == "name":
            try:
                p.number = int(value.lstrip("#"))
            except ValueError:
                continue
    return p


_SORTS = {
    "UPDATED_AT": "updated",
    "CREATED_AT": "created",
    "PROCESSED_AT": "created",
    "ID": "id",
    "ORDER_NUMBER": "id",
}


#: ``Order`` fields :meth:`ShopifyState.stamp_node` answers without expanding the order
STAMP_FIELDS = frozenset({"id", "legacyResourceId", "name", "createdAt", "updatedAt", "__typename"})


def _stamp_only(f: PlanField) -> bool:
    """Does this ``orders`` selection ask only for fields a seed answers (see STAMP_FIELDS)?"""
    nodes: list[PlanField] = []
    for g in f.sub or []:
        if g.name == "nodes":
            nodes.extend(g.sub or [])
        elif g.name == "edges":
            for h in g.sub or []:
                if h.name == "node":
                    nodes.extend(h.sub or [])
    return all(n.name in STAMP_FIELDS for n in nodes)


def resolve_orders(
    state: ShopifyState, args: dict[str, Any], *, bulk: bool = False, stamps: bool = False
) -> dict[str, Any]:
    first, last = args.get("first"), args.get("last")
    if not bulk:
        if first is None and last is None:
            raise ExecutionError("you must provide one of first or last", "BAD_REQUEST")
        if (first or 0) > 250 or (last or 0) > 250:
            raise ExecutionError("The maximum number of records that can be requested is 250.", "BAD_REQUEST")
    sort = _SORTS[args.get("sortKey") or "ID"]
    reverse = bool(args.get("reverse"))
    predicate = graphql_query_filter(args.get("query"))
    descending = reverse
    after: tuple[int, int] | None = None
    cursor = args.get("after")
    if last is not None and first is None:
        descending = not reverse
        cursor = args.get("before")
    if cursor:
        try:
            after = state.decode_key(cursor)
        except ValueError as exc:
            raise ExecutionError(f"Invalid cursor for current pagination sort: {cursor}", "BAD_REQUEST") from exc
    limit = first if first is not None else last
    found: list[tuple[tuple[int, int], Any]] = []
    more = False
    with state.lock:
        scan = state.scan(sort, descending, predicate, after)
        for key, seed in scan:
            if limit is not None and len(found) == limit:
                more = True
                break
            found.append((key, seed))
        nodes = [state.stamp_node(s) for _, s in found] if stamps else [state.node(s.id) for _, s in found]
    if first is None and last is not None:
        found.reverse()
        nodes.reverse()
    cursors = [state.encode_key(k) for k, _ in found]
    return {
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": more if first is not None or last is None else bool(cursor),
            "hasPreviousPage": bool(cursor) if first is not None else more,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def matching_seeds(state: ShopifyState, args: dict[str, Any]) -> list[OrderSeed]:
    """Every order the root ``orders`` field selects, in its order (``sortKey``, ``reverse``, ``query``)."""
    sort = _SORTS[args.get("sortKey") or "ID"]
    predicate = graphql_query_filter(args.get("query"))
    with state.lock:
        return [seed for _, seed in state.scan(sort, bool(args.get("reverse")), predicate)]


def _order_by_gid(state: ShopifyState, gid: str) -> dict[str, Any] | None:
    prefix = "gid://shopify/Order/"
    if not gid.startswith(prefix) or not gid[len(prefix) :].isdigit():
        return None
    with state.lock:
        return state.node(int(gid[len(prefix) :]))


def _fulfillment_payload(state: ShopifyState, result: tuple[dict[str, Any] | None, list[dict[str, Any]]]) -> Any:
    from orderbridge.sandboxes.shopify.nodes import fulfillment_node

    fulfillment, errors = result
    return {"fulfillment": fulfillment_node(fulfillment) if fulfillment else None, "userErrors": errors}


def run_graphql(
    state: ShopifyState,
    executor: Executor,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    base_url: str,
    *,
    api_version: str = "2025-01",
) -> dict[str, Any]:
    """Execute one GraphQL request with cost accounting; the response body as a dict."""
    try:
        doc = executor.document(query)
        op = executor.operation(doc, operation_name)
        _root, plan = executor.plan(doc, op, variables)
    except ValidationFailed as exc:
        return {"errors": exc.errors}
    except ExecutionError as exc:
        return {"errors": [exc.as_dict()]}
    except Exception as exc:  # noqa: BLE001 - graphql-core coercion errors arrive as GraphQLError
        return {"errors": [{"message": str(exc)}]}
    mutation = op.operation.value == "mutation"
    requested = executor.cost(plan, mutation=mutation)
    if state.limits and requested > state.max_query_cost:
        return {
            "errors": [
                {
                    "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
                    f"({state.max_query_cost}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits "
                    "for more information on how the cost of a query is calculated.",
                    "extensions": {
                        "code": "MAX_COST_EXCEEDED",
                        "cost": requested,
                        "maxCost": state.max_query_cost,
                    },
                }
            ]
        }
    ok, status = state.take_points(requested)
    if not ok:
        return {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits",
                    },
                }
            ],
            "extensions": {
                "cost": {"requestedQueryCost": requested, "actualQueryCost": None, "throttleStatus": status}
            },
        }
    data: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    actual = 0
    for f in plan:
        try:
            value = _resolve_root(state, executor, f, base_url, api_version)
        except ExecutionError as exc:
            errors.append({**exc.as_dict(), "path": [f.key]})
            data[f.key] = None
            continue
        data[f.key] = (
            _wrap(value, compile_projector(f.sub), f.args, f.connection and f.name != "orders", f.is_list)
            if f.sub is not None
            else value
        )
        actual += 10 if mutation else _returned_cost([f], data)
    if not mutation and actual < requested:
        status = state.refund_points(requested - actual)
    else:
        actual = requested
    body: dict[str, Any] = {"data": data}
    if errors:
        body["errors"] = errors
    body["extensions"] = {
        "cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}
    }
    return body


def _returned_cost(plan: list[PlanField], data: Any) -> int:
    """Shopify's actual cost: objects and connection items actually returned (scalars free)."""
    if not isinstance(data, dict):
        return 0
    total = 0
    for f in plan:
        value = data.get(f.key)
        if f.sub is None or value is None:
            continue
        if f.connection:
            total += 2
            for g in f.sub:
                items = value.get(g.key) or []
                if g.name == "nodes" and g.sub is not None:
                    total += sum(1 + _returned_cost(g.sub, node) for node in items)
                elif g.name == "edges" and g.sub is not None:
                    for h in g.sub:
                        if h.name == "node" and h.sub is not None:
                            total += sum(1 + _returned_cost(h.sub, e.get(h.key)) for e in items)
        elif isinstance(value, list):
            total += sum(1 + _returned_cost(f.sub, item) for item in value)
        else:
            total += 1 + _returned_cost(f.sub, value)
    return total


def _resolve_root(state: ShopifyState, executor: Executor, f: PlanField, base_url: str, api_version: str) -> Any:
    args = f.args
    name = f.name
    if name == "orders":
        return resolve_orders(state, args, stamps=_stamp_only(f))
    if name == "order":
        return _order_by_gid(state, args["id"])
    if name == "shop":
        return {
            "id": "gid://shopify/Shop/1",
            "name": state.shop_name,
            "myshopifyDomain": "orderbridge-sandbox.myshopify.com",
            "currencyCode": "USD",
            "ianaTimezone": "America/Panama",
            "email": "owner@example.com",
        }
    if name == "currentBulkOperation":
        return _current_bulk(state, executor)
    if name == "fulfillmentCreate":
        fi = args["fulfillment"]
        return _fulfillment_payload(
            state,
            state.create_fulfillment(
                fi.get("lineItemsByFulfillmentOrder") or [],
                fi.get("trackingInfo"),
                bool(fi.get("notifyCustomer")),
            ),
        )
    if name == "fulfillmentTrackingInfoUpdate":
        fid = str(args["fulfillmentId"]).rsplit("/", 1)[-1]
        return _fulfillment_payload(
            state, state.update_tracking(int(fid) if fid.isdigit() else None, args["trackingInfoInput"])
        )
    if name == "bulkOperationRunQuery":
        return _run_bulk(state, executor, args["query"], base_url)
    if name == "bulkOperationCancel":
        return _cancel_bulk(state, executor, args["id"])
    if name in _WEBHOOK_ROOTS:
        return _WEBHOOK_ROOTS[name](state, args, api_version)
    raise ExecutionError(f"Field '{name}' is not implemented by the sandbox.")


# --- webhook subscriptions (GraphQL) ---------------------------------------------------------------


def _subscription_id(gid: Any) -> int | None:
    prefix = "gid://shopify/WebhookSubscription/"
    text = str(gid)
    return int(text[len(prefix) :]) if text.startswith(prefix) and text[len(prefix) :].isdigit() else None


def _webhook_subscriptions(state: ShopifyState, args: dict[str, Any], _version: str) -> list[dict[str, Any]]:
    """A plain list: the projector slices it by ``first``/``after`` into a connection."""
    if args.get("first") is not None and args["first"] > 250:
        raise ExecutionError("The maximum number of records that can be requested is 250.", "BAD_REQUEST")
    topics = {TOPICS[t] for t in args.get("topics") or ()}
    url, fmt = args.get("callbackUrl"), args.get("format")
    return [
        s.node()
        for s in state.webhook_dispatcher.subscriptions()
        if (not topics or s.topic in topics) and (url is None or s.callback_url == url) and (fmt in (None, s.format))
    ]


def _webhook_subscription(state: ShopifyState, args: dict[str, Any], _version: str) -> dict[str, Any] | None:
    sub_id = _subscription_id(args["id"])
    sub = state.webhook_dispatcher.subscription(sub_id) if sub_id is not None else None
    return sub.node() if sub else None


def _webhook_create(state: ShopifyState, args: dict[str, Any], version: str) -> dict[str, Any]:
    given = args["webhookSubscription"]
    sub, errors = state.webhook_dispatcher.subscribe(
        TOPICS[args["topic"]],
        str(given.get("callbackUrl") or ""),
        api_version=version,
        format=given.get("format") or "JSON",
    )
    return {"webhookSubscription": sub.node() if sub else None, "userErrors": errors}


def _webhook_delete(state: ShopifyState, args: dict[str, Any], _version: str) -> dict[str, Any]:
    sub_id = _subscription_id(args["id"])
    if sub_id is None or not state.webhook_dispatcher.unsubscribe(sub_id):
        return {
            "deletedWebhookSubscriptionId": None,
            "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
        }
    return {"deletedWebhookSubscriptionId": args["id"], "userErrors": []}


_WEBHOOK_ROOTS = {
    "webhookSubscriptions": _webhook_subscriptions,
    "webhookSubscription": _webhook_subscription,
    "webhookSubscriptionCreate": _webhook_create,
    "webhookSubscriptionDelete": _webhook_delete,
}


def _run_bulk(state: ShopifyState, executor: Executor, query: str, base_url: str) -> dict[str, Any]:
    try:
        doc = executor.document(query)
        op = executor.operation(doc, None)
        _, plan = executor.plan(doc, op, {})
    except ValidationFailed as exc:
        return {
            "bulkOperation": None,
            "userErrors": [{"field": ["query"], "message": e["message"], "code": "INVALID"} for e in exc.errors],
        }
    except ExecutionError as exc:
        return {"bulkOperation": None, "userErrors": [{"field": ["query"], "message": exc.message, "code": "INVALID"}]}
    if op.operation.value != "query" or not plan or not plan[0].connection:
        return {
            "bulkOperation": None,
            "userErrors": [
                {"field": ["query"], "message": "Bulk queries must contain a top-level connection.", "code": "INVALID"}
            ],
        }
    with state.lock:
        _advance_bulk(state, executor, state.bulk)
        op_record, errors = state.start_bulk(query, base_url)
        return {"bulkOperation": op_record.node() if op_record else None, "userErrors": errors}


def _cancel_bulk(state: ShopifyState, executor: Executor, gid: str) -> dict[str, Any]:
    with state.lock:
        for each in state.bulk_operations.values():
            _advance_bulk(state, executor, each)
        op, errors = state.cancel_bulk(gid)
        return {"bulkOperation": op.node() if op else None, "userErrors": errors}


def _current_bulk(state: ShopifyState, executor: Executor) -> dict[str, Any] | None:
    with state.lock:
        op = state.bulk
        _advance_bulk(state, executor, op)
        return None if op is None else op.node()


def _advance_bulk(state: ShopifyState, executor: Executor, op: BulkOperation | None) -> None:
    """Bring ``op`` up to the status the sandbox's clock says it has reached (caller holds the lock)."""
    if op is None:
        return
    due = state.bulk_due(op)
    if due == op.status:
        return
    if due == "COMPLETED":
        _complete_bulk(state, executor, op, op.base_url)
        op.finished = op.started + state.bulk_seconds  # when it completed on the clock, seen or not
        due = state.bulk_due(op)  # a long-unobserved operation may be expired already
        if due == "COMPLETED":
            return
    state.settle_bulk(op, due)


def _complete_bulk(state: ShopifyState, executor: Executor, op: BulkOperation, base_url: str) -> None:
    doc = executor.document(op.query)
    _, plan = executor.plan(doc, executor.operation(doc, None), {})
    root = plan[0]
    if root.name != "orders":
        op.status, op.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
        return
    node_plan = _node_plan(_unlimited(root.sub or []))
    project_node = compile_projector(node_plan)

    def block(node: dict[str, Any]) -> bytes:
        lines: list[bytes] = []
        _flatten(project_node(node), None, lines)
        return b"\n".join(lines) + b"\n"

    seeds = matching_seeds(state, root.args) if node_plan else []
    blocks = [state.bulk_block(op.query, s.id, block) for s in seeds]
    body = b"".join(blocks)
    state.bulk_results[op.id] = body
    op.status = "COMPLETED"
    op.completed_at = state.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    op.object_count = body.count(b"\n")
    op.root_object_count = len(blocks)
    op.file_size = len(body)
    op.url = f"{base_url.rstrip('/')}/bulk-results/{op.id}.jsonl" if blocks else None


def _node_plan(plan: list[PlanField]) -> list[PlanField]:
    """The selection on each node of a connection's plan (``nodes { … }`` or ``edges { node { … } }``)."""
    for f in plan:
        if f.name == "nodes" and f.sub is not None:
            return f.sub
        if f.name == "edges" and f.sub is not None:
            for g in f.sub:
                if g.name == "node" and g.sub is not None:
                    return g.sub
    return []


def _unlimited(plan: list[PlanField]) -> list[PlanField]:
    """Bulk queries take whole nested connections: drop ``first`` everywhere."""
    out = []
    for f in plan:
        args = {k: v for k, v in f.args.items() if k not in ("first", "last")} if f.connection else f.args
        out.append(
            PlanField(
                f.key,
                f.name,
                args,
                _unlimited(f.sub) if f.sub else f.sub,
                f.connection,
                f.is_list,
                f.typename,
            )
        )
    return out


def _flatten(node: dict[str, Any], parent: str | None, out: list[bytes]) -> None:
    """One JSONL line per node; nested connection nodes become later lines with ``__parentId``."""
    line: dict[str, Any] = {}
    children: list[dict[str, Any]] = []
    for key, value in node.items():
        if isinstance(value, dict) and (isinstance(value.get("edges"), list) or isinstance(value.get("nodes"), list)):
            children.extend(value.get("nodes") or [e["node"] for e in value.get("edges", [])])
        else:
            line[key] = value
    if parent is not None:
        line["__parentId"] = parent
    out.append(dumps(line))
    for child in children:
        _flatten(child, node.get("id"), out)
