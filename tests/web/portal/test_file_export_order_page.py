"""Seed 002 on the order page: a package that imports files refused one with an error file (its
words: hostile data, escaped) or has not taken one in time — the order page and the API show it
at the top with the fix, in English and French."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from orderbridge.runtime.worker import run_cycle
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import utcnow
from orderbridge.services.queries import find_order_id
from tests.builders import order
from tests.connectors.file_export.env import delivered
from tests.fakes import FakeChannel, install
from tests.web.portal.conftest import Portal

MESSAGE = "<img src=x onerror=alert(1)> Ledger account 4000 is closed"


def _world(portal: Portal, tmp_path: Path) -> Path:
    drop = tmp_path / "drop"
    drop.mkdir()
    channel = FakeChannel()
    channel.put(order(1))
    install(portal.hub, channel)
    add_connection(portal.default, "books", "file_export", "", {}, {"directory": str(drop), "pickup_limit_hours": 1})
    assert not run_cycle(portal.default).crashed
    return drop


def test_the_packages_error_file_is_shown_at_the_top_of_the_order_page_and_in_the_api(
    portal: Portal, tmp_path: Path
) -> None:
    drop = _world(portal, tmp_path)
    (file,) = delivered(drop)
    (drop / f"{file.name}.err").write_text(MESSAGE, encoding="utf-8")
    assert not run_cycle(portal.default).crashed
    oid = find_order_id(portal.default, "#1001")
    html = portal.signed_in("viewer").get(f"/orders/{oid}").text
    problem = html.index('id="problem-title"')
    assert problem < html.index('id="timeline-title"')
    top = html[problem : html.index('id="timeline-title"')]
    assert "Rejected by the destination" in top
    assert "&lt;img src=x onerror=alert(1)&gt; Ledger account 4000 is closed" in top
    assert "<img src=x" not in html
    assert "reset the order to pending" in top
    body = portal.api("viewer").get(f"/api/v1/orders/{oid}").json()
    (problem_json,) = body["problems"]
    assert problem_json["code"] == "destination_rejected" and MESSAGE in problem_json["message"]
    assert problem_json["fix"]["action"] == "retry_order"


def test_a_file_not_picked_up_is_a_hold_on_the_order_page_in_french_too(portal: Portal, tmp_path: Path) -> None:
    _world(portal, tmp_path)
    base = utcnow()
    portal.hub.now = lambda: base + timedelta(hours=2)
    assert not run_cycle(portal.default).crashed
    oid = find_order_id(portal.default, "#1001")
    html = portal.signed_in("viewer").get(f"/orders/{oid}").text
    assert "The package has not picked up the file" in html and "import job is running" in html
    client = portal.signed_in("operator")
    client.post_form("/account/language", {"lang": "fr"})
    french = portal.signed_in("operator").get(f"/orders/{oid}").text
    assert "Le logiciel n’a pas pris le fichier" in french
    body = portal.api("viewer").get(f"/api/v1/orders/{oid}").json()
    assert [p["code"] for p in body["problems"]] == ["export_not_picked_up"]
