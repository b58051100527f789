"""The Users screen over a real port: an admin adds, re-roles and disables users of their own
account — never another's, never leaving it without an admin — and each change shows on the
user's page with who made it and from where."""

from __future__ import annotations

import html

import pytest

from orderbridge.domain.roles import Role
from orderbridge.services import auth
from tests.web.portal.conftest import Portal, email

NEW_PASSWORD = "a garden of forking paths"


def user_id(portal: Portal, role: str, tenant: str = "default") -> int:
    return auth.user_id_of(portal.scope(tenant), email(role, tenant))


def test_an_admin_adds_a_user_who_can_then_sign_in_in_their_language(portal: Portal) -> None:
    admin = portal.signed_in("admin")
    form = {
        "email": "Zoe@Example.com",
        "name": "Zoé Martin",
        "role": "operator",
        "locale": "fr",
        "password": NEW_PASSWORD,
        "password_again": NEW_PASSWORD,
    }
    added = admin.post_form("/users", form)
    assert added.status_code == 303, added.text
    page = admin.get(added.headers["location"])
    assert "Added zoe@example.com as Operator." in page.text and "Zoé Martin" in page.text
    zoe = portal.sign_in("zoe@example.com", NEW_PASSWORD)
    account = zoe.get("/account").text
    assert "Opérateur" in account and 'lang="fr"' in account
    listed = admin.get("/users").text
    assert "zoe@example.com" in listed and email("viewer") in listed and email("admin", "other") not in listed


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"password": "too short", "password_again": "too short"}, 422, "it needs at least 12"),
        ({"password_again": "something else entirely"}, 422, "The two passwords are not the same."),
        ({"email": "not an address"}, 422, "is not an e-mail address"),
        ({"role": "owner"}, 422, "&#39;owner&#39; is not a role"),
        ({"email": email("viewer", "other")}, 409, "already has an account"),  # unique across the hub
    ],
)
def test_a_refused_user_is_shown_again_with_the_reason_and_without_the_password(
    portal: Portal, change: dict[str, str], status: int, says: str
) -> None:
    admin = portal.signed_in("admin")
    form = {"email": "zoe@example.com", "name": "Zoé", "role": "viewer", "locale": "en"}
    form |= {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD} | change
    refused = admin.post_form("/users", form)
    assert refused.status_code == status and says in refused.text
    assert f'value="{html.escape(form["email"])}"' in refused.text  # kept for the next try
    assert form["password"] not in refused.text and form["password_again"] not in refused.text
    assert [u.email for u in auth.list_users(portal.default)] == [email(r.value) for r in Role]


def test_a_new_role_holds_from_the_users_next_request_and_is_recorded_with_who_and_where(portal: Portal) -> None:
    operator = portal.signed_in("operator")
    admin = portal.signed_in("admin")
    target = user_id(portal, "operator")
    changed = admin.post_form(f"/users/{target}/role", {"role": "viewer"})
    assert changed.status_code == 303
    assert "Viewer" in operator.get("/account").text
    page = admin.get(f"/users/{target}").text
    assert f"changed the role of {email('operator')} from operator to viewer" in page
    assert "Admin default" in page and "127.0.0.1" in page


def test_disabling_asks_first_then_ends_the_users_sessions_and_can_be_undone(portal: Portal) -> None:
    viewer = portal.signed_in("viewer")
    admin = portal.signed_in("admin")
    target = user_id(portal, "viewer")
    asked = admin.get(f"/users/{target}/disable")
    assert asked.status_code == 200 and f'action="/users/{target}/disable"' in asked.text
    assert viewer.get("/account").status_code == 200  # asking changed nothing
    assert admin.post_form(f"/users/{target}/disable").status_code == 303
    assert viewer.get("/account").status_code == 303  # to the sign-in page
    page = admin.get(f"/users/{target}").text
    assert "Disabled since" in page and f'action="/users/{target}/enable"' in page
    assert admin.post_form(f"/users/{target}/enable").status_code == 303
    assert portal.signed_in("viewer").get("/account").status_code == 200


@pytest.mark.parametrize(("path", "data"), [("role", {"role": "operator"}), ("disable", {})])
def test_the_last_admin_can_neither_demote_nor_disable_themselves(
    portal: Portal, path: str, data: dict[str, str]
) -> None:
    admin = portal.signed_in("admin")
    me = user_id(portal, "admin")
    refused = admin.post_form(f"/users/{me}/{path}", data)
    assert refused.status_code == 409 and "is the last admin" in refused.text
    assert admin.get("/account").status_code == 200
    assert auth.get_user(portal.default, me).role == Role.ADMIN


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_an_admin_reaches_the_users_screen(portal: Portal, role: str) -> None:
    client = portal.signed_in(role)
    target = user_id(portal, "viewer")
    assert client.get("/users").status_code == 403
    assert client.get(f"/users/{target}").status_code == 403
    assert client.post_form(f"/users/{target}/role", {"role": "admin"}).status_code == 403
    assert auth.get_user(portal.default, target).role == Role.VIEWER


def test_another_accounts_user_is_not_found_on_any_route(portal: Portal) -> None:
    admin = portal.signed_in("admin")
    theirs = user_id(portal, "viewer", "other")
    for answer in (
        admin.get(f"/users/{theirs}"),
        admin.get(f"/users/{theirs}/disable"),
        admin.post_form(f"/users/{theirs}/role", {"role": "admin"}),
        admin.post_form(f"/users/{theirs}/disable"),
        admin.post_form(f"/users/{theirs}/enable"),
    ):
        assert answer.status_code == 404
    missing = admin.get("/users/999999")
    assert missing.status_code == 404
    assert auth.get_user(portal.other, theirs).role == Role.VIEWER and not auth.get_user(portal.other, theirs).disabled


def test_a_user_form_without_the_csrf_token_changes_nothing(portal: Portal) -> None:
    admin = portal.signed_in("admin")
    form = {"email": "zoe@example.com", "role": "admin", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    assert admin.post("/users", data=form).status_code == 403
    assert admin.post(f"/users/{user_id(portal, 'viewer')}/disable", data={"csrf_token": "forged"}).status_code == 403
    assert len(auth.list_users(portal.default)) == 3 and not any(u.disabled for u in auth.list_users(portal.default))


def test_user_names_are_text_not_markup(portal: Portal) -> None:
    admin = portal.signed_in("admin")
    hostile = "<script>alert(1)</script><b>Bo</b>"
    form = {"email": "bo@example.com", "name": hostile, "role": "viewer", "locale": "en"}
    added = admin.post_form("/users", form | {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    for page in (admin.get("/users").text, admin.get(added.headers["location"]).text):
        assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;Bo&lt;/b&gt;" in page
