"""The Order updates screen and API (issue #15): pending reviews with their diffs and plans,
accept / ignore / cancel singly and in bulk, roles, CSRF, tenants, the audit trail — over a real
ShipStation sandbox and a real Shopify sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.services import order_updates
from orderbridge.services.audit_trail import recent_actions
from orderbridge.services.connections import add_connection
from orderbridge.services.mappings import set_mapping
from tests.web.portal.conftest import Portal

LINE = {"sku": "MUG-1", "quantity": 1, "price": "10.00", "title": "Mug"}


@dataclass
class World:
    portal: Portal
    shop: Any
    ss: Any

    def cycle(self) -> None:
        assert not run_cycle(self.portal.default).crashed


@pytest.fixture
def world(portal: Portal) -> Iterator[World]:
    shop, shop_app = shopify_sandbox(orders=0, seed=3, realistic=False, limits=False)
    ss, ss_app = shipstation_sandbox(limits=False)
    with run_in_thread(shop_app) as s, run_in_thread(ss_app) as w:
        scope = portal.default
        add_connection(
            scope, "shop", "shopify", s.base_url, {"access_token": "shpat_sandbox"}, {"bulk_backfill": False}
        )
        wh = add_connection(scope, "wh", "shipstation", w.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}).id
        set_mapping(scope, "sku", "MUG-1", "MUG-1", wh)
        set_mapping(scope, "shipping", "*", "ups:ups_ground", wh)
        yield World(portal, shop, ss)


def _changed_lines(world: World, n: int = 1) -> list[int]:
    """``n`` posted orders whose lines then change in the store (held for review by default)."""
    ids = [int(world.shop.add_order(line_items=[LINE])["id"]) for _ in range(n)]
    world.cycle()
    for oid in ids:
        world.shop.update_order(oid, line_items=[{**LINE, "quantity": 3}])
    world.cycle()
    return ids


def test_the_api_lists_a_pending_review_with_its_diff_and_plan_and_accepting_updates_shipstation(
    world: World,
) -> None:
    [shop_id] = _changed_lines(world)
    api = world.portal.api("operator")
    listed = api.get("/api/v1/order-updates").json()["updates"]
    assert len(listed) == 1
    [u] = listed
    assert "lines" in u["classes"] and u["status"] == "review"
    assert any(c["path"].endswith(".quantity") and c["after"] == "3" for c in u["changes"])
    [step] = u["plan"]
    assert step["kind"] == "update_in_place" and step["sentence"].startswith("wh: update order ")
    key = next(k for k in world.ss.orders_by_key() if k.endswith(f"-{shop_id}"))
    assert world.ss.order_by_key(key)["items"][0]["quantity"] == 1  # nothing sent yet

    viewer = world.portal.api("viewer")
    assert viewer.post(f"/api/v1/order-updates/{u['id']}/accept").status_code == 403
    done = api.post(f"/api/v1/order-updates/{u['id']}/accept")
    assert done.status_code == 200 and done.json()["changed"] is True
    assert api.post(f"/api/v1/order-updates/{u['id']}/accept").json()["changed"] is False  # a repeat
    world.cycle()
    assert world.ss.order_by_key(key)["items"][0]["quantity"] == 3
    assert world.ss.create_count(key) == 1 and world.ss.update_count(key) == 1  # amended, never created again
    assert api.get("/api/v1/order-updates").json()["updates"] == []
    actions = [a.action for a in recent_actions(world.portal.default)]
    assert "update.accept" in actions


def test_bulk_decisions_are_each_recorded_and_another_tenant_sees_none(world: World) -> None:
    _changed_lines(world, 3)
    api = world.portal.api("operator")
    ids = [u["id"] for u in api.get("/api/v1/order-updates").json()["updates"]]
    assert len(ids) == 3
    theirs = world.portal.api("operator", tenant="other")
    assert theirs.get("/api/v1/order-updates").json()["updates"] == []
    assert theirs.post(f"/api/v1/order-updates/{ids[0]}/accept").status_code == 404
    results = api.post("/api/v1/order-updates/ignore", json={"ids": ids[:2]}).json()["results"]
    assert [r["changed"] for r in results] == [True, True]
    cancelled = api.post("/api/v1/order-updates/cancel", json={"ids": [ids[2]]}).json()["results"]
    assert cancelled[0]["changed"] is True
    world.cycle()
    statuses = {o["orderNumber"]: o["orderStatus"] for o in world.ss.order_summaries()}
    assert sorted(statuses.values()) == ["awaiting_shipment", "awaiting_shipment", "cancelled"]
    trail = [a.action for a in recent_actions(world.portal.default)]
    assert trail.count("update.ignore") == 2 and trail.count("update.cancel") == 1


def test_the_screen_lists_updates_and_a_form_accepts_one_without_javascript(world: World) -> None:
    _changed_lines(world, 2)
    browser = world.portal.signed_in("operator")
    holds = browser.get("/holds").text  # the exceptions screen groups them by cause, with the fix
    assert "An order update awaits review" in holds and 'href="/updates"' in holds
    assert "Review the order update" in holds
    page = browser.get("/updates")
    assert page.status_code == 200
    assert page.text.count('data-update="') == 2 and "wh: update order" in page.text
    assert 'href="/updates"' in page.text  # in the nav
    first = order_updates.pending_reviews(world.portal.default)[0].id
    refused = browser.post("/updates/decide", data={"one": f"accept:{first}"})  # no CSRF token
    assert refused.status_code == 403
    answer = browser.post_form("/updates/decide", {"one": f"accept:{first}"})
    assert answer.status_code == 303 and answer.headers["location"] == "/updates"
    again = browser.get("/updates")
    assert again.text.count('data-update="') == 1 and "1 updates accepted" in again.text
    viewer = world.portal.signed_in("viewer")
    assert "data-action=" not in viewer.get("/updates").text  # a viewer sees, never decides


def test_htmx_answers_the_list_in_place_and_french_reads_french(world: World) -> None:
    _changed_lines(world, 2)
    browser = world.portal.signed_in("operator")
    ids = [str(u.id) for u in order_updates.pending_reviews(world.portal.default)]
    answer = browser.post(
        "/updates/decide",
        data={"csrf_token": browser.csrf, "ids": ids, "action": "ignore"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200 and "<html" not in answer.text
    assert 'id="updates"' in answer.text and "No order update awaits review." in answer.text
    browser.post_form("/account/language", {"lang": "fr"})
    french = browser.get("/updates")
    assert "Mises à jour de commandes" in french.text
