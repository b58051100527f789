"""The order page and the order API over a real port: the problem first, the actions by role and
with CSRF, another tenant's order a 404 everywhere, channel text escaped."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from orderbridge.services.connections import add_connection
from orderbridge.services.mappings import set_mapping
from orderbridge.services.order_story import order_story
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import find_order_id
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import user_actions
from tests.builders import order
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid
from tests.web.portal.conftest import Portal

SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def held(portal: Portal) -> int:
    """The default tenant's order #1001, held for SKU ABC-1 (unmapped at ``wh``)."""
    install(portal.hub, FakeChannel(), FakeDestination())
    channel = portal.hub.connectors[cid(portal.hub, "shop")]
    channel.put(order(1, skus=("ABC-1",)))
    set_mapping(portal.default, "shipping", "Standard", "ups:ups_ground", cid(portal.hub, "wh"))
    sync_channel(portal.default, cid(portal.hub, "shop"))
    return find_order_id(portal.default, "#1001")


@pytest.fixture
def foreign(portal: Portal) -> int:
    """An order of the other tenant (#1009; ready: that tenant has no destination)."""
    scope: Scope = portal.other
    add_connection(scope, "shop", "fake_channel", "http://fake-other", {"token": "t"})
    channel = FakeChannel()
    channel.put(order(9, skus=("ABC-1",)))
    portal.hub.connectors[scope.connection_id("shop")] = channel
    sync_channel(scope, scope.connection_id("shop"))
    return find_order_id(scope, "#1009")


def actions_count(portal: Portal) -> int:
    """User actions recorded on orders (signing in, users and tokens have their own)."""
    with portal.hub.db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(user_actions).where(user_actions.c.object_type == "order")
            ).scalar_one()
        )


def test_the_order_page_shows_the_problem_and_its_fix_before_anything_else(portal: Portal, held: int) -> None:
    page = portal.signed_in("viewer").get(f"/orders/{held}")
    assert page.status_code == 200, page.text
    html = page.text
    problem = html.index('id="problem-title"')
    assert problem < html.index('id="lines-title"') < html.index('id="timeline-title"')
    assert "SKU not mapped at the destination" in html and "<code>ABC-1</code>" in html
    assert "Map the SKU" in html
    assert "Retry now" not in html  # a viewer is shown no action


def test_order_by_ref_redirects_to_the_order_page_in_the_readers_tenant(
    portal: Portal, held: int, foreign: int
) -> None:
    client = portal.signed_in("viewer")
    answer = client.get("/orders/by-ref/1001")
    assert (answer.status_code, answer.headers["location"]) == (303, f"/orders/{held}")
    assert client.get("/orders/by-ref/1009").status_code == 404  # the other tenant's number


def test_another_tenants_order_is_not_found_on_every_route(portal: Portal, held: int, foreign: int) -> None:
    before = order_story(portal.other, foreign)
    admin = portal.signed_in("admin")
    assert admin.get(f"/orders/{foreign}").status_code == 404
    for action in ("retry", "reset", "refresh"):
        assert admin.post_form(f"/orders/{foreign}/{action}").status_code == 404, action
    assert admin.post_form(f"/orders/{foreign}/release", {"reason_id": "1", "reason": "x"}).status_code == 404
    api = portal.api("admin")
    assert api.get(f"/api/v1/orders/{foreign}").status_code == 404
    for action in ("retry", "reset", "refresh"):
        answer = api.post(f"/api/v1/orders/{foreign}/{action}")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", action
    assert api.post(f"/api/v1/orders/{foreign}/release", json={"reason_id": 1, "reason": "x"}).status_code == 404
    assert api.get("/api/v1/events", params={"order_id": foreign}).status_code == 404
    assert actions_count(portal) == 0 and order_story(portal.other, foreign) == before


def test_each_role_holds_on_the_order_actions(portal: Portal, held: int) -> None:
    reason_id = order_story(portal.default, held).problems[0].reason_id
    viewer, operator = portal.signed_in("viewer"), portal.signed_in("operator")
    assert viewer.post_form(f"/orders/{held}/retry").status_code == 403
    assert (
        operator.post_form(f"/orders/{held}/release", {"reason_id": str(reason_id), "reason": "ok"}).status_code == 403
    )
    assert portal.api("viewer").post(f"/api/v1/orders/{held}/reset").status_code == 403
    answer = portal.api("operator").post(
        f"/api/v1/orders/{held}/release", json={"reason_id": reason_id, "reason": "ok"}
    )
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    assert actions_count(portal) == 0
    done = operator.post_form(f"/orders/{held}/reset")  # held and nothing changed: a no-op, said so
    assert done.status_code == 303 and done.headers["location"] == f"/orders/{held}"


def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(portal: Portal, held: int) -> None:
    admin = portal.signed_in("admin")
    reason_id = order_story(portal.default, held).problems[0].reason_id
    refused = admin.post(f"/orders/{held}/release", data={"reason_id": str(reason_id), "reason": "ok"})
    assert refused.status_code == 403
    assert admin.post(f"/orders/{held}/retry", data={"csrf_token": "forged"}).status_code == 403
    assert actions_count(portal) == 0 and order_story(portal.default, held).state == "held"


