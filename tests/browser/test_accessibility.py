"""axe-core on each main screen, signed in as an admin over the running hub: no serious or
critical violation (missing labels, contrast, names of buttons and links, landmarks, ARIA misuse).

The screens are named here with their paths; one that is not in the app's route table yet is
reported as skipped with that reason, and is checked from the day it lands.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import assert_accessible, sign_in
from tests.browser.world import World
from tests.web.portal.routetable import routes

SCREENS = [
    ("dashboard", "/dashboard"),
    ("inbox", "/orders"),
    ("order page", "/orders/{order_id}"),
    ("exceptions", "/holds"),
    ("connections", "/connections"),
    ("mappings", "/mappings"),
    ("audits", "/audits"),
    ("your account", "/account"),
    ("API tokens", "/tokens"),
    ("users", "/users"),
    ("API reference", "/api-reference"),
]


def test_the_sign_in_page_has_no_serious_accessibility_violation(world: World, page: Any) -> None:
    page.goto(f"{world.url}/login")
    assert_accessible(page, "the sign-in page")
    page.get_by_label("E-mail address").fill(world.email("viewer"))
    page.get_by_label("Password").fill("a wrong password, twice")
    page.get_by_role("button", name="Sign in").click()
    assert_accessible(page, "the sign-in page with its error")


@pytest.mark.parametrize(("screen", "path"), SCREENS, ids=[s for s, _p in SCREENS])
def test_the_screen_has_no_serious_accessibility_violation(
    world: World, page: Any, shot: Any, screen: str, path: str
) -> None:
    if path not in {r.path for r in routes(world.app) if r.method == "GET"}:
        pytest.fail(f"the {screen} screen ({path}) is not served: axe has nothing to check")
    sign_in(page, world, "admin")
    page.goto(world.url + path.replace("{order_id}", str(world.order_id(world.held_ids[0]))))
    page.wait_for_load_state("networkidle")
    shot(page, screen.replace(" ", "-"))
    assert_accessible(page, f"the {screen} screen")
