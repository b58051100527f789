"""The Audits screen and ``/api/v1/audits`` over a real port: reports with their recovered orders,
"Run audit now" queued and followed to its result, roles, CSRF, and another tenant's reports and
channels not found."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orderbridge.services.audits import run_queued_audits
from orderbridge.services.reconcile import reconcile
from orderbridge.services.sync import sync_channel
from tests.builders import T0
from tests.fakes import standard_world
from tests.web.portal.conftest import Portal

NOW = T0 + timedelta(hours=2)


@pytest.fixture
def world(portal: Portal) -> Portal:
    """The default tenant's fake shop, two of whose orders the polls never saw."""
    channel = standard_world(portal.hub, 10)
    portal.hub.now = lambda: NOW  # type: ignore[method-assign]
    channel.hidden = {"1002", "1005"}
    shop = portal.default.connection_id("shop")
    sync_channel(portal.default, shop)
    return portal


def shop(portal: Portal) -> int:
    return portal.default.connection_id("shop")


def test_a_report_shows_what_it_proved_and_links_each_recovered_order(world: Portal) -> None:
    report = reconcile(world.default, shop(world), since=T0 - timedelta(hours=1), until=NOW)
    client = world.signed_in("viewer")
    listing = client.get("/audits")
    assert listing.status_code == 200
    assert f'href="/audits/{report.run_id}"' in listing.text
    assert "10 in the channel, 10 in the ledger, 2 recovered, 0 missing" in listing.text
    assert 'action="/audits/run"' not in listing.text  # a viewer cannot run one
    assert client.get("/audits?connection_id=").status_code == 200  # the filter's "All channels"
    assert f"/audits/{report.run_id}" in client.get(f"/audits?connection_id={shop(world)}").text
    page = client.get(f"/audits/{report.run_id}")
    assert page.status_code == 200
    assert "The poll had already passed it" in page.text and "cursor_gap" in page.text
    assert page.text.count('href="/orders/') == 2
    assert "hx-trigger" not in page.text  # finished: nothing to follow


def test_run_audit_now_queues_it_and_its_page_follows_it_to_the_result(world: Portal) -> None:
    client = world.signed_in("operator")
    assert 'action="/audits/run"' in client.get("/audits").text
    answer = client.post_form("/audits/run", {"connection_id": str(shop(world)), "window": "recent"})
    assert answer.status_code == 303
    location = answer.headers["location"]
    run_id = int(location.rsplit("/", 1)[1])
    page = client.get(location)
    assert "is queued; this page follows it" in page.text and "Queued" in page.text
    partial = client.get(location, headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="audit-report"')
    assert 'hx-trigger="every 2s"' in partial.text and "<html" not in partial.text
    run_queued_audits(world.default)
    done = client.get(location, headers={"HX-Request": "true"})
    assert "10 in the channel, 10 in the ledger, 2 recovered, 0 missing" in done.text
    assert "hx-trigger" not in done.text
    assert "Operator default" in client.get(location).text  # who asked for it, on the report
    assert f"/audits/{run_id}" in client.get("/audits").text


def test_only_an_operator_with_the_forms_token_can_run_an_audit(world: Portal) -> None:
    viewer = world.signed_in("viewer")
    assert viewer.post_form("/audits/run", {"connection_id": str(shop(world))}).status_code == 403
    operator = world.signed_in("operator")
    refused = operator.post("/audits/run", data={"connection_id": str(shop(world))})
    assert refused.status_code == 403 and "security token" in refused.text
    assert "Queued" not in operator.get("/audits").text


def test_another_tenants_reports_and_channels_are_not_found(world: Portal) -> None:
    report = reconcile(world.default, shop(world), since=T0 - timedelta(hours=1), until=NOW)
    stranger = world.signed_in("admin", tenant="other")
    assert stranger.get(f"/audits/{report.run_id}").status_code == 404
    assert stranger.get(f"/audits?connection_id={shop(world)}").status_code == 404
    assert f"/audits/{report.run_id}" not in stranger.get("/audits").text
    assert stranger.post_form("/audits/run", {"connection_id": str(shop(world))}).status_code == 404
    api = world.api("admin", tenant="other")
    assert api.get(f"/api/v1/audits/{report.run_id}").json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/audits").json() == {"items": [], "next_cursor": None}
    assert api.post("/api/v1/audits/run", json={"connection_id": shop(world)}).status_code == 404


def test_the_api_lists_reports_in_pages_and_queues_a_run(world: Portal) -> None:
    ran = [reconcile(world.default, shop(world), since=T0 - timedelta(hours=i + 1), until=NOW).run_id for i in range(3)]
    viewer = world.api("viewer")
    first = viewer.get("/api/v1/audits", params={"limit": 2}).json()
    assert [a["id"] for a in first["items"]] == ran[::-1][:2] and first["next_cursor"] == str(ran[1])
    rest = viewer.get("/api/v1/audits", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [a["id"] for a in rest["items"]] == [ran[0]] and rest["next_cursor"] is None
    one = viewer.get(f"/api/v1/audits/{ran[0]}").json()
    assert one["outcome"] == "ok" and {f["cause"] for f in one["findings"]} == {"cursor_gap"}
    assert all(f["order_id"] for f in one["findings"]) and one["by_cause"] == [{"cause": "cursor_gap", "orders": 2}]
    assert viewer.post("/api/v1/audits/run", json={"connection_id": shop(world)}).status_code == 403
    operator = world.api("operator")
    queued = operator.post("/api/v1/audits/run", json={"connection_id": shop(world), "window": "full"})
    assert queued.status_code == 202 and queued.json()["outcome"] == "queued"
    assert queued.headers["location"] == f"/api/v1/audits/{queued.json()['id']}"
    bad = operator.post("/api/v1/audits/run", json={"connection_id": world.default.connection_id("wh")})
    assert bad.status_code == 422 and "destination" in bad.json()["error"]["message"]
    assert viewer.get("/api/v1/audits", params={"cursor": "abc"}).status_code == 422
