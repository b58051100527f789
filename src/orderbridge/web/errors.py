"""Errors at the HTTP edge: one JSON shape for the API, one page for the portal.

Services raise the error tree of :mod:`orderbridge.errors`; this module turns each into a status by
what it means to the caller (``NotFound`` 404, ``NotSignedIn`` 401, ``Forbidden`` 403,
``Conflict`` 409, a throttled sign-in 429, any other ``InvalidInput`` 422, a remote that cannot be
reached 503) and renders it:

- under ``/api/`` as ``{"error": {"code", "message", "hint", "field", "fix"}}`` — the code is
  stable (it is the error class's ``code``), the message names the value, the hint says what to
  do, ``fix`` is the :class:`~orderbridge.fixes.Fix` as data when there is one;
- elsewhere as the ``error.html`` page in the reader's language, or a redirect to the sign-in page
  for ``NotSignedIn`` (``HX-Redirect`` for an htmx request, which would otherwise swap a login form
  into a table cell).

FastAPI's own validation errors and Starlette's 404/405 take the same shapes, so no bad input ever
reaches a client as a framework's default body or as a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from orderbridge.errors import (
    Conflict,
    FixConfiguration,
    Forbidden,
    InvalidInput,
    NotFound,
    NotSignedIn,
    OrderBridgeError,
    RetryLater,
)
from orderbridge.web.i18n import N_, gettext
from orderbridge.web.templating import templates_of

log = structlog.get_logger("orderbridge.web")


def status_of(exc: OrderBridgeError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, NotSignedIn):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Conflict):
        return 409
    if exc.code == "login_throttled":
        return 429
    if exc.code == "import_file_too_large":  # an upload over the documented limit (docs/manual-orders.md)
        return 413
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, FixConfiguration):
        return 409
    if isinstance(exc, RetryLater):
        return 503
    return 422


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_body(
    code: str, message: str, hint: str = "", field: str | None = None, fix: Any = None, problems: Any = None
) -> dict[str, Any]:
    """The API's one error shape; ``problems`` (a list of ``{field, value, code, message, fix}``) only
    when the input had several problems to name at once (a draft order: decision 132)."""
    detail: dict[str, Any] = {"code": code, "message": message, "hint": hint, "field": field, "fix": fix}
    if problems is not None:
        detail["problems"] = problems
    return {"error": detail}


def _retry_after(exc: OrderBridgeError) -> dict[str, str]:
    seconds = getattr(exc, "retry_after_s", None) or getattr(exc, "retry_after", None)
    return {"Retry-After": str(max(1, int(seconds)))} if seconds else {}


def _page(request: Request, status: int, title: str, message: str, hint: str = "", headers: Any = None) -> Response:
    return templates_of(request).render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message, "hint": hint},
        partial="_error.html",
        status_code=status,
        headers=headers,
    )


_TITLES = {
    400: N_("The request cannot be read"),
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not allowed"),
    409: N_("Not possible now"),
    422: N_("Please correct the input"),
    429: N_("Too many attempts"),
    503: N_("A system did not answer"),
}


def install(app: FastAPI) -> None:
    @app.exception_handler(OrderBridgeError)
    async def _ours(request: Request, exc: OrderBridgeError) -> Response:
        status = status_of(exc)
        headers = _retry_after(exc)
        if is_api(request):
            if status == 401:
                headers["WWW-Authenticate"] = "Bearer"
            fix = exc.fix.as_dict() if exc.fix is not None else None
            problems = getattr(exc, "problems", None)
            listed = [p.as_dict() for p in problems] if isinstance(problems, list) else None
            return JSONResponse(
                error_body(exc.code, exc.message, exc.hint, getattr(exc, "field", None), fix, listed),
                status_code=status,
                headers=headers,
            )
        if isinstance(exc, NotSignedIn):
            target = "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            if request.headers.get("hx-request") == "true":
                return Response(status_code=204, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        return _page(request, status, gettext(_TITLES.get(status, N_("Error"))), exc.message, exc.hint, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(location) or None
        message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid input"))
        hint = N_("Correct the value and send the request again.")
        if is_api(request):
            return JSONResponse(error_body("invalid_input", message, hint, field), status_code=422)
        return _page(request, 422, gettext(_TITLES[422]), message, gettext(hint))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(status, f"http_{status}")
        message = str(exc.detail) if exc.detail else "error"
        headers = dict(exc.headers or {})
        if is_api(request):
            return JSONResponse(error_body(code, message), status_code=status, headers=headers)
        return _page(request, status, gettext(_TITLES.get(status, N_("Error"))), message, headers=headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("web.internal_error", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
        message = f"internal error ({type(exc).__name__}); it is logged"
        if is_api(request):
            return JSONResponse(error_body("internal_error", message), status_code=500)
        return _page(request, 500, gettext("Something went wrong"), message)
