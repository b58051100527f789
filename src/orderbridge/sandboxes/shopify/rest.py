"""The REST Admin API of the sandbox: what a client touches at start-up and for orders.

- ``GET /admin/api/{v}/shop.json`` and ``GET /admin/oauth/access_scopes.json`` (the token's scopes,
  unversioned as on Shopify): the first calls of most extractors.
- ``GET /admin/api/{v}/orders.json``: Shopify's full REST order (:mod:`.restview`) and its documented
  filters — ``ids``, ``since_id``, ``created_at_min/max``, ``updated_at_min/max``,
  ``processed_at_min/max``, ``status`` (``open`` by default, ``closed``, ``cancelled``, ``any``),
  ``financial_status``, ``fulfillment_status``, ``name``, ``fields``, ``limit`` (default 50, at most
  250, else 400) and cursor pagination: a ``Link`` header with ``rel="next"``/``rel="previous"`` whose
  URL carries an opaque ``page_info``, which excludes every other filter (400), as on Shopify. Sorted
  by id descending unless ``order`` says otherwise (``since_id`` sorts ascending).
- ``GET /admin/api/{v}/orders/{id}.json`` and ``orders/count.json`` (same filters).
- ``GET /admin/api/{v}/events.json``: the store's ``destroy`` events of deleted orders (Shopify
  keeps no other trace of a deleted order), filtered by ``filter``/``verb``, ``created_at_min/max``,
  ``since_id``, ``limit`` with ``Link`` pagination.
- ``webhooks.json``, ``webhooks/count.json``, ``webhooks/{id}.json``.

Every ``/admin/api/{version}/`` route goes through :func:`versioned`: the version routing of
:func:`.schema.route`, answered in ``X-Shopify-API-Version`` (and ``X-Shopify-API-Deprecated-Reason``
when the version asked for is deprecated or retired). REST calls go through the leaky bucket
(``X-Shopify-Shop-Api-Call-Limit``, 429 with ``Retry-After``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from orderbridge.sandboxes.shopify.graphql_api import SCOPES
from orderbridge.sandboxes.shopify.schema import route
from orderbridge.sandboxes.shopify.state import (
    FINANCIAL_FILTERS,
    FULFILLMENT_FILTERS,
    Predicate,
    ShopifyState,
    dumps,
    time_bound,
)
from orderbridge.sandboxes.shopify.webhooks import SHOP_DOMAIN

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

Handler = Callable[[Request], Awaitable[Response]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json", headers=headers)


def versioned(state: ShopifyState, handler: Handler) -> Handler:
    """Route the request's API version (404 when the sandbox serves none for it) and say which
    version answered; the handler sees the served version in ``request.path_params["version"]``."""

    async def wrapped(request: Request) -> Response:
        routed = route(request.path_params["version"], state.deprecated_versions)
        if routed is None:
            return json_response({"errors": "Not Found"}, 404)
        request.path_params["version"] = routed.served
        response = await handler(request)
        response.headers["X-Shopify-API-Version"] = routed.served
        if routed.deprecated_reason:
            response.headers["X-Shopify-API-Deprecated-Reason"] = routed.deprecated_reason
        return response

    return wrapped


class RestApi:
    """The REST handlers over one store."""

    def __init__(self, state: ShopifyState) -> None:
        self.state = state

    def authorised(self, request: Request) -> bool:
        return self.state.credentials_ok(request.headers.get("x-shopify-access-token"))

    def gate(self, request: Request) -> Response | dict[str, str]:
        if not self.authorised(request):
            return Response(AUTH_ERROR, status_code=401, media_type="application/json")
        ok, used, retry = self.state.take_rest_call()
        limit_header = {"X-Shopify-Shop-Api-Call-Limit": f"{used}/40"}
        if not ok:
            return json_response(
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                    "uninterrupted service."
                },
                429,
                {**limit_header, "Retry-After": f"{max(retry, 0.001):.3f}"},
            )
        return limit_header

    # --- start-up --------------------------------------------------------------------------------
    async def shop_json(self, request: Request) -> Response:
        gate = self.gate(request)
        if isinstance(gate, Response):
            return gate
        state = self.state
        return json_response({"shop": shop_rest(state)}, 200, gate)

    async def access_scopes_json(self, request: Request) -> Response:
        gate = self.gate(request)
        if isinstance(gate, Response):
            return gate
        scopes = SCOPES if self.state.scopes is None else self.state.scopes
        return json_response({"access_scopes": [{"handle": h} for h in scopes]}, 200, gate)

    # --- orders ----------------------------------------------------------------------------------
    async def orders_json(self, request: Request) -> Response:
        state = self.state
        gate = self.gate(request)
        if isinstance(gate, Response):
            return gate
        params = dict(request.query_params)
        try:
            limit = int(params.pop("limit", "50"))
        except ValueError:
            return json_response({"errors": {"limit": ["is not a number"]}}, 400, gate)
        if not 1 <= limit <= 250:
            return json_response({"errors": {"limit": ["must be between 1 and 250"]}}, 400, gate)
        fields = params.pop("fields", None)
        page_info = params.pop("page_info", None)
        direction = "next"
        after: tuple[int, int] | None = None
        if page_info is not None:
            extra = [k for k in params if k in REST_FILTERS]
            if extra:
                return json_response(
                    {"errors": {"page_info": [f"cannot be combined with {', '.join(extra)}"]}}, 400, gate
                )
            try:
                token = json.loads(base64.urlsafe_b64decode(page_info + "=" * (-len(page_info) % 4)))
                params, direction, after = token["f"], token["d"], (int(token["k"][0]), int(token["k"][1]))
            except (ValueError, KeyError, TypeError):
                return json_response({"errors": {"page_info": ["Invalid value."]}}, 400, gate)
        try:
            predicate, sort, descending = rest_query(params)
        except ValueError as exc:
            return json_response({"errors": str(exc)}, 400, gate)
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
                else [dumps(only(json.loads(state.rest_json(s.id)), fields)) for _, s in found]
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

    async def order_json(self, request: Request) -> Response:
        state = self.state
        gate = self.gate(request)
        if isinstance(gate, Response):
            return gate
        try:
            order_id = int(request.path_params["order_id"])
        except ValueError:
            return json_response({"errors": "Not Found"}, 404, gate)
        with state.lock:
            if order_id not in state.orders:
                return json_response({"errors": "Not Found"}, 404, gate)
            fields = request.query_params.get("fields")
            body = state.rest_json(order_id)
            if fields:
                body = dumps(only(json.loads(body), fields))
        return Response(b'{"order":' + body + b"}", media_type="application/json", headers=gate)

    async def count_json(self, request: Request) -> Response:
        state = self.state
        gate = self.gate(request)
        if isinstance(gate, Response):
            return gate
        try:
            predicate, _sort, _descending = rest_query(dict(request.query_params))
        except ValueError as exc:
            return json_response({"errors": str(exc)}, 400, gate)
        with state.lock:
            count = sum(1 for _ in state.scan("id", False, predicate))
        return json_response({"count": count}, 200, gate)

    async def events_json(self, request: Request) -> Response:
        """Shopify's events, as far as the sandbox keeps them: one ``destroy`` per deleted order."""
        state = self.state
        gate = self.gate(request)
        if isinstance(gate, Response):
            return gate
        params = dict(request.query_params)
        try:
            limit = int(params.pop("limit", "50"))
            page_info = params.pop("page_info", None)
            if page_info is not None:
                params = json.loads(base64.urlsafe_b64decode(page_info + "=" * (-len(page_info) % 4)))
            since = int(params.get("since_id") or 0)
            lo = time_bound(params["created_at_min"]) if params.get("created_at_min") else None
            hi = time_bound(params["created_at_max"]) if params.get("created_at_max") else None
        except (ValueError, TypeError):
            return json_response({"errors": "Invalid parameters."}, 400, gate)
        if not 1 <= limit <= 250:
            return json_response({"errors": {"limit": ["must be between 1 and 250"]}}, 400, gate)
        subjects = {s.strip().lower() for s in str(params.get("filter") or "").split(",") if s.strip()}
        verbs = {s.strip().lower() for s in str(params.get("verb") or "").split(",") if s.strip()}
        with state.lock:
            events = [
                e
                for e in state.deleted_events
                if e["id"] > since
                and (not subjects or e["subject_type"].lower() in subjects)
                and (not verbs or e["verb"] in verbs)
                and (lo is None or e["_at"] >= lo)
                and (hi is None or e["_at"] <= hi)
            ]
        page, more = events[:limit], len(events) > limit
        fields = [f.strip() for f in str(params.get("fields") or "").split(",") if f.strip()]
        body = [{k: v for k, v in e.items() if not k.startswith("_") and (not fields or k in fields)} for e in page]
        headers = dict(gate)
        if more:
            token = {**params, "since_id": str(page[-1]["id"])}
            encoded = base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")
            base = str(request.url.remove_query_params(list(request.query_params.keys())))
            headers["Link"] = f'<{base}?{urlencode({"limit": str(limit), "page_info": encoded})}>; rel="next"'
        return json_response({"events": body}, 200, headers)

    # --- webhooks --------------------------------------------------------------------------------
    async def webhooks_json(self, request: Request) -> Response:
        dispatcher = self.state.webhook_dispatcher
        gate = self.gate(request)
        if isinstance(gate, Response):
            return gate
        if request.method == "POST":
            try:
                given = (await request.json())["webhook"]
                topic, address = str(given["topic"]), str(given["address"])
            except (ValueError, KeyError, TypeError):
                return json_response({"errors": {"webhook": ["Required parameter missing or invalid"]}}, 400, gate)
            sub, errors = dispatcher.subscribe(
                topic, address, api_version=request.path_params["version"], format=str(given.get("format", "json"))
            )
            if sub is None:
                return json_response({"errors": _rest_errors(errors)}, 422, gate)
            return json_response({"webhook": sub.rest()}, 201, gate)
        wanted_address, wanted_topic = request.query_params.get("address"), request.query_params.get("topic")
        found = [
            s.rest()
            for s in dispatcher.subscriptions()
            if wanted_address in (None, s.callback_url) and wanted_topic in (None, s.topic)
        ]
        return json_response({"webhooks": found}, 200, gate)

    async def webhooks_count(self, request: Request) -> Response:
        gate = self.gate(request)
        if isinstance(gate, Response):
            return gate
        return json_response({"count": len(self.state.webhook_dispatcher.subscriptions())}, 200, gate)

    async def webhook_json(self, request: Request) -> Response:
        dispatcher = self.state.webhook_dispatcher
        gate = self.gate(request)
        if isinstance(gate, Response):
            return gate
        sub_id = int(request.path_params["webhook_id"])
        if request.method == "DELETE":
            if dispatcher.unsubscribe(sub_id):
                return json_response({}, 200, gate)
            return json_response({"errors": "Not Found"}, 404, gate)
        sub = dispatcher.subscription(sub_id)
        return (
            json_response({"webhook": sub.rest()}, 200, gate)
            if sub
            else json_response({"errors": "Not Found"}, 404, gate)
        )


