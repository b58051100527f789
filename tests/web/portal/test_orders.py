"""The Orders inbox over a real port — the portal's screen (``/orders``) and the API's list
(``/api/v1/orders``): one account's orders only, problems marked with their reason in the row,
filters that work without JavaScript and refresh in place with it, cursor pages, French."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest

from orderbridge.services.connections import add_connection
from orderbridge.services.mappings import set_mapping
from orderbridge.services.sync import sync_channel
from tests.builders import T0, order, replace
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid
from tests.web.portal.conftest import Portal

N = 30


@dataclass
class Shops:
    portal: Portal
    shop: FakeChannel
    shop_id: int
    their_shop_id: int


@pytest.fixture
def shops(portal: Portal) -> Shops:
    hub = portal.hub
    shop = FakeChannel()
    for i in range(N):
        skus = ("SKU-1", "ABC-9") if i % 5 == 0 else ("SKU-1",)  # every 5th is held: ABC-9 is unmapped
        shop.put(order(i, skus=skus, created_at=T0 + timedelta(hours=i), updated_minutes=i))
    hostile = order(99, customer_name='<script>alert("x")</script><b>Bold</b>', created_at=T0 - timedelta(days=1))
    shop.put(hostile)
    install(hub, shop, FakeDestination())
    set_mapping(portal.default, "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(portal.default, "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    sync_channel(portal.default, cid(hub, "shop"))
    theirs = add_connection(portal.other, "their-shop", "fake_channel", "http://fake", {"token": "t"})
    their_shop = FakeChannel()
    for i in range(3):
        their_shop.put(replace(order(500 + i), email="secret@other.example"))
    hub.connectors[theirs.id] = their_shop
    sync_channel(portal.other, theirs.id)
    return Shops(portal, shop, cid(hub, "shop"), theirs.id)


def numbers(html: str) -> list[str]:
    return re.findall(r'<a href="/orders/\d+">(#\d+)</a>', html)


def test_a_viewer_sees_the_accounts_newest_orders_with_each_problem_marked_and_its_reason_in_the_row(
    shops: Shops,
) -> None:
    viewer = shops.portal.signed_in("viewer")
    page = viewer.get("/orders")
    assert page.status_code == 200
    shown = numbers(page.text)
    assert shown[:3] == ["#1029", "#1028", "#1027"] and len(shown) == 31
    assert "#1500" not in page.text and "secret@other.example" not in page.text
    held = re.search(r'<tr class="problem">.*?</tr>', page.text, re.S)
    assert held is not None
    row = held.group(0)
    assert "#1025" in row and "SKU not mapped at the destination" in row and "ABC-9" in row
    assert page.text.count('<tr class="problem">') == 6


def test_the_filters_work_as_a_plain_form_and_keep_what_was_chosen(shops: Shops) -> None:
    viewer = shops.portal.signed_in("viewer")
    page = viewer.get("/orders", params={"state": "held", "connection_id": str(shops.shop_id), "sort": "oldest"})
    assert numbers(page.text) == ["#1000", "#1005", "#1010", "#1015", "#1020", "#1025"]
    assert '<option value="held" selected>' in page.text and '<option value="oldest" selected>' in page.text
    by_sku = viewer.get("/orders", params={"q": "ABC-9", "search": "sku"})
    assert len(numbers(by_sku.text)) == 6
    by_number = viewer.get("/orders", params={"q": "102"})
    assert sorted(numbers(by_number.text)) == [f"#102{i}" for i in range(10)]
    by_mail = viewer.get("/orders", params={"q": "BUYER7@example.com"})
    assert numbers(by_mail.text) == ["#1007"]
    reason = viewer.get("/orders", params={"reason": "sku_unmapped", "reason_value": "ABC-9"})
    assert len(numbers(reason.text)) == 6
    none = viewer.get("/orders", params={"q": "#9999"})
    assert "No order matches these filters." in none.text


def test_with_htmx_a_filter_swaps_only_the_results_which_refresh_themselves(shops: Shops) -> None:
    viewer = shops.portal.signed_in("viewer")
    part = viewer.get("/orders", params={"state": "held"}, headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.text and "<form" not in part.text
    assert 'id="orders-results"' in part.text and 'hx-trigger="every 5s"' in part.text
    assert 'hx-get="/orders?state=held"' in part.text  # the refresh asks for this same view
    set_mapping(shops.portal.default, "sku", "ABC-9", "W-9", cid(shops.portal.hub, "wh"))  # releases the six
    again = viewer.get("/orders", params={"state": "held"}, headers={"HX-Request": "true"})
    assert numbers(again.text) == [] and "No order matches these filters." in again.text
    ready = viewer.get("/orders", params={"state": "ready", "q": "#1025"}, headers={"HX-Request": "true"})
    assert numbers(ready.text) == ["#1025"] and 'class="problem"' not in ready.text


def test_the_pages_are_links_carrying_the_cursor_and_visit_every_order_once(shops: Shops) -> None:
    viewer = shops.portal.signed_in("viewer")
    seen: list[str] = []
    url = "/orders?limit=7&sort=number"
    pages = 0
    while url:
        page = viewer.get(url)
        assert page.status_code == 200
        seen += numbers(page.text)
        pages += 1
        found = re.search(r'<a rel="next" href="([^"]+)"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
        if found:
            assert parse_qs(urlparse(url).query)["limit"] == ["7"]  # the filters ride along
    assert pages == 5 and seen == sorted(seen) and len(set(seen)) == 31


def test_a_refused_filter_is_shown_with_its_hint_not_a_server_error(shops: Shops) -> None:
    viewer = shops.portal.signed_in("viewer")
    page = viewer.get("/orders", params={"state": "lost"})
    assert page.status_code == 422 and "unknown state &#39;lost&#39;" in page.text and "States:" in page.text
    part = viewer.get("/orders", params={"cursor": "damaged"}, headers={"HX-Request": "true"})
    assert part.status_code == 200 and "This page link is out of date or damaged" in part.text


def test_another_accounts_channel_is_not_found_and_its_orders_never_shown(shops: Shops) -> None:
    viewer = shops.portal.signed_in("viewer")
    assert viewer.get("/orders", params={"connection_id": str(shops.their_shop_id)}).status_code == 404
    assert numbers(viewer.get("/orders", params={"q": "secret@other.example"}).text) == []
    theirs = shops.portal.signed_in("viewer", tenant="other")
    assert sorted(numbers(theirs.get("/orders").text)) == ["#1500", "#1501", "#1502"]


def test_order_text_from_the_channel_is_shown_as_text(shops: Shops) -> None:
    page = shops.portal.signed_in("viewer").get("/orders", params={"q": "#1099"}).text
    assert "<script>alert" not in page and "<b>Bold</b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;Bold&lt;/b&gt;" in page


def test_an_anonymous_visitor_is_asked_to_sign_in(shops: Shops) -> None:
    answer = shops.portal.anonymous().get("/orders?state=held")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=/orders")


def test_the_inbox_speaks_french(shops: Shops) -> None:
    viewer = shops.portal.signed_in("viewer")
    viewer.post_form("/account/language", {"lang": "fr"})
    page = viewer.get("/orders", params={"state": "held"}).text
    assert '<html lang="fr">' in page and "Afficher les commandes" in page and "Bloquée pour" in page
    assert "Passée le" in page and "SKU non associé chez le destinataire" in page and "Bloquée" in page


# --- the API ---------------------------------------------------------------------------------


def test_the_api_lists_the_accounts_orders_a_cursor_at_a_time(shops: Shops) -> None:
    api = shops.portal.api("viewer")
    first = api.get("/api/v1/orders", params={"limit": 10})
    assert first.status_code == 200
    body = first.json()
    assert [o["number"] for o in body["orders"]][:2] == ["#1029", "#1028"] and body["prev_cursor"] is None
    row = body["orders"][4]
    assert row["number"] == "#1025" and row["problem"] is True and row["state"] == "held"
    assert row["reasons"] == [
        {"kind": "hold", "code": "sku_unmapped", "value": "ABC-9", "message": row["reasons"][0]["message"]}
    ]
    assert isinstance(row["total"], str) and Decimal(row["total"]) == Decimal("25.00")  # a decimal string, not a float
    assert row["currency"] == "USD"
    seen = [o["id"] for o in body["orders"]]
    cursor = body["next_cursor"]
    while cursor:
        more = api.get("/api/v1/orders", params={"limit": 10, "cursor": cursor}).json()
        seen += [o["id"] for o in more["orders"]]
        cursor = more["next_cursor"]
    assert len(seen) == len(set(seen)) == 31


def test_the_api_filters_as_the_inbox_does(shops: Shops) -> None:
    api = shops.portal.api("viewer")
    held = api.get("/api/v1/orders", params={"reason": "sku_unmapped:ABC-9", "sort": "number"}).json()
    assert [o["number"] for o in held["orders"]] == ["#1000", "#1005", "#1010", "#1015", "#1020", "#1025"]
    by_mail = api.get("/api/v1/orders", params={"email": "Buyer3@EXAMPLE.com"}).json()
    assert [o["number"] for o in by_mail["orders"]] == ["#1003"]


@pytest.mark.parametrize(
    ("params", "status", "code", "field"),
    [
        ({"state": "lost"}, 422, "invalid_input", "state"),
        ({"sort": "price"}, 422, "invalid_input", "sort"),
        ({"cursor": "damaged"}, 422, "invalid_input", "cursor"),
        ({"created_from": "yesterday"}, 422, "invalid_input", "created_from"),
        ({"limit": "0"}, 422, "invalid_input", "limit"),
    ],
)
def test_a_bad_parameter_is_refused_in_the_apis_error_shape_naming_the_field(
    shops: Shops, params: dict[str, str], status: int, code: str, field: str
) -> None:
    answer = shops.portal.api("viewer").get("/api/v1/orders", params=params)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == code and error["field"] == field and error["message"] and error["hint"]


def test_the_api_answers_another_accounts_channel_as_unknown_and_a_missing_token_as_401(shops: Shops) -> None:
    api = shops.portal.api("viewer")
    answer = api.get("/api/v1/orders", params={"connection_id": shops.their_shop_id})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert shops.portal.anonymous().get("/api/v1/orders").status_code == 401
