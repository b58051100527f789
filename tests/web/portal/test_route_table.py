"""Tenant scoping, CSRF, roles and security headers, tried on every route the app has.

Nothing here lists routes: each test reads the app's route table (``routetable.routes``) and tries
every (path, method) — the portal's and the API's — so a screen or endpoint added later is tried
the day it lands, and a route that forgets its scope, its door or its CSRF check fails here. Two
tenants are populated with one object of each kind (``objects.py``); the users and tokens of the
first (``default``) ask, and the second's (``other``) objects and rows must stay out of reach and
unchanged.

What each test proves is written up in ``docs/security.md`` ("How tenant scoping, CSRF and roles
are tested").
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import select

from orderbridge.domain.roles import Role
from orderbridge.errors import NotFound
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.services.hub import Hub
from orderbridge.storage.tables import orders
from orderbridge.web.app import create_app
from orderbridge.web.deps import Viewer
from tests.conftest import BACKENDS, _truncate_pg
from tests.web.portal.conftest import Portal
from tests.web.portal.objects import KINDS, LOOKUPS, Objects, TwoTenants, cheap_settings, two_tenants
from tests.web.portal.routetable import Route, routes
from tests.web.portal.snapshot import changes, snapshot

#: routes anyone may call without signing in (each has its own guard: the login form's CSRF cookie)
PUBLIC = frozenset({"GET /", "GET /login", "POST /login", "GET /language/{lang}"})
#: state-changing routes every signed-in user may call for themselves, whatever their role
SELF_SERVICE = frozenset({"POST /logout", "POST /account/language"})
#: values for the path parameters of public routes (they name no object)
PUBLIC_VALUES = {"lang": "en"}
ORDER = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
COUNTED: dict[str, int] = {}


@pytest.fixture(scope="module", params=BACKENDS)
def tenants(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[TwoTenants]:
    folder = tmp_path_factory.mktemp("route-table")
    if request.param == "sqlite":
        shutil.copy(sqlite_template, folder / "orderbridge.db")
        url = f"sqlite:///{folder / 'orderbridge.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        _truncate_pg(url)
    with two_tenants(cheap_settings(folder, url)) as made:
        yield made


@pytest.fixture(scope="module")
def table(tenants: TwoTenants) -> list[Route]:
    return [r for r in routes(tenants.app) if r.part != "machine"]


@pytest.fixture(scope="module")
def clients(tenants: TwoTenants) -> dict[tuple[str, str], Any]:
    """(part, role) → tenant A's signed-in portal client or API client of that role."""
    made: dict[tuple[str, str], Any] = {}
    for role in Role:
        made[("portal", role.value)] = tenants.portal.signed_in(role.value)
        made[("api", role.value)] = tenants.portal.api(role.value)
    return made


def send(client: Any, route: Route, values: dict[str, Any], *, csrf: str | None) -> httpx.Response:
    """The route's request with the given object values, a body its validation accepts, and — for
    the portal — ``csrf`` as the form field (or header, for a JSON body); None sends no token."""
    kw: dict[str, Any] = {"params": route.query()}
    made = route.body()
    token = {"csrf_token": csrf} if csrf is not None and route.part == "portal" else {}
    if made is None:
        if route.changes_state and token:
            kw["data"] = token
    elif made[0] == "form":
        kw["data"] = {**{k: _form(v) for k, v in made[1].items()}, **token}
    else:
        kw["json"] = made[1]
        if token:
            kw["headers"] = {"X-CSRF-Token": csrf}
    return client.request(route.method, route.url(values), **kw)


def _form(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_form(v) for v in value]
    return str(value)


def csrf_of(client: Any) -> str | None:
    return getattr(client, "csrf", None)


def values_for(route: Route, objects: Objects) -> dict[str, Any]:
    return {p: PUBLIC_VALUES[p] if p in PUBLIC_VALUES else objects[p] for p in route.params}


def door_failures(table: list[Route]) -> list[str]:
    wrong = []
    for route in table:
        parts = {part for part, _role in route.doors}
        if not parts:
            if route.label not in PUBLIC:
                wrong.append(f"{route.label}: no Viewer/Operator/Admin (or Api…) dependency and not listed as public")
        elif parts != {route.part}:
            wrong.append(f"{route.label}: a {route.part} route behind the {', '.join(sorted(parts))} door")
    return wrong


def test_every_route_is_behind_its_parts_door_or_listed_as_public(table: list[Route]) -> None:
    wrong = door_failures(table)
    assert not wrong, "\n".join(wrong)
    COUNTED["doors"] = len(table)


def test_every_object_parameter_is_one_the_isolation_test_knows(table: list[Route]) -> None:
    known = set(KINDS) | set(LOOKUPS)
    unknown = [
        f"{r.label}: {{{p}}} — add it to the isolation fixture (tests/web/portal/objects.py KINDS or LOOKUPS)"
        for r in table
        if r.doors
        for p in r.params
        if p not in known
    ]
    assert not unknown, "\n".join(unknown)


