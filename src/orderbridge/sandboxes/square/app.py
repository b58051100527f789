"""The Square sandbox as an ASGI app: the v2 routes OrderBridge's Square destination uses.

Routes (JSON bodies; money in minor units as Square sends it):

- ``GET /v2/locations``, ``GET /v2/locations/{id}``
- ``GET /v2/team-members/{id}``, ``POST /v2/team-members/search``
- ``POST /v2/catalog/search``, ``POST /v2/catalog/object`` (upsert), ``GET /v2/catalog/object/{id}``
- ``POST /v2/orders``, ``GET /v2/orders/{id}``, ``POST /v2/orders/search``
- ``POST /v2/payments``, ``GET /v2/payments/{id}``
- ``GET|POST /v2/orders/custom-attribute-definitions``,
  ``POST|GET /v2/orders/{order_id}/custom-attributes/{key}``, ``GET /v2/orders/{order_id}/custom-attributes``

Every API route passes one gate: ``Authorization: Bearer <token>`` (401 ``UNAUTHORIZED``, or
``ACCESS_TOKEN_REVOKED`` after a revoke), then ``Square-Version`` (see :mod:`.state`), and every
answer is recorded in the ledger as a ``call``. Errors are Square's ``{"errors": [{category,
code, detail, field}]}`` — the injected faults too (:class:`SquareFaultMiddleware` answers 429,
403 and 5xx in Square's shape, then leaves the shared fault kinds to the base middleware).

Control routes (no auth): ``POST /_sandbox/square/team-members/{id}`` ``{"status"}``,
``POST /_sandbox/square/locations/{id}`` ``{"status"}``, ``POST /_sandbox/square/items``
``{"sku", "name", "price"}``, ``POST /_sandbox/square/after-apply`` ``{"path", "status", "count"}``
(the next matching request is applied, then answered with that status: a 5xx after apply),
``POST /_sandbox/square/catalog-busy`` ``{"count"}``, ``GET /_sandbox/square/orders``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge.sandboxes.base import ASGIApp, FaultMiddleware, Receive, Scope, Send, control_routes
from orderbridge.sandboxes.square.state import (
    CUSTOM_ATTRIBUTES_SINCE,
    ORDER_KEY_MAX,
    VERSION_SHAPE,
    AfterApply,
    SquareError,
    SquareState,
    invalid,
)

Handler = Callable[[Request], Awaitable[Response]]

ACCESS_TOKEN = "EAAAsandbox-square-token"
LOCATION_ID = "L1SANDBOXMAIN"
INACTIVE_LOCATION_ID = "L2SANDBOXCLOSED"
TEAM_MEMBER_ID = "TMonlineorders01"
INACTIVE_TEAM_MEMBER_ID = "TMarchived00001"
#: the version an app without the header is pinned to, and the latest the sandbox knows
PINNED_VERSION = "2026-09-16"

#: the catalog the sandbox starts with: the shared contract's SKUs (and a variable-priced one)
DEFAULT_ITEMS: tuple[tuple[str, str, int | None], ...] = (
    ("WH-TEE-001", "Tee red M", 1999),
    ("SKU-1", "Item 1", 2099),
    ("SKU-2", "Item 2", 2199),
    ("SKU-3", "Item 3", 2299),
)


def create_sandbox(
    *,
    access_token: str = ACCESS_TOKEN,
    currency: str = "USD",
    items: tuple[tuple[str, str, int | None], ...] = DEFAULT_ITEMS,
    team_member_status: str = "ACTIVE",
    location_status: str = "ACTIVE",
    helper_items: tuple[str, ...] = (),
    pinned_version: str = PINNED_VERSION,
    tax_rounding: str = "per_tax",
    reject_inactive_team_member: bool = True,
    reject_inactive_location: bool = True,
    idempotency_scope: str = "endpoint",
    exact_query_partial: bool = True,
    catalog_write_seconds: float = 0.0,
    clock: Callable[[], datetime] | None = None,
) -> tuple[SquareState, ASGIApp]:
    """Build a Square seller account with one main location and an "Online orders" team member.

    The seed-001 traps are settings: ``team_member_status="INACTIVE"`` (the member the integration
    acts as was archived), ``location_status="INACTIVE"``, and ``helper_items`` (the SKUs of helper
    items that exist — none by default, so a connection that needs them finds them missing)."""
    state = SquareState(
        access_token=access_token,
        currency=currency,
        pinned_version=pinned_version,
        tax_rounding=tax_rounding,
        reject_inactive_team_member=reject_inactive_team_member,
        reject_inactive_location=reject_inactive_location,
        idempotency_scope=idempotency_scope,
        exact_query_partial=exact_query_partial,
        clock=clock or (lambda: datetime.now(UTC)),
    )
    state.add_location(LOCATION_ID, "Main store", location_status)
    state.add_location(INACTIVE_LOCATION_ID, "Closed pop-up", "INACTIVE")
    state.add_team_member(TEAM_MEMBER_ID, "Online", "orders", team_member_status)
    state.add_team_member(INACTIVE_TEAM_MEMBER_ID, "Former", "employee", "INACTIVE")
    for sku, name, price in items:
        state.add_item(sku, name, price)
    for sku in helper_items:
        state.add_item(sku, sku, None, track_inventory=False)
    app = Starlette(routes=[*control_routes(state), *_routes(state, catalog_write_seconds)])
    return state, SquareFaultMiddleware(app, state)


def _respond(data: Any, status: int = 200) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return Response(body, status_code=status, media_type="application/json")


def _error(error: SquareError) -> Response:
    return _respond(error.body(), error.status)


def _routes(state: SquareState, catalog_write_seconds: float) -> list[Route]:
    def gated(handler: Callable[[Request, str], Awaitable[tuple[int, Any]]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            version = request.headers.get("square-version") or state.pinned_version
            status, answer = 0, None
            try:
                token = _bearer(request.headers.get("authorization"))
                if token is None or token not in state.valid_credentials:
                    raise SquareError(401, "UNAUTHORIZED", "This request could not be authorized.")
                if not state.credentials_ok(token):
                    raise SquareError(401, "ACCESS_TOKEN_REVOKED", "The access token has been revoked.")
                if not VERSION_SHAPE.match(version):
                    raise invalid(
                        f"Invalid Square-Version format {version!r}: use YYYY-MM-DD.",
                        "Square-Version",
                        "INVALID_SQUARE_VERSION_FORMAT",
                    )
                status, answer = await handler(request, version)
            except SquareError as exc:
                status, answer = exc.status, exc.body()
            after = state.take_after_apply(request.method, request.url.path)
            state.record(
                "call",
                request.url.path,
                method=request.method,
                status=status,
                square_version=version,
                after_apply=after.status if after else None,
            )
            if after is not None:
                return _error(
                    SquareError(
                        after.status, "INTERNAL_SERVER_ERROR", "An internal error occurred (injected after apply)."
                    )
                )
            return _respond(answer, status)

        return endpoint

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            data = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise invalid("The request body is not valid JSON.", "", "INVALID_CONTENT_TYPE") from None
        if not isinstance(data, dict):
            raise invalid("The request body must be a JSON object.", "", "BAD_REQUEST")
        return data

    # --- locations and team ---------------------------------------------------------------------
    async def list_locations(request: Request, version: str) -> tuple[int, Any]:
        with state.lock:
            return 200, {"locations": [dict(v) for v in state.locations.values()]}

    async def get_location(request: Request, version: str) -> tuple[int, Any]:
        with state.lock:
            return 200, {"location": dict(state.location(request.path_params["id"]))}

    async def get_member(request: Request, version: str) -> tuple[int, Any]:
        with state.lock:
            return 200, {"team_member": dict(state.team_member(request.path_params["id"]))}

    async def search_members(request: Request, version: str) -> tuple[int, Any]:
        body = await body_of(request)
        flt = (body.get("query") or {}).get("filter") or {}
        with state.lock:
            found = [
                dict(m)
                for m in state.team_members.values()
                if (not flt.get("status") or m["status"] == flt["status"])
                and ("is_owner" not in flt or m["is_owner"] == flt["is_owner"])
            ]
        return 200, {"team_members": found} if found else {}

    # --- catalog ----------------------------------------------------------------------------------
    async def search_catalog(request: Request, version: str) -> tuple[int, Any]:
        return 200, state.search_catalog(await body_of(request))

    async def get_object(request: Request, version: str) -> tuple[int, Any]:
        with state.lock:
            found = state.catalog.get(request.path_params["id"])
            if found is None:
                raise SquareError(404, "NOT_FOUND", f"Object `{request.path_params['id']}` not found.", "object_id")
            return 200, {"object": dict(found)}

    async def upsert_object(request: Request, version: str) -> tuple[int, Any]:
        body = await body_of(request)
        with state.lock:
            busy = state.catalog_busy > 0
            if busy:
                state.catalog_busy -= 1
        if busy or not state.catalog_write.acquire(blocking=False):
            raise SquareError(429, "RATE_LIMITED", "Another catalog write is in progress for this seller; retry later.")
        try:
            if catalog_write_seconds:
                await asyncio.sleep(catalog_write_seconds)

            def apply() -> tuple[int, Any]:
                return 200, state.upsert_catalog(body)

            return state.idempotent("catalog/object", body.get("idempotency_key"), body, apply)
        finally:
            state.catalog_write.release()

    # --- orders -----------------------------------------------------------------------------------
    async def create_order(request: Request, version: str) -> tuple[int, Any]:
        body = await body_of(request)
        key = body.get("idempotency_key")
        if isinstance(key, str) and len(key) > ORDER_KEY_MAX:
            raise invalid(f"Field must not be greater than {ORDER_KEY_MAX} length", "idempotency_key", "VALUE_TOO_LONG")
        if key is None:  # CreateOrder's key is optional in Square: then every call makes an order
            return 200, {"order": state.create_order(body, version)}
        return state.idempotent("orders", key, body, lambda: (200, {"order": state.create_order(body, version)}))

    async def get_order(request: Request, version: str) -> tuple[int, Any]:
        with state.lock:
            return 200, {"order": dict(state.order(request.path_params["id"]))}

    async def search_orders(request: Request, version: str) -> tuple[int, Any]:
        return 200, state.search_orders(await body_of(request))

    # --- payments ---------------------------------------------------------------------------------
    async def create_payment(request: Request, version: str) -> tuple[int, Any]:
        body = await body_of(request)
        return state.idempotent(
            "payments",
            body.get("idempotency_key"),
            body,
            lambda: (200, {"payment": state.create_payment(body, version)}),
        )

    async def get_payment(request: Request, version: str) -> tuple[int, Any]:
        with state.lock:
            found = state.payments.get(request.path_params["id"])
            if found is None:
                raise SquareError(404, "NOT_FOUND", f"Payment `{request.path_params['id']}` not found.", "payment_id")
            return 200, {"payment": dict(found)}

    # --- custom attributes ------------------------------------------------------------------------
    def needs_attributes(version: str) -> None:
        if version < CUSTOM_ATTRIBUTES_SINCE:
            raise invalid(
                f"Order custom attributes need Square-Version {CUSTOM_ATTRIBUTES_SINCE} or later "
                f"(this request: {version}).",
                "Square-Version",
                "API_VERSION_INCOMPATIBLE",
            )

    async def definitions(request: Request, version: str) -> tuple[int, Any]:
        needs_attributes(version)
        if request.method == "GET":
            with state.lock:
                found = [dict(d) for d in state.definitions.values()]
            return 200, {"custom_attribute_definitions": found} if found else {}
        body = await body_of(request)
        key = body.get("idempotency_key")
        if key is None:
            return 200, {"custom_attribute_definition": state.create_definition(body)}
        return state.idempotent(
            "definitions", key, body, lambda: (200, {"custom_attribute_definition": state.create_definition(body)})
        )

    async def attribute(request: Request, version: str) -> tuple[int, Any]:
        needs_attributes(version)
        order_id, key = request.path_params["order_id"], request.path_params["key"]
        if request.method == "GET":
            with state.lock:
                state.order(order_id)
                found = state.attributes.get((order_id, key))
                if found is None:
                    raise SquareError(404, "NOT_FOUND", f"Custom attribute `{key}` not found.", "key")
                return 200, {"custom_attribute": dict(found)}
        body = await body_of(request)
        key_given = body.get("idempotency_key")
        if key_given is None:
            return 200, {"custom_attribute": state.upsert_attribute(order_id, key, body)}
        return state.idempotent(
            f"attributes:{order_id}:{key}",
            key_given,
            body,
            lambda: (200, {"custom_attribute": state.upsert_attribute(order_id, key, body)}),
        )

    async def attributes(request: Request, version: str) -> tuple[int, Any]:
        needs_attributes(version)
        order_id = request.path_params["order_id"]
        with state.lock:
            state.order(order_id)
            found = [dict(v) for (o, _), v in state.attributes.items() if o == order_id]
        return 200, {"custom_attributes": found} if found else {}

    # --- control ----------------------------------------------------------------------------------
    async def control_status(request: Request) -> Response:
        data = orjson.loads(await request.body() or b"{}")
        table = state.team_members if "team-members" in request.url.path else state.locations
        with state.lock:
            found = table.get(request.path_params["id"])
            if found is None:
                return _respond({"error": "not found"}, 404)
            found["status"] = str(data.get("status", "ACTIVE"))
            return _respond(found)

    async def control_items(request: Request) -> Response:
        data = orjson.loads(await request.body() or b"{}")
        item_id, variation_id = state.add_item(
            str(data["sku"]), str(data.get("name") or data["sku"]), data.get("price")
        )
        return _respond({"item_id": item_id, "variation_id": variation_id})

    async def control_after_apply(request: Request) -> Response:
        data = orjson.loads(await request.body() or b"{}")
        with state.lock:
            state.after_apply.append(AfterApply(**data))
        return _respond({"after_apply": len(state.after_apply)})

    async def control_busy(request: Request) -> Response:
        data = orjson.loads(await request.body() or b"{}")
        with state.lock:
            state.catalog_busy = int(data.get("count", 1))
        return _respond({"catalog_busy": state.catalog_busy})

    async def control_orders(request: Request) -> Response:
        with state.lock:
            return _respond({"orders": list(state.orders.values()), "payments": list(state.payments.values())})

    return [
        Route("/v2/locations", gated(list_locations), methods=["GET"]),
        Route("/v2/locations/{id}", gated(get_location), methods=["GET"]),
        Route("/v2/team-members/search", gated(search_members), methods=["POST"]),
        Route("/v2/team-members/{id}", gated(get_member), methods=["GET"]),
        Route("/v2/catalog/search", gated(search_catalog), methods=["POST"]),
        Route("/v2/catalog/object", gated(upsert_object), methods=["POST"]),
        Route("/v2/catalog/object/{id}", gated(get_object), methods=["GET"]),
        Route("/v2/orders", gated(create_order), methods=["POST"]),
        Route("/v2/orders/search", gated(search_orders), methods=["POST"]),
        Route("/v2/orders/custom-attribute-definitions", gated(definitions), methods=["GET", "POST"]),
        Route("/v2/orders/{order_id}/custom-attributes", gated(attributes), methods=["GET"]),
        Route("/v2/orders/{order_id}/custom-attributes/{key}", gated(attribute), methods=["GET", "POST"]),
        Route("/v2/orders/{id}", gated(get_order), methods=["GET"]),
        Route("/v2/payments", gated(create_payment), methods=["POST"]),
        Route("/v2/payments/{id}", gated(get_payment), methods=["GET"]),
        Route("/_sandbox/square/team-members/{id}", control_status, methods=["POST"]),
        Route("/_sandbox/square/locations/{id}", control_status, methods=["POST"]),
        Route("/_sandbox/square/items", control_items, methods=["POST"]),
        Route("/_sandbox/square/after-apply", control_after_apply, methods=["POST"]),
        Route("/_sandbox/square/catalog-busy", control_busy, methods=["POST"]),
        Route("/_sandbox/square/orders", control_orders, methods=["GET"]),
    ]


def _bearer(header: str | None) -> str | None:
    if not header or header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


_FAULT_ERRORS = {
    "429": (429, "RATE_LIMITED", "Rate limit exceeded (injected)."),
    "403": (
        403,
        "INSUFFICIENT_SCOPES",
        "The merchant has not given your application sufficient permissions (injected).",
    ),
    "500": (500, "INTERNAL_SERVER_ERROR", "An internal error occurred (injected)."),
    "502": (502, "BAD_GATEWAY", "Bad gateway (injected)."),
    "503": (503, "SERVICE_UNAVAILABLE", "Service unavailable (injected)."),
}


class SquareFaultMiddleware(FaultMiddleware):
    """The shared fault injection, with Square's error shape for the faults that answer instead of
    the app (the base middleware's bodies are another API's)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        with self.state.lock:
            upcoming = next(
                (
                    f
                    for f in self.state.faults
                    if scope["path"].startswith(f.path)
                    and (not f.method or f.method == scope["method"])
                    and f.after <= 0
                ),
                None,
            )
        if upcoming is None or upcoming.kind not in _FAULT_ERRORS:
            await super().__call__(scope, receive, send)
            return
        fault = self.state.take_fault(scope["method"], scope["path"])
        if fault is None:  # taken meanwhile by another request
            await super().__call__(scope, receive, send)
            return
        status, code, detail = _FAULT_ERRORS[fault.kind]
        body = orjson.dumps(SquareError(status, code, detail).body())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if fault.kind == "429":
            headers.append((b"retry-after", str(fault.retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
