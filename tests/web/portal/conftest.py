"""The portal and the API on a real port, with two tenants and a user of each role in each.

``portal`` is the server: ``portal.signed_in("operator")`` is an httpx client signed in through
the real login form as the default tenant's operator (``portal.signed_in("admin", tenant="other")``
for the second tenant), with ``.csrf`` holding its session's CSRF token for state-changing posts;
``portal.api("viewer")`` is a client with a fresh API token of that role in its Bearer header.
``portal.other`` is the second tenant's scope, for objects a user of the first must never reach.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from orderbridge.domain.roles import Role
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.services import auth
from orderbridge.services.hub import Hub
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from orderbridge.settings import Settings
from orderbridge.web.app import create_app
from tests.scoped import tenant

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def email(role: str, slug: str = "default") -> str:
    return f"{role}@{slug}.example.com"


class SignedIn(httpx.Client):
    """A browser-like client: cookies kept, redirects not followed (tests read them)."""

    csrf: str = ""

    def post_form(self, url: str, data: dict[str, str] | None = None, **kw: object) -> httpx.Response:
        """A form post carrying the session's CSRF token, as the portal's forms do."""
        return self.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kw)  # type: ignore[arg-type]


def csrf_in(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


@dataclass
class Portal:
    hub: Hub
    url: str
    default: Scope
    other: Scope
    wakes: list[float]
    _clients: list[httpx.Client] = field(default_factory=list)

    def scope(self, slug: str) -> Scope:
        return self.default if slug == "default" else self.other

    def sign_in(self, address: str, password: str = PASSWORD) -> SignedIn:
        client = SignedIn(base_url=self.url, timeout=15, follow_redirects=False)
        self._clients.append(client)
        page = client.get("/login")
        assert page.status_code == 200, page.text
        answer = client.post(
            "/login",
            data={"email": address, "password": password, "csrf_token": csrf_in(page.text), "next": "/account"},
        )
        assert answer.status_code == 303, answer.text
        account = client.get("/account")
        assert account.status_code == 200, account.text
        client.csrf = csrf_in(account.text)
        return client

    def signed_in(self, role: str = "admin", tenant: str = "default") -> SignedIn:
        return self.sign_in(email(role, tenant))

    def api(self, role: str = "operator", tenant: str = "default") -> httpx.Client:
        scope = self.scope(tenant)
        actor = auth.Actor.cli(scope)
        made = auth.create_token(scope, f"test {role}", Role(role), by=actor)
        client = httpx.Client(
            base_url=self.url, timeout=15, headers={"Authorization": f"Bearer {made.token}"}, follow_redirects=False
        )
        self._clients.append(client)
        return client

    def anonymous(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=15, follow_redirects=False)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Cheap argon2 parameters: every test signs several people in. The real parameters are what
    tests/services/test_auth.py proves (and a hash made with others is re-made at the next sign-in)."""
    return settings.model_copy(update={"password_time_cost": 1, "password_memory_kib": 1024, "password_parallelism": 1})


def add_users(scope: Scope) -> None:
    actor = auth.Actor.cli(scope)
    for role in Role:
        auth.create_user(
            scope, email(role.value, scope.slug), f"{role.value.title()} {scope.slug}", PASSWORD, role, by=actor
        )


@pytest.fixture
def portal(hub: Hub) -> Iterator[Portal]:
    default = tenant(hub)
    other = add_tenant(hub, "other", "Other merchant")
    add_users(default)
    add_users(other)
    wakes: list[float] = []
    app = create_app(hub, wake=lambda: wakes.append(1.0))
    with run_in_thread(app) as running:  # type: ignore[arg-type]
        p = Portal(hub, running.base_url, default, other, wakes)
        try:
            yield p
        finally:
            p.close()
