"""Download switches in seed 001's words: an order a switch leaves out is skipped with the switch named
and how to turn it on; turning it on re-evaluates what it had skipped, which then goes to the POS."""

from __future__ import annotations

import json

from orderbridge.fixes import FixAction
from orderbridge.services.download_switches import set_switches, switches
from orderbridge.services.principals import Actor
from tests.connectors.pos_kind.test_surfaces import Cli
from tests.connectors.pos_kind.test_surfaces import cli as cli
from tests.connectors.pos_kind.world import World
from tests.connectors.pos_kind.world import world as world
from tests.scoped import cid, tenant
from tests.web.portal.conftest import Portal
from tests.web.portal.conftest import portal as portal
from tests.web.portal.conftest import settings as settings


def positions(world: World) -> dict[str, tuple[bool, int]]:
    return {s.switch.value: (s.on, s.skipped) for s in switches(tenant(world.hub), cid(world.hub, "shop"))}


def test_a_processed_order_is_skipped_naming_the_switch_until_it_is_turned_on(world: World) -> None:
    shipped = world.shop.add_order(state="shipped")
    world.cycle()
    assert world.state(shipped["id"]) == "skipped"
    skip = world.holds(shipped["id"])[("fulfillment_status_not_downloaded", "fulfilled")]
    assert "the 'processed' download switch is off" in skip["message"]
    assert skip["fix"].action is FixAction.EDIT_DOWNLOAD_RULES and skip["fix"].param("switch") == "processed"
    assert "Turn on the 'processed' download switch (Download processed orders)" in skip["fix"].text
    assert positions(world)["processed"] == (False, 1) and positions(world)["unprocessed"] == (True, 0)

    done = set_switches(tenant(world.hub), cid(world.hub, "shop"), {"processed": True}, by=Actor.cli(tenant(world.hub)))
    assert done.changed == ["processed"] and done.released == 1
    assert world.state(shipped["id"]) == "ready"
    world.cycle()
    assert world.state(shipped["id"]) == "posted" and world.sale(shipped["id"]) is not None
    assert positions(world)["processed"] == (True, 0)


def test_test_and_cancelled_orders_name_their_switches_and_turning_one_on_sends_them(world: World) -> None:
    test, cancelled = world.shop.add_order(test=True), world.shop.add_order(state="cancelled")
    world.cycle()
    assert world.holds(test["id"])[("test_order", "test")]["fix"].param("switch") == "test"
    assert world.holds(cancelled["id"])[("cancelled_order", "cancelled")]["fix"].param("switch") == "cancelled"
    assert positions(world)["test"] == (False, 1) and positions(world)["cancelled"] == (False, 1)
    set_switches(tenant(world.hub), cid(world.hub, "shop"), {"test": True}, by=Actor.cli(tenant(world.hub)))
    world.cycle()
    assert world.state(test["id"]) == "posted" and world.state(cancelled["id"]) == "skipped"


def test_the_cli_lists_and_sets_the_switches(world: World, cli: Cli) -> None:
    world.shop.add_order(state="shipped")
    world.cycle()
    code, out, err = cli("connections", "switches", "shop")
    assert code == 0, err
    assert "off processed: Download processed orders (already fulfilled) — 1 order(s) skipped by it" in out
    code, out, err = cli("connections", "switches", "shop", "--on", "processed", "--off", "test", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["changed"] == ["processed"] and answer["released"] == 1
    code, _out, err = cli("connections", "switches", "shop", "--on", "shipped")
    assert code != 0 and "no download switch 'shipped'" in err
    code, _out, err = cli("connections", "switches", "pos")
    assert code != 0 and "download switches are a channel's" in err


def test_the_api_and_the_portal_show_and_set_the_switches_in_french(world: World, portal: Portal) -> None:
    archived = world.shop.add_order(state="shipped")
    world.cycle()
    shop = cid(world.hub, "shop")
    got = portal.api("viewer").get(f"/api/v1/connections/{shop}/switches").json()
    assert {s["switch"]: (s["on"], s["skipped"]) for s in got["switches"]}["processed"] == (False, 1)
    assert portal.api("operator").put(f"/api/v1/connections/{shop}/switches", json={"test": True}).status_code == 403

    admin = portal.signed_in("admin")
    admin.post_form("/account/language", {"lang": "fr"})
    html = admin.get(f"/connections/{shop}").text
    assert "Paramètres de téléchargement des commandes" in html
    assert "Télécharger les commandes traitées (déjà expédiées)" in html
    assert "1 commande ignorée parce que ce paramètre est désactivé." in html
    saved = admin.post_form(f"/connections/{shop}/switches", {"switch_unprocessed": "on", "switch_processed": "on"})
    assert saved.status_code == 303
    assert "Commandes ignorées débloquées : 1." in admin.get(f"/connections/{shop}").text
    world.cycle()
    assert world.state(archived["id"]) == "posted"
    put = portal.api("admin").put(f"/api/v1/connections/{shop}/switches", json={"processed": False})
    assert put.status_code == 200 and put.json()["changed"] == ["processed"]
