"""The hub's HTTP server: webhook receivers, ``/healthz`` and ``/metrics``.

The services underneath are synchronous (SQLAlchemy), so they run in the server's thread pool:
``/healthz`` and ``/metrics`` are plain ``def`` handlers, and the webhook handler awaits the raw
body first — the signature is computed over those exact bytes — then hands off to a thread.

``wake`` is called after a webhook wrote something to the ledger, so the poster runs now rather
than at its next tick — this is what keeps webhook-to-posted latency well under a second.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from orderbridge.services.health import health_report
from orderbridge.services.hub import Hub
from orderbridge.services.webhooks import receive, safely
from orderbridge.web.metrics import HubMetrics


def create_app(hub: Hub, *, metrics: HubMetrics | None = None, wake: Callable[[], None] | None = None) -> FastAPI:
    metrics = metrics or HubMetrics(hub)
    app = FastAPI(title="OrderBridge hub", docs_url=None, redoc_url=None)

    @app.post("/webhooks/{kind}/{connection}")
    async def webhook(kind: str, connection: str, request: Request) -> JSONResponse:
        body = await request.body()  # the exact bytes the signature covers
        outcome = await run_in_threadpool(safely, lambda: receive(hub, kind, connection, request.headers, body))
        if outcome.wrote and wake is not None:
            wake()
        return JSONResponse({"outcome": outcome.outcome, "message": outcome.message}, status_code=outcome.status)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        report = health_report(hub)
        return JSONResponse(report, status_code=503 if report["status"] == "failing" else 200)

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
