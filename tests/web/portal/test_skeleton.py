"""The portal's frame: signing in and out, sessions, CSRF, headers, languages, the API's door."""

from __future__ import annotations

import httpx

from orderbridge.services import auth
from tests.web.portal.conftest import PASSWORD, Portal, csrf_in, email


def test_signing_in_lands_on_the_page_asked_for_with_a_locked_down_cookie(portal: Portal) -> None:
    client = portal.anonymous()
    page = client.get("/login?next=/account")
    answer = client.post(
        "/login",
        data={"email": email("viewer"), "password": PASSWORD, "csrf_token": csrf_in(page.text), "next": "/account"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account"
    cookie = answer.headers["set-cookie"].lower()
    assert "ob_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "Viewer default" in client.get("/account").text


def test_a_wrong_password_and_an_unknown_address_get_the_same_refusal(portal: Portal) -> None:
    client = portal.anonymous()
    answers = []
    for address, password in ((email("admin"), "wrong password!!"), ("nobody@example.com", PASSWORD)):
        page = client.get("/login")
        answers.append(
            client.post("/login", data={"email": address, "password": password, "csrf_token": csrf_in(page.text)})
        )
    assert [a.status_code for a in answers] == [401, 401]
    assert all("The e-mail address or the password is wrong." in a.text for a in answers)
    assert "ob_session" not in client.cookies


def test_a_login_post_without_the_forms_token_is_refused(portal: Portal) -> None:
    client = portal.anonymous()
    client.get("/login")
    answer = client.post("/login", data={"email": email("admin"), "password": PASSWORD, "csrf_token": "forged"})
    assert answer.status_code == 403
    assert "ob_session" not in client.cookies


def test_the_next_page_after_sign_in_is_never_another_site(portal: Portal) -> None:
    client = portal.anonymous()
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={
            "email": email("admin"),
            "password": PASSWORD,
            "csrf_token": csrf_in(page.text),
            "next": "//evil.example",
        },
    )
    assert answer.headers["location"] == "/dashboard"


def test_a_page_asks_an_anonymous_visitor_to_sign_in_and_comes_back(portal: Portal) -> None:
    answer = portal.anonymous().get("/account")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/account"
    htmx = portal.anonymous().get("/account", headers={"HX-Request": "true"})
    assert htmx.headers["hx-redirect"] == "/login?next=/account"


def test_signing_out_ends_the_session_even_for_a_copied_cookie(portal: Portal) -> None:
    client = portal.signed_in("operator")
    copied = dict(client.cookies)
    assert client.post_form("/logout").status_code == 303
    replay = httpx.Client(base_url=portal.url, cookies=copied, follow_redirects=False)
    try:
        assert replay.get("/account").status_code == 303
    finally:
        replay.close()


def test_a_forged_session_cookie_is_not_a_session(portal: Portal) -> None:
    client = portal.anonymous()
    client.cookies.set("ob_session", "abc.def")
    assert client.get("/account").status_code == 303


def test_a_state_changing_post_without_the_csrf_token_changes_nothing(portal: Portal) -> None:
    client = portal.signed_in("viewer")
    refused = client.post("/account/language", data={"lang": "fr"})
    assert refused.status_code == 403
    assert "security token" in refused.text
    assert "Your account" in client.get("/account").text
    assert client.post_form("/account/language", {"lang": "fr"}).status_code == 303
    assert "Votre compte" in client.get("/account").text


def test_a_users_language_follows_them_to_a_new_session(portal: Portal) -> None:
    client = portal.signed_in("admin")
    client.post_form("/account/language", {"lang": "fr"})
    again = portal.signed_in("admin")
    assert "Se déconnecter" in again.get("/account").text


def test_the_login_page_speaks_the_browsers_language(portal: Portal) -> None:
    page = portal.anonymous().get("/login", headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in page.text
    assert "Mot de passe" in page.text


def test_every_page_carries_the_security_headers(portal: Portal) -> None:
    for answer in (portal.anonymous().get("/login"), portal.signed_in("viewer").get("/account")):
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in answer.headers  # the test hub is plain http
        assert "<script>" not in answer.text and " onclick=" not in answer.text


def test_htmx_is_served_from_the_hub_itself(portal: Portal) -> None:
    page = portal.anonymous().get("/login")
    assert '<script src="/static/htmx.min.js" defer></script>' in page.text
    js = portal.anonymous().get("/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text[:200]


def test_the_api_answers_without_a_token_in_its_error_shape(portal: Portal) -> None:
    answer = portal.anonymous().get("/api/v1/me")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    error = answer.json()["error"]
    assert error["code"] == "not_signed_in" and error["hint"]
    assert portal.anonymous().get("/api/v1/nothing-here").json()["error"]["code"] == "not_found"


def test_a_token_names_its_account_and_role_until_it_is_revoked(portal: Portal) -> None:
    client = portal.api("viewer", tenant="other")
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json() == {"kind": "token", "name": "test viewer", "role": "viewer", "tenant": "other"}
    for token in auth.list_tokens(portal.other):
        auth.revoke_token(portal.other, token.id, by=auth.Actor.cli(portal.other))
    assert client.get("/api/v1/me").status_code == 401


def test_the_schema_covers_the_api_and_nothing_else(portal: Portal) -> None:
    schema = portal.anonymous().get("/api/v1/openapi.json").json()
    assert schema["paths"], "the API has operations"
    assert all(path.startswith("/api/v1/") for path in schema["paths"])
    page = portal.signed_in("viewer").get("/api-reference")
    assert page.status_code == 200 and "/api/v1/me" in page.text
