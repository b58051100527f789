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

TinyBooks': ``X-Books-Key: <key>``; ``PUT /v1/invoices/<key>`` upserts the live invoice filed under
that key (``{"id", "created"}``) — a key whose invoice was voided gets a *new* invoice (a new id),
the voided one staying in the books — refusing with 422 ``{"error"}`` an invoice numbered
``REFUSED…`` or without lines. Amendments (issue #15), each idempotent by its ``Request-Id``
header (a repeat is answered the first answer, nothing done twice):

- ``GET /v1/invoices/<key>`` → the live invoice under the key, else the newest voided one, with its
  ``status`` (``live``/``voided``) and ``revision``; 404 when there was never one;
- ``PATCH /v1/invoices/<key>`` ``{"id", "revision", …fields}`` → the invoice changed in place
  (``revision`` + 1); 409 ``{"error"}`` when ``id`` is not the live invoice or ``revision`` is stale;
- ``POST /v1/invoices/<key>/void`` ``{"id"}`` → voided (already voided: the same answer);
- ``POST /v1/invoices/<key>/refunds`` ``{"id", "amount", "currency", "memo"}`` → a refund document
  ``{"id": "RF-n"}`` against the live invoice ``id`` (409 when it is not live).
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
    """The books: every invoice ever made (live or voided), the live one per key, the refunds, and
    the answers given per ``Request-Id`` — the ledger a test reads to prove "one live invoice per
    order, voids and refunds where they belong"."""

    def __init__(self) -> None:
        super().__init__(credentials={BOOKS_KEY})
        #: the current invoice under each key (live, or the newest voided)
        self.invoices: dict[str, Json] = {}
        #: every invoice by id, voided ones included
        self.documents: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.creates: dict[str, int] = {}
        self.answers: dict[str, tuple[int, Json]] = {}
        self._ids = itertools.count(1)
        self._refund_ids = itertools.count(1)

    def put(self, key: str, invoice: Json) -> tuple[int, Json]:
        with self.lock:
            if str(invoice.get("number", "")).startswith("REFUSED") or not invoice.get("lines"):
                return 422, {"error": f"invoice {invoice.get('number')!r} refused: no lines or a refused number"}
            existing = self.invoices.get(key)
            if existing is not None and existing["status"] == "voided":
                existing = None  # a voided invoice stays voided: the key gets a new one
            doc = {
                **invoice,
                "id": existing["id"] if existing else f"INV-{next(self._ids)}",
                "key": key,
                "status": "live",
                "revision": existing["revision"] + 1 if existing else 0,
            }
            self.invoices[key] = doc
            self.documents[doc["id"]] = doc
            if existing is None:
                self.creates[key] = self.creates.get(key, 0) + 1
            self.record("invoice", key, created=existing is None)
            return (201 if existing is None else 200), {"id": doc["id"], "created": existing is None}

    def once(self, request_id: str | None, work: Any) -> tuple[int, Json]:
        """``work()`` answered once per request id (no id: every time)."""
        with self.lock:
            if request_id and request_id in self.answers:
                return self.answers[request_id]
            answer: tuple[int, Json] = work()
            if request_id and answer[0] < 500:
                self.answers[request_id] = answer
            return answer

    def patch(self, key: str, change: Json) -> tuple[int, Json]:
        doc = self.invoices.get(key)
        if doc is None or doc["status"] != "live" or doc["id"] != change.get("id"):
            return 409, {"error": f"invoice {change.get('id')!r} is not the live invoice of {key!r}"}
        if change.get("revision") != doc["revision"]:
            return 409, {"error": f"stale revision {change.get('revision')!r}; the invoice is at {doc['revision']}"}
        fields = {k: v for k, v in change.items() if k not in ("id", "revision", "key", "status")}
        doc.update(fields, revision=doc["revision"] + 1)
        self.record("invoice_update", key, id=doc["id"])
        return 200, {"id": doc["id"], "revision": doc["revision"]}

    def void(self, key: str, doc_id: str) -> tuple[int, Json]:
        doc = self.documents.get(doc_id)
        if doc is None or doc["key"] != key:
            return 404, {"error": f"no invoice {doc_id!r} under {key!r}"}
        if doc["status"] != "voided":
            doc["status"] = "voided"
            self.record("invoice_void", key, id=doc_id)
        return 200, {"id": doc_id, "status": "voided"}

    def refund(self, key: str, body: Json) -> tuple[int, Json]:
        doc = self.documents.get(str(body.get("id")))
        if doc is None or doc["key"] != key or doc["status"] != "live":
            return 409, {"error": f"invoice {body.get('id')!r} is not a live invoice of {key!r}"}
        rid = f"RF-{next(self._refund_ids)}"
        self.refunds[rid] = {
            "id": rid,
            "invoice": doc["id"],
            "key": key,
            "amount": str(body.get("amount")),
            "currency": body.get("currency"),
            "memo": body.get("memo", ""),
        }
        self.record("refund", key, id=rid, invoice=doc["id"])
        return 201, {"id": rid}

    def live(self, key: str) -> list[Json]:
        """Every live invoice filed under ``key`` (the books' promise: at most one)."""
        with self.lock:
            return [d for d in self.documents.values() if d["key"] == key and d["status"] == "live"]


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
        key = request.path_params["key"]
        if request.method == "GET":
            with state.lock:
                doc = state.invoices.get(key)
            return JSONResponse(doc or {"error": "not found"}, status_code=200 if doc else 404)
        data = await request.json()
        rid = request.headers.get("request-id")
        if request.method == "PATCH":
            status, body = state.once(rid, lambda: state.patch(key, data))
        else:
            status, body = state.put(key, data)
        return JSONResponse(body, status_code=status)

    async def void(request: Request) -> Response:
        if not state.credentials_ok(request.headers.get("x-books-key")):
            return JSONResponse({"error": "bad key"}, status_code=401)
        key, data = request.path_params["key"], await request.json()
        status, body = state.once(request.headers.get("request-id"), lambda: state.void(key, str(data.get("id"))))
        return JSONResponse(body, status_code=status)

    async def refunds(request: Request) -> Response:
        if not state.credentials_ok(request.headers.get("x-books-key")):
            return JSONResponse({"error": "bad key"}, status_code=401)
        key, data = request.path_params["key"], await request.json()
        status, body = state.once(request.headers.get("request-id"), lambda: state.refund(key, data))
        return JSONResponse(body, status_code=status)

    return build_app(
        state,
        [
            Route("/v1/ping", ping, methods=["GET"]),
            Route("/v1/invoices/{key}/void", void, methods=["POST"]),
            Route("/v1/invoices/{key}/refunds", refunds, methods=["POST"]),
            Route("/v1/invoices/{key}", invoice, methods=["PUT", "GET", "PATCH"]),
        ],
    )
