"""The API tokens screen (admin): the tenant's tokens — create one, see how each is used, revoke.

A new token is shown once, on the page that answers the creating post (never through a redirect,
a cookie or a URL, and with ``Cache-Control: no-store``); the list shows each token's prefix, role,
creator and last use. Revoking asks for confirmation on the token's own page (which also shows its
audit trail), so it works without JavaScript. The service (``services/auth.py``) stores only the
token's SHA-256, keeps its role at most the creator's, and records every creation and revocation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from orderbridge.domain.roles import Role
from orderbridge.errors import InvalidInput
from orderbridge.services import audit_trail, auth
from orderbridge.web.deps import Admin
from orderbridge.web.errors import status_of
from orderbridge.web.i18n import gettext
from orderbridge.web.ids import ObjectId
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

_NO_STORE = {"cache-control": "no-store"}


def _roles(actor: Admin) -> list[Role]:
    return [r for r in Role if actor.principal.role.allows(r)]


def _page(
    request: Request,
    actor: Admin,
    *,
    label: str = "",
    role: str = Role.VIEWER.value,
    error: str = "",
    status: int = 200,
) -> Response:
    return templates_of(request).render(
        request,
        "tokens.html",
        {
            "tokens": auth.list_tokens(actor.scope),
            "roles": _roles(actor),
            "form": {"label": label, "role": role},
            "error": error,
        },
        status_code=status,
    )


@router.get("/tokens")
def tokens_page(request: Request, actor: Admin) -> Response:
    return _page(request, actor)


@router.post("/tokens")
def create_token(
    request: Request,
    actor: Admin,
    label: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = Role.VIEWER.value,
) -> Response:
    try:
        made = auth.create_token(actor.scope, label, role, by=actor)
    except InvalidInput as exc:
        return _page(request, actor, label=label, role=role, error=str(exc), status=status_of(exc))
    token = auth.get_token(actor.scope, made.id)
    return templates_of(request).render(
        request, "token_created.html", {"made": made, "token": token}, status_code=201, headers=_NO_STORE
    )


@router.get("/tokens/{token_id}")
def token_page(request: Request, actor: Admin, token_id: ObjectId) -> Response:
    token = auth.get_token(actor.scope, token_id)
    actions = audit_trail.actions_on(actor.scope, "token", token.id)
    acting = auth.Principal("token", token.id, actor.scope.tenant_id, token.role, token.label, "en")
    used = audit_trail.actions_by(actor.scope, acting, limit=20)
    return templates_of(request).render(request, "token.html", {"token": token, "actions": actions, "used": used})


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, actor: Admin, token_id: ObjectId) -> Response:
    token = auth.get_token(actor.scope, token_id)
    auth.revoke_token(actor.scope, token_id, by=actor)
    return templates_of(request).see_other(
        "/tokens", flash=gettext("The API token %(label)s is revoked: it no longer works.", label=token.label)
    )
