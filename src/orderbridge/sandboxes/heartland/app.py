"""The Heartland Retail sandbox as an ASGI app: the REST API under ``/api``, admin routes under
``/_sandbox/heartland``.

API routes (bearer token; bodies JSON, amounts read as ``Decimal``; lists answer ``{results, total,
pages}`` with ``page``/``per_page``, filtered by ``_filter=<JSON>`` — equality, ``$in``, ``$gt``,
``$or`` — and, for locations, ``_include[]=stations``):

- ``GET /api/users``, ``/api/locations``, ``/api/stations``, ``/api/payment_types``,
  ``/api/custom_fields``, ``/api/items``, ``/api/customers``, ``/api/sales/orders``,
  ``/api/sales/invoices``, ``/api/sales/tickets`` and ``GET …/{id}`` of each;
- ``POST /api/items``, ``PUT /api/items/{id}``, ``PUT /api/custom_fields/{id}``,
  ``GET|PUT /api/settings/{key}``, ``POST /api/payment_types``, ``POST /api/customers``,
  ``GET|POST /api/customers/{id}/addresses``;
- the sales order: ``POST /api/sales/orders`` (pending), ``GET|POST /api/sales/orders/{id}/lines``
  (also ``taxes``, ``discounts``, ``payments``), ``PUT /api/sales/orders/{id}`` (``status: open``,
  ``custom``); the invoice: ``POST /api/sales/invoices``, ``GET|POST …/{id}/lines``,
  ``PUT …/{id} {status: complete}``; the ticket: ``POST /api/sales/tickets``, ``PUT …/{id}``.

A create answers ``201`` with ``Location`` (and the record when ``create_returns_body``). A
missing record is 404 ``{error: "not_found"}``, a bad token 401 ``{error: "unauthorized"}``,
validation :attr:`Settings.validation_status` ``{error: "validation_error", message, details}``.
Every API request is recorded in the ledger as ``call`` (method, path, status).

Admin routes (no auth; the traps of seed 001 and what tests read): ``POST
/_sandbox/heartland/users/{login}`` ``{active}``; ``POST /_sandbox/heartland/items`` ``{public_id,
description, price, track_inventory}``; ``POST /_sandbox/heartland/items/{public_id}/{archive|restore|
rename|delete}`` (``rename``: ``{description}`` or ``{public_id}``); ``POST
/_sandbox/heartland/custom_fields`` ``{key, group_id, required, on_missing}``; ``POST
/_sandbox/heartland/settings`` ``{<pos setting>: bool}``; ``POST /_sandbox/heartland/options``
``{<sandbox setting>: value}``; ``POST /_sandbox/heartland/fail_after_commit`` ``{count}`` (the next
writes applied, their answers 503); ``POST /_sandbox/heartland/stations/{id}`` ``{active}``; ``GET
/_sandbox/heartland/documents`` (orders with their parts, invoices, tickets) and ``GET
/_sandbox/heartland/stock?public_id=``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge import exactjson
from orderbridge.sandboxes.base import ASGIApp, build_app
from orderbridge.sandboxes.heartland.state import (
    HeartlandState,
    Invalid,
    Json,
    Missing,
    Settings,
)

Handler = Callable[[Request], Awaitable[Response]]

#: the sandbox's default catalogue: (Item #, description, price)
DEFAULT_ITEMS: tuple[tuple[str, str, Decimal], ...] = (
    ("WH-TEE-001", "Red tee, M", Decimal("19.99")),
    ("SKU-1", "Item 1", Decimal("20.99")),
    ("SKU-2", "Item 2", Decimal("21.99")),
    ("SKU-3", "Item 3", Decimal("22.99")),
)


def create_sandbox(
    *,
    token: str = "hl_sandbox_token",
    token_owner: str = "online-orders",
    helper_items: bool = True,
    items: Iterable[tuple[str, str, Decimal]] = DEFAULT_ITEMS,
    **options: Any,
) -> tuple[HeartlandState, ASGIApp]:
    """A Heartland Retail account with one location, one station, an ``External`` payment type, the
    user ``token_owner`` ("Online orders") and a manager, the catalogue ``items`` (100 on hand each)
    and — unless ``helper_items`` is False — Mortar's helper items. ``options`` are :class:`Settings`."""
    state = HeartlandState(
        token=token,
        token_owner=token_owner,
        helper_items=helper_items,
        items=items,
        settings=Settings(**options),
    )
    return state, build_app(state, _routes(state))


def _respond(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        exactjson.dumps(data), status_code=status, headers=dict(headers or {}), media_type="application/json"
    )


