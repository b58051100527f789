"""An operator accepts an order update on the Order updates screen in Debian's Chromium, and the 3PL
(the ShipStation sandbox's own ledger) then holds the new lines in the same order, never a second
one (issue #15)."""

from __future__ import annotations

from typing import Any

from orderbridge.sandboxes.shopify.generator import expand
from tests.browser.conftest import sign_in
from tests.browser.world import World


def test_an_operator_accepts_an_update_and_the_3pl_order_carries_the_new_lines(
    world: World, page: Any, shot: Any
) -> None:
    ext = next(e for e, s in sorted(world.states().items()) if s == "posted" and e not in world.held_ids)
    key = next(k for k in world.ss.orders_by_key() if k.endswith(f"-{ext}"))
    items = world.ss.order_by_key(key)["items"]  # type: ignore[index]
    seed = world.shop.orders[int(ext)]
    rest = seed.overlay if seed.overlay is not None else expand(seed)  # the order as Shopify's REST has it
    line, name = rest["line_items"][0], str(rest["name"])
    more = int(line["quantity"]) + 2
    bigger = {**line, "quantity": more, "fulfillable_quantity": more}
    world.shop.update_order(int(ext), line_items=[bigger, *rest["line_items"][1:]])
    world.wait_for("the change to wait for review", lambda: world.states()[ext] == "held")
    before = world.ss_requests(ext)

    sign_in(page, world, "operator", next_path="/updates")
    card = page.locator("section[data-update]", has=page.get_by_role("link", name=name))
    assert "update order" in card.inner_text()  # what accepting will do, before anything is sent
    shot(page, "updates-before")
    card.get_by_role("button", name="Accept").click()
    world.wait_for("the 3PL order to be amended", lambda: len(world.ss_requests(ext)) == len(before) + 1)
    world.wake.set()
    page.wait_for_timeout(1500)  # time for a second, wrong, request if there were going to be one

    assert len(world.ss_requests(ext)) == len(before) + 1 and world.documents(ext) == 1
    amended = world.ss.order_by_key(key)["items"]  # type: ignore[index]
    by_line = {str(i["lineItemKey"]): i["quantity"] for i in amended}
    assert by_line[str(line["id"])] == int(line["quantity"]) + 2 and len(amended) == len(items), (amended, line)
    world.wait_for("the order to be posted again", lambda: world.states()[ext] == "posted")
    page.reload()
    assert page.locator("section[data-update]").filter(has_text=name).count() == 0
    shot(page, "updates-after")
