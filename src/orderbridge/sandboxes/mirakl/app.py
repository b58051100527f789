"""The Mirakl sandbox as an ASGI app: OR11, OR21, OR23, OR24, OR28, OR29, A01, the back office.

Every ``/api`` route checks the ``Authorization`` header, which carries the shop key itself (no
``Bearer``; 401 otherwise, also after a revoke), and answers errors in Mirakl's shape
``{"status": <code>, "message": "<words>"}``. That shape is the sandbox's assumption (the public
reference pages at hand show the status and message, not a schema): the connector reads
``message`` and falls back to the whole body, so another shape still reaches the hold as data.

The outermost layer is a ledger: every request to the shop API, faults included, is recorded with
its method, path, query, JSON body and the status it was answered with, and ``rejected:
"illegal_transition"`` when the state machine refused it — so a test proves from the remote side
that nothing illegal was ever sent and that each call was sent once.

Control routes (no auth) — the back office and the test API:

- ``POST /_sandbox/orders`` ``{state, lines, can_cancel, acceptance_deadline, tracking, …}``
  creates an order in any state; ``GET /_sandbox/orders`` lists them;
- ``POST /_sandbox/orders/{id}/move`` ``{"state": "WAITING_DEBIT"}`` moves one by hand (accept,
  cancel, receive, close), ``…/can_cancel`` ``{"value": false}``, ``…/update`` ``{fields}``;
- ``POST /_sandbox/tick`` applies the debits and auto-refusals due; ``GET /_sandbox/calls``;
- the framework's ``/_sandbox/ledger``, ``/_sandbox/faults`` (429, 5xx, timeout, truncate,
  revoke), ``/_sandbox/credentials/*``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge import exactjson
from orderbridge.sandboxes.base import ASGIApp, Message, Receive, Scope, Send, build_app
from orderbridge.sandboxes.mirakl.state import DEFAULT_CARRIERS, DEFAULT_MAX, MiraklError, MiraklState

Handler = Callable[[Request], Awaitable[Response]]
REJECTED_HEADER = "x-sandbox-rejected"


def create_sandbox(
    *,
    shop_key: str = "mirakl-shop-key",
    orders: int = 0,
    clock: Callable[[], datetime] | None = None,
    debit_delay_s: float = 0.0,
    debit_payment_step: bool = True,
    acceptance_window_s: float = 3 * 86400,
    shipping_window_s: float = 5 * 86400,
    can_cancel: bool = True,
    carriers: Iterable[str] = DEFAULT_CARRIERS,
    max_page: int = 100,
    back_office_base: str = "https://marketplace.example",
) -> tuple[MiraklState, ASGIApp]:
    """Build a Mirakl sandbox with ``orders`` orders waiting for acceptance; returns its state and app."""
    state = MiraklState(
        shop_key=shop_key,
        clock=clock,
        debit_delay_s=debit_delay_s,
        debit_payment_step=debit_payment_step,
        acceptance_window_s=acceptance_window_s,
        shipping_window_s=shipping_window_s,
        can_cancel=can_cancel,
        carriers=carriers,
        max_page=max_page,
        back_office_base=back_office_base,
    )
    for _ in range(orders):
        state.create_order()
    return state, _Ledger(build_app(state, _routes(state)), state)


class _Ledger:
    """Records every shop-API request and the status it got (outside the fault layer, so an
    injected 429 or 500 is in the ledger too)."""

    def __init__(self, app: ASGIApp, state: MiraklState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        given = False

        async def replay() -> Message:
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": raw, "more_body": False}

        seen: dict[str, Any] = {"status": 0, "rejected": "", "recorded": False}

        def record() -> None:
            if seen["recorded"]:
                return
            seen["recorded"] = True
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            self.state.record(
                "call",
                scope["path"],
                method=scope["method"],
                path=scope["path"],
                query=dict(parse_qsl(scope.get("query_string", b"").decode())),
                body=body,
                status=seen["status"],
                rejected=seen["rejected"],
            )

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                kept = []
                for k, v in message.get("headers", []):
                    if k.lower() == REJECTED_HEADER.encode():
                        seen["rejected"] = v.decode()
                    else:
                        kept.append((k, v))
                message = {**message, "headers": kept}
                record()  # before the answer leaves: a client that has it finds it in the ledger
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            record()


def _respond(data: Any, status: int = 200) -> Response:
    return Response(exactjson.dumps(data), status_code=status, media_type="application/json")


def _error(exc: MiraklError) -> Response:
    response = _respond({"status": exc.status, "message": exc.message}, exc.status)
    if exc.illegal:
        response.headers[REJECTED_HEADER] = "illegal_transition"
    return response


def _routes(state: MiraklState) -> list[Route]:
    def gated(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not state.credentials_ok(request.headers.get("authorization")):
                return _respond({"status": 401, "message": "Unauthorized"}, 401)
            try:
                return await handler(request)
            except MiraklError as exc:
                return _error(exc)

        return endpoint

    async def account(request: Request) -> Response:
        return _respond({"shop_id": 2001, "shop_name": "OrderBridge sandbox shop", "currency_iso_code": "EUR"})

    async def list_orders(request: Request) -> Response:
        p = request.query_params
        paginate = (p.get("paginate") or "true").lower() != "false"
        try:
            size = int(p.get("max") or DEFAULT_MAX)
            offset = int(p.get("offset") or 0)
        except ValueError:
            raise MiraklError("max and offset must be integers") from None
        if size < 1 or offset < 0:
            raise MiraklError("max must be positive and offset not negative")
        if size > state.max_page:
            raise MiraklError(f"max must be at most {state.max_page}; got {size}")
        ids = [i for i in (p.get("order_ids") or "").split(",") if i]
        codes = {c for c in (p.get("order_state_codes") or "").split(",") if c}
        order = (p.get("order") or "asc").lower()
        if order not in ("asc", "desc"):
            raise MiraklError(f"Invalid order '{order}': expected asc or desc")
        found = state.listing(
            order_ids=ids or None,
            states=codes or None,
            start_update=_time(p.get("start_update_date"), "start_update_date"),
            end_update=_time(p.get("end_update_date"), "end_update_date"),
            start_date=_time(p.get("start_date"), "start_date"),
            end_date=_time(p.get("end_date"), "end_date"),
            sort=p.get("sort") or "dateCreated",
            descending=order == "desc",
        )
        page = found[offset : offset + size] if paginate else found
        with state.lock:
            return _respond({"orders": page, "total_count": len(found)})

    async def accept(request: Request) -> Response:
        state.accept(request.path_params["order_id"], await _body(request))
        return Response(status_code=204)

    async def tracking(request: Request) -> Response:
        state.tracking(request.path_params["order_id"], await _body(request))
        return Response(status_code=204)

    async def ship(request: Request) -> Response:
        state.ship(request.path_params["order_id"])
        return Response(status_code=204)

    async def cancel(request: Request) -> Response:
        state.cancel(request.path_params["order_id"])
        return Response(status_code=204)

    async def refund(request: Request) -> Response:
        return _respond({"refunds": state.refund(await _body(request))})

    # --- control: the back office and the test API ----------------------------------------------
    def control(handler: Callable[[Request, Any], Any]) -> Handler:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                options = exactjson.loads(raw) if raw.strip() else {}
                return _respond(handler(request, options))
            except MiraklError as exc:
                return _error(exc)
            except (TypeError, ValueError, KeyError) as exc:
                return _respond({"error": str(exc)}, 422)

        return endpoint

    def create(request: Request, options: Any) -> Any:
        for name in ("created", "acceptance_deadline"):
            if isinstance(options.get(name), str):
                options[name] = MiraklState.parse(options[name])
        return state.create_order(**options)

    def move(request: Request, options: Any) -> Any:
        return state.move(request.path_params["order_id"], str(options["state"]))

    def can_cancel(request: Request, options: Any) -> Any:
        state.set_can_cancel(request.path_params["order_id"], bool(options["value"]))
        return state.get(request.path_params["order_id"])

    def update(request: Request, options: Any) -> Any:
        return state.update(request.path_params["order_id"], **options)

    def orders(request: Request, options: Any) -> Any:
        state.tick()
        with state.lock:
            return {"orders": list(state.orders.values())}

    def tick(request: Request, options: Any) -> Any:
        state.tick()
        return state.control_extra()

    def calls(request: Request, options: Any) -> Any:
        return {"calls": state.calls(request.query_params.get("order_id"))}

    return [
        Route("/api/account", gated(account), methods=["GET"]),
        Route("/api/orders", gated(list_orders), methods=["GET"]),
        Route("/api/orders/refund", gated(refund), methods=["PUT"]),
        Route("/api/orders/{order_id}/accept", gated(accept), methods=["PUT"]),
        Route("/api/orders/{order_id}/tracking", gated(tracking), methods=["PUT"]),
        Route("/api/orders/{order_id}/ship", gated(ship), methods=["PUT"]),
        Route("/api/orders/{order_id}/cancel", gated(cancel), methods=["PUT"]),
        Route("/_sandbox/orders", control(create), methods=["POST"]),
        Route("/_sandbox/orders", control(orders), methods=["GET"]),
        Route("/_sandbox/orders/{order_id}/move", control(move), methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/can_cancel", control(can_cancel), methods=["POST"]),
        Route("/_sandbox/orders/{order_id}/update", control(update), methods=["POST"]),
        Route("/_sandbox/tick", control(tick), methods=["POST"]),
        Route("/_sandbox/calls", control(calls), methods=["GET"]),
    ]


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return exactjson.loads(raw)
    except ValueError:
        raise MiraklError("The request body is not valid JSON") from None


def _time(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        return MiraklState.parse(text)
    except ValueError:
        raise MiraklError(f"Invalid date for {name}: '{text}' (ISO 8601 with a time zone expected)") from None
