"""The POS connection screen in a real browser (Debian's Chromium through Playwright, as the portal's
other journeys here, sharing their one browser per session — a second Playwright in the same
process is refused): the helper items missing, the admin clicks "Create the helper items
now", the check passes and the held order goes on — in French, accessible, the POS's words as text."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import assert_accessible
from tests.connectors.pos_kind.conftest import pos_kinds as pos_kinds
from tests.connectors.pos_kind.world import World
from tests.connectors.pos_kind.world import world as world
from tests.web.portal.conftest import PASSWORD, Portal, email
from tests.web.portal.conftest import portal as portal
from tests.web.portal.conftest import settings as settings


def test_an_admin_creates_the_missing_helper_items_from_the_pos_screen(
    world: World, portal: Portal, page: Any, shot: Any
) -> None:
    world.pos.remove_item("ONLINE-SHIPPING")
    world.pos.remove_item("ONLINE-DISCOUNT")
    world.pos.employees["E1"]["name"] = "<img src=x onerror=alert(1)>"
    order = world.shop.add_order()
    world.cycle()
    assert world.state(order["id"]) == "held"

    page.goto(f"{portal.url}/login?next=/account")
    page.locator("input[name='email']").fill(email("admin"))
    page.locator("input[name='password']").fill(PASSWORD)
    page.locator("form button[type='submit']").first.click()
    page.wait_for_url(f"{portal.url}/account")
    language = page.locator("form[action='/account/language']")
    language.locator("select").select_option("fr")
    language.locator("button").click()
    page.wait_for_load_state()
    page.goto(f"{portal.url}/connections/{world.pos_id}")

    section = page.locator("#preflight")
    assert "Vérifications avant envoi" in section.inner_text()
    assert "Produits requis manquants dans le POS" in section.inner_text()
    assert "1 commande est bloquée par ces vérifications." in section.inner_text()
    assert "<img src=x onerror=alert(1)>" in section.inner_text()  # the POS's words, as text
    assert page.locator("img[src='x']").count() == 0 and not page.watched.dialogs
    assert_accessible(page, "the POS connection screen")
    shot(page, "helper-items-missing")

    page.get_by_role("button", name="Créer les produits requis maintenant").click()
    page.wait_for_load_state()
    assert "Produits requis créés : ONLINE-SHIPPING, ONLINE-DISCOUNT. Commandes débloquées : 1." in page.content()
    assert page.locator("#preflight li.check.problem").count() == 0
    shot(page, "helper-items-created")
    world.cycle()
    assert world.state(order["id"]) == "posted"
    assert not page.watched.page_errors and not page.watched.console_errors
