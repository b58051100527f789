"""The POS pre-flight on every surface: "test connection" (CLI, API, portal) shows each check with its
fix; the "create helper items" action from the CLI, the API and the portal's button; the POS
connection screen in French."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
import structlog
from typer.testing import CliRunner

from orderbridge.cli import common, main
from orderbridge.services.audit_trail import recent_actions
from orderbridge.services.hub import Hub
from tests.connectors.pos_kind.sandbox import HELPERS
from tests.connectors.pos_kind.world import World
from tests.connectors.pos_kind.world import world as world
from tests.scoped import tenant
from tests.web.portal.conftest import Portal
from tests.web.portal.conftest import portal as portal
from tests.web.portal.conftest import settings as settings

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.setattr(common, "make_hub", lambda: hub)
    monkeypatch.setattr(hub, "close", lambda: None)
    monkeypatch.setenv("LOGNAME", "ops")
    saved_logging = structlog.get_config()
    main.console.width = main.err.width = 2000

    def invoke(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(main.app, list(args))
        return result.exit_code, result.stdout, result.stderr

    yield invoke
    structlog.configure(**saved_logging)


def test_the_cli_test_shows_each_check_and_the_fix_command_then_creates_the_helper_items(
    world: World, cli: Cli
) -> None:
    code, out, err = cli("connections", "test", "pos")
    assert code == 0, err
    assert "TinyPOS reachable" in out and "pass employee: employee 'Online orders' is active" in out

    world.pos.remove_item("ONLINE-DISCOUNT")
    world.pos.employees["E1"]["active"] = False
    code, out, _err = cli("connections", "test", "pos")
    assert code == 1  # a script can tell: the credentials work, the POS would refuse the orders
    assert "FAIL employee: TinyPOS: the employee the sync acts as ('Online orders') is archived" in out
    assert "orderbridge connections update pos --setting 'employee=<JSON>'" in out
    assert "FAIL helper_items" in out and "orderbridge connections create-helper-items pos" in out

    code, out, err = cli("connections", "create-helper-items", "pos", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["created"] == ["ONLINE-DISCOUNT"]
    assert {c["name"]: c["ok"] for c in answer["checks"]} == {"employee": False, "helper_items": True, "location": True}
    assert [a.action for a in recent_actions(tenant(world.hub))][:1] == ["connection.helper_items"]


def test_the_api_test_returns_the_checks_and_the_helper_items_endpoint_makes_them(world: World, portal: Portal) -> None:
    for sku in HELPERS:
        world.pos.remove_item(sku)
    order = world.shop.add_order()
    world.cycle()
    assert world.state(order["id"]) == "held"
    api = portal.api("operator")
    tested = api.post(f"/api/v1/connections/{world.pos_id}/test")
    assert tested.status_code == 200, tested.text
    checks = {c["name"]: c for c in tested.json()["checks"]}
    assert checks["employee"]["ok"] is True
    failing = checks["helper_items"]
    assert failing["ok"] is False and failing["code"] == "pos_required_product_missing"
    assert failing["value"] == "pos: helper items" and failing["action"] == "create_helper_items"
    assert failing["fix"]["action"] == "create_helper_items" and failing["fix"]["params"] == {"connection": "pos"}

    assert api.post(f"/api/v1/connections/{world.pos_id}/helper-items").status_code == 403  # an admin's fix
    made = portal.api("admin").post(f"/api/v1/connections/{world.pos_id}/helper-items")
    assert made.status_code == 200, made.text
    assert made.json()["created"] == list(HELPERS) and made.json()["released"] == 1
    assert all(c["ok"] for c in made.json()["checks"])
    world.cycle()
    assert world.state(order["id"]) == "posted"


def test_the_portal_pos_screen_shows_the_checks_in_french_and_its_button_creates_the_items(
    world: World, portal: Portal
) -> None:
    world.pos.remove_item("ONLINE-SHIPPING")
    order = world.shop.add_order()
    world.cycle()
    admin = portal.signed_in("admin")
    assert admin.post_form("/account/language", {"lang": "fr"}).status_code in (200, 303)
    page = admin.get(f"/connections/{world.pos_id}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Vérifications avant envoi" in html and "Produits requis manquants dans le POS" in html
    assert "Créer les produits requis maintenant" in html and "1 commande est bloquée par ces vérifications." in html
    assert "ONLINE-SHIPPING" in html  # the POS's own words, as data

    done = admin.post_form(f"/connections/{world.pos_id}/helper-items")
    assert done.status_code == 303
    after = admin.get(done.headers["location"].split("#")[0])
    assert "Produits requis créés : ONLINE-SHIPPING. Commandes débloquées : 1." in after.text
    assert "Aucune commande n'est bloquée par ces vérifications." in after.text
    world.cycle()
    assert world.state(order["id"]) == "posted"


def test_the_portal_settings_form_selects_another_member_and_the_next_run_releases_the_orders(
    world: World, portal: Portal
) -> None:
    world.pos.employees["E1"]["active"] = False
    world.pos.employees["E2"] = {"id": "E2", "name": "<b>Commandes en ligne</b>", "active": True}
    order = world.shop.add_order()
    world.cycle()
    admin = portal.signed_in("admin")
    page = admin.get(f"/connections/{world.pos_id}")
    assert "a dedicated member such as &#39;Online orders&#39;" in page.text
    saved = admin.post_form(
        f"/connections/{world.pos_id}/pos-settings",
        {
            "setting_employee": '"E2"',
            "setting_location": '"L1"',
            "setting_field_map": "{}",
            "setting_field_defaults": "{}",
        },
    )
    assert saved.status_code == 303, saved.text
    page = admin.get(f"/connections/{world.pos_id}")
    assert "&lt;b&gt;Commandes en ligne&lt;/b&gt;" in page.text and "<b>Commandes" not in page.text  # escaped
    world.cycle()
    assert world.state(order["id"]) == "posted"
    assert "connection.settings" in [a.action for a in recent_actions(tenant(world.hub))]


def test_the_order_page_shows_the_pos_document_its_state_and_whether_stock_moved(world: World, portal: Portal) -> None:
    world.pos.pending_sales = True
    order = world.shop.add_order()
    world.cycle()
    oid = _oid(world, order["id"])
    api = portal.api("viewer")
    body = api.get(f"/api/v1/orders/{oid}").json()
    pos = next(d for d in body["destinations"] if d["destination"] == "pos")
    sale = world.sale(order["id"])
    assert sale is not None
    assert pos["pos_document"]["document_id"] == sale["id"] and pos["pos_document"]["state"] == "pending"
    assert pos["pos_document"]["stock_moved"] is False and pos["pos_document"]["total"] == "27.70"
    assert [p["code"] for p in body["problems"]] == ["pos_order_incomplete"]

    viewer = portal.signed_in("viewer")
    viewer.post_form("/account/language", {"lang": "fr"})
    html = viewer.get(f"/orders/{oid}").text
    assert "Document POS" in html and "En attente (non terminée)" in html
    assert "non : l'inventaire n'est pas encore ajusté dans le POS" in html
    assert "Non terminée dans le POS : inventaire non ajusté" in html  # the problem at the top

    world.pos.complete(sale["id"])
    world.cycle()
    pos = next(d for d in api.get(f"/api/v1/orders/{oid}").json()["destinations"] if d["destination"] == "pos")
    assert pos["pos_document"]["state"] == "completed" and pos["pos_document"]["stock_moved"] is True
    html = viewer.get(f"/orders/{oid}").text
    assert "Terminée" in html and "oui : l'inventaire est ajusté dans le POS" in html


def _oid(world: World, external_id: str) -> int:
    from sqlalchemy import select

    from orderbridge.storage.tables import orders

    with world.hub.db.read() as conn:
        return int(conn.execute(select(orders.c.id).where(orders.c.external_id == external_id)).scalar_one())


def test_the_test_button_answers_with_the_checks_and_the_holds_screen_groups_one_cause(
    world: World, portal: Portal
) -> None:
    world.pos.employees["E1"]["active"] = False
    for _ in range(3):
        world.shop.add_order()
    world.cycle()
    operator = portal.signed_in("operator")
    tested = operator.post_form(f"/connections/{world.pos_id}/test", headers={"HX-Request": "true"})
    assert tested.status_code == 200 and "<html" not in tested.text
    assert "The connection works." in tested.text and "Pre-flight checks" in tested.text
    assert "The POS employee the sync acts as is inactive" in tested.text
    assert "Create the helper items now" not in tested.text  # nothing an operator could press here

    causes = portal.api("viewer").get("/api/v1/holds").json()["causes"]
    (cause,) = [c for c in causes if c["code"] == "pos_employee_inactive"]
    assert cause["value"] == "pos: employee 'Online orders'" and cause["orders"] == 3  # one cause, one group
    assert cause["fix"]["action"] == "set_setting" and cause["fix"]["params"]["connection"] == "pos"
    page = operator.get("/holds")
    assert page.status_code == 200 and "The POS employee the sync acts as is inactive" in page.text


def test_the_cli_holds_list_names_the_pos_cause_and_the_command_that_fixes_it(world: World, cli: Cli) -> None:
    for sku in HELPERS:
        world.pos.remove_item(sku)
    world.shop.add_order()
    world.cycle()
    code, out, err = cli("holds")
    assert code == 0, err
    assert "pos_required_product_missing" in out and "pos: helper items" in out
    assert "orderbridge connections create-helper-items pos" in out