def isolation_failures(
    tenants: TwoTenants, table: list[Route], clients: dict[tuple[str, str], Any]
) -> tuple[int, list[str]]:
    hub, a, b = tenants.portal.hub, tenants.a, tenants.b
    before_b, before_a = snapshot(hub, b.tenant_id), snapshot(hub, a.tenant_id)
    tried, wrong = 0, []
    for route in table:
        if not route.doors or not route.params:
            continue
        client = clients[(route.part, "admin")]
        answer = send(client, route, values_for(route, b), csrf=csrf_of(client))
        tried += 1
        if answer.status_code != 404:
            wrong.append(f"{route.label} with tenant B's {route.params}: {answer.status_code} {answer.text[:160]!r}")
        if route.method == "GET":  # the control: the same request for A's own object is found
            own = send(client, route, values_for(route, a), csrf=csrf_of(client))
            if own.status_code == 404:
                wrong.append(f"{route.label} with tenant A's own {route.params}: 404 — the test proves nothing")
    wrong += [f"tenant B's rows changed: {c}" for c in changes(before_b, snapshot(hub, b.tenant_id))]
    wrong += [f"tenant A's rows changed: {c}" for c in changes(before_a, snapshot(hub, a.tenant_id))]
    return tried, wrong


def test_no_route_reaches_another_tenants_object_with_any_method(
    tenants: TwoTenants, table: list[Route], clients: dict[tuple[str, str], Any]
) -> None:
    tried, wrong = isolation_failures(tenants, table, clients)
    assert not wrong, "\n".join(wrong)
    COUNTED["isolation"] = tried


def test_no_listing_shows_another_tenants_rows(
    tenants: TwoTenants, table: list[Route], clients: dict[tuple[str, str], Any]
) -> None:
    tried, wrong = 0, []
    for route in table:
        if route.method != "GET" or not route.doors:
            continue
        client = clients[(route.part, "admin")]
        answer = send(client, route, values_for(route, tenants.a), csrf=None)
        tried += 1
        leaked = [m for m in tenants.b_markers if m in answer.text]
        if leaked:
            wrong.append(f"{route.label} as tenant A shows tenant B's {leaked}")
    assert not wrong, "\n".join(wrong)
    COUNTED["listings"] = tried


def test_every_state_changing_portal_route_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing(
    tenants: TwoTenants, table: list[Route], clients: dict[tuple[str, str], Any]
) -> None:
    hub, a = tenants.portal.hub, tenants.a
    client = clients[("portal", "admin")]
    before = snapshot(hub, a.tenant_id)
    tried, wrong = 0, []
    for route in table:
        if route.part != "portal" or not route.changes_state or not route.doors:
            continue
        tried += 1
        for label, token in (("no token", None), ("a wrong token", "x" * 43)):
            answer = send(client, route, values_for(route, a), csrf=token)
            if answer.status_code != 403:
                wrong.append(f"{route.label} with {label}: {answer.status_code} {answer.text[:160]!r}")
    wrong += [f"rows changed: {c}" for c in changes(before, snapshot(hub, a.tenant_id))]
    assert tried, "no state-changing portal route found"
    assert not wrong, "\n".join(wrong)
    COUNTED["csrf"] = tried


def self_service_failures(table: list[Route]) -> list[str]:
    return [
        f"{r.label}: a viewer may call it (needs {r.role}); list it in SELF_SERVICE if every user may"
        for r in table
        if r.changes_state and r.doors and r.role is Role.VIEWER and r.label not in SELF_SERVICE
    ]


def test_every_state_changing_route_but_self_service_needs_more_than_the_viewer_role(table: list[Route]) -> None:
    wrong = self_service_failures(table)
    assert not wrong, "\n".join(wrong)


def test_each_role_is_refused_what_its_role_does_not_allow_and_nothing_changes(
    tenants: TwoTenants, table: list[Route], clients: dict[tuple[str, str], Any]
) -> None:
    hub, a = tenants.portal.hub, tenants.a
    before = snapshot(hub, a.tenant_id)
    tried, wrong = 0, []
    for route in table:
        if route.role is None:
            continue
        needed = ORDER.index(route.role)
        for role in ORDER[:needed]:
            client = clients[(route.part, role.value)]
            answer = send(client, route, values_for(route, a), csrf=csrf_of(client))
            tried += 1
            if answer.status_code != 403:
                wrong.append(f"{route.label} as {role} (needs {route.role}): {answer.status_code}")
        if route.method == "GET":  # reading: the role it needs, and every higher one, is let in
            for role in ORDER[needed:]:
                client = clients[(route.part, role.value)]
                answer = send(client, route, values_for(route, a), csrf=None)
                if answer.status_code in (401, 403):
                    wrong.append(f"{route.label} as {role} (needs {route.role}): refused {answer.status_code}")
    wrong += [f"rows changed: {c}" for c in changes(before, snapshot(hub, a.tenant_id))]
    assert not wrong, "\n".join(wrong)
    COUNTED["roles"] = tried


