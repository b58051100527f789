"""Placing an order by hand in a real browser (Debian's Chromium): an operator opens the form from
the orders inbox, types the order, sees the totals and what will happen update in place (htmx),
places it — with a double click — and finds it posted once in the ShipStation sandbox's own ledger."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from orderbridge.sandboxes.shopify import generator
from orderbridge.storage.tables import connections, orders
from tests.browser.conftest import assert_accessible, sign_in
from tests.browser.world import World

SKU, TITLE, _PRICE = generator.CATALOG[0]


def _manual(world: World) -> tuple[int, list[tuple[str, str]]]:
    with world.hub.db.read() as conn:
        channel = conn.execute(select(connections.c.id).where(connections.c.kind == "manual")).scalar_one()
        rows = conn.execute(select(orders.c.number, orders.c.state).where(orders.c.connection_id == channel))
        return int(channel), [(str(n), str(s)) for n, s in rows]


def test_an_operator_places_an_order_by_hand_and_sees_it_posted_once(world: World, page: Any, shot: Any) -> None:
    sign_in(page, world, "operator", next_path="/orders")
    page.get_by_role("link", name="Place an order").click()
    page.wait_for_url(f"{world.url}/orders/new")
    assert_accessible(page, "the empty place-order form")
    page.get_by_label("Currency").fill("EUR")
    page.get_by_label("Customer name").fill("Ada Lovelace")
    page.get_by_label("Ship to (name)").fill("Ada Lovelace")
    page.get_by_label("Address", exact=True).fill("1 rue de Rivoli")
    page.get_by_label("City").fill("Paris")
    page.get_by_label("Country code").fill("FR")
    page.get_by_label("Shipping method").fill("Standard")
    page.get_by_label("Shipping price").fill("4.90")
    page.get_by_label("SKU 1").fill(SKU)
    page.get_by_label("Quantity 1").fill("2")
    page.get_by_label("Unit price 1").fill("12.50")
    total = page.locator(".order-total")
    total.wait_for()  # the htmx preview, swapped in as the form changed
    assert total.inner_text() == "€29.90"
    assert "It will be posted to the destinations at once." in page.locator("#order-preview").inner_text()
    shot(page, "place-order-filled")
    assert_accessible(page, "the filled place-order form with its preview")
    page.get_by_role("button", name="Place the order").dblclick()  # the double click of a busy person
    page.wait_for_url(re.compile(rf"{re.escape(world.url)}/orders/\d+$"))
    assert "M-1" in page.locator("h1").inner_text()
    shot(page, "placed-order")
    channel, _ = _manual(world)
    key = f"ob-{channel}-M-1"
    world.wait_for("the manual order posted", lambda: any(e.key == key for e in world.ss.entries("order_created")))
    assert [e.key for e in world.ss.entries("order_created")].count(key) == 1
    world.wait_for("the order posted in the ledger", lambda: _manual(world)[1] == [("M-1", "posted")])
    page.reload()
    assert "placed by Operator Person in the portal" in page.inner_text("body")
    assert page.watched.page_errors == [] and page.watched.console_errors == [], page.watched.console_errors


def test_a_mistake_is_shown_next_to_its_field_with_the_fix(world: World, page: Any) -> None:
    sign_in(page, world, "operator", next_path="/orders/new")
    page.get_by_label("Currency").fill("EUR")
    page.get_by_label("SKU 1").fill(SKU)
    page.get_by_label("Quantity 1").fill("two")
    page.get_by_label("Unit price 1").fill("12.50")
    page.get_by_role("button", name="Place the order").click()
    error = page.locator("#line-0-quantity-error")
    assert "This is not a whole number." in error.inner_text() and "Give a whole number of units" in error.inner_text()
    assert page.get_by_label("Quantity 1").get_attribute("aria-invalid") == "true"
    assert_accessible(page, "the form with a mistake")
