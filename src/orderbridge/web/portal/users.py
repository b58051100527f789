"""The Users screen (admin): the tenant's users — add one, change a role, disable or enable.

Each route parses the form, calls one function of ``services/auth.py`` with the admin's
:class:`~orderbridge.services.auth.Actor` and renders; the service records every change in the
audit trail (shown on the user's page) and refuses, with a :class:`~orderbridge.errors.Conflict`,
to demote or disable the tenant's last enabled admin. A refused form is shown again with its
error and the values typed (never the password), with the error's status (422, 409). Disabling
asks for confirmation on a page of its own, so it needs no JavaScript; it ends the user's sessions.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from orderbridge.domain.roles import Role
from orderbridge.errors import InvalidInput
from orderbridge.services import audit_trail, auth
from orderbridge.web.deps import Admin
from orderbridge.web.errors import status_of
from orderbridge.web.i18n import N_, gettext
from orderbridge.web.ids import ObjectId
from orderbridge.web.templating import role_label, templates_of

router = APIRouter(include_in_schema=False)


def _page(
    request: Request, actor: Admin, *, form: dict[str, str] | None = None, error: str = "", status: int = 200
) -> Response:
    users = auth.list_users(actor.scope)
    return templates_of(request).render(
        request,
        "users.html",
        {
            "users": users,
            "roles": list(Role),
            "form": form or {"email": "", "name": "", "role": Role.VIEWER.value, "locale": "en"},
            "error": error,
            "me": actor.principal.id if actor.principal.kind == "user" else None,
        },
        status_code=status,
    )


@router.get("/users")
def users_page(request: Request, actor: Admin) -> Response:
    return _page(request, actor)


@router.post("/users")
def add_user(
    request: Request,
    actor: Admin,
    email: Annotated[str, Form(max_length=320)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = Role.VIEWER.value,
    locale: Annotated[str, Form(max_length=8)] = "en",
    password: Annotated[str, Form(max_length=1024)] = "",
    password_again: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    typed = {"email": email, "name": name, "role": role, "locale": locale}
    try:
        if password != password_again:
            raise InvalidInput(gettext("The two passwords are not the same."))
        user = auth.create_user(actor.scope, email, name, password, role, locale, by=actor)
    except InvalidInput as exc:
        return _page(request, actor, form=typed, error=str(exc), status=status_of(exc))
    return templates_of(request).see_other(
        f"/users/{user.id}", flash=gettext("Added %(email)s as %(role)s.", email=user.email, role=role_label(user.role))
    )


def _user_page(
    request: Request,
    actor: Admin,
    user_id: ObjectId,
    *,
    error: str = "",
    status: int = 200,
    template: str = "user.html",
) -> Response:
    user = auth.get_user(actor.scope, user_id)
    values: dict[str, Any] = {
        "user": user,
        "roles": list(Role),
        "error": error,
        "actions": audit_trail.actions_on(actor.scope, "user", user.id),
        "done": audit_trail.actions_by(
            actor.scope, auth.Principal("user", user.id, user.tenant_id, user.role, user.name, user.locale), limit=20
        ),
        "me": actor.principal.kind == "user" and actor.principal.id == user.id,
    }
    return templates_of(request).render(request, template, values, status_code=status)


@router.get("/users/{user_id}")
def user_page(request: Request, actor: Admin, user_id: ObjectId) -> Response:
    return _user_page(request, actor, user_id)


def _change(request: Request, actor: Admin, user_id: ObjectId, said: str, **change: Any) -> Response:
    try:
        user = auth.update_user(actor.scope, user_id, by=actor, **change)
    except InvalidInput as exc:
        if status_of(exc) == 404:
            raise
        return _user_page(request, actor, user_id, error=str(exc), status=status_of(exc))
    return templates_of(request).see_other(f"/users/{user.id}", flash=gettext(said, email=user.email))


@router.post("/users/{user_id}/role")
def change_role(
    request: Request, actor: Admin, user_id: ObjectId, role: Annotated[str, Form(max_length=20)]
) -> Response:
    return _change(request, actor, user_id, N_("The role of %(email)s is changed."), role=role)


@router.get("/users/{user_id}/disable")
def confirm_disable(request: Request, actor: Admin, user_id: ObjectId) -> Response:
    return _user_page(request, actor, user_id, template="user_disable.html")


@router.post("/users/{user_id}/disable")
def disable_user(request: Request, actor: Admin, user_id: ObjectId) -> Response:
    return _change(request, actor, user_id, N_("%(email)s can no longer sign in."), disabled=True)


@router.post("/users/{user_id}/enable")
def enable_user(request: Request, actor: Admin, user_id: ObjectId) -> Response:
    return _change(request, actor, user_id, N_("%(email)s can sign in again."), disabled=False)
