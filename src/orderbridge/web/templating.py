"""Rendering the portal: one Jinja2 environment, full pages or their htmx partials.

Every screen is one full-page template extending ``base.html`` that includes ``_partial``
templates (the Hypermedia Systems pattern). :func:`render` returns the page, or just the partial
when the request comes from htmx (``HX-Request``) and the route named one — so a filter change,
a live refresh or an in-place action swaps a fragment, and the same URL without JavaScript
returns the whole page.

Autoescaping is on for every template: text from channels, users and the database is data. The
helpers (:func:`money`, :func:`when`, …) return plain strings, which Jinja escapes like any other.
Undefined variables raise (``StrictUndefined``): a template that names a missing value fails its
test instead of rendering an empty cell.

After a form post without JavaScript, :func:`see_other` redirects (303) with a flash message in
a signed cookie that the next page shows once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, unquote

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_currency, format_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from orderbridge.domain.roles import Role
from orderbridge.fixes import Fix
from orderbridge.web import i18n, labels, links
from orderbridge.web.i18n import N_
from orderbridge.web.security import FLASH_COOKIE, LANG_COOKIE, CookieSigner


def money(amount: Decimal | str | int | None, currency: str | None) -> str:
    """An amount in the reader's language ("1 234,50 €" in French); never through a float."""
    if amount is None or amount == "":
        return ""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    if not currency:
        return format_decimal(value, locale=i18n.current_locale())
    try:
        return format_currency(value, currency, locale=i18n.current_locale())
    except (ValueError, KeyError):
        return f"{value} {currency}"


def when(moment: datetime | None, fmt: str = "medium") -> str:
    """A UTC moment in the reader's language, marked UTC (the ledger's clock)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment, fmt, tzinfo=UTC, locale=i18n.current_locale()) + " UTC"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in words and in the reader's language ("3 minutes ago", "il y a 3 minutes")."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - (now or datetime.now(UTC))  # Babel: negative is the past ("… ago")
    return format_timedelta(delta, locale=i18n.current_locale(), add_direction=True)


def iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


#: the portal's main navigation: address, label, the role it needs (admin ⊃ operator ⊃ viewer)
NAV: tuple[tuple[str, str, Role], ...] = (
    ("/dashboard", N_("Dashboard"), Role.VIEWER),
    ("/orders", N_("Orders"), Role.VIEWER),
    ("/holds", N_("Exceptions"), Role.VIEWER),
    ("/updates", N_("Order updates"), Role.VIEWER),
    ("/mappings", N_("Mappings"), Role.VIEWER),
    ("/connections", N_("Connections"), Role.VIEWER),
    ("/audits", N_("Audits"), Role.VIEWER),
    ("/alerts", N_("Alerts"), Role.VIEWER),
    ("/users", N_("Users"), Role.ADMIN),
    ("/tokens", N_("API tokens"), Role.ADMIN),
)

ROLES: dict[str, str] = {Role.ADMIN: N_("Admin"), Role.OPERATOR: N_("Operator"), Role.VIEWER: N_("Viewer")}


def nav_items(principal: Any) -> list[tuple[str, str, Role]]:
    role: Role = principal.role
    return [(href, i18n.gettext(label), needed) for href, label, needed in NAV if role.allows(needed)]


def role_label(role: Role | str) -> str:
    return i18n.gettext(ROLES.get(str(role), str(role)))


def build_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("orderbridge.web", "templates"),
        autoescape=select_autoescape(["html", "xml", "svg"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
        gettext=lambda s, **kw: i18n.gettext(s, **kw),
        ngettext=lambda s, p, n, **kw: i18n.ngettext(s, p, n, **kw),
        newstyle=True,
    )
    env.globals.update(
        money=money,
        when=when,
        ago=ago,
        iso=iso,
        state_label=labels.state_label,
        reason_label=labels.reason_label,
        pos_state_label=labels.pos_state_label,
        fix_label=labels.fix_label,
        fix_text=labels.fix_text,
        language_name=i18n.language_name,
        nav_items=nav_items,
        role_label=role_label,
        LOCALES=i18n.LOCALES,
    )
    env.filters["money"] = money
    env.filters["when"] = when
    return env


class Templates:
    """The environment plus what every page needs from the request (who, the CSRF token, the nav)."""

    def __init__(self, signer: CookieSigner, *, public_url: str) -> None:
        self.env = build_environment()
        self.signer = signer
        self.public_url = public_url
        self.env.globals["fix_href"] = self.fix_href

    def fix_href(self, fix: Fix) -> str | None:
        """The portal page where ``fix`` is made (a relative URL), or None."""
        link = links.fix_link("", fix)
        return link if link else None

    def context(self, request: Request, values: Mapping[str, Any]) -> dict[str, Any]:
        actor = getattr(request.state, "actor", None)
        signed = self.signer.unsign("flash", request.cookies.get(FLASH_COOKIE))
        flash = None if signed is None else unquote(signed)
        return {
            "request": request,
            "actor": actor,
            "principal": actor.principal if actor is not None else None,
            "csrf": getattr(request.state, "csrf", None) or "",
            "locale": i18n.current_locale(),
            "path": request.url.path,
            "flash": flash,
            "hx": request.headers.get("hx-request") == "true",
            **values,
        }

    def render(
        self,
        request: Request,
        template: str,
        values: Mapping[str, Any] | None = None,
        *,
        partial: str | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        name = partial if partial and request.headers.get("hx-request") == "true" else template
        context = self.context(request, values or {})
        response = HTMLResponse(self.env.get_template(name).render(context), status_code=status_code, headers=headers)
        response.headers.setdefault("vary", "HX-Request, Cookie")
        if context["flash"] is not None:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def see_other(self, url: str, *, flash: str | None = None) -> Response:
        """Redirect after a post (303), with a one-time message for the next page."""
        response = RedirectResponse(url, status_code=303)
        if flash:
            response.set_cookie(
                FLASH_COOKIE,
                self.signer.sign("flash", _cookie_text(flash)),
                max_age=60,
                httponly=True,
                samesite="lax",
                secure=self.public_url.startswith("https:"),
                path="/",
            )
        return response

    def remember_language(self, response: Response, lang: str) -> None:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=365 * 86400,
            httponly=True,
            samesite="lax",
            path="/",
            secure=self.public_url.startswith("https:"),
        )


def _cookie_text(text: str, limit: int = 400) -> str:
    """``text`` percent-encoded (a cookie carries ASCII only, and the messages have ’, é, →), cut
    so that it stays within ``limit`` characters (the signed cookie is read up to 512)."""
    text = text[:300]
    while len(quote(text, safe="")) > limit:
        text = text[: max(0, len(text) - 10)]
    return quote(text, safe="")


def templates_of(request: Request) -> Templates:
    templates: Templates = request.app.state.templates
    return templates