def _public(record: Json) -> Json:
    """A record as the API shows it: nested parts and the sandbox's own markers left out."""
    hidden = {"lines", "taxes", "discounts", "payments", "on_missing", "address_ids"}
    return {k: v for k, v in record.items() if k not in hidden}


def _matches(record: Json, cond: Mapping[str, Any]) -> bool:
    for key, want in cond.items():
        if key == "$or":
            if not any(_matches(record, c) for c in want):
                return False
            continue
        have = record.get("custom", {}).get(key[7:]) if key.startswith("custom@") else record.get(key)
        if isinstance(want, Mapping):
            for op, arg in want.items():
                if op == "$in" and have not in arg:
                    return False
                if op == "$gt" and not (have is not None and have > arg):
                    return False
                if op == "$ne" and have == arg:
                    return False
        elif have != want:
            return False
    return True


def _listing(
    request: Request, state: HeartlandState, records: Iterable[Json], shape: Callable[[Json], Json]
) -> Response:
    raw = request.query_params.get("_filter")
    try:
        cond = exactjson.loads(raw) if raw else {}
        if not isinstance(cond, Mapping):
            raise ValueError("not an object")
    except ValueError:
        raise Invalid({"_filter": ["is not a JSON object"]}) from None
    found = [r for r in records if _matches(r, cond)]
    try:
        page = max(1, int(request.query_params.get("page", "1")))
        per_page = max(1, min(state.options.per_page_max, int(request.query_params.get("per_page", "20"))))
    except ValueError:
        raise Invalid({"page": ["is not a number"]}) from None
    sort = request.query_params.getlist("sort[]")
    if sort == ["id,desc"]:
        found.sort(key=lambda r: -int(r["id"]))
    chunk = found[(page - 1) * per_page : page * per_page]
    pages = max(1, math.ceil(len(found) / per_page))
    return _respond({"results": [shape(r) for r in chunk], "total": len(found), "pages": pages})


