"""The GraphQL Admin API of the sandbox: ``POST /admin/api/{version}/graphql.json``.

Each request is parsed and validated against the published schema of the version it was routed
to (:mod:`.schema`), checked against what the sandbox models (:mod:`.model`), costed and throttled,
then projected over the store's order nodes (:mod:`.executor`).

- ``orders`` has no default status filter (``status:any``), like Shopify's GraphQL API: closed and
  cancelled orders are listed unless the ``query`` says ``status:open``. Query terms understood:
  ``updated_at``/``created_at``/``processed_at`` with ``>= > <= < :``, ``status``,
  ``financial_status``, ``fulfillment_status``, ``test``, ``id``, ``name``; unknown terms are
  ignored (Shopify treats them as free text). ``ordersCount`` counts what the same ``query`` lists.
- Throttling: the requested cost is static (see :mod:`.executor`); ``actualQueryCost`` is the cost
  of what was returned (unused points are refunded, as Shopify does).
- Introspection (``__schema``, ``__type``) is answered by graphql-core over the version's schema,
  free of cost, so GraphQL tools and code generators can read the sandbox.
- An ``orders`` page whose nodes select only ``id legacyResourceId name createdAt updatedAt``
  (an audit's listing) is built from the order seeds without expanding the orders
  (:meth:`ShopifyState.stamp_node`): same answer and cost, ~10x faster for the sandbox.
- Webhook subscriptions (``webhookSubscriptionCreate``/``Delete``, ``webhookSubscriptions``) record
  the API version of the request that created them, and deliveries carry it. ``http://`` callback
  URLs are accepted (Shopify requires HTTPS) so a hub on localhost can subscribe.
"""

from __future__ import annotations

from typing import Any

from graphql import ExecutionResult, execute

from orderbridge.sandboxes.shopify.bulk import BulkRunner
from orderbridge.sandboxes.shopify.executor import (
    INTROSPECTION,
    ExecutionError,
    Executor,
    PlanField,
    ValidationFailed,
    _wrap,
    field_projector,
)
from orderbridge.sandboxes.shopify.generator import OrderSeed
from orderbridge.sandboxes.shopify.nodes import fulfillment_node
from orderbridge.sandboxes.shopify.state import (
    FINANCIAL_FILTERS,
    FULFILLMENT_FILTERS,
    Predicate,
    ShopifyState,
    time_bound,
)
from orderbridge.sandboxes.shopify.webhooks import SHOP_DOMAIN, TOPICS


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
                bound = time_bound(value)
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


def _fulfillment_payload(
    state: ShopifyState, mutation: str, result: tuple[dict[str, Any] | None, list[dict[str, Any]]]
) -> Any:
    fulfillment, errors = result
    if errors:  # every call the sandbox refuses is in its ledger: tests assert none was illegal
        state.record("refused", mutation, messages=[e["message"] for e in errors])
    return {"fulfillment": fulfillment_node(fulfillment) if fulfillment else None, "userErrors": errors}


