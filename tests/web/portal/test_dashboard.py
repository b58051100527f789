"""``GET /dashboard`` and ``GET /api/v1/dashboard`` over a real port: what the ledger holds, live,
escaped, and the reader's tenant only."""

from __future__ import annotations

import re
from datetime import timedelta

from orderbridge.runtime.worker import run_cycle
from orderbridge.services.mappings import set_mapping
from orderbridge.services.reconcile import reconcile
from tests.builders import T0
from tests.scoped import cid, tenant
from tests.web.portal.conftest import Portal
from tests.web.portal.held import HOSTILE_SKU, held


def figure(html: str, label: str) -> str:
    """The count on the tile whose link reads ``label``."""
    found = re.search(r'<span class="figure">([^<]*)</span> <a href="[^"]*">' + re.escape(label) + "</a>", html)
    assert found, f"no tile {label!r}"
    return found.group(1)


def test_the_dashboard_shows_states_causes_with_their_fix_the_chart_connections_and_audits(portal: Portal) -> None:
    held(portal)
    reconcile(tenant(portal.hub), cid(portal.hub, "shop"), since=T0 - timedelta(hours=1), kind="manual")
    page = portal.signed_in("viewer").get("/dashboard")
    assert page.status_code == 200
    html = page.text
    assert (figure(html, "All orders"), figure(html, "Posted"), figure(html, "Held")) == ("8", "2", "6")
    assert "3 orders held" in html and "<code>ABC-1</code>" in html
    assert 'href="/holds?code=sku_unmapped&amp;value=ABC-1"' in html  # the cause's own exceptions view
    assert "Map the SKU" in html  # its fix
    assert re.search(r'<svg class="chart"[^>]*role="img" aria-labelledby="chart-title chart-desc"', html)
    assert '<title id="chart-title">Orders received per hour, last 24 hours (UTC)</title>' in html
    assert "The figures as a table" in html and "8 orders received in the last 24 hours" in html
    assert '<a href="/connections/' in html and ">shop</a>" in html and ">wh</a>" in html
    assert "8 in the channel, 8 in the ledger, 0 missing" in html


def test_the_dashboard_refreshes_itself_and_an_order_that_posts_is_seen_on_the_next_refresh(portal: Portal) -> None:
    held(portal)
    client = portal.signed_in("viewer")
    live = client.get("/dashboard", headers={"HX-Request": "true", "HX-Target": "live"})
    assert live.status_code == 200 and "<html" not in live.text
    assert re.search(r'<div id="live" hx-get="/dashboard" hx-trigger="every 5s" hx-swap="outerHTML">', live.text)
    assert figure(live.text, "Posted") == "2"
    set_mapping(tenant(portal.hub), "sku", "ABC-1", "W-ABC", cid(portal.hub, "wh"))
    run_cycle(tenant(portal.hub), sync=False)
    again = client.get("/dashboard", headers={"HX-Request": "true", "HX-Target": "live"})
    assert (figure(again.text, "Posted"), figure(again.text, "Held")) == ("5", "3")


def test_held_values_with_html_in_them_render_as_text(portal: Portal) -> None:
    held(portal)
    html = portal.signed_in("viewer").get("/dashboard").text
    assert HOSTILE_SKU not in html and "<script>alert" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(&#34;sku&#34;)&lt;/script&gt;" in html


def test_another_tenants_orders_causes_and_connections_never_appear(portal: Portal) -> None:
    held(portal)
    mine = portal.signed_in("admin").get("/dashboard").text
    theirs = portal.signed_in("admin", tenant="other").get("/dashboard").text
    assert "THEIRS-1" not in mine and "their-shop" not in mine
    assert "ABC-1" not in theirs and ">shop</a>" not in theirs and "their-shop" in theirs
    assert figure(theirs, "All orders") == "1"


def test_signed_out_visitors_are_sent_to_sign_in(portal: Portal) -> None:
    answer = portal.anonymous().get("/dashboard")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/dashboard"


def test_the_dashboard_reads_in_french_for_a_french_reader(portal: Portal) -> None:
    held(portal)
    client = portal.signed_in("viewer")
    assert client.post_form("/account/language", {"lang": "fr"}).status_code == 303
    html = client.get("/dashboard").text
    assert "Commandes par état" in html and "3 commandes bloquées" in html
    assert "Commandes reçues par heure" in html


def test_the_api_dashboard_is_the_same_summary_as_json_for_the_tokens_tenant(portal: Portal) -> None:
    held(portal)
    body = portal.api("viewer").get("/api/v1/dashboard").json()
    assert body["total"] == 8 and body["states"]["held"] == 6 and body["states"]["cancelled"] == 0
    first = body["causes"][0]
    assert (first["code"], first["value"], first["orders"]) == ("sku_unmapped", "ABC-1", 3)
    assert first["fix"]["action"] == "map_sku" and first["fix"]["params"] == {"sku": "ABC-1", "destination": "wh"}
    assert [e["label"] for e in first["examples"]] == ["#1003", "#1004", "#1005"]
    assert len(body["hours"]) == 24 and body["hours"][-1]["orders"] == 8
    assert [c["name"] for c in body["connections"]] == ["shop", "wh"]
    assert [(a["channel"], a["run_id"]) for a in body["audits"]] == [("shop", None)]  # not audited yet
    other = portal.api("viewer", tenant="other").get("/api/v1/dashboard").json()
    assert other["total"] == 1 and [c["value"] for c in other["causes"]] == ["THEIRS-1"]
    assert portal.anonymous().get("/api/v1/dashboard").status_code == 401
