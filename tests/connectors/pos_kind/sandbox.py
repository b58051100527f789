"""The TinyPOS sandbox (sandbox framework: ledger, faults, control routes), over real HTTP.

API, as its connector knows it (``Authorization: Bearer <token>``; 401 otherwise):

- ``GET /v1/ping`` → ``{"sales": n}``;
- ``GET /v1/employees/<id>`` → ``{"id", "name", "active"}`` (404 when there is none);
- ``GET /v1/locations/<id>`` → ``{"id", "name", "active"}`` (404);
- ``GET /v1/items?sku=<sku>`` → ``{"results": [{"id", "sku", "name"}]}`` (exact SKU);
- ``POST /v1/items {"sku", "name"}`` → 201 the item (an existing SKU: 200, the same item);
- ``GET /v1/custom-fields`` → ``{"results": [{"key", "required", "group"}]}``;
- ``GET /v1/taxes`` → ``{"rate": "<percent>"}`` — the only tax TinyPOS knows: a percentage of
  the item lines, rounded half-up to the cent;
- ``POST /v1/sales {"public_id", "employee_id", "location_id", "lines": [{"item_id", "qty",
  "price"}], "shipping", "custom": {key: value}}`` → 201 ``{"id", "state"}``; 422 when a required
  custom field has no value, the employee is inactive, the location is inactive or an item is
  unknown; a ``public_id`` already used → 200 with that sale (no second one);
- ``GET /v1/sales/<id>`` → ``{"id", "public_id", "state", "stock_moved", "total"}``.

Switches (attributes of :class:`TinyPosState`): ``pending_sales`` (sales are created ``pending``
and move no stock until :meth:`TinyPosState.complete` — Heartland's pending orders), required
custom fields (``custom_fields``), the employee's and location's ``active``, the tax ``rate``.
"""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orderbridge.sandboxes.base import ASGIApp, SandboxState, build_app

POS_TOKEN = "tinypos_token"
HELPERS = ("ONLINE-SHIPPING", "ONLINE-DISCOUNT")

Json = dict[str, Any]