def run_graphql(
    state: ShopifyState,
    executor: Executor,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    base_url: str,
    *,
    api_version: str,
    bulk: BulkRunner,
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
    introspection: dict[str, Any] | None = None
    for f in plan:
        if f.source is INTROSPECTION:
            if introspection is None:
                result = execute(executor.schema, doc, variable_values=variables, operation_name=operation_name)
                assert isinstance(result, ExecutionResult)  # introspection resolves synchronously
                introspection = result.data or {}
                errors.extend(dict(e.formatted) for e in result.errors or () if e.path and e.path[0] == f.key)
            data[f.key] = introspection.get(f.key)
            continue
        try:
            value = _resolve_root(state, f, base_url, api_version, bulk)
        except ExecutionError as exc:
            errors.append({**exc.as_dict(), "path": [f.key]})
            data[f.key] = None
            continue
        data[f.key] = (
            _wrap(value, field_projector(f), f.args, f.connection and f.name != "orders", f.is_list)
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


SCOPES = (
    "read_orders",
    "write_orders",
    "read_all_orders",
    "read_fulfillments",
    "write_fulfillments",
    "read_assigned_fulfillment_orders",
    "write_assigned_fulfillment_orders",
    "read_merchant_managed_fulfillment_orders",
    "write_merchant_managed_fulfillment_orders",
)


def shop_node(state: ShopifyState) -> dict[str, Any]:
    return {
        "id": "gid://shopify/Shop/1",
        "name": state.shop_name,
        "myshopifyDomain": SHOP_DOMAIN,
        "url": f"https://{SHOP_DOMAIN}",
        "currencyCode": "USD",
        "enabledPresentmentCurrencies": ["USD", "EUR", "GBP", "CAD"],
        "ianaTimezone": "America/Panama",
        "timezoneAbbreviation": "EST",
        "email": "owner@example.com",
        "contactEmail": "owner@example.com",
        "plan": {
            "displayName": state.plan.title(),
            "publicDisplayName": state.plan.title(),
            "partnerDevelopment": False,
            "shopifyPlus": state.plan in ("plus", "enterprise"),
        },
    }


def _node(state: ShopifyState, gid: str, bulk: BulkRunner) -> dict[str, Any] | None:
    """``node(id:)``: the orders and bulk operations the store holds; null for any other id, as
    Shopify answers an id it does not know."""
    if gid.startswith("gid://shopify/Order/"):
        order = _order_by_gid(state, gid)
        return None if order is None else {**order, "__typename": "Order"}
    if gid.startswith("gid://shopify/BulkOperation/"):
        found = bulk.by_id(gid)
        return None if found is None else {**found, "__typename": "BulkOperation"}
    return None


def _resolve_root(state: ShopifyState, f: PlanField, base_url: str, api_version: str, bulk: BulkRunner) -> Any:
    args = f.args
    name = f.name
    if name == "orders":
        return resolve_orders(state, args, stamps=_stamp_only(f))
    if name == "order":
        return _order_by_gid(state, args["id"])
    if name == "node":
        return _node(state, str(args["id"]), bulk)
    if name == "nodes":
        return [_node(state, str(i), bulk) for i in args["ids"]]
    if name == "ordersCount":
        return {"count": len(matching_seeds(state, args)), "precision": "EXACT"}
    if name == "shop":
        return shop_node(state)
    if name == "currentAppInstallation":
        return {
            "id": "gid://shopify/AppInstallation/1",
            "accessScopes": [
                {"handle": h, "description": h.replace("_", " ")}
                for h in (SCOPES if state.scopes is None else state.scopes)
            ],
        }
    if name == "currentBulkOperation":
        return bulk.current()
    if name == "bulkOperation":
        return bulk.by_id(args["id"])
    if name == "fulfillmentCreate":
        fi = args["fulfillment"]
        return _fulfillment_payload(
            state,
            name,
            state.create_fulfillment(
                fi.get("lineItemsByFulfillmentOrder") or [],
                fi.get("trackingInfo"),
                bool(fi.get("notifyCustomer")),
            ),
        )
    if name == "fulfillmentTrackingInfoUpdate":
        fid = str(args["fulfillmentId"]).rsplit("/", 1)[-1]
        return _fulfillment_payload(
            state, name, state.update_tracking(int(fid) if fid.isdigit() else None, args["trackingInfoInput"])
        )
    if name == "orderCancel":
        oid = str(args["orderId"]).rsplit("/", 1)[-1]
        errors = state.cancel_order(int(oid) if oid.isdigit() else None, str(args["reason"]), args.get("staffNote"))
        if errors:
            state.record("refused", name, order=str(args["orderId"]), messages=[e["message"] for e in errors])
            return {"job": None, "orderCancelUserErrors": errors, "userErrors": []}
        return {"job": {"id": f"gid://shopify/Job/cancel-{oid}", "done": True, "query": None},
                "orderCancelUserErrors": [], "userErrors": []}  # fmt: skip
    if name == "bulkOperationRunQuery":
        return bulk.run(args["query"], base_url, api_version)
    if name == "bulkOperationCancel":
        return bulk.cancel(args["id"])
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
    topics = {TOPICS.get(t, t) for t in args.get("topics") or ()}
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
    if args["topic"] not in TOPICS:
        message = f"The sandbox delivers no {args['topic']} webhooks (it models {', '.join(sorted(TOPICS))})."
        return {"webhookSubscription": None, "userErrors": [{"field": ["topic"], "message": message}]}
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
