"""The QuickBooks Online sandbox as an ASGI app: the v3 company API, the OAuth 2 token endpoint.

Routes (``realm`` is the company's realm id; bodies are JSON, amounts parsed as ``Decimal``):

- ``POST /oauth2/v1/tokens/bearer`` — form ``grant_type=refresh_token&refresh_token=…``, the app's
  client id and secret as HTTP Basic; answers tokens or ``{"error": "invalid_grant"}``.
- ``GET /.well-known/openid_configuration`` — Intuit's discovery document, naming the endpoints.
- ``GET /v3/company/{realm}/query?query=select * from SalesReceipt where DocNumber = '1001'`` —
  ``{"QueryResponse": {"SalesReceipt": [...], "startPosition", "maxResults"}, "time"}`` (no key for
  the entity when nothing matches, ``totalCount`` for ``count(*)``), see :mod:`.query`; also as a
  ``POST`` whose body is the statement (``Content-Type: application/text``), as QBO takes it.
- ``POST /v3/company/{realm}/{entity}`` — create; with ``Id`` and ``SyncToken`` an update (sparse
  with ``"sparse": true``); ``?operation=void`` voids; ``?requestid=`` makes it idempotent.
- ``GET /v3/company/{realm}/{entity}/{id}`` — read one; ``GET …/companyinfo/{realm}``.

Every API route checks the bearer token (401 ``AUTHENTICATION`` fault), the realm, the company's
rate limits (429) and ``minorversion`` (a whole number). The Starlette app is built on
``sandboxes/base.py`` like the other sandboxes (the shared faults, ledger and control routes).

Control routes (no auth): ``POST /_sandbox/qbo/expire`` (every access token expires now),
``POST /_sandbox/qbo/disconnect`` (every refresh token refused), ``POST /_sandbox/qbo/fail_after_commit``
``{"count": n}``, ``POST /_sandbox/qbo/touch`` ``{"entity", "id"}`` (another user edits the document:
its SyncToken moves), ``POST /_sandbox/qbo/items`` ``{"name"}``, ``GET /_sandbox/qbo/documents?entity=``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge import exactjson
from orderbridge.sandboxes.base import ASGIApp, build_app
from orderbridge.sandboxes.quickbooks import query as q
from orderbridge.sandboxes.quickbooks.state import ENTITIES, Fault, QuickBooksState

Handler = Callable[[Request], Awaitable[Response]]


def create_sandbox(
    *,
    client_id: str = "qbo_client",
    client_secret: str = "qbo_secret",
    realm_id: str = "9130350000000001",
    company_name: str = "Sandbox Company_US_1",
    currency: str = "USD",
    items: tuple[str, ...] = ("WH-TEE-001", "SKU-1", "SKU-2", "SKU-3"),
    access_ttl: float = 3600.0,
    rotate_refresh: bool = True,
    limits: bool = True,
    clock: Callable[[], datetime] | None = None,
    refresh_token: str | None = None,
) -> tuple[QuickBooksState, ASGIApp]:
    """Build a QuickBooks Online sandbox with one company; returns its state and the app."""
    state = QuickBooksState(
        client_id=client_id,
        client_secret=client_secret,
        realm_id=realm_id,
        company_name=company_name,
        currency=currency,
        items=items,
        access_ttl=access_ttl,
        rotate_refresh=rotate_refresh,
        limits=limits,
        clock=clock or (lambda: datetime.now(UTC)),
        refresh_token=refresh_token,
    )
    return state, build_app(state, _routes(state))


def _respond(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(exactjson.dumps(data), status_code=status, headers=headers, media_type="application/json")


def _fault(state: QuickBooksState, fault: Fault) -> Response:
    headers = {"Retry-After": "60"} if fault.status == 429 else None
    return _respond(fault.body(state.stamp()), fault.status, headers)


def _routes(state: QuickBooksState) -> list[Route]:
    def api(handler: Callable[[Request, str], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            realm: str = request.path_params["realm"]
            try:
                state.check_access(request.headers.get("authorization"), realm)
                company = state.company(realm)
                minor = request.query_params.get("minorversion")
                if minor is not None and not minor.isdigit():
                    raise Fault(400, "4001", "Invalid minor version", f"minorversion {minor!r} is not a number")
                if state.throttled(company):
                    raise Fault(
                        429,
                        "003001",
                        "ThrottleExceeded",
                        "message=ThrottleExceeded; errorCode=003001; statusCode=429: too many requests "
                        "for this company; wait 60 seconds",
                        type_="SERVICE",
                    )
                return await handler(request, realm)
            except Fault as fault:
                return _fault(state, fault)

        return endpoint

    async def token(request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "refresh_token":
            return _respond({"error": "unsupported_grant_type"}, 400)
        status, body = state.refresh(_basic(request.headers.get("authorization")), str(form.get("refresh_token", "")))
        return _respond(body, status, {"Cache-Control": "no-store"})

    async def discovery(request: Request) -> Response:
        # Intuit's OpenID discovery document: clients (intuit-oauth) read the token endpoint from it
        base = str(request.base_url).rstrip("/")
        return _respond(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/connect/oauth2",
                "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
                "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
                "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
                "jwks_uri": f"{base}/oauth2/v1/keys",
            }
        )

    async def run_query(request: Request, realm: str) -> Response:
        # GET with ?query=, or POST with the statement as the body (Content-Type: application/text)
        text = request.query_params.get("query", "") if request.method == "GET" else (await request.body()).decode()
        try:
            parsed = q.parse(text)
        except q.QueryError as exc:
            raise Fault(400, "4000", "QueryValidationError", str(exc)) from None
        entity = next((e for e in ENTITIES.values() if e.lower() == parsed.entity.lower()), None)
        if entity is None:
            raise Fault(400, "4000", "QueryValidationError", f"Error parsing query: unknown entity {parsed.entity}")
        with state.lock:
            docs = [_public(d) for d in state.companies[realm].entities[entity].values()]
        found = q.run(parsed, docs)
        if parsed.count:
            return _respond({"QueryResponse": {"totalCount": len(found)}, "time": state.stamp()})
        page = found[parsed.start - 1 : parsed.start - 1 + parsed.max_results]
        body: dict[str, Any] = {}
        if page:
            body = {entity: page, "startPosition": parsed.start, "maxResults": len(page)}
        return _respond({"QueryResponse": body, "time": state.stamp()})

    async def write(request: Request, realm: str) -> Response:
        entity = ENTITIES.get(request.path_params["entity"].lower())
        if entity is None:
            raise Fault(
                400,
                "2010",
                "Request has invalid or unsupported property",
                f"unknown entity {request.path_params['entity']!r}",
            )
        try:
            body = exactjson.loads(await request.body())
        except ValueError:
            raise Fault(400, "2010", "Request has invalid or unsupported property", "the body is not JSON") from None
        operation = request.query_params.get("operation", "")
        if operation not in ("", "update", "void"):
            raise Fault(400, "2010", "Request has invalid or unsupported property", f"operation {operation!r}")
        status, answer = state.write(realm, entity, body, operation, request.query_params.get("requestid"))
        if status == 200:
            with state.lock:
                failing = state.fail_after_commit > 0
                if failing:
                    state.fail_after_commit -= 1
            if failing:  # committed, and the answer is lost on the way back
                return _respond(
                    {
                        "Fault": {
                            "Error": [
                                {"Message": "Service Unavailable", "Detail": "injected after commit", "code": "10000"}
                            ],
                            "type": "SERVICE",
                        }
                    },
                    503,
                )
        public = {k: (_public(v) if isinstance(v, dict) else v) for k, v in answer.items()}
        return _respond(public, status)

    async def read(request: Request, realm: str) -> Response:
        entity = ENTITIES.get(request.path_params["entity"].lower())
        if entity is None and request.path_params["entity"].lower() == "companyinfo":
            company = state.companies[realm]
            return _respond(
                {"CompanyInfo": {"Id": realm, "CompanyName": company.name, "Country": "US"}, "time": state.stamp()}
            )
        if entity is None:
            raise Fault(400, "2010", "Request has invalid or unsupported property", "unknown entity")
        with state.lock:
            doc = state.companies[realm].entities[entity].get(request.path_params["id"])
            found = _public(doc) if doc is not None else None
        if found is None:
            raise Fault(400, "610", "Object Not Found", f"Object Not Found : {entity} {request.path_params['id']}")
        return _respond({entity: found, "time": state.stamp()})

    async def control(request: Request) -> Response:
        action = request.path_params["action"]
        raw = await request.body()
        options = exactjson.loads(raw) if raw.strip() else {}
        if action == "expire":
            state.expire_access_tokens()
        elif action == "disconnect":
            state.revoke_refresh_tokens()
        elif action == "fail_after_commit":
            with state.lock:
                state.fail_after_commit = int(options.get("count", 1))
        elif action == "touch":
            state.touch(str(options.get("realm") or next(iter(state.companies))), options["entity"], str(options["id"]))
        elif action == "items":
            return _respond(
                state.add_item(str(options.get("realm") or next(iter(state.companies))), str(options["name"]))
            )
        else:
            return _respond({"error": f"unknown control {action!r}"}, 404)
        return _respond({"ok": True})

    async def control_documents(request: Request) -> Response:
        entity = request.query_params.get("entity", "SalesReceipt")
        realm = request.query_params.get("realm") or next(iter(state.companies))
        return _respond({"documents": [_public(d) for d in state.documents(realm, entity)]})

    company = "/v3/company/{realm}"
    return [
        Route("/oauth2/v1/tokens/bearer", token, methods=["POST"]),
        Route("/.well-known/openid_configuration", discovery, methods=["GET"]),
        Route(f"{company}/query", api(run_query), methods=["GET", "POST"]),
        Route(f"{company}/{{entity}}", api(write), methods=["POST"]),
        Route(f"{company}/{{entity}}/{{id}}", api(read), methods=["GET"]),
        Route("/_sandbox/qbo/documents", control_documents, methods=["GET"]),
        Route("/_sandbox/qbo/{action}", control, methods=["POST"]),
    ]


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as the API shows it (the sandbox's own markers left out)."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _basic(header: str | None) -> str | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        return base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
