"""A WooCommerce connection's page and API say its download rule in plain words: status processing."""

from __future__ import annotations

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.woocommerce import create_sandbox
from orderbridge.services.connections import add_connection
from tests.web.portal.conftest import Portal


def test_the_connection_page_and_api_name_the_channel_statuses_taken(portal: Portal) -> None:
    _state, app = create_sandbox(orders=0)
    with run_in_thread(app) as shop:
        row = add_connection(
            portal.scope("default"), "woo", "woocommerce", shop.base_url,
            {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"},
        )  # fmt: skip
        admin = portal.signed_in("admin")
        page = admin.get(f"/connections/{row.id}")
        assert page.status_code == 200, page.text
        assert "Orders are taken when their status in the channel is: processing;" in page.text
        admin.post_form("/account/language", {"lang": "fr"})
        french = admin.get(f"/connections/{row.id}")
        assert "quand leur statut dans le canal est : processing" in french.text
        api = portal.api("operator").get(f"/api/v1/connections/{row.id}")
        assert api.status_code == 200 and api.json()["download_rules"]["channel_states"] == ["processing"]
