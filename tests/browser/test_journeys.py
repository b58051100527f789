"""The people's journeys in a real browser: Debian's Chromium over the running hub (``world``).

Each journey is what a person does, with the mouse or the keyboard, and asserts what they see and
what the ledger and the sandboxes' own ledgers then hold. Screenshots of the steps are saved as
test artefacts (``test-artifacts/screenshots/``).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.conftest import sign_in
from tests.browser.world import PASSWORD, World


def test_a_person_signs_in_through_the_form_and_lands_on_the_page_they_asked_for(
    world: World, page: Any, shot: Any
) -> None:
    page.goto(f"{world.url}/account")  # not signed in: sent to the form, and back afterwards
    page.wait_for_url(f"{world.url}/login?next=/account")
    shot(page, "login")
    page.get_by_label("E-mail address").fill(world.email("operator"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{world.url}/account")
    assert page.get_by_role("link", name="Operator Person").is_visible()
    shot(page, "account")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(lambda url: "/login" in url)
    page.goto(f"{world.url}/account")
    assert "/login" in page.url  # the session is over
    assert page.watched.page_errors == [] and page.watched.console_errors == []
    assert page.watched.bad_responses == []


def test_a_wrong_password_is_refused_on_the_form_with_the_reason(world: World, page: Any) -> None:
    page.goto(f"{world.url}/login")
    page.get_by_label("E-mail address").fill(world.email("viewer"))
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "The e-mail address or the password is wrong."
    assert "/login" in page.url


def test_an_admin_creates_an_api_token_and_a_program_calls_the_api_with_it(world: World, page: Any, shot: Any) -> None:
    sign_in(page, world, "admin", next_path="/tokens")
    page.get_by_label("Label").fill("nightly export")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Create the token").click()
    token = page.get_by_label("Token").input_value()
    shot(page, "token-shown-once")
    assert token.startswith("obt_")
    with httpx.Client(base_url=world.url, timeout=10) as program:
        me = program.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json() == {"kind": "token", "name": "nightly export", "role": "viewer", "tenant": "default"}
        assert program.get("/api/v1/me", headers={"Authorization": "Bearer obt_wrong"}).status_code == 401
    page.goto(f"{world.url}/tokens")  # the list shows it (its prefix only), and that it was used
    row = page.get_by_role("row", name="nightly export")
    assert token[:12] in row.inner_text() and token not in page.content()
    assert "Never" not in row.inner_text()


def test_signing_in_works_with_the_keyboard_alone(world: World, page: Any, shot: Any) -> None:
    page.goto(f"{world.url}/login?next=/account")
    focused = page.evaluate("() => document.activeElement.id")
    assert focused == "email"  # the form has the focus when the page opens
    page.keyboard.type(world.email("viewer"))
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{world.url}/account")
    # the skip link is the first stop, and it leads to the content
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('href')") == "#main"
    page.keyboard.press("Enter")
    shot(page, "keyboard-signed-in")
