"""The hub's HTTP server: webhook receivers, ``/healthz``, ``/metrics``, the portal and the API.

The portal's screens are the routers of ``web/portal/*`` and the API's resources those of
``web/api/*``: every module there that defines ``router`` is mounted (:func:`_routers`), so a new
screen is a new module, not an edit of a list. The OpenAPI schema covers ``/api/v1`` only and is
served at ``/api/v1/openapi.json``; the portal's ``/api-reference`` page renders it.

The services underneath are synchronous (SQLAlchemy), so they run in the server's thread pool:
``/healthz`` and ``/metrics`` are plain ``def`` handlers, and the webhook handler awaits the raw
body first — the signature is computed over those exact bytes — then hands off to a thread.

The body is read within ``webhook_max_body_bytes``: a declared ``Content-Length`` over it is
answered 413 before a byte of the body is read, and a body without one (chunked) is counted as it
arrives and refused the moment it passes the limit. Either way the refused body is never held:
the server discards the rest of it as it arrives, so the client reads the 413 and its keep-alive
connection carries the next delivery. The handler answers every request itself — a refusal, a
4xx, or a 503 for its own failure — because an exception escaping an ASGI app makes the server
close the connection after the 500, and the channel's next delivery on it is reset.

``wake`` is called after a webhook wrote something to the ledger, so the poster runs now rather
than at its next tick — this is what keeps webhook-to-posted latency well under a second.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from http.cookies import CookieError, SimpleCookie
from pathlib import Path

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from orderbridge.runtime.sync_now import ThreadSyncRunner
from orderbridge.services.health import hub_health
from orderbridge.services.hub import Hub
from orderbridge.services.sync_now import SyncRunner
from orderbridge.services.webhooks import WebhookOutcome, receive, refuse_oversized, safely
from orderbridge.web import api as api_package
from orderbridge.web import errors as web_errors
from orderbridge.web import i18n
from orderbridge.web import portal as portal_package
from orderbridge.web.metrics import HubMetrics
from orderbridge.web.security import (
    LANG_COOKIE,
    ASGIApp,
    CookieSigner,
    Receive,
    Scope,
    SecurityHeaders,
    Send,
    same_token,
)
from orderbridge.web.templating import Templates

log = structlog.get_logger("orderbridge.web")


class BodyTooLarge(Exception):
    """The request body is over the limit; raised before it is read whole."""


class BadFraming(Exception):
    """The request's framing headers cannot be read."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or :class:`BodyTooLarge` as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.getlist("content-length")
    if declared:
        if len(set(declared)) != 1 or not declared[0].strip().isdigit():
            raise BadFraming(f"unreadable Content-Length {', '.join(declared)[:40]!r}")
        size = int(declared[0])
        if size > limit:
            raise BodyTooLarge(
                f"the body is {size:,} bytes (Content-Length); the limit is {limit:,} "
                "(ORDERBRIDGE_WEBHOOK_MAX_BODY_BYTES); refused unread, so its signature was not checked"
            )
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(
                f"the body passed {limit:,} bytes while it was read (no Content-Length); the limit is {limit:,} "
                "(ORDERBRIDGE_WEBHOOK_MAX_BODY_BYTES); refused unread, so its signature was not checked"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(outcome: WebhookOutcome) -> JSONResponse:
    content: dict[str, str] = {"outcome": outcome.outcome, "message": outcome.message}
    if outcome.external_id is not None:
        content["external_id"] = outcome.external_id
    return JSONResponse(content, status_code=outcome.status)


def _routers(package: object) -> Iterator[APIRouter]:
    """The ``router`` of every module of ``package`` (``web.portal`` or ``web.api``), by name."""
    path = getattr(package, "__path__", [])
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        module = importlib.import_module(f"{getattr(package, '__name__', '')}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            yield router


class Language:
    """Sets the request's language before anything renders: the ``ob_lang`` cookie, else the
    browser's ``Accept-Language``. A signed-in user's own choice replaces it once the session is
    read (``web/deps.py``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            chosen = None
            if "cookie" in headers:
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(headers["cookie"])
                except CookieError:  # an unreadable cookie header only means no choice
                    jar = SimpleCookie()
                if LANG_COOKIE in jar and jar[LANG_COOKIE].value in i18n.LOCALES:
                    chosen = jar[LANG_COOKIE].value
            i18n.set_locale(chosen or i18n.negotiate(headers.get("accept-language")))
        await self.app(scope, receive, send)


def create_app(
    hub: Hub,
    *,
    metrics: HubMetrics | None = None,
    wake: Callable[[], None] | None = None,
    sync_runner: SyncRunner | None = None,
) -> FastAPI:
    """``sync_runner`` starts the Sync now requests this app queues (decision 115): by default a
    small thread pool of this process (``runtime.sync_now``); a web process beside a separate
    worker passes one that defers a job."""
    metrics = metrics or HubMetrics(hub)
    app = FastAPI(
        title="OrderBridge API",
        version="1",
        description="The portal's operations for programs. Authenticate with `Authorization: Bearer <token>`.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    signer = CookieSigner(hub.settings.resolved_secret_key())
    app.state.hub = hub
    app.state.signer = signer
    app.state.templates = Templates(signer, public_url=hub.settings.public_url)
    app.state.wake = wake
    app.state.sync_runner = sync_runner if sync_runner is not None else ThreadSyncRunner(hub, wake=wake)
    web_errors.install(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for router in _routers(portal_package):
        app.include_router(router)
    for router in _routers(api_package):
        app.include_router(router)
    app.add_middleware(Language)
    app.add_middleware(SecurityHeaders, https=hub.settings.public_url.startswith("https:"))

    # ``connection`` is the connection's id (legacy: its name, while unique): it names the tenant too
    @app.post("/webhooks/{kind}/{connection}", include_in_schema=False)
    async def webhook(kind: str, connection: str, request: Request) -> JSONResponse:
        limit = hub.settings.webhook_max_body_bytes
        try:
            try:
                body = await read_body(request, limit)  # the exact bytes the signature covers
            except BodyTooLarge as exc:
                message = str(exc)
                return _answer(
                    await run_in_threadpool(safely, lambda: refuse_oversized(hub, kind, connection, message))
                )
            except BadFraming as exc:
                return _answer(WebhookOutcome(400, "rejected_invalid", str(exc)))
            except ClientDisconnect:
                log.info("webhook.client_gone", connection=connection)  # nobody is left to read an answer
                return _answer(WebhookOutcome(400, "rejected_invalid", "the client disconnected mid-body"))
            outcome = await run_in_threadpool(safely, lambda: receive(hub, kind, connection, request.headers, body))
            if outcome.wrote and wake is not None:
                wake()
            return _answer(outcome)
        except Exception as exc:  # never let one escape: the server would drop the connection with it
            log.exception("webhook.internal_error", connection=connection, error=f"{type(exc).__name__}: {exc}")
            return _answer(WebhookOutcome(503, "error", f"internal error ({type(exc).__name__}); not recorded"))

    def operator(request: Request) -> bool:
        """Whether the caller may read the operations detail (decision 125): always when no
        ``ops_token`` is set, else only with ``Authorization: Bearer <ops_token>``."""
        expected = hub.settings.ops_token
        if not expected:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and same_token(expected, given.strip())

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> JSONResponse:
        report = hub_health(hub)
        status = 503 if report["status"] == "failing" else 200
        if not operator(request):
            return JSONResponse({"status": report["status"], "at": report["at"]}, status_code=status)
        return JSONResponse(report, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    def prometheus(request: Request) -> Response:
        if not operator(request):
            return JSONResponse(
                {
                    "error": {
                        "code": "not_signed_in",
                        "message": "/metrics needs the operations token",
                        "hint": "Send Authorization: Bearer <ORDERBRIDGE_OPS_TOKEN>.",
                        "field": None,
                        "fix": None,
                    }
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