def shop_rest(state: ShopifyState) -> dict[str, Any]:
    """The REST ``shop`` resource (the same shop GraphQL's ``shop`` answers)."""
    return {
        "id": 1,
        "name": state.shop_name,
        "email": "owner@example.com",
        "customer_email": "owner@example.com",
        "domain": SHOP_DOMAIN,
        "myshopify_domain": SHOP_DOMAIN,
        "province": "Ontario",
        "province_code": "ON",
        "country": "CA",
        "country_code": "CA",
        "country_name": "Canada",
        "address1": "1 Sandbox Way",
        "address2": None,
        "city": "Ottawa",
        "zip": "K1A 0B1",
        "phone": None,
        "latitude": None,
        "longitude": None,
        "source": None,
        "primary_locale": "en",
        "created_at": "2024-01-01T00:00:00-05:00",
        "updated_at": "2024-01-01T00:00:00-05:00",
        "currency": "USD",
        "enabled_presentment_currencies": ["USD", "EUR", "GBP", "CAD"],
        "timezone": "(GMT-05:00) America/Panama",
        "iana_timezone": "America/Panama",
        "shop_owner": "Sandbox Owner",
        "money_format": "${{amount}}",
        "money_with_currency_format": "${{amount}} USD",
        "money_in_emails_format": "${{amount}}",
        "money_with_currency_in_emails_format": "${{amount}} USD",
        "weight_unit": "kg",
        "taxes_included": False,
        "tax_shipping": False,
        "county_taxes": True,
        "auto_configure_tax_inclusivity": None,
        "plan_name": state.plan,
        "plan_display_name": state.plan.title(),
        "has_discounts": True,
        "has_gift_cards": False,
        "has_storefront": True,
        "google_apps_domain": None,
        "google_apps_login_enabled": None,
        "eligible_for_payments": False,
        "requires_extra_payments_agreement": False,
        "password_enabled": False,
        "finances": True,
        "primary_location_id": 1,
        "checkout_api_supported": False,
        "multi_location_enabled": True,
        "setup_required": False,
        "pre_launch_enabled": False,
        "transactional_sms_disabled": True,
        "marketing_sms_consent_enabled_at_checkout": False,
    }


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


def only(order: dict[str, Any], fields: str) -> dict[str, Any]:
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    return {k: order[k] for k in wanted if k in order}


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
            lo = max(lo, time_bound(params[f"{name}_min"]))
        if params.get(f"{name}_max"):
            hi = min(hi, time_bound(params[f"{name}_max"]))
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
