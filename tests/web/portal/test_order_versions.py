"""An order's versions and the diff between two, over a real port: the API (its shape, a missing
version a typed 422, another tenant's order a 404) and the order page's Versions section (a GET
form, in French too, channel text escaped)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from orderbridge.domain.order import Address, PaymentStatus
from orderbridge.services.connections import add_connection
from orderbridge.services.queries import find_order_id
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from tests.builders import order, replace
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid
from tests.web.portal.conftest import Portal

SCRIPT = "<script>alert('x')</script>"
IMG = '"><img src=x onerror=alert(1)>'


@pytest.fixture
def changed(portal: Portal) -> int:
    """The default tenant's order #1001 in three versions: as placed (authorised, to Lyon), paid,
    then sent to Paris."""
    install(portal.hub, FakeChannel(), FakeDestination())
    channel: Any = portal.hub.connectors[cid(portal.hub, "shop")]
    lyon = Address(name="Ana", address1="1 rue Neuve", city="Lyon", country_code="FR")
    first = order(1, payment_status=PaymentStatus.AUTHORIZED, shipping_address=lyon)
    channel.put(first)
    sync_channel(portal.default, cid(portal.hub, "shop"))
    paid = replace(first, payment_status=PaymentStatus.PAID, updated_at=first.updated_at + timedelta(minutes=1))
    channel.put(paid)
    sync_channel(portal.default, cid(portal.hub, "shop"))
    paris = replace(
        paid, shipping_address=replace(lyon, city="Paris"), updated_at=paid.updated_at + timedelta(minutes=1)
    )
    channel.put(paris)
    sync_channel(portal.default, cid(portal.hub, "shop"))
    return find_order_id(portal.default, "#1001")


@pytest.fixture
def foreign(portal: Portal) -> int:
    scope: Scope = portal.other
    add_connection(scope, "shop", "fake_channel", "http://fake-other", {"token": "t"})
    channel = FakeChannel()
    channel.put(order(9))
    portal.hub.connectors[scope.connection_id("shop")] = channel
    sync_channel(scope, scope.connection_id("shop"))
    return find_order_id(scope, "#1009")


def test_the_api_lists_every_version_with_what_changed(portal: Portal, changed: int) -> None:
    answer = portal.api("viewer").get(f"/api/v1/orders/{changed}/versions")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(v["version"], v["classes"]) for v in body["versions"]] == [
        (1, []),
        (2, ["payment_captured"]),
        (3, ["shipping_address"]),
    ]
    assert body["versions"][2]["summary"] == "Shipping address changed (city: Lyon → Paris)"
    assert len({v["content_hash"] for v in body["versions"]}) == 3 and body["versions"][0]["readable"] is True


def test_the_api_diffs_the_previous_and_the_current_version_or_any_two(portal: Portal, changed: int) -> None:
    api = portal.api("viewer")
    latest = api.get(f"/api/v1/orders/{changed}/diff").json()
    assert (latest["from"], latest["to"], latest["empty"]) == (2, 3, False)
    assert latest["changes"] == [
        {"path": "shipping_address.city", "before": "Lyon", "after": "Paris", "change": "shipping_address"}
    ]
    both = api.get(f"/api/v1/orders/{changed}/diff", params={"from": 1, "to": 3}).json()
    assert both["classes"] == ["payment_captured", "shipping_address"]
    assert both["summary"] == "Payment captured; shipping address changed (city: Lyon → Paris)"
    same = api.get(f"/api/v1/orders/{changed}/diff", params={"from": 2, "to": 2}).json()
    assert same["empty"] is True and same["changes"] == []


def test_a_version_the_order_does_not_have_is_a_typed_422_naming_the_ones_it_has(portal: Portal, changed: int) -> None:
    answer = portal.api("viewer").get(f"/api/v1/orders/{changed}/diff", params={"from": 9})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("no_such_version", "from")
    assert "no version 9" in error["message"] and "versions 1 to 3" in error["hint"]
    assert portal.api("viewer").get(f"/api/v1/orders/{changed}/diff", params={"to": 0}).status_code == 422


def test_another_tenants_order_has_no_versions_to_show(portal: Portal, changed: int, foreign: int) -> None:
    api = portal.api("admin")
    for path in ("versions", "diff"):
        answer = api.get(f"/api/v1/orders/{foreign}/{path}")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", path
    assert portal.signed_in("admin").get(f"/orders/{foreign}", params={"from": 1, "to": 1}).status_code == 404
    assert portal.anonymous().get(f"/api/v1/orders/{changed}/versions").status_code == 401


def test_the_order_page_lists_the_versions_and_shows_the_diff_chosen_in_a_get_form(
    portal: Portal, changed: int
) -> None:
    client = portal.signed_in("viewer")
    html = client.get(f"/orders/{changed}").text
    section = html[html.index('id="versions"') :]
    assert "Payment captured" in section and "Shipping changed" in section
    assert 'form method="get" action="/orders/' in section and 'name="from"' in section
    assert "Changes from version 2 to version 3" in section  # the default: previous → current
    assert "<code>shipping_address.city</code></td><td>Lyon</td><td>Paris</td>" in section
    chosen = client.get(f"/orders/{changed}", params={"from": 1, "to": 2}).text
    assert "Changes from version 1 to version 2" in chosen and "<code>payment_status</code>" in chosen
    missing = client.get(f"/orders/{changed}", params={"from": 1, "to": 7})
    assert missing.status_code == 200 and "the order has no version 7" in missing.text  # said in the section


def test_a_french_reader_reads_the_versions_in_french(portal: Portal, changed: int) -> None:
    portal.signed_in("viewer").post_form("/account/language", {"lang": "fr"})
    html = portal.signed_in("viewer").get(f"/orders/{changed}").text
    assert "Paiement encaissé" in html and "Changements de la version 2 à la version 3" in html


def test_a_hostile_address_in_a_diff_is_text(portal: Portal) -> None:
    install(portal.hub, FakeChannel(), FakeDestination())
    channel: Any = portal.hub.connectors[cid(portal.hub, "shop")]
    first = order(1, shipping_address=Address(city=SCRIPT, address1="1 Main St"))
    channel.put(first)
    sync_channel(portal.default, cid(portal.hub, "shop"))
    channel.put(
        replace(
            first,
            shipping_address=Address(city=IMG, address1=SCRIPT),
            updated_at=first.updated_at + timedelta(minutes=1),
        )
    )
    sync_channel(portal.default, cid(portal.hub, "shop"))
    oid = find_order_id(portal.default, "#1001")
    html = portal.signed_in("admin").get(f"/orders/{oid}").text
    section = html[html.index('id="versions"') :]
    assert "<script>alert" not in section and "<img src=x" not in section
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in section and "&lt;img src=x onerror=alert(1)&gt;" in section
    )
    api = portal.api("viewer").get(f"/api/v1/orders/{oid}/diff").json()
    assert {c["path"]: c["after"] for c in api["changes"]} == {
        "shipping_address.address1": SCRIPT,
        "shipping_address.city": IMG,
    }  # data, as it came
