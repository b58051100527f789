"""The WooCommerce sandbox as an ASGI app: REST v3 orders, notes, batch, webhooks; control routes.

Every ``/wp-json/wc/v3`` route passes one gate (:func:`.auth.authenticate`: Basic over HTTPS,
OAuth 1.0a over HTTP) and is written to the ledger (``request``: method, path, status, auth); any
4xx answer is also a ``rejected`` entry with WooCommerce's error code, so a test can prove that
nothing the hub sent was refused. Errors have WooCommerce's shape ``{code, message, data: {status}}``.

Control routes (no auth, like every sandbox's ``/_sandbox``): ``POST /_sandbox/orders`` (create an
order; body: overrides such as ``{"status": "on-hold"}``), ``PATCH /_sandbox/orders/{id}`` (edit
it as the shop would: fires ``order.updated``), ``GET /_sandbox/orders/{id}/notes``,
``POST /_sandbox/webhooks/disable`` (what 5 failures do), ``POST /_sandbox/webhooks/wait``
(until queued deliveries were attempted).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge.sandboxes.base import ASGIApp, build_app
from orderbridge.sandboxes.woocommerce.auth import authenticate
from orderbridge.sandboxes.woocommerce.state import Refused, WooState

API = "/wp-json/wc/v3"
BATCH_LIMIT = 100
Handler = Callable[[Request], Awaitable[Response]]


def create_sandbox(
    *,
    orders: int = 0,
    consumer_key: str = "ck_sandbox",
    consumer_secret: str = "cs_sandbox",
    timezone: str = "Europe/Paris",
    status_rules: str = "permissive",
    max_failures: int = 5,
    clock: Callable[[], datetime] | None = None,
    seed: int = 1,
) -> tuple[WooState, ASGIApp]:
    state = WooState(
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        timezone=timezone,
        status_rules=status_rules,
        max_failures=max_failures,
        clock=clock,
        seed=seed,
    )
    state.generate(orders)
    return state, build_app(state, _routes(state))


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json; charset=UTF-8")


def _routes(state: WooState) -> list[Route]:
    def gated(handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            scheme = request.url.scheme
            host = request.headers.get("host", request.url.netloc)
            url = f"{scheme}://{host}{request.url.path}"
            try:
                _key, how = authenticate(
                    state, scheme=scheme, method=request.method, url=url,
                    query=request.url.query, headers=request.headers,
                )  # fmt: skip
                response = await handler(request)
            except Refused as exc:
                how = "refused"
                response = _json(exc.body(), exc.status)
                state.record("rejected", request.url.path, method=request.method, status=exc.status, code=exc.code,
                             message=exc.message)  # fmt: skip
            state.record("request", request.url.path, method=request.method, status=response.status_code, auth=how)
            return response

        return endpoint

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise Refused(400, "rest_invalid_json", "Invalid JSON body passed.") from None

    def order_id(request: Request) -> int:
        return int(request.path_params["order_id"])

    async def list_orders(request: Request) -> Response:
        query = parse_qs(request.url.query, keep_blank_values=True)
        views, total, pages, page = state.list_orders(query)
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        base = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}{request.url.path}"
        secret = ("consumer_key", "consumer_secret")
        plain = {k: v[-1] for k, v in query.items() if not k.startswith("oauth_") and k not in secret}
        links = []
        if page > 1:
            links.append(f'<{base}?{urlencode({**plain, "page": page - 1})}>; rel="prev"')
        if page < pages:
            links.append(f'<{base}?{urlencode({**plain, "page": page + 1})}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return _json(views, 200, headers)

    async def get_order(request: Request) -> Response:
        fields = [f for f in (request.query_params.get("_fields") or "").split(",") if f] or None
        return _json(state.view(order_id(request), fields))

    async def put_order(request: Request) -> Response:
        return _json(state.api_update(order_id(request), await body_of(request)))

    async def notes(request: Request) -> Response:
        oid = order_id(request)
        if request.method == "POST":
            return _json(state.api_note(oid, await body_of(request)), 201)
        with state.lock:
            state.view(oid)
            kind = request.query_params.get("type", "any")
            found = [n for n in state.notes[oid] if kind == "any" or (kind == "customer") == n["customer_note"]]
            return _json(sorted(found, key=lambda n: -n["id"]))  # newest first, as WooCommerce lists them

    async def batch(request: Request) -> Response:
        body = await body_of(request)
        if not isinstance(body, dict):
            raise Refused(400, "rest_invalid_json", "Invalid JSON body passed.")
        items = sum(len(body.get(k) or []) for k in ("create", "update", "delete"))
        if items > BATCH_LIMIT:
            raise Refused(413, "woocommerce_rest_request_entity_too_large",
                          f"Unable to accept more than {BATCH_LIMIT} items for this request.")  # fmt: skip
        out: dict[str, list[Any]] = {}
        for item in body.get("update") or []:
            try:
                oid = int(item.get("id") or 0) if isinstance(item, dict) else 0
                out.setdefault("update", []).append(state.api_update(oid, item))
            except (Refused, TypeError, ValueError) as exc:
                refusal = exc if isinstance(exc, Refused) else Refused(400, "woocommerce_rest_shop_order_invalid_id",
                                                                         "Invalid ID.")  # fmt: skip
                out.setdefault("update", []).append({"id": item.get("id") if isinstance(item, dict) else None,
                                                     "error": refusal.body()})  # fmt: skip
                state.record("rejected", "/orders/batch", method="POST", status=refusal.status, code=refusal.code,
                             message=refusal.message)  # fmt: skip
        state.record("batch", "/orders/batch", updates=len(body.get("update") or []))
        return _json(out)

    async def webhooks(request: Request) -> Response:
        if request.method == "POST":
            return _json(state.create_webhook(await body_of(request)).view(state), 201)
        with state.lock:
            hooks = [h.view(state) for h in sorted(state.webhooks.values(), key=lambda h: h.id)]
        return _json(hooks, 200, {"X-WP-Total": str(len(hooks)), "X-WP-TotalPages": "1" if hooks else "0"})

    async def webhook(request: Request) -> Response:
        hook_id = int(request.path_params["hook_id"])
        if request.method == "DELETE":
            return _json(state.delete_webhook(hook_id).view(state))
        if request.method == "PUT":
            return _json(state.update_webhook(hook_id, await body_of(request)).view(state))
        with state.lock:
            hook = state.webhooks.get(hook_id)
            if hook is None:
                raise Refused(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
            return _json(hook.view(state))

    # --- control ---------------------------------------------------------------------------------------
    async def control_orders(request: Request) -> Response:
        raw = await request.body()
        overrides = json.loads(raw) if raw.strip() else {}
        return _json(state.add_order(**overrides), 201)

    async def control_edit(request: Request) -> Response:
        raw = await request.body()
        try:
            return _json(state.update_order(order_id(request), **(json.loads(raw) if raw.strip() else {})))
        except Refused as exc:
            return _json(exc.body(), exc.status)

    async def control_notes(request: Request) -> Response:
        with state.lock:
            return _json(list(state.notes.get(order_id(request), [])))

    async def control_disable(request: Request) -> Response:
        state.disable_webhooks()
        return _json({"disabled": True})

    async def control_wait(request: Request) -> Response:
        return _json({"idle": state.wait_idle(30)})

    return [
        Route(f"{API}/orders", gated(list_orders), methods=["GET"]),
        Route(f"{API}/orders/batch", gated(batch), methods=["POST"]),
        Route(f"{API}/orders/{{order_id:int}}", gated(get_order), methods=["GET"]),
        Route(f"{API}/orders/{{order_id:int}}", gated(put_order), methods=["PUT", "POST"]),
        Route(f"{API}/orders/{{order_id:int}}/notes", gated(notes), methods=["GET", "POST"]),
        Route(f"{API}/webhooks", gated(webhooks), methods=["GET", "POST"]),
        Route(f"{API}/webhooks/{{hook_id:int}}", gated(webhook), methods=["GET", "PUT", "DELETE"]),
        Route("/_sandbox/orders", control_orders, methods=["POST"]),
        Route("/_sandbox/orders/{order_id:int}", control_edit, methods=["PATCH"]),
        Route("/_sandbox/orders/{order_id:int}/notes", control_notes, methods=["GET"]),
        Route("/_sandbox/webhooks/disable", control_disable, methods=["POST"]),
        Route("/_sandbox/webhooks/wait", control_wait, methods=["POST"]),
    ]
