"""The people's journeys in a real browser: Debian's Chromium over the running hub (``world``).

Each journey is what a person does, with the mouse or the keyboard, and asserts what they see and
what the ledger and the sandboxes' own ledgers then hold. Screenshots of the steps are saved as
test artefacts (``test-artifacts/screenshots/``).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.conftest import sign_in
from tests.browser.world import HELD_SKU, PASSWORD, World


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


def test_the_keyboard_alone_reaches_a_held_order_from_the_dashboard(world: World, page: Any, shot: Any) -> None:
    page.goto(f"{world.url}/login?next=/dashboard")
    page.keyboard.type(world.email("viewer"))
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{world.url}/dashboard")
    held = {f"/orders/{world.order_id(ext)}" for ext in world.held_ids}
    for _ in range(80):  # Tab through the page until a held order's link has the focus
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.getAttribute('href')") in held:
            break
    else:
        raise AssertionError("no held order's link was reached with Tab from the dashboard")
    shot(page, "focus-on-held-order")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: any(url.endswith(h) for h in held))
    assert HELD_SKU in page.get_by_role("alert").inner_text()


def test_a_held_order_is_found_from_the_dashboard_and_its_problem_is_the_top_of_its_page(
    world: World, page: Any, shot: Any
) -> None:
    sign_in(page, world, "viewer", next_path="/dashboard")
    causes = page.locator("section", has=page.get_by_role("heading", name="Held orders by cause"))
    assert HELD_SKU in causes.inner_text()
    shot(page, "dashboard")
    example = causes.locator("a[href^='/orders/']").first
    number = example.inner_text()
    example.click()
    page.wait_for_url(lambda url: "/orders/" in url)
    assert number in page.get_by_role("heading", level=1).inner_text()
    problem = page.get_by_role("alert")
    assert problem.get_by_role("heading").inner_text() == "What is wrong"
    assert HELD_SKU in problem.inner_text()
    # the very top: the problem comes right after the order's title, before everything else on the page
    cards = page.locator("main section")
    assert cards.first.get_attribute("aria-labelledby") == "problem-title"
    assert problem.bounding_box()["y"] < page.get_by_role("heading", name="Postings").bounding_box()["y"]
    shot(page, "order-page-problem")


def test_mapping_the_sku_on_the_exceptions_screen_releases_its_orders_and_they_post(
    world: World, page: Any, shot: Any
) -> None:
    held = [ext for ext in world.held_ids if world.states()[ext] == "held"]
    assert held, "the world has no held order left"
    sign_in(page, world, "operator", next_path="/holds")
    cause = page.locator("section.card", has=page.get_by_label(f"Destination SKU for {HELD_SKU}"))
    assert f"{len(held)} order" in cause.get_by_role("heading").inner_text()
    shot(page, "exceptions-before")
    cause.get_by_label(f"Destination SKU for {HELD_SKU}").fill(HELD_SKU)
    cause.get_by_role("button", name="Map and release").click()
    # the group goes from the screen (htmx swaps the causes in place), and the worker posts the orders
    page.get_by_label(f"Destination SKU for {HELD_SKU}").wait_for(state="detached", timeout=15_000)
    world.wait_for("the released orders to post", lambda: all(world.states()[e] == "posted" for e in held))
    assert all(world.documents(ext) == 1 for ext in held)  # the 3PL's own ledger: each exactly once
    shot(page, "exceptions-after")
    page.goto(f"{world.url}/orders/{world.order_id(held[0])}")
    assert "Posted" in page.get_by_role("heading", level=1).inner_text()
    assert page.get_by_role("alert").count() == 0


def test_reset_to_pending_posts_the_current_version_once_to_the_destination_without_it(
    world: World, page: Any, shot: Any
) -> None:
    ext = next(e for e, s in sorted(world.states().items()) if s == "posted" and e not in world.held_ids)
    world.shop.update_order(int(ext), note="please gift wrap")  # version 2, which the 3PL does not have
    world.wait_for("the change to be synced", lambda: world.posting_versions(ext) == [1] and world.version(ext) == 2)
    before = world.ss_requests(ext)
    sign_in(page, world, "operator", next_path=f"/orders/{world.order_id(ext)}")
    postings = page.locator("section", has=page.get_by_role("heading", name="Postings"))
    assert "Does not have version 2" in postings.inner_text()
    page.get_by_role("button", name="Reset to pending").click()  # its confirmation is accepted
    assert any("Reset order" in d for d in page.watched.dialogs)
    world.wait_for("version 2 to be posted", lambda: world.posting_versions(ext) == [1, 2])
    world.wake.set()
    page.wait_for_timeout(1500)  # time for a second, wrong, posting to happen if it were going to
    assert world.posting_versions(ext) == [1, 2]  # exactly one new posting, for version 2
    assert len(world.ss_requests(ext)) == len(before) + 1  # and one request to the 3PL
    page.reload()
    assert "Has version 2" in page.locator("section", has=page.get_by_role("heading", name="Postings")).inner_text()
    shot(page, "order-after-reset")


def test_an_operator_presses_sync_now_and_the_connection_shows_the_run_and_the_new_order(
    world: World, page: Any, shot: Any
) -> None:
    from orderbridge.sandboxes.shopify import generator
    from orderbridge.services.audit_trail import actions_on

    sku, title, price = generator.CATALOG[0]
    placed = world.shop.add_order(line_items=[{"sku": sku, "quantity": 1, "price": price, "title": title}])
    sign_in(page, world, "operator", next_path=f"/connections/{world.shop_id}")
    page.get_by_role("button", name="Sync now").click()
    progress = page.locator("#sync-progress")
    progress.get_by_text("Fetched").wait_for()
    shot(page, "sync-now")
    world.wait_for("the new order in the ledger", lambda: str(placed["id"]) in world.states())
    asked = [a for a in actions_on(world.scope, "connection", world.shop_id) if a.action == "connection.sync_now"]
    if asked:  # the press started a run: it is on the connection's trail
        assert asked[0].who == "Operator Person", asked
        page.reload()
        assert page.get_by_text("asked for a sync of shop now").first.is_visible()
    else:  # the worker's own sync was running at that moment: the page said so instead of starting another
        assert "Already running" in progress.inner_text()
    assert page.watched.page_errors == [] and page.watched.console_errors == []