def check_headers(answer: httpx.Response, *, https: bool = False) -> list[str]:
    h, problems = answer.headers, []
    csp = {d.strip().split(" ", 1)[0]: d.strip() for d in h.get("content-security-policy", "").split(";") if d.strip()}
    script = csp.get("script-src", csp.get("default-src", ""))
    if not script or "'unsafe-inline'" in script or "'unsafe-eval'" in script or "*" in script.split():
        problems.append(f"CSP script-src {script!r}")
    if "frame-ancestors 'none'" not in csp.get("frame-ancestors", "") and h.get("x-frame-options") != "DENY":
        problems.append("neither frame-ancestors 'none' nor X-Frame-Options DENY")
    if h.get("x-content-type-options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if not h.get("referrer-policy"):
        problems.append("no Referrer-Policy")
    if https != ("strict-transport-security" in h):
        problems.append(f"HSTS {'missing' if https else 'sent over plain http'}")
    return problems


def test_every_html_page_carries_the_security_headers(
    tenants: TwoTenants, table: list[Route], clients: dict[tuple[str, str], Any]
) -> None:
    client = clients[("portal", "admin")]
    answers = [(r.label, send(client, r, values_for(r, tenants.a), csrf=None)) for r in table if r.method == "GET"]
    answers += [("GET /login (anonymous)", tenants.portal.anonymous().get("/login"))]
    answers += [("GET /no-such-page", client.get("/no-such-page"))]
    wrong, pages = [], 0
    for label, answer in answers:
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        pages += 1
        wrong += [f"{label}: {p}" for p in check_headers(answer)]
    assert pages >= 3
    assert not wrong, "\n".join(wrong)
    COUNTED["headers"] = pages


def test_hsts_is_sent_when_the_hub_is_served_over_https(hub: Hub) -> None:
    secure = Hub(db=hub.db, box=hub.box, settings=hub.settings.model_copy(update={"public_url": "https://hub.example"}))
    with run_in_thread(create_app(secure)) as running, httpx.Client(base_url=running.base_url) as client:  # type: ignore[arg-type]
        answer = client.get("/login")
    assert answer.headers["strict-transport-security"].startswith("max-age=")
    assert check_headers(answer, https=True) == []


def test_the_generated_checks_catch_a_route_that_forgets_its_scope_its_door_or_its_role(
    tenants: TwoTenants, table: list[Route]
) -> None:
    """The checks above on an app with three planted mistakes: each mistake is reported."""
    hub = tenants.portal.hub
    planted = APIRouter()

    @planted.get("/planted/orders/{order_id}")
    def unscoped(order_id: int, actor: Viewer) -> dict[str, str]:  # reads by id alone: any tenant's
        with hub.db.read() as conn:
            row = conn.execute(select(orders.c.number).where(orders.c.id == order_id)).first()
        if row is None:
            raise NotFound(f"no order {order_id}")
        return {"number": row.number}

    @planted.post("/planted/open")
    def doorless() -> dict[str, str]:
        return {}

    @planted.post("/planted/viewer-may-change")
    def viewer_may(actor: Viewer) -> dict[str, str]:
        return {}

    app = create_app(hub)
    app.include_router(planted)
    planted_table = [r for r in routes(app) if r.part != "machine"]
    with run_in_thread(app) as running:  # type: ignore[arg-type]
        portal = Portal(hub, running.base_url, tenants.portal.default, tenants.portal.other, [])
        try:
            clients = {("portal", "admin"): portal.signed_in("admin"), ("api", "admin"): portal.api("admin")}
            twin = TwoTenants(portal, app, tenants.a, tenants.b, tenants.b_markers)
            _tried, isolation = isolation_failures(twin, planted_table, clients)
        finally:
            portal.close()
    assert any("GET /planted/orders/{order_id} with tenant B's" in w for w in isolation), isolation
    assert any("POST /planted/open" in w for w in door_failures(planted_table))
    assert any("POST /planted/viewer-may-change" in w for w in self_service_failures(planted_table))


def test_an_object_id_beyond_the_databases_integers_is_a_4xx_on_every_route_never_a_5xx(
    tenants: TwoTenants, table: list[Route], clients: dict[tuple[str, str], Any]
) -> None:
    """2**63 does not fit PostgreSQL's bigint (the driver refuses to send it) and SQLite's integer:
    every route must answer it as "no such object" or "not a valid id", not as a crash."""
    tried, wrong = 0, []
    for route in table:
        if not route.doors or not route.params:
            continue
        client = clients[(route.part, "admin")]
        for huge in (2**63, 2**64 + 1, -(2**63) - 1):
            values = {p: PUBLIC_VALUES.get(p, str(huge)) for p in route.params}
            tried += 1
            try:
                answer = send(client, route, values, csrf=csrf_of(client))
            except httpx.TransportError as exc:
                wrong.append(f"{route.label} with {values}: {exc!r}")
                continue
            if answer.status_code >= 500 or answer.status_code not in (400, 404, 422):
                wrong.append(f"{route.label} with {values}: {answer.status_code} {answer.text[:160]!r}")
    assert tried
    assert not wrong, "\n".join(wrong)
