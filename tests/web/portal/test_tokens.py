"""The API tokens screen over a real port: a token is shown once, works at once, is listed by its
prefix only, and stops working when revoked after a confirmation; another account's tokens are
not found; each creation and revocation is on the token's page."""

from __future__ import annotations

import re

import httpx
import pytest

from orderbridge.domain.roles import Role
from orderbridge.services import auth
from tests.web.portal.conftest import Portal

_TOKEN = re.compile(r'value="(obt_[A-Za-z0-9_-]+)"')


def api_call(portal: Portal, token: str) -> httpx.Response:
    return httpx.get(f"{portal.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=15)


def create(client: object, label: str = "ERP export", role: str = "operator") -> tuple[httpx.Response, str]:
    made = client.post_form("/tokens", {"label": label, "role": role})  # type: ignore[attr-defined]
    found = _TOKEN.search(made.text)
    return made, found.group(1) if found else ""


def test_a_new_token_is_shown_once_uncached_and_calls_the_api_at_once(portal: Portal) -> None:
    admin = portal.signed_in("admin")
    made, token = create(admin)
    assert made.status_code == 201 and token and "shown only once" in made.text
    assert made.headers["cache-control"] == "no-store"
    me = api_call(portal, token)
    assert me.status_code == 200 and me.json() == {
        "kind": "token",
        "name": "ERP export",
        "role": "operator",
        "tenant": "default",
    }
    listed = admin.get("/tokens").text
    assert token[:12] in listed and token not in listed and "Admin default" in listed
    (info,) = auth.list_tokens(portal.default)
    assert token not in admin.get(f"/tokens/{info.id}").text


def test_revoking_asks_first_and_the_token_then_stops_working(portal: Portal) -> None:
    admin = portal.signed_in("admin")
    _, token = create(admin, "nightly", "viewer")
    (info,) = auth.list_tokens(portal.default)
    page = admin.get(f"/tokens/{info.id}")
    assert "Revoke this token?" in page.text and f'action="/tokens/{info.id}/revoke"' in page.text
    assert api_call(portal, token).status_code == 200  # looking changed nothing
    revoked = admin.post_form(f"/tokens/{info.id}/revoke")
    assert revoked.status_code == 303 and revoked.headers["location"] == "/tokens"
    assert "The API token nightly is revoked" in admin.get("/tokens").text
    assert api_call(portal, token).status_code == 401
    again = admin.post_form(f"/tokens/{info.id}/revoke")
    assert again.status_code == 409 and "revoked already" in again.text
    history = admin.get(f"/tokens/{info.id}").text
    assert "created the viewer API token &#39;nightly&#39;" in history and "revoked the API token" in history
    assert "Revoke this token?" not in history and "Revoked on" in history


def test_what_a_token_did_is_on_its_page(portal: Portal) -> None:
    admin = portal.signed_in("admin")
    _, token = create(admin, "automation", "admin")
    (info,) = auth.list_tokens(portal.default)
    acting = auth.Actor.of(portal.hub, auth.resolve_token(portal.hub, token), "192.0.2.44")  # type: ignore[arg-type]
    auth.create_token(portal.default, "made by a token", "viewer", by=acting)
    page = admin.get(f"/tokens/{info.id}").text
    assert "created the viewer API token &#39;made by a token&#39;" in page and "192.0.2.44" in page


@pytest.mark.parametrize(
    ("label", "role", "status", "says"),
    [("", "viewer", 422, "label has 1-100 characters"), ("x", "owner", 422, "is not a role")],
)
def test_a_refused_token_is_not_created_and_the_form_says_why(
    portal: Portal, label: str, role: str, status: int, says: str
) -> None:
    made, token = create(portal.signed_in("admin"), label, role)
    assert made.status_code == status and says in made.text and not token
    assert auth.list_tokens(portal.default) == []


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_an_admin_reaches_the_tokens_screen(portal: Portal, role: str) -> None:
    client = portal.signed_in(role)
    made = auth.create_token(portal.default, "theirs to keep", Role.VIEWER, by=auth.Actor.cli(portal.default))
    assert client.get("/tokens").status_code == 403
    assert client.get(f"/tokens/{made.id}").status_code == 403
    assert create(client)[0].status_code == 403
    assert client.post_form(f"/tokens/{made.id}/revoke").status_code == 403
    assert [t.revoked for t in auth.list_tokens(portal.default)] == [False]


def test_another_accounts_token_is_not_found_and_keeps_working(portal: Portal) -> None:
    theirs = auth.create_token(portal.other, "their export", Role.VIEWER, by=auth.Actor.cli(portal.other))
    admin = portal.signed_in("admin")
    assert admin.get(f"/tokens/{theirs.id}").status_code == 404
    assert admin.post_form(f"/tokens/{theirs.id}/revoke").status_code == 404
    assert "their export" not in admin.get("/tokens").text
    assert api_call(portal, theirs.token).status_code == 200


def test_a_token_form_without_the_csrf_token_creates_nothing(portal: Portal) -> None:
    admin = portal.signed_in("admin")
    assert admin.post("/tokens", data={"label": "sneaky", "role": "admin"}).status_code == 403
    assert auth.list_tokens(portal.default) == []