class TinyPosState(SandboxState):
    def __init__(self) -> None:
        super().__init__(credentials={POS_TOKEN})
        self.employees: dict[str, Json] = {"E1": {"id": "E1", "name": "Online orders", "active": True}}
        self.locations: dict[str, Json] = {"L1": {"id": "L1", "name": "Main store", "active": True}}
        self.items: dict[str, Json] = {}
        self.custom_fields: dict[str, Json] = {}
        self.rate = Decimal("20")
        self.pending_sales = False
        self.sales: dict[str, Json] = {}
        self.stock: dict[str, int] = {}
        self._ids = itertools.count(1)
        for sku in ("MUG-1", "LAMP-7", *HELPERS):
            self.add_item(sku)

    def add_item(self, sku: str, name: str = "") -> tuple[Json, bool]:
        with self.lock:
            for item in self.items.values():
                if item["sku"] == sku:
                    return item, False
            item = {"id": f"I{next(self._ids)}", "sku": sku, "name": name or sku}
            self.items[item["id"]] = item
            self.stock[item["id"]] = 100
            return item, True

    def remove_item(self, sku: str) -> None:
        with self.lock:
            self.items = {k: v for k, v in self.items.items() if v["sku"] != sku}

    def require(self, key: str, required: bool = True) -> None:
        with self.lock:
            self.custom_fields[key] = {"key": key, "required": required, "group": "sales.transaction"}

    def sale_total(self, lines: list[Json], shipping: str) -> Decimal:
        items = sum((Decimal(str(li["price"])) * int(li["qty"]) for li in lines), Decimal("0"))
        tax = (items * self.rate / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return items + tax + Decimal(shipping or "0")

    def create_sale(self, data: Json) -> tuple[int, Json]:
        with self.lock:
            for sale in self.sales.values():
                if sale["public_id"] == data.get("public_id"):
                    return 200, sale
            employee = self.employees.get(str(data.get("employee_id")))
            if employee is None or not employee["active"]:
                return 422, {"error": "employee is not active"}
            location = self.locations.get(str(data.get("location_id")))
            if location is None or not location["active"]:
                return 422, {"error": "location is not active"}
            custom = data.get("custom") or {}
            for f in self.custom_fields.values():
                if f["required"] and not custom.get(f["key"]):
                    return 422, {"error": f"custom field {f['key']} is required"}
            lines = list(data.get("lines") or [])
            for li in lines:
                if li.get("item_id") not in self.items:
                    return 422, {"error": f"unknown item {li.get('item_id')}"}
            sid = f"S{next(self._ids)}"
            sale = {
                "id": sid,
                "public_id": data.get("public_id"),
                "state": "pending" if self.pending_sales else "completed",
                "stock_moved": not self.pending_sales,
                "total": str(self.sale_total(lines, str(data.get("shipping") or "0"))),
                "lines": lines,
                "custom": custom,
            }
            self.sales[sid] = sale
            if sale["stock_moved"]:
                self._move_stock(sale)
            self.record("sale", sid, public_id=sale["public_id"], state=sale["state"])
            return 201, sale

    def _move_stock(self, sale: Json) -> None:
        for li in sale["lines"]:
            self.stock[li["item_id"]] -= int(li["qty"])

    def complete(self, sale_id: str) -> None:
        """What a person does in the POS: the pending sale is invoiced, and stock moves."""
        with self.lock:
            sale = self.sales[sale_id]
            if sale["state"] != "completed":
                sale["state"], sale["stock_moved"] = "completed", True
                self._move_stock(sale)
                self.record("sale_completed", sale_id)

    def sale_of(self, public_id: str) -> Json | None:
        with self.lock:
            return next((s for s in self.sales.values() if s["public_id"] == public_id), None)


def pos_app(state: TinyPosState) -> ASGIApp:
    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return state.credentials_ok(header.removeprefix("Bearer ") if header.startswith("Bearer ") else None)

    def refused() -> Response:
        return JSONResponse({"error": "bad token"}, status_code=401)

    async def ping(request: Request) -> Response:
        if not authorized(request):
            return refused()
        return JSONResponse({"sales": len(state.sales)})

    def getter(table: str) -> Any:
        async def get(request: Request) -> Response:
            if not authorized(request):
                return refused()
            with state.lock:
                found = getattr(state, table).get(request.path_params["id"])
            return JSONResponse(found or {"error": "not found"}, status_code=200 if found else 404)

        return get

    async def items(request: Request) -> Response:
        if not authorized(request):
            return refused()
        if request.method == "POST":
            data = await request.json()
            item, created = state.add_item(str(data["sku"]), str(data.get("name") or ""))
            state.record("item", item["sku"], created=created)
            return JSONResponse(item, status_code=201 if created else 200)
        sku = request.query_params.get("sku", "")
        with state.lock:
            found = [i for i in state.items.values() if i["sku"] == sku]
        return JSONResponse({"results": found})

    async def custom_fields(request: Request) -> Response:
        if not authorized(request):
            return refused()
        with state.lock:
            return JSONResponse({"results": list(state.custom_fields.values())})

    async def taxes(request: Request) -> Response:
        if not authorized(request):
            return refused()
        return JSONResponse({"rate": str(state.rate)})

    async def sales(request: Request) -> Response:
        if not authorized(request):
            return refused()
        status, body = state.create_sale(await request.json())
        return JSONResponse(body, status_code=status)

    return build_app(
        state,
        [
            Route("/v1/ping", ping, methods=["GET"]),
            Route("/v1/employees/{id}", getter("employees"), methods=["GET"]),
            Route("/v1/locations/{id}", getter("locations"), methods=["GET"]),
            Route("/v1/items", items, methods=["GET", "POST"]),
            Route("/v1/custom-fields", custom_fields, methods=["GET"]),
            Route("/v1/taxes", taxes, methods=["GET"]),
            Route("/v1/sales", sales, methods=["POST"]),
            Route("/v1/sales/{id}", getter("sales"), methods=["GET"]),
        ],
    )
