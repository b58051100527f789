"""The place-order form (``/orders/new``) over HTTP on both databases: a plain POST places the
order once whatever the double clicks, problems are shown next to their fields with the fix, the
htmx preview and suggestions answer their partials, and nothing but placing writes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from orderbridge.services.connections import add_connection
from orderbridge.services.mappings import set_mapping
from orderbridge.storage.tables import orders
from tests.scoped import cid
from tests.web.portal.conftest import Portal, SignedIn

_TOKEN = re.compile(r'name="idempotency_token" value="([^"]+)"')


@pytest.fixture
def mapped(portal: Portal) -> Portal:
    add_connection(portal.default, "wh", "shipstation", "http://wh.local", {"api_key": "k", "api_secret": "s"})
    set_mapping(portal.default, "sku", "TEE-BLK-S", "TEE-BLK-S", cid(portal.hub, "wh"))
    set_mapping(portal.default, "shipping", "Standard", "ups:ups_ground", cid(portal.hub, "wh"))
    return portal


def form(client: SignedIn, **changes: str) -> dict[str, str]:
    page = client.get("/orders/new")
    assert page.status_code == 200, page.text
    token = _TOKEN.search(page.text)
    assert token
    data = {
        "csrf_token": client.csrf,
        "idempotency_token": token.group(1),
        "rows": "3",
        "currency": "EUR",
        "payment_status": "paid",
        "customer_name": "Ada Lovelace",
        "ship_name": "Ada",
        "ship_address1": "1 rue de Rivoli",
        "ship_city": "Paris",
        "ship_country_code": "FR",
        "shipping_method": "Standard",
        "shipping_price": "4.90",
        "line-0-sku": "TEE-BLK-S",
        "line-0-quantity": "2",
        "line-0-unit_price": "12.50",
    }
    data.update(changes)
    return data


def count(portal: Portal) -> int:
    with portal.hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(orders)).scalar_one())


def test_the_form_suggests_the_mapped_skus_and_methods_and_is_for_operators(mapped: Portal) -> None:
    page = mapped.signed_in("operator").get("/orders/new")
    assert page.status_code == 200
    assert '<datalist id="sku-options"><option value="TEE-BLK-S">wh: TEE-BLK-S</option>' in page.text
    assert '<option value="Standard">wh: ups:ups_ground</option>' in page.text
    assert 'name="idempotency_token"' in page.text and 'action="/orders"' in page.text
    assert mapped.signed_in("viewer").get("/orders/new").status_code == 403


def test_the_inbox_links_to_the_form_for_operators_only(mapped: Portal) -> None:
    assert 'href="/orders/new"' in mapped.signed_in("operator").get("/orders").text
    assert 'href="/orders/new"' not in mapped.signed_in("viewer").get("/orders").text


def test_a_plain_post_places_the_order_and_a_double_submit_makes_no_second(mapped: Portal) -> None:
    client = mapped.signed_in("operator")
    data = form(client)
    first = client.post("/orders", data=data)
    assert first.status_code == 303, first.text
    target = first.headers["location"]
    assert re.fullmatch(r"/orders/\d+", target)
    page = client.get(target)
    assert "Order M-1 placed." in page.text and "M-1" in page.text
    second = client.post("/orders", data=data)  # the double click, the browser's retry
    assert second.status_code == 303 and second.headers["location"] == target
    assert "was already placed by this form" in client.get(target).text
    assert count(mapped) == 1


def test_the_same_form_sent_back_with_other_content_is_refused_with_a_fresh_form(mapped: Portal) -> None:
    client = mapped.signed_in("operator")
    data = form(client)
    assert client.post("/orders", data=data).status_code == 303
    again = client.post("/orders", data={**data, "line-0-quantity": "5"})
    assert again.status_code == 409 and "This form already placed an order." in again.text
    fresh = _TOKEN.search(again.text)
    assert fresh and fresh.group(1) != data["idempotency_token"]
    assert (
        client.post("/orders", data={**data, "line-0-quantity": "5", "idempotency_token": fresh.group(1)}).status_code
        == 303
    )
    assert count(mapped) == 2


def test_problems_are_shown_next_to_their_fields_with_the_fix_and_nothing_is_placed(mapped: Portal) -> None:
    client = mapped.signed_in("operator")
    data = form(client, currency="euro", **{"line-1-sku": "MUG", "line-1-quantity": "two", "line-1-unit_price": "3"})
    answer = client.post("/orders", data=data)
    assert answer.status_code == 422
    assert 'id="currency" name="currency" type="text" value="EURO"' not in answer.text  # the value as typed is kept
    assert 'value="euro"' in answer.text and 'aria-invalid="true" aria-describedby="currency-error' in answer.text
    error = re.search(r'<span class="field-error" id="line-1-quantity-error">(.*?)</span>\s*</td>', answer.text, re.S)
    assert (
        error and "This is not a whole number." in error.group(1) and "Give a whole number of units" in error.group(1)
    )
    assert "given: two" in error.group(1)
    assert count(mapped) == 0


def test_the_htmx_preview_shows_the_totals_and_the_hold_to_come_and_writes_nothing(mapped: Portal) -> None:
    client = mapped.signed_in("operator")
    data = form(client, **{"line-1-sku": "GHOST-9", "line-1-quantity": "1", "line-1-unit_price": "3"})
    answer = client.post("/orders/new/preview", data=data, headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert "<html" not in answer.text  # the partial only
    assert '<strong class="order-total">€32.90</strong>' in answer.text
    assert "It will be held until the reasons below are fixed:" in answer.text and "GHOST-9" in answer.text
    assert count(mapped) == 0


def test_without_javascript_add_a_line_and_preview_give_the_whole_page_again(mapped: Portal) -> None:
    client = mapped.signed_in("operator")
    data = form(client, add_line="1")
    more = client.post("/orders/new/preview", data=data)
    assert more.status_code == 200 and 'name="rows" value="4"' in more.text and 'id="line-3-sku"' in more.text
    assert 'value="TEE-BLK-S"' in more.text  # what was typed is kept
    data.pop("add_line")
    looked = client.post("/orders/new/preview", data=data)
    assert "€29.90" in looked.text and "It will be posted to the destinations at once." in looked.text
    assert count(mapped) == 0


def test_suggestions_answer_the_options_for_what_is_typed(mapped: Portal) -> None:
    client = mapped.signed_in("operator")
    found = client.get("/orders/new/suggestions", params={"kind": "sku", "line-0-sku": "tee"})
    assert found.status_code == 200 and found.text.strip() == '<option value="TEE-BLK-S">wh: TEE-BLK-S</option>'
    none = client.get("/orders/new/suggestions", params={"kind": "sku", "line-0-sku": "zzz"})
    assert none.text.strip() == ""
    assert client.get("/orders/new/suggestions", params={"kind": "colour"}).status_code == 422


def test_the_form_speaks_french(mapped: Portal) -> None:
    client = mapped.signed_in("operator")
    assert client.post_form("/account/language", {"lang": "fr"}).status_code in (200, 303)
    page = client.get("/orders/new")
    assert "Passer une commande" in page.text and "Ajouter une ligne" in page.text
    data = form(client, currency="")
    answer = client.post("/orders", data=data)
    assert answer.status_code == 422 and "Ce champ est obligatoire." in answer.text


def test_outside_text_is_escaped_on_the_form(mapped: Portal) -> None:
    client = mapped.signed_in("operator")
    hostile = '"><script>alert(1)</script>'
    answer = client.post("/orders", data=form(client, customer_name=hostile, currency="x"))
    assert answer.status_code == 422 and "<script>alert(1)</script>" not in answer.text
    assert "&#34;&gt;&lt;script&gt;" in answer.text or "&quot;&gt;&lt;script&gt;" in answer.text


def test_the_manual_channel_shows_on_the_connections_screens_and_is_not_offered_to_add(mapped: Portal) -> None:
    client = mapped.signed_in("admin")
    assert client.post("/orders", data=form(client)).status_code == 303
    listed = client.get("/connections")
    assert listed.status_code == 200 and "Manual orders" in listed.text
    page = client.get(f"/connections/{cid(mapped.hub, 'manual')}")
    assert page.status_code == 200, page.text
    assert "Sync now" not in page.text
    offered = client.get("/connections/new")
    assert 'value="manual"' not in offered.text and 'value="shopify"' in offered.text
