"""The browser chain itself: Debian's Chromium reaches the hub's real server, which the worker feeds,
and the accessibility check fails where it should (so a green journey means something)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, assert_accessible
from tests.browser.world import HELD_ORDERS, PLAIN_ORDERS, World


def test_the_browser_reads_the_health_report_of_the_running_hub(world: World, page: Any, shot: Any) -> None:
    response = page.goto(f"{world.url}/healthz")
    assert response is not None and response.status == 200
    report = json.loads(page.locator("body").inner_text())
    assert report["status"] in ("ok", "degraded")
    assert {c["name"] for c in report["connections"]} >= {"shop", "warehouse"}
    assert shot(page, "healthz").is_file()
    assert page.watched.page_errors == []


def test_the_worker_synced_the_store_posting_the_mapped_orders_and_holding_the_unmapped_sku(world: World) -> None:
    states = world.states()
    assert len(states) == PLAIN_ORDERS + HELD_ORDERS
    assert {states[h] for h in world.held_ids} == {"held"}
    posted = [ext for ext, state in states.items() if state == "posted"]
    assert posted, states
    assert all(world.documents(ext) == 1 for ext in posted)
    assert all(world.documents(ext) == 0 for ext in world.held_ids)


def test_the_accessibility_check_fails_on_a_serious_violation(page: Any) -> None:
    page.set_content('<html lang="en"><title>t</title><main><h1>t</h1><img src="a.png"></main></html>')
    with pytest.raises(AssertionError, match="image-alt"):
        assert_accessible(page, "a page with an image without alt text")
    page.set_content('<html lang="en"><title>t</title><main><h1>t</h1><img src="a.png" alt="A"></main></html>')
    assert_accessible(page, "the same page with alt text")


def test_every_test_leaves_a_screenshot_among_the_artefacts(page: Any) -> None:
    page.set_content("<html><title>t</title><p>artefact</p></html>")
    # the page fixture saves "<test>-last.png" at teardown: the one from the first test is already there
    assert any(p.name.endswith("-last.png") for p in ARTIFACTS.glob("*.png"))
