"""The ShipStation V1 sandbox as an ASGI app: orders, shipments, auth, rate limit, control routes.

Every API route passes one gate — HTTP Basic auth (401, also after a revoke), then the key pair's
rate window (429 with ``Retry-After``) — and every gated response carries ``X-Rate-Limit-Limit``,
``X-Rate-Limit-Remaining`` and ``X-Rate-Limit-Reset`` like the real API. Bodies are parsed with
:mod:`orderbridge.exactjson` so money stays ``Decimal`` from the connector's bytes to the ledger,
and errors use ShipStation's ``{"Message", "ExceptionMessage"}`` shape — or, for a field over its
length, ASP.NET's ``{"Message", "ModelState"}``, refusing the whole request (``createorders``
included, as model validation does).

``createorders`` is the hot path (the benchmark pushes 20,000 orders through it): one body parse,
one lock acquisition per batch, no copies of the parsed orders, and a response of small result
records encoded by the C JSON encoder.

Control routes (no auth): ``POST /_sandbox/ship`` (body ``{}`` ships what is due now,
``{"all": true}`` ships every pending order now, ``{"orderKey": k, "overrides": {...}}`` ships
one order now with e.g. ``{"trackingNumber": null}``) and ``GET /_sandbox/orders``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge import exactjson
from orderbridge.sandboxes.base import ASGIApp, build_app
from orderbridge.sandboxes.shipstation.state import (
    KEEP,
    MAX_BATCH,
    MAX_SHIPMENT_PAGE,
    OrderInvalid,
    RateDecision,
    ShipStationState,
    length_errors,
)

Handler = Callable[[Request], Awaitable[Response]]


def create_sandbox(
    *,
    api_key: str = "ss_key",
    api_secret: str = "ss_secret",
    limits: bool = True,
    requests_per_minute: int = 40,
    ship_after_seconds: float = 5.0,
    partial_rate: float = 0.0,
    void_rate: float = 0.0,
    seed: int = 1,
    clock: Callable[[], datetime] | None = None,
    window_seconds: float = 60.0,
    timezone: str = "America/Los_Angeles",
) -> tuple[ShipStationState, ASGIApp]:
    """Build a ShipStation sandbox; returns its state (for in-process control) and the app."""
    state = ShipStationState(
        api_key=api_key,
        api_secret=api_secret,
        limits=limits,
        requests_per_minute=requests_per_minute,
        window_seconds=window_seconds,
        ship_after_seconds=ship_after_seconds,
        partial_rate=partial_rate,
        void_rate=void_rate,
        seed=seed,
        clock=clock or (lambda: datetime.now(UTC)),
        timezone=timezone,
    )
    return state, build_app(state, _routes(state))


def _respond(data: Any, status: int = 200, headers: dict[str, str] | None = None, *, exact: bool = False) -> Response:
    body = exactjson.dumps(data) if exact else json.dumps(data, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json; charset=utf-8")


def _error(status: int, message: str, detail: str = "", headers: dict[str, str] | None = None) -> Response:
    return _respond({"Message": message, "ExceptionMessage": detail or message}, status, headers)


def _invalid_model(errors: dict[str, list[str]], headers: dict[str, str]) -> Response:
    return _respond({"Message": "The request is invalid.", "ModelState": errors}, 400, headers)


def _routes(state: ShipStationState) -> list[Route]:
    def gated(handler: Callable[[Request, dict[str, str]], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            credential = _basic_credential(request.headers.get("authorization"))
            if credential is None or not state.credentials_ok(credential):
                return _error(
                    401,
                    "Authorization has been denied for this request.",
                    headers={"WWW-Authenticate": 'Basic realm="ShipStation"'},
                )
            decision: RateDecision = state.take_request(credential)
            headers = decision.headers()
            if not decision.allowed:
                headers["Retry-After"] = str(decision.reset)
                return _error(429, "Too Many Requests", "Rate limit exceeded; retry after the reset.", headers)
            try:
                return await handler(request, headers)
            except _BadRequest as exc:
                return _error(400, "The request is invalid.", str(exc), headers)

        return endpoint

    async def create_order(request: Request, headers: dict[str, str]) -> Response:
        body = await _json_body(request)
        if too_long := length_errors(body, "apiOrder"):
            return _invalid_model(too_long, headers)
        try:
            order = state.upsert(body)
        except OrderInvalid as exc:
            return _error(400, "The request is invalid.", str(exc), headers)
        return _respond(order, 200, headers, exact=True)

    async def create_orders(request: Request, headers: dict[str, str]) -> Response:
        bodies = await _json_body(request)
        if not isinstance(bodies, list):
            raise _BadRequest("The request body must be a JSON array of orders.")
        if len(bodies) > MAX_BATCH:
            raise _BadRequest(f"A maximum of {MAX_BATCH} orders may be created per request; got {len(bodies)}.")
        too_long: dict[str, list[str]] = {}
        for i, body in enumerate(bodies):
            too_long.update(length_errors(body, f"apiOrders[{i}]"))
        if too_long:
            return _invalid_model(too_long, headers)
        results = []
        has_errors = False
        for body, (order, error) in zip(bodies, state.upsert_many(bodies), strict=True):
            if order is not None:
                results.append(
                    {
                        "orderId": order["orderId"],
                        "orderNumber": order["orderNumber"],
                        "orderKey": order["orderKey"],
                        "success": True,
                        "errorMessage": None,
                    }
                )
            else:
                has_errors = True
                source = body if isinstance(body, dict) else {}
                results.append(
                    {
                        "orderId": 0,
                        "orderNumber": _str_or_none(source.get("orderNumber")),
                        "orderKey": _str_or_none(source.get("orderKey")),
                        "success": False,
                        "errorMessage": error,
                    }
                )
        return _respond({"hasErrors": has_errors, "results": results}, 200, headers)

    async def list_orders(request: Request, headers: dict[str, str]) -> Response:
        params = request.query_params
        page, page_size = _paging(params.get("page"), params.get("pageSize"), maximum=MAX_SHIPMENT_PAGE)
        number = params.get("orderNumber")
        with state.lock:
            # ShipStation's orderNumber filter is a "starts with" search
            found = [o for o in state.orders.values() if number is None or str(o["orderNumber"]).startswith(number)]
            return _respond(_page(found, "orders", page, page_size), 200, headers, exact=True)

    async def get_order(request: Request, headers: dict[str, str]) -> Response:
        order_id: int = request.path_params["order_id"]
        with state.lock:
            order = state.orders.get(order_id)
            if order is None:
                return _error(404, f"Order {order_id} was not found.", headers=headers)
            return _respond(order, 200, headers, exact=True)

    async def list_shipments(request: Request, headers: dict[str, str]) -> Response:
        params = request.query_params
        page, page_size = _paging(params.get("page"), params.get("pageSize"), maximum=MAX_SHIPMENT_PAGE)
        order_id_text = params.get("orderId")
        try:
            order_id = int(order_id_text) if order_id_text else None
        except ValueError:
            raise _BadRequest(f"The value '{order_id_text}' is not valid for orderId.") from None
        sort_by = (params.get("sortBy") or "CreateDate").lower()
        if sort_by not in ("createdate", "shipdate"):
            raise _BadRequest(f"The value '{params.get('sortBy')}' is not valid for sortBy.")
        found = state.list_shipments(
            order_number=params.get("orderNumber") or None,
            order_id=order_id,
            create_start=_time_param(state, params, "createDateStart"),
            create_end=_time_param(state, params, "createDateEnd"),
            ship_start=_time_param(state, params, "shipDateStart"),
            ship_end=_time_param(state, params, "shipDateEnd"),
            descending=(params.get("sortDir") or "ASC").upper() == "DESC",
        )
        include_items = (params.get("includeShipmentItems") or "false").lower() == "true"
        body = _page(found, "shipments", page, page_size)
        if not include_items:
            body["shipments"] = [{**s, "shipmentItems": None} for s in body["shipments"]]
        return _respond(body, 200, headers, exact=True)

    async def control_ship(request: Request) -> Response:
        raw = await request.body()
        options = json.loads(raw) if raw.strip() else {}
        if not isinstance(options, dict):
            return _respond({"error": "body must be a JSON object"}, 422)
        key = options.get("orderKey")
        if key:
            overrides = options.get("overrides") or {}
            try:
                shipped = state.ship_now(
                    str(key),
                    tracking_number=overrides.get("trackingNumber", KEEP),
                    carrier_code=overrides.get("carrierCode", KEEP),
                    service_code=overrides.get("serviceCode", KEEP),
                )
            except KeyError as exc:
                return _respond({"error": str(exc)}, 404)
        elif options.get("all"):
            shipped = state.ship_all_now()
        else:
            shipped = state.ship_due()
        return _respond({"shipments": shipped}, 200, exact=True)

    async def control_orders(request: Request) -> Response:
        return _respond({"orders": state.order_summaries()})

    async def control_shipments(request: Request) -> Response:
        """Every shipment the warehouse made so far (due ones first made), voided ones included."""
        state.ship_due()
        with state.lock:
            return _respond({"shipments": [r.doc for r in state.shipments]}, exact=True)

    return [
        Route("/orders/createorder", gated(create_order), methods=["POST"]),
        Route("/orders/createorders", gated(create_orders), methods=["POST"]),
        Route("/orders", gated(list_orders), methods=["GET"]),
        Route("/orders/{order_id:int}", gated(get_order), methods=["GET"]),
        Route("/shipments", gated(list_shipments), methods=["GET"]),
        Route("/_sandbox/ship", control_ship, methods=["POST"]),
        Route("/_sandbox/orders", control_orders, methods=["GET"]),
        Route("/_sandbox/shipments", control_shipments, methods=["GET"]),
    ]


class _BadRequest(Exception):
    """A request ShipStation answers with 400 as a whole (not per order)."""


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return exactjson.loads(raw)
    except ValueError as exc:
        raise _BadRequest(f"The request body is not valid JSON: {exc}") from None


def _basic_credential(header: str | None) -> str | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        return base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _paging(page_text: str | None, size_text: str | None, *, maximum: int) -> tuple[int, int]:
    try:
        page = int(page_text) if page_text else 1
        size = int(size_text) if size_text else 100
    except ValueError:
        raise _BadRequest("page and pageSize must be integers.") from None
    if page < 1 or size < 1:
        raise _BadRequest("page and pageSize must be positive.")
    if size > maximum:
        raise _BadRequest(f"pageSize may be at most {maximum}; got {size}.")
    return page, size


def _page(items: list[dict[str, Any]], name: str, page: int, size: int) -> dict[str, Any]:
    total = len(items)
    return {
        name: items[(page - 1) * size : page * size],
        "total": total,
        "page": page,
        "pages": math.ceil(total / size) if total else 0,
    }


def _time_param(state: ShipStationState, params: Any, name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    try:
        return state.parse_time(text)
    except ValueError:
        raise _BadRequest(f"The value '{text}' is not valid for {name}.") from None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
