"""The exceptions screen and ``/api/v1/holds`` over a real port: causes with their fix inline, a
mapping that releases its group (rows in the ledger), bulk retry, roles, CSRF, escaping, tenants."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from orderbridge.services.audit_trail import recent_actions
from orderbridge.services.queries import show_order
from orderbridge.storage.tables import mappings, orders
from tests.scoped import tenant
from tests.web.portal.conftest import Portal
from tests.web.portal.held import HOSTILE_SKU, held


def states(portal: Portal, tenant_id: int) -> dict[str, int]:
    with portal.hub.db.read() as conn:
        return {
            s: int(n)
            for s, n in conn.execute(
                select(orders.c.state, func.count()).where(orders.c.tenant_id == tenant_id).group_by(orders.c.state)
            )
        }


def mapped(portal: Portal) -> set[tuple[str, str, str]]:
    with portal.hub.db.read() as conn:
        return {(m.kind, m.source_value, m.target_value) for m in conn.execute(select(mappings))}


def test_each_cause_shows_its_count_its_fix_and_for_an_operator_the_forms_that_make_it(portal: Portal) -> None:
    held(portal)
    html = portal.signed_in("operator").get("/holds").text
    assert "3 orders held — SKU not mapped at the destination <code>ABC-1</code>" in html
    assert "2 orders held — Shipping method not mapped <code>Drone</code>" in html
    assert html.count('action="/holds/map"') == 3 and html.count('action="/holds/retry"') == 3
    assert '<label for="target-' in html and "Destination SKU for ABC-1" in html
    assert 'hx-post="/holds/map" hx-target="#causes"' in html and 'hx-trigger="every 5s"' in html
    assert re.search(r'<a href="/orders/\d+">#1003</a>', html)  # example orders link to their page


def test_a_viewer_reads_the_causes_without_the_forms(portal: Portal) -> None:
    held(portal)
    html = portal.signed_in("viewer").get("/holds").text
    assert "3 orders held" in html and 'action="/holds/map"' not in html and 'action="/holds/retry"' not in html
    assert "An operator or an admin can fix this cause here." in html


def test_one_cause_is_shown_by_code_and_value_as_alerts_link_to_it(portal: Portal) -> None:
    held(portal)
    html = portal.signed_in("viewer").get("/holds", params={"code": "sku_unmapped", "value": "ABC-1"}).text
    assert "3 orders held" in html and "Drone" not in html and "Show every cause" in html
    gone = portal.signed_in("viewer").get("/holds", params={"code": "sku_unmapped", "value": "NOPE"}).text
    assert "No order is held for this cause any more." in gone


def test_mapping_from_the_exceptions_screen_without_javascript_releases_the_group_and_comes_back(
    portal: Portal,
) -> None:
    world = held(portal)
    client = portal.signed_in("operator")
    back = "/holds?code=sku_unmapped&value=ABC-1"
    answer = client.post_form(
        "/holds/map",
        {"code": "sku_unmapped", "value": "ABC-1", "target": "W-ABC", "destination_id": str(world.wh), "back": back},
    )
    assert answer.status_code == 303 and answer.headers["location"] == back
    assert ("sku", "ABC-1", "W-ABC") in mapped(portal)
    assert states(portal, portal.default.tenant_id) == {"posted": 2, "ready": 3, "held": 3}  # released in the ledger
    assert portal.wakes  # the poster was nudged
    page = client.get(back).text
    assert "Mapped ABC-1 to W-ABC: 3 orders released, 0 still held." in page
    assert "No order is held for this cause any more." in page
    (action,) = [a for a in recent_actions(portal.default) if a.action == "mapping.set"]
    assert action.who == "Operator default" and action.address == "127.0.0.1"


def test_mapping_with_htmx_swaps_the_causes_in_place_with_the_group_gone_and_a_notice(portal: Portal) -> None:
    world = held(portal)
    client = portal.signed_in("operator")
    answer = client.post(
        "/holds/map",
        data={
            "code": "shipping_method_unmapped",
            "value": "Drone",
            "target": "ups:ups_ground",
            "destination_id": str(world.wh),
        },
        headers={"HX-Request": "true", "X-CSRF-Token": client.csrf},
    )
    assert answer.status_code == 200 and "<html" not in answer.text
    assert '<p id="notice" hx-swap-oob="true" class="flash" role="status">Mapped Drone to ups:ups_ground' in answer.text
    assert "Drone</code>" not in answer.text and "ABC-1</code>" in answer.text
    assert states(portal, portal.default.tenant_id)["ready"] == 2


def test_a_mapping_the_destination_cannot_read_is_said_in_place_and_changes_nothing(portal: Portal) -> None:
    world = held(portal)
    client = portal.signed_in("operator")
    answer = client.post(
        "/holds/map",
        data={
            "code": "shipping_method_unmapped",
            "value": "Drone",
            "target": "no colon",
            "destination_id": str(world.wh),
        },
        headers={"HX-Request": "true", "X-CSRF-Token": client.csrf},
    )
    assert answer.status_code == 200 and 'class="error" role="alert"' in answer.text
    assert ("shipping", "Drone", "no colon") not in mapped(portal)
    plain = client.post_form(
        "/holds/map",
        {"code": "shipping_method_unmapped", "value": "Drone", "target": "no colon", "destination_id": str(world.wh)},
    )
    assert plain.status_code == 422


def test_bulk_retry_of_a_group_retries_each_order_and_records_one_action_with_the_count(portal: Portal) -> None:
    held(portal)
    client = portal.signed_in("operator")
    answer = client.post_form("/holds/retry", {"code": "shipping_method_unmapped", "value": "Drone"})
    assert answer.status_code == 303 and answer.headers["location"] == "/holds"
    assert "Retried 2 orders: 0 released, 2 still held." in client.get("/holds").text
    (action,) = [a for a in recent_actions(portal.default) if a.action == "holds.retry"]
    assert action.detail is not None and action.detail["orders"] == 2 and action.who == "Operator default"
    timeline = [e["message"] for e in show_order(tenant(portal.hub), "#1006").timeline]
    assert any("retry requested by Operator default" in m for m in timeline)


def test_a_viewer_can_neither_map_nor_retry_and_nothing_changes(portal: Portal) -> None:
    world = held(portal)
    client = portal.signed_in("viewer")
    before = states(portal, portal.default.tenant_id)
    mapping = {"code": "sku_unmapped", "value": "ABC-1", "target": "W", "destination_id": str(world.wh)}
    assert client.post_form("/holds/map", mapping).status_code == 403
    assert client.post_form("/holds/retry", {"code": "sku_unmapped", "value": "ABC-1"}).status_code == 403
    assert states(portal, portal.default.tenant_id) == before and ("sku", "ABC-1", "W") not in mapped(portal)


def test_a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(portal: Portal) -> None:
    world = held(portal)
    client = portal.signed_in("operator")
    form = {"code": "sku_unmapped", "value": "ABC-1", "target": "W", "destination_id": str(world.wh)}
    assert client.post("/holds/map", data=form).status_code == 403
    assert client.post("/holds/map", data={**form, "csrf_token": "forged"}).status_code == 403
    assert client.post("/holds/retry", data={"code": "sku_unmapped", "value": "ABC-1"}).status_code == 403
    assert ("sku", "ABC-1", "W") not in mapped(portal)
    assert not [a for a in recent_actions(portal.default) if a.action in ("mapping.set", "holds.retry")]


def test_held_values_with_html_in_them_render_as_text_on_the_screen_and_in_its_forms(portal: Portal) -> None:
    held(portal)
    html = portal.signed_in("operator").get("/holds").text
    assert HOSTILE_SKU not in html and "<script>alert" not in html and "<img src=x" not in html
    assert "<code>&lt;script&gt;alert(&#34;sku&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;</code>" in html
    assert 'name="value" value="&lt;script&gt;alert(&#34;sku&#34;)' in html


def test_another_tenants_causes_are_never_shown_and_cannot_be_fixed_from_here(portal: Portal) -> None:
    world = held(portal)
    mine = portal.signed_in("admin")
    assert "THEIRS-1" not in mine.get("/holds").text
    asked = mine.get("/holds", params={"code": "sku_unmapped", "value": "THEIRS-1"}).text  # their alert's link
    assert "No order is held for this cause any more." in asked and "1 order held" not in asked
    assert "ABC-1" not in portal.signed_in("admin", tenant="other").get("/holds").text
    # their cause and their destination, from my session: not found, nothing changed
    assert mine.post_form("/holds/retry", {"code": "sku_unmapped", "value": "THEIRS-1"}).status_code == 404
    their = {"code": "sku_unmapped", "value": "THEIRS-1", "target": "X", "destination_id": str(world.their_wh)}
    assert mine.post_form("/holds/map", their).status_code == 404
    assert states(portal, portal.other.tenant_id) == {"held": 1}
    assert ("sku", "THEIRS-1", "X") not in mapped(portal)


def test_the_api_lists_causes_with_counts_examples_and_the_fix_as_data(portal: Portal) -> None:
    world = held(portal)
    body = portal.api("viewer").get("/api/v1/holds").json()
    first = body["causes"][0]
    assert (first["kind"], first["code"], first["value"], first["orders"]) == ("hold", "sku_unmapped", "ABC-1", 3)
    assert first["fix"] == {
        "action": "map_sku",
        "params": {"sku": "ABC-1", "destination": "wh"},
        "text": "Map SKU 'ABC-1' to a SKU of destination 'wh'.",
    }
    assert [e["label"] for e in first["examples"]] == ["#1003", "#1004", "#1005"] and first["retryable"] is True
    assert first["mapping"] == {
        "kind": "sku",
        "source": "ABC-1",
        "destinations": [{"id": world.wh, "name": "wh"}],
        "destination_id": world.wh,
    }
    one = portal.api("viewer").get("/api/v1/holds", params={"code": "shipping_method_unmapped", "value": "Drone"})
    assert [c["value"] for c in one.json()["causes"]] == ["Drone"]
    theirs = portal.api("viewer", tenant="other").get("/api/v1/holds").json()
    assert [c["value"] for c in theirs["causes"]] == ["THEIRS-1"]


def test_the_api_retries_a_cause_for_an_operator_token_only(portal: Portal) -> None:
    held(portal)
    cause = {"code": "shipping_method_unmapped", "value": "Drone"}
    refused = portal.api("viewer").post("/api/v1/holds/retry", json=cause)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    done = portal.api("operator").post("/api/v1/holds/retry", json=cause)
    assert done.status_code == 200
    assert done.json() == {**cause, "orders": 2, "released": 0, "still_held": 2}
    missing = portal.api("operator").post("/api/v1/holds/retry", json={"code": "sku_unmapped", "value": "THEIRS-1"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = portal.api("operator").post("/api/v1/holds/retry", json={"value": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "code"
    nul = portal.api("operator").get("/api/v1/holds", params={"code": "sku_unmapped", "value": "a\x00b"})
    assert nul.status_code == 200 and nul.json() == {"causes": []}
