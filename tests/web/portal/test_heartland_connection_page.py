"""The Heartland Retail connection page in the portal, against the Heartland sandbox on a real port: the
pre-flight checks read now (an archived acting user failing with its fix), and — for seed 001's French
readers — the connection's settings described in French."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.heartland import HeartlandState
from orderbridge.sandboxes.heartland import create_sandbox as heartland_sandbox
from orderbridge.services.connections import add_connection
from tests.scoped import cid
from tests.web.portal.conftest import Portal


@pytest.fixture
def pos(portal: Portal) -> Iterator[tuple[int, HeartlandState]]:
    state, app = heartland_sandbox()
    with run_in_thread(app) as http:
        add_connection(
            portal.default,
            "pos",
            "heartland",
            http.base_url,
            {"api_token": "hl_sandbox_token"},
            {"station_id": next(iter(state.stations))},
        )
        yield cid(portal.hub, "pos"), state


def test_the_heartland_page_shows_each_check_and_describes_its_settings_in_french(
    portal: Portal, pos: tuple[int, HeartlandState]
) -> None:
    connection_id, state = pos
    state.set_user_active("online-orders", False)
    admin = portal.signed_in("admin")
    admin.post_form("/account/language", {"lang": "fr"})
    html = admin.get(f"/connections/{connection_id}").text
    section = html[html.index('id="preflight"') :]
    assert "archived" in section and "Online orders" in section  # the failing check, with its fix
    assert "Register 1" in section  # the station's check passed, in Heartland's words
    assert "un employé dédié, par exemple « Commandes en ligne »" in section
    assert "facturer chaque commande une fois ouverte" in section
    assert "&#39;custom:&lt;clé&gt;&#39;" in section  # escaped, never markup
