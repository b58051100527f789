"""Alerts render a fix as a link to the portal page where it is made (``web/links.py``)."""

from __future__ import annotations

from orderbridge.domain import reasons as R
from orderbridge.fixes import check_connection, register_webhooks, retry_order, show_audit, show_holds
from orderbridge.web import links

PUBLIC = "https://hub.example.com/"


def test_links_point_at_the_screen_where_the_fix_is_made() -> None:
    assert links.fix_link(PUBLIC, check_connection("shop")) == "https://hub.example.com/connections/by-name/shop"
    assert links.fix_link(PUBLIC, register_webhooks("shop")) == "https://hub.example.com/connections/by-name/shop"
    assert links.fix_link(PUBLIC, show_audit(7)) == "https://hub.example.com/audits/7"
    assert links.fix_link(PUBLIC, show_holds()) == "https://hub.example.com/holds"
    assert links.fix_link(PUBLIC, show_holds("sku_unmapped", "ABC 1&2")) == (
        "https://hub.example.com/holds?code=sku_unmapped&value=ABC+1%262"
    )
    assert links.fix_link(PUBLIC, retry_order("Retry it.", "#1001")) == "https://hub.example.com/orders/by-ref/%231001"


def test_a_fix_made_on_the_page_of_its_holds_has_no_link_of_its_own() -> None:
    assert links.fix_link(PUBLIC, R.sku_unmapped("ABC-1", "wh").fix) is None
    assert links.fix_link(PUBLIC, R.required_field_missing("phone", "wh").fix) is None


def test_names_in_paths_are_escaped_and_the_receiver_is_the_route_web_app_serves() -> None:
    assert links.connection(PUBLIC, "a/b c") == "https://hub.example.com/connections/by-name/a%2Fb%20c"
    assert links.receiver_address("http://127.0.0.1:8000", "shopify", 42) == "http://127.0.0.1:8000/webhooks/shopify/42"