def test_releasing_a_hold_in_place_answers_the_order_with_the_result_and_wakes_the_poster(
    portal: Portal, held: int
) -> None:
    admin = portal.signed_in("admin")
    reason_id = order_story(portal.default, held).problems[0].reason_id
    answer = admin.post(
        f"/orders/{held}/release",
        data={"reason_id": str(reason_id), "reason": "the 3PL stocks it as ABC-1"},
        headers={"HX-Request": "true", "HX-Target": "order", "X-CSRF-Token": admin.csrf},
    )
    assert answer.status_code == 200, answer.text
    assert answer.text.lstrip().startswith('<div id="order">') and "The hold was released." in answer.text
    assert "<html" not in answer.text  # the partial, not the page
    assert portal.wakes and order_story(portal.default, held).state == "ready"
    timeline = admin.get(f"/orders/{held}").text
    assert "Hold released" in timeline and "the 3PL stocks it as ABC-1" in timeline
    assert post_ready(portal.default, cid(portal.hub, "wh")).posted == 1


def test_order_text_from_the_channel_is_escaped_everywhere_on_the_page(portal: Portal) -> None:
    install(portal.hub, FakeChannel(), FakeDestination())
    channel: Any = portal.hub.connectors[cid(portal.hub, "shop")]
    channel.put(
        order(
            1,
            skus=(SCRIPT,),
            customer_name=SCRIPT,
            note=f"<b>{SCRIPT}</b>",
            tags=(SCRIPT, '"><img src=x onerror=alert(1)>'),
            raw={"note": SCRIPT, "name": '"><svg onload=alert(1)>'},
        )
    )
    sync_channel(portal.default, cid(portal.hub, "shop"))
    oid = find_order_id(portal.default, "#1001")
    html = portal.signed_in("admin").get(f"/orders/{oid}").text
    assert "<script>alert" not in html and "<b><script" not in html
    assert "<img src=x" not in html and "<svg onload" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "onerror=alert(1)&gt;" in html
    api = portal.api("viewer").get(f"/api/v1/orders/{oid}").json()
    assert api["customer_name"] == SCRIPT and api["raw"]["note"] == SCRIPT  # data, as it came


def test_the_api_gives_the_order_with_its_problems_money_as_decimal_strings_and_timeline(
    portal: Portal, held: int
) -> None:
    api = portal.api("viewer")
    body = api.get(f"/api/v1/orders/{held}").json()
    assert body["state"] == "held" and body["problems"][0]["code"] == "sku_unmapped"
    assert body["problems"][0]["fix"]["action"] == "map_sku" and body["problems"][0]["releasable"] is True
    assert body["totals"]["total"] == {"amount": "15.00", "currency": "USD"}
    assert [t["kind"] for t in body["timeline"]] == ["received"] and body["raw"] == {"id": 1001}
    admin = portal.api("admin")
    reason_id = body["problems"][0]["reason_id"]
    missing = admin.post(f"/api/v1/orders/{held}/release", json={"reason_id": reason_id, "reason": " "})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "reason"
    first = admin.post(f"/api/v1/orders/{held}/release", json={"reason_id": reason_id, "reason": "known SKU"})
    again = admin.post(f"/api/v1/orders/{held}/release", json={"reason_id": reason_id, "reason": "known SKU"})
    assert (first.status_code, first.json()["changed"], first.json()["to_post"]) == (200, True, ["wh"])
    assert (again.status_code, again.json()["changed"]) == (200, False)
    events = api.get("/api/v1/events", params={"order_id": held, "limit": 2}).json()
    assert [e["kind"] for e in events["events"]] == ["ready", "hold_released"] and events["next_cursor"]
    older = api.get("/api/v1/events", params={"order_id": held, "cursor": events["next_cursor"]}).json()
    assert [e["kind"] for e in older["events"]] == ["received"] and older["next_cursor"] is None
    bad = api.get("/api/v1/events", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"


def test_a_french_reader_reads_the_problem_and_the_actions_in_french(portal: Portal, held: int) -> None:
    client = portal.signed_in("operator")
    client.post_form("/account/language", {"lang": "fr"})
    french = portal.signed_in("operator")
    html = french.get(f"/orders/{held}").text
    assert "Ce qui ne va pas" in html and "Remettre en attente" in html and "Historique" in html
    assert "SKU &#39;ABC-1&#39; has no mapping" in html  # the domain's sentence, as said (escaped)
    done = french.post_form(f"/orders/{held}/reset")
    assert done.status_code == 303
    assert "Rien n’a été modifié." in french.get(done.headers["location"]).text


def test_an_action_the_order_refuses_is_shown_at_the_top_of_the_order_in_place(portal: Portal, held: int) -> None:
    admin = portal.signed_in("admin")
    problem = order_story(portal.default, held).problems[0]
    hx = {"HX-Request": "true", "HX-Target": "order", "X-CSRF-Token": admin.csrf}
    answer = admin.post(
        f"/orders/{held}/release", data={"reason_id": str(problem.reason_id), "reason": " "}, headers=hx
    )
    assert answer.status_code == 200 and 'class="error" role="alert"' in answer.text
    assert "a release needs a reason" in answer.text and '<div id="order">' in answer.text
    plain = admin.post_form(f"/orders/{held}/release", {"reason_id": str(problem.reason_id), "reason": " "})
    assert plain.status_code == 422  # the error page, without JavaScript
    assert order_story(portal.default, held).state == "held" and actions_count(portal) == 0
