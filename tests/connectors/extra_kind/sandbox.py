"""The sandboxes of the two test kinds, on the sandbox framework (ledger, faults, control routes).

TinyShop's API, as its connector knows it:

- ``Authorization: Bearer <token>`` on every call (401 otherwise);
- ``GET /v1/orders?updated_min=<iso>&page=<n>&limit=<k>`` → ``{"orders": [...], "has_more": bool}``,
  oldest update first (ties by id), ``updated_min`` inclusive;
- ``GET /v1/orders/<id>`` → the order, or 404;
- ``GET /v1/order-stamps?from=<iso>&to=<iso>&page=<n>`` → ``{"stamps": [{"id", "name", "updated"}],
  "has_more"}``, 100 a page;
- ``GET/POST /v1/hooks`` (``{"url", "event"}``) and ``DELETE /v1/hooks/<id>``; a delivery is the
  order's JSON with ``X-Tiny-Event``, ``X-Tiny-Delivery`` and ``X-Tiny-Signature:
  sha256=<hex HMAC-SHA256 of the body under the signing secret>``.

TinyBooks': ``X-Books-Key: <key>``; ``PUT /v1/invoices/<key>`` upserts the invoice filed under that
key (``{"id", "created"}``), refusing with 422 ``{"error"}`` an invoice numbered ``REFUSED…`` or
without lines.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orderbridge.sandboxes.base import ASGIApp, SandboxState, build_app

SHOP_TOKEN = "tiny_token"
SHOP_SECRET = "tiny_signing_secret"
BOOKS_KEY = "books_key"
START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
EVENTS = ("order.created", "order.updated")

Json = dict[str, Any]


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class TinyShopState(SandboxState):
    """The shop's orders, its webhook subscriptions and a clock that moves one second per change."""

    def __init__(self, orders: int = 0, *, secret: str = SHOP_SECRET) -> None:
        super().__init__(credentials={SHOP_TOKEN})
        self.secret = secret
        self.orders: dict[str, Json] = {}
        self.hooks: dict[str, Json] = {}
        self._ids = itertools.count(1001)
        self._hook_ids = itertools.count(1)
        self.clock = START
        for _ in range(orders):
            self.add_order()

    def _tick(self) -> str:
        self.clock += timedelta(seconds=1)
        return iso(self.clock)

    def add_order(self, **overrides: Any) -> Json:
        with self.lock:
            n = next(self._ids)
            now = self._tick()
            order: Json = {
                "id": f"T{n}",
                "name": f"TS-{n}",
                "currency": "EUR",
                "created": now,
                "updated": now,
                "paid": True,
                "state": "open",
                "test": False,
                "email": f"buyer{n}@example.com",
                "customer": "Grace Hopper",
                "ship_to": {
                    "name": "Grace Hopper",
                    "street": "1 Harbour St",
                    "city": "Lyon",
                    "zip": "69001",
                    "country": "FR",
                },
                "shipping": {"method": "colissimo", "price": "4.90"},
                "items": [{"id": "1", "sku": "MUG-1", "title": "Mug", "qty": 2, "price": "9.50"}],
                "tax": "3.80",
                "note": "",
            }
            order.update(overrides)
            self.orders[order["id"]] = order
            self.record("order", order["id"])
            return dict(order)

    def update_order(self, order_id: str, **changes: Any) -> Json:
        with self.lock:
            order = self.orders[order_id]
            order.update(changes)
            order["updated"] = self._tick()
            return dict(order)

    def body(self, order_id: str) -> bytes:
        with self.lock:
            return json.dumps(self.orders[order_id], separators=(",", ":")).encode()

    def delivery(
        self, order_id: str, event: str = "order.updated", *, secret: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The delivery the shop sends for ``order_id``: headers (signed) and body."""
        body = self.body(order_id)
        headers = {
            "content-type": "application/json",
            "x-tiny-event": event,
            "x-tiny-delivery": f"D-{order_id}-{self._tick()}",
            "x-tiny-signature": sign(self.secret if secret is None else secret, body),
        }
        return headers, body

    def deliver(self, order_id: str, event: str = "order.updated") -> list[int]:
        """Send the delivery to every subscription for ``event``, over HTTP; the statuses answered."""
        with self.lock:
            urls = [h["url"] for h in self.hooks.values() if h["event"] == event]
        statuses = []
        for url in urls:
            headers, body = self.delivery(order_id, event)
            statuses.append(httpx.post(url, content=body, headers=headers, timeout=10).status_code)
            self.record("delivery", order_id, url=url, event=event, status=statuses[-1])
        return statuses


class TinyBooksState(SandboxState):
    """The invoices, by the key they are filed under, and how often each key was created/updated."""

    def __init__(self) -> None:
        super().__init__(credentials={BOOKS_KEY})
        self.invoices: dict[str, Json] = {}
        self.creates: dict[str, int] = {}
        self._ids = itertools.count(1)

    def put(self, key: str, invoice: Json) -> tuple[int, Json]:
        with self.lock:
            if str(invoice.get("number", "")).startswith("REFUSED") or not invoice.get("lines"):
                return 422, {"error": f"invoice {invoice.get('number')!r} refused: no lines or a refused number"}
            existing = self.invoices.get(key)
            doc = {**invoice, "id": existing["id"] if existing else f"INV-{next(self._ids)}", "key": key}
            self.invoices[key] = doc
            if existing is None:
                self.creates[key] = self.creates.get(key, 0) + 1
            self.record("invoice", key, created=existing is None)
            return (201 if existing is None else 200), {"id": doc["id"], "created": existing is None}


def _page(request: Request) -> int:
    return max(1, int(request.query_params.get("page", "1")))


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def shop_app(state: TinyShopState) -> ASGIApp:
    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return state.credentials_ok(header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None)

    def denied() -> Response:
        return JSONResponse({"error": "invalid token"}, status_code=401)

    def sorted_orders() -> list[Json]:
        with state.lock:
            return sorted((dict(o) for o in state.orders.values()), key=lambda o: (o["updated"], o["id"]))

    async def orders(request: Request) -> Response:
        if not authorized(request):
            return denied()
        since = _parse(request.query_params.get("updated_min"))
        limit = min(100, int(request.query_params.get("limit", "50")))
        page = _page(request)
        items = [o for o in sorted_orders() if since is None or _parse(o["updated"]) >= since]  # type: ignore[operator]
        chunk = items[(page - 1) * limit : page * limit]
        return JSONResponse({"orders": chunk, "has_more": page * limit < len(items)})

    async def one(request: Request) -> Response:
        if not authorized(request):
            return denied()
        with state.lock:
            order = state.orders.get(request.path_params["order_id"])
        if order is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(order)

    async def stamps(request: Request) -> Response:
        if not authorized(request):
            return denied()
        since, until = _parse(request.query_params.get("from")), _parse(request.query_params.get("to"))
        page = _page(request)
        items = [
            {"id": o["id"], "name": o["name"], "updated": o["updated"]}
            for o in sorted_orders()
            if (since is None or _parse(o["updated"]) >= since) and (until is None or _parse(o["updated"]) <= until)  # type: ignore[operator]
        ]
        chunk = items[(page - 1) * 100 : page * 100]
        return JSONResponse({"stamps": chunk, "has_more": page * 100 < len(items)})

    async def hooks(request: Request) -> Response:
        if not authorized(request):
            return denied()
        if request.method == "POST":
            data = await request.json()
            if data.get("event") not in EVENTS or not str(data.get("url", "")).startswith("http"):
                return JSONResponse({"error": "unknown event or bad url"}, status_code=422)
            with state.lock:
                hook = {"id": f"H{next(state._hook_ids)}", "url": data["url"], "event": data["event"]}
                state.hooks[hook["id"]] = hook
            state.record("hook", hook["id"], **hook)
            return JSONResponse(hook, status_code=201)
        with state.lock:
            return JSONResponse({"hooks": list(state.hooks.values())})

    async def hook(request: Request) -> Response:
        if not authorized(request):
            return denied()
        with state.lock:
            gone = state.hooks.pop(request.path_params["hook_id"], None)
        return JSONResponse({"deleted": gone is not None}, status_code=200 if gone else 404)

    return build_app(
        state,
        [
            Route("/v1/orders", orders, methods=["GET"]),
            Route("/v1/orders/{order_id}", one, methods=["GET"]),
            Route("/v1/order-stamps", stamps, methods=["GET"]),
            Route("/v1/hooks", hooks, methods=["GET", "POST"]),
            Route("/v1/hooks/{hook_id}", hook, methods=["DELETE"]),
        ],
    )


def books_app(state: TinyBooksState) -> ASGIApp:
    async def ping(request: Request) -> Response:
        if not state.credentials_ok(request.headers.get("x-books-key")):
            return JSONResponse({"error": "bad key"}, status_code=401)
        with state.lock:
            return JSONResponse({"invoices": len(state.invoices)})

    async def invoice(request: Request) -> Response:
        if not state.credentials_ok(request.headers.get("x-books-key")):
            return JSONResponse({"error": "bad key"}, status_code=401)
        status, body = state.put(request.path_params["key"], await request.json())
        return JSONResponse(body, status_code=status)

    return build_app(
        state,
        [Route("/v1/ping", ping, methods=["GET"]), Route("/v1/invoices/{key:path}", invoice, methods=["PUT"])],
    )
