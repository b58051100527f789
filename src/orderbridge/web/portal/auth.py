"""Signing in and out, the language, and the signed-in user's own page.

Sign-in is by e-mail and password (``services/auth.authenticate``: argon2, throttled per account
and per address). The login form is protected against cross-site posts by a token in a signed
``ob_csrf`` cookie echoed in the form (there is no session yet to hold one). A successful sign-in
starts a session whose token goes into the signed, HttpOnly, SameSite=Lax ``ob_session`` cookie
(Secure when the hub is served over https) and redirects to the page asked for (a local path only:
``security.local_path``). Signing out ends the session in the database, so the cookie is dead even
if it was copied.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from orderbridge.errors import InvalidInput
from orderbridge.services import audit_trail, auth
from orderbridge.web import i18n
from orderbridge.web.deps import Viewer, client_address, hub_of, session_token, signer_of
from orderbridge.web.i18n import gettext
from orderbridge.web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    local_path,
    new_csrf_token,
    same_token,
)
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)


def _secure(request: Request) -> bool:
    return bool(hub_of(request).settings.public_url.startswith("https:"))


def _login_page(request: Request, *, next_url: str, email: str = "", error: str = "", status: int = 200) -> Response:
    token = new_csrf_token()
    response = templates_of(request).render(
        request,
        "login.html",
        {"login_csrf": token, "next": next_url, "email": email, "error": error},
        status_code=status,
    )
    response.set_cookie(
        CSRF_COOKIE,
        signer_of(request).sign("login-csrf", token),
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/login",
    )
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse("/dashboard", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/dashboard") -> Response:
    return _login_page(request, next_url=local_path(next, "/dashboard"))


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/dashboard",
) -> Response:
    next_url = local_path(next, "/dashboard")
    expected = signer_of(request).unsign("login-csrf", request.cookies.get(CSRF_COOKIE))
    if not same_token(expected, csrf_token):
        return _login_page(
            request,
            next_url=next_url,
            email=email,
            error=gettext("The sign-in form was out of date. Please sign in again."),
            status=403,
        )
    hub = hub_of(request)
    address = client_address(request)
    try:
        principal = await run_in_threadpool(auth.authenticate, hub, email, password, address)
    except auth.LoginThrottled as exc:
        minutes = max(1, round(exc.retry_after_s / 60))
        response = _login_page(
            request,
            next_url=next_url,
            email=email,
            error=i18n.ngettext(
                "Too many failed attempts. Try again in %(num)d minute.",
                "Too many failed attempts. Try again in %(num)d minutes.",
                minutes,
            ),
            status=429,
        )
        response.headers["Retry-After"] = str(max(1, int(exc.retry_after_s)))
        return response
    except auth.LoginRefused:
        return _login_page(
            request,
            next_url=next_url,
            email=email,
            error=gettext("The e-mail address or the password is wrong."),
            status=401,
        )
    except InvalidInput as exc:
        return _login_page(request, next_url=next_url, email=email, error=exc.message, status=422)
    session = await run_in_threadpool(
        auth.start_session, hub, principal, address, request.headers.get("user-agent", "")[:300]
    )
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signer_of(request).sign("session", session.token),
        max_age=int(hub.settings.session_max_age_s),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, actor: Viewer) -> Response:
    token = session_token(request)
    if token:
        await run_in_threadpool(auth.end_session, hub_of(request), token)
    response = templates_of(request).see_other("/login", flash=gettext("You are signed out."))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account")
def account(request: Request, actor: Viewer) -> Response:
    actions = audit_trail.actions_by(actor.scope, actor.principal, limit=20)
    return templates_of(request).render(request, "account.html", {"actions": actions})


@router.post("/account/language")
def change_language(
    request: Request,
    actor: Viewer,
    lang: Annotated[str, Form(max_length=8)],
    next: Annotated[str, Form(max_length=2000)] = "/account",
) -> Response:
    if lang not in i18n.LOCALES:
        raise InvalidInput(f"unknown language {lang!r}", hint=f"Choose one of: {', '.join(i18n.LOCALES)}.")
    auth.set_locale(hub_of(request), actor.principal, lang)
    i18n.set_locale(lang)
    templates = templates_of(request)
    response = templates.see_other(local_path(next, "/account"), flash=gettext("Language changed."))
    templates.remember_language(response, lang)
    return response


@router.get("/language/{lang}")
def choose_language(request: Request, lang: str, next: str = "/login") -> Response:
    """The language switch before sign-in (remembered in a cookie)."""
    if lang not in i18n.LOCALES:
        raise InvalidInput(f"unknown language {lang!r}", hint=f"Choose one of: {', '.join(i18n.LOCALES)}.")
    response = RedirectResponse(local_path(next, "/login"), status_code=303)
    templates_of(request).remember_language(response, lang)
    return response