def _routes(state: HeartlandState) -> list[Route]:
    def api(handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            presented = header[7:].strip() if header[:7].lower() == "bearer " else None
            if state.before_call is not None:
                state.before_call(request.method, request.url.path)
            if not state.token_ok(presented):
                response = _respond({"error": "unauthorized", "message": "Invalid or missing API token"}, 401)
            else:
                try:
                    response = await handler(request)
                except Invalid as exc:
                    body = {"error": exc.kind, "message": exc.message, "details": exc.details}
                    response = _respond(body, state.options.validation_status)
                except Missing as exc:
                    response = _respond({"error": "not_found", "message": str(exc)}, 404)
            state.record("call", f"{request.method} {request.url.path}", status=response.status_code)
            if request.method != "GET" and response.status_code < 300:
                with state.lock:
                    lost = state.fail_after_commit > 0
                    state.fail_after_commit -= 1 if lost else 0
                if lost:  # applied, and the answer is lost on the way back
                    return _respond({"error": "service_unavailable", "message": "injected after commit"}, 503)
            return response

        return endpoint

    async def body_of(request: Request) -> Json:
        try:
            data = exactjson.loads(await request.body() or b"{}")
        except ValueError:
            raise Invalid({"body": ["is not JSON"]}) from None
        if not isinstance(data, dict):
            raise Invalid({"body": ["is not a JSON object"]})
        return data

    def created(path: str, record: Json) -> Response:
        headers = {"Location": f"{path}/{record['id']}"}
        if state.options.create_returns_body:
            return _respond(_public(record), 201, headers)
        return Response(b"", status_code=201, headers=headers)

    def rid(request: Request) -> int:
        try:
            return int(request.path_params["id"])
        except ValueError:
            raise Missing("no such record") from None

    # --- collections: list and one ------------------------------------------------------------
    tables: dict[str, Callable[[], dict[int, Json]]] = {
        "users": lambda: state.users,
        "stations": lambda: state.stations,
        "payment_types": lambda: state.payment_types,
        "custom_fields": lambda: state.custom_fields,
        "items": lambda: state.items,
        "customers": lambda: state.customers,
        "sales/orders": lambda: state.orders,
        "sales/invoices": lambda: state.invoices,
        "sales/tickets": lambda: state.tickets,
    }

    def shaped(table: str) -> Callable[[Json], Json]:
        def shape(record: Json) -> Json:
            out = _public(record)
            if table == "sales/orders":
                out["total"] = state.order_total(record)
            return out

        return shape

    def collection(table: str) -> tuple[Handler, Handler]:
        async def listing(request: Request) -> Response:
            with state.lock:
                records = list(tables[table]().values())
                return _listing(request, state, records, shaped(table))

        async def one(request: Request) -> Response:
            with state.lock:
                record = tables[table]().get(rid(request))
                if record is None:
                    raise Missing(f"no such {table} record")
                return _respond(shaped(table)(record))

        return listing, one

    async def locations(request: Request) -> Response:
        include = "stations" in request.query_params.getlist("_include[]")
        with state.lock:

            def shape(loc: Json) -> Json:
                out = dict(loc)
                if include:
                    out["stations"] = [dict(s) for s in state.stations.values() if s["location_id"] == loc["id"]]
                return out

            return _listing(request, state, list(state.locations.values()), shape)

    # --- writes --------------------------------------------------------------------------------
    async def post_item(request: Request) -> Response:
        return created("/api/items", state.create_item(await body_of(request)))

    async def put_item(request: Request) -> Response:
        return _respond(_public(state.update_item(rid(request), await body_of(request))))

    async def put_custom_field(request: Request) -> Response:
        return _respond(_public(state.update_custom_field(rid(request), await body_of(request))))

    async def setting(request: Request) -> Response:
        key = request.path_params["key"]
        if request.method == "PUT":
            return _respond(state.put_setting(key, (await body_of(request)).get("value")))
        with state.lock:
            if key not in state.settings:
                raise Missing(f"no setting {key!r}")
            return _respond({"key": key, "value": state.settings[key]})

    async def post_payment_type(request: Request) -> Response:
        body = await body_of(request)
        return created("/api/payment_types", state.add_payment_type(str(body.get("name") or "External")))

    async def post_customer(request: Request) -> Response:
        return created("/api/customers", state.create_customer(await body_of(request)))

    async def addresses(request: Request) -> Response:
        cid = rid(request)
        if request.method == "POST":
            return created(f"/api/customers/{cid}/addresses", state.create_address(cid, await body_of(request)))
        with state.lock:
            if cid not in state.customers:
                raise Missing("no such customer")
            found = [a for a in state.addresses.values() if a["customer_id"] == cid]
            return _listing(request, state, found, dict)

    async def post_order(request: Request) -> Response:
        return created("/api/sales/orders", state.create_order(await body_of(request)))

    async def put_order(request: Request) -> Response:
        order = state.update_order(rid(request), await body_of(request))
        return _respond(shaped("sales/orders")(order))

    async def order_parts(request: Request) -> Response:
        oid, part = rid(request), request.path_params["part"]
        if part not in ("lines", "taxes", "discounts", "payments"):
            raise Missing(f"no {part} of an order")
        if request.method == "POST":
            body = await body_of(request)
            record = state.add_order_line(oid, body) if part == "lines" else state.add_order_part(oid, part, body)
            return created(f"/api/sales/orders/{oid}/{part}", record)
        with state.lock:
            return _listing(request, state, list(state.order(oid)[part]), dict)

    async def post_invoice(request: Request) -> Response:
        return created("/api/sales/invoices", state.create_invoice(await body_of(request)))

    async def put_invoice(request: Request) -> Response:
        return _respond(_public(state.update_invoice(rid(request), await body_of(request))))

    async def invoice_lines(request: Request) -> Response:
        iid = rid(request)
        if request.method == "POST":
            return created(f"/api/sales/invoices/{iid}/lines", state.add_invoice_line(iid, await body_of(request)))
        with state.lock:
            return _listing(request, state, list(state.invoice(iid)["lines"]), dict)

    async def post_ticket(request: Request) -> Response:
        return created("/api/sales/tickets", state.create_ticket(await body_of(request)))

    async def put_ticket(request: Request) -> Response:
        return _respond(_public(state.update_ticket(rid(request), await body_of(request))))

    async def post_station(request: Request) -> Response:
        body = await body_of(request)
        if int(body.get("location_id") or 0) not in state.locations:
            raise Invalid({"location_id": ["is invalid"]})
        station = state.add_station(int(body["location_id"]), str(body.get("name") or "Station"))
        station["active"] = bool(body.get("active", True))
        return created("/api/stations", station)

    # --- admin (the traps) ---------------------------------------------------------------------
    async def admin(request: Request) -> Response:
        what = request.path_params["what"]
        raw = await request.body()
        options = exactjson.loads(raw) if raw.strip() else {}
        try:
            if what == "custom_fields":
                field = state.add_custom_field(
                    str(options["key"]),
                    str(options.get("group_id", "sales.transaction")),
                    required=bool(options.get("required", True)),
                    on_missing=str(options.get("on_missing", "block")),
                )
                return _respond(field)
            if what == "items":
                item = state.add_item(
                    str(options["public_id"]),
                    str(options.get("description") or options["public_id"]),
                    Decimal(str(options.get("price", "0"))),
                    stock=Decimal(str(options.get("stock", "100"))),
                    track_inventory=bool(options.get("track_inventory", True)),
                )
                return _respond(item)
            if what == "settings":
                return _respond([state.put_setting(k, v) for k, v in options.items()])
            if what == "fail_after_commit":
                with state.lock:
                    state.fail_after_commit = int(options.get("count", 1))
                return _respond({"fail_after_commit": state.fail_after_commit})
            if what == "options":
                known = {f.name for f in dataclasses.fields(Settings)}
                unknown = sorted(set(options) - known)
                if unknown:
                    return _respond({"error": f"unknown options {unknown}"}, 422)
                with state.lock:
                    for key, value in options.items():
                        setattr(state.options, key, value)
                return _respond(dataclasses.asdict(state.options))
        except (KeyError, ValueError, Missing) as exc:
            return _respond({"error": str(exc)}, 422)
        return _respond({"error": f"unknown admin call {what!r}"}, 404)

    async def admin_user(request: Request) -> Response:
        options = exactjson.loads(await request.body() or b"{}")
        try:
            return _respond(state.set_user_active(request.path_params["login"], bool(options.get("active", True))))
        except Missing as exc:
            return _respond({"error": str(exc)}, 404)

    async def admin_station(request: Request) -> Response:
        options = exactjson.loads(await request.body() or b"{}")
        with state.lock:
            station = state.stations.get(int(request.path_params["id"]))
            if station is None:
                return _respond({"error": "no such station"}, 404)
            station["active"] = bool(options.get("active", True))
            return _respond(station)

    async def admin_item(request: Request) -> Response:
        action = request.path_params["action"]
        raw = await request.body()
        options = exactjson.loads(raw) if raw.strip() else {}
        with state.lock:
            item = state.item_by_public_id(request.path_params["public_id"])
            if item is None:
                return _respond({"error": "no such item"}, 404)
            if action == "archive":
                item["active"] = False
            elif action == "restore":
                item["active"] = True
            elif action == "rename":
                for key in ("description", "public_id"):
                    if key in options:
                        item[key] = str(options[key])
            elif action == "delete":
                del state.items[item["id"]]
            else:
                return _respond({"error": f"unknown item action {action!r}"}, 404)
            return _respond(item)

    async def documents(request: Request) -> Response:
        with state.lock:
            orders = [{**o, "total": state.order_total(o)} for o in state.orders.values()]
            return _respond(
                {
                    "orders": orders,
                    "invoices": list(state.invoices.values()),
                    "tickets": list(state.tickets.values()),
                }
            )

    async def stock(request: Request) -> Response:
        with state.lock:
            return _respond(state.stock(request.query_params.get("public_id", "")))

    routes: list[Route] = []
    for table in tables:
        listing, one = collection(table)
        routes += [
            Route(f"/api/{table}", api(listing), methods=["GET"]),
            Route(f"/api/{table}/{{id}}", api(one), methods=["GET"]),
        ]
    return [
        Route("/api/locations", api(locations), methods=["GET"]),
        Route("/api/stations", api(post_station), methods=["POST"]),
        Route("/api/items", api(post_item), methods=["POST"]),
        Route("/api/items/{id}", api(put_item), methods=["PUT"]),
        Route("/api/custom_fields/{id}", api(put_custom_field), methods=["PUT"]),
        Route("/api/settings/{key}", api(setting), methods=["GET", "PUT"]),
        Route("/api/payment_types", api(post_payment_type), methods=["POST"]),
        Route("/api/customers", api(post_customer), methods=["POST"]),
        Route("/api/customers/{id}/addresses", api(addresses), methods=["GET", "POST"]),
        Route("/api/sales/orders", api(post_order), methods=["POST"]),
        Route("/api/sales/orders/{id}", api(put_order), methods=["PUT"]),
        Route("/api/sales/orders/{id}/{part}", api(order_parts), methods=["GET", "POST"]),
        Route("/api/sales/invoices", api(post_invoice), methods=["POST"]),
        Route("/api/sales/invoices/{id}", api(put_invoice), methods=["PUT"]),
        Route("/api/sales/invoices/{id}/lines", api(invoice_lines), methods=["GET", "POST"]),
        Route("/api/sales/tickets", api(post_ticket), methods=["POST"]),
        Route("/api/sales/tickets/{id}", api(put_ticket), methods=["PUT"]),
        *routes,
        Route("/_sandbox/heartland/users/{login}", admin_user, methods=["POST"]),
        Route("/_sandbox/heartland/stations/{id}", admin_station, methods=["POST"]),
        Route("/_sandbox/heartland/items/{public_id}/{action}", admin_item, methods=["POST"]),
        Route("/_sandbox/heartland/documents", documents, methods=["GET"]),
        Route("/_sandbox/heartland/stock", stock, methods=["GET"]),
        Route("/_sandbox/heartland/{what}", admin, methods=["POST"]),
    ]
