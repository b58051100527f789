"""Who is asking, and may they: the portal's and the API's dependencies.

A route names what it needs with one annotated parameter, and that is its whole security:

- portal: ``actor: Viewer`` / ``Operator`` / ``Admin`` — a valid session cookie (else a redirect
  to the sign-in page), the role (else 403), and for every method but GET/HEAD the session's CSRF
  token (form field ``csrf_token`` or header ``X-CSRF-Token``, else 403; nothing is changed);
- API: ``actor: ApiViewer`` / ``ApiOperator`` / ``ApiAdmin`` — ``Authorization: Bearer <token>``
  (else 401) and the token's role (else 403). The API takes no cookie, so it needs no CSRF token.

The :class:`~orderbridge.services.auth.Actor` a route receives carries the tenant's
:class:`~orderbridge.services.scope.Scope`: the route can only ever reach its tenant's rows,
because that scope is the only door it is given (decision 80). The route table test
(``tests/web/portal/test_route_table.py``) fails for a route that takes no such parameter.

The database calls run in the thread pool: the services are synchronous.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from orderbridge.domain.roles import Role
from orderbridge.errors import Forbidden, NotSignedIn
from orderbridge.services.auth import Actor, resolve_session, resolve_token
from orderbridge.services.hub import Hub
from orderbridge.services.scope import Scope
from orderbridge.web import i18n
from orderbridge.web.security import SESSION_COOKIE, CookieSigner, same_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(
    auto_error=False, description="An API token: `orderbridge tokens create` or the portal's API tokens page."
)


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def signer_of(request: Request) -> CookieSigner:
    signer: CookieSigner = request.app.state.signer
    return signer


def client_address(request: Request) -> str | None:
    """The caller's address as the server saw it (a proxy in front must pass it on as the peer;
    ``X-Forwarded-For`` is not trusted: anyone can send it)."""
    return request.client.host if request.client else None


class CsrfRejected(Forbidden):
    code = "csrf_failed"


def session_token(request: Request) -> str | None:
    return signer_of(request).unsign("session", request.cookies.get(SESSION_COOKIE))


async def current_session(request: Request) -> Actor:
    """The signed-in user of this request, or :class:`NotSignedIn`."""
    cached: Actor | None = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    hub = hub_of(request)
    token = session_token(request)
    info = await run_in_threadpool(resolve_session, hub, token) if token else None
    if info is None:
        raise NotSignedIn("you are not signed in", hint="Sign in to continue.")
    scope = await run_in_threadpool(Scope.of, hub, info.principal.tenant_id)
    actor = Actor(info.principal, scope, client_address(request))
    request.state.actor = actor
    request.state.csrf = info.csrf
    i18n.set_locale(info.principal.locale)
    return actor


async def _csrf_given(request: Request) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # cached on the request: the route's Form() parameters read it again
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


def _portal(needed: Role):  # type: ignore[no-untyped-def]
    async def dependency(request: Request) -> Actor:
        actor = await current_session(request)
        if request.method not in SAFE_METHODS and not same_token(request.state.csrf, await _csrf_given(request)):
            raise CsrfRejected(
                "the form's security token is missing or out of date; nothing was changed",
                hint="Reload the page and submit it again.",
            )
        if not actor.principal.role.allows(needed):
            raise Forbidden(
                f"your role ({actor.principal.role.value}) cannot do this; it needs {needed.value}",
                hint="Ask an admin of your account for that role.",
            )
        return actor

    return dependency


def _api(needed: Role):  # type: ignore[no-untyped-def]
    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Actor:
        if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
            raise NotSignedIn(
                "no API token: send it as `Authorization: Bearer <token>`",
                hint="Create a token on the portal's API tokens page or with `orderbridge tokens create`.",
            )
        hub = hub_of(request)
        principal = await run_in_threadpool(resolve_token, hub, credentials.credentials)
        if principal is None:
            raise NotSignedIn(
                "the API token is unknown or revoked", hint="Create a new token; revoked ones stay revoked."
            )
        if not principal.role.allows(needed):
            raise Forbidden(
                f"the token's role ({principal.role.value}) cannot do this; it needs {needed.value}",
                hint="Create a token with that role (an admin can).",
            )
        scope = await run_in_threadpool(Scope.of, hub, principal.tenant_id)
        actor = Actor(principal, scope, client_address(request))
        request.state.actor = actor
        return actor

    return dependency


Viewer = Annotated[Actor, Depends(_portal(Role.VIEWER))]
Operator = Annotated[Actor, Depends(_portal(Role.OPERATOR))]
Admin = Annotated[Actor, Depends(_portal(Role.ADMIN))]

ApiViewer = Annotated[Actor, Depends(_api(Role.VIEWER))]
ApiOperator = Annotated[Actor, Depends(_api(Role.OPERATOR))]
ApiAdmin = Annotated[Actor, Depends(_api(Role.ADMIN))]
