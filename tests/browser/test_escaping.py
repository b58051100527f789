"""Order text from the channel is data, never markup: a hostile order on every page of the portal.

The store sells one order whose name, note, tags, customer, addresses, line title and properties
and note attributes are ``<script>``, ``<img src=x onerror=…>`` and ``"><svg onload=…>``
(``hostile.py``); it is held (its SKU is unmapped), so the dashboard, the inbox, the exceptions and
its own page all show it. Every page a signed-in admin can open — read from the app's route table,
so a screen added later is visited too, with this order's id wherever a route names an order — is
opened in Chromium, and

- no dialog opens, no element the payloads would create exists, no element carries an ``on*=``
  attribute, ``window.obXss`` is unset, and no inline script was refused by the CSP (which would
  mean markup got through and only the CSP stopped it);
- the HTML the server sent contains none of the payloads unescaped;
- on the inbox and the order page the payload is there as text (escaped, not dropped).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.domain.roles import Role
from orderbridge.services import auth, order_imports
from orderbridge.services.reconcile import reconcile
from tests.browser import hostile
from tests.browser.conftest import sign_in
from tests.browser.world import HELD_SKU, World, running_world
from tests.web.portal.objects import KINDS, LOOKUPS
from tests.web.portal.routetable import Route, routes

#: what must never reach the page as markup (the HTML as sent, not the DOM)
RAW = ("<script>window.obXss", "<img src=x onerror", "<svg onload", '<img src="x"')


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[World]:
    def seed(w: World) -> None:
        placed = w.shop.add_order(**hostile.hostile_order(HELD_SKU))
        w.held_ids.append(str(placed["id"]))

    with running_world(tmp_path_factory.mktemp("escaping"), sqlite_template, seed=seed, ship_after_s=0.0) as w:
        scope = w.scope
        auth.create_token(scope, hostile.IMG, Role.VIEWER, by=auth.Actor.cli(scope))  # a label is text too
        reconcile(scope, w.shop_id, since=scope.now() - timedelta(days=60))
        # an upload previewed, not confirmed: its file name, a good order's text and a bad row's
        # value are the payloads (the preview, its progress and the upload pages show all three)
        rows = [
            "order_number,currency,sku,title,quantity,unit_price,customer_name,note",
            _csv_row(["I-1", "EUR", HELD_SKU, hostile.SCRIPT, "1", "1", hostile.IMG, hostile.SVG]),
            _csv_row(["I-2", "EUR", HELD_SKU, "mug", hostile.IMG, "1", "", ""]),
        ]
        token = order_imports.store_upload(
            auth.Actor.cli(scope), io.BytesIO("\n".join(rows).encode()), filename=f"{hostile.SVG}.csv"
        )
        order_imports.preview_upload(scope, token)
        w.wait_for("a hold alert and a fulfilment push", lambda: _has(w, "alert_id") and _has(w, "push_id"))
        # the store corrects the hostile address to another hostile one: the order page's Versions
        # section shows the diff between the two, every value of it outside text (issue #15)
        address = hostile.hostile_order(HELD_SKU)["shipping_address"]
        w.shop.update_order(
            int(w.held_ids[-1]), shipping_address={**address, "city": hostile.IMG, "address1": hostile.SVG}
        )
        w.wait_for("the hostile order's second version", lambda: w.version(w.held_ids[-1]) >= 2)
        yield w


def _csv_row(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def _has(w: World, param: str) -> bool:
    table = KINDS[param]
    with w.hub.db.read() as conn:
        return conn.execute(select(table.c.id).limit(1)).first() is not None


def values(w: World) -> dict[str, Any]:
    """A value for each object parameter: the hostile order, else the latest object of its kind."""
    hostile_external = w.held_ids[-1]
    out: dict[str, Any] = {}
    with w.hub.db.read() as conn:
        for param, table in KINDS.items():
            found = conn.execute(select(table.c.id).order_by(table.c.id.desc()).limit(1)).scalar()
            if found is not None:
                out[param] = found
        out["name"] = out["connection_name"] = "shop"
    out["order_id"] = w.order_id(hostile_external)
    out["order_ref"] = hostile.NUMBER  # the hostile order's number (Route.url quotes it)
    out["lang"] = "en"
    with w.hub.db.read() as conn:  # the latest upload: the hostile one
        table, column = LOOKUPS["import_token"]
        out["import_token"] = conn.execute(select(table.c[column]).order_by(table.c.id.desc()).limit(1)).scalar()
    return out


def pages(w: World) -> list[Route]:
    """Every portal page (a download such as ``/mappings/export.csv`` is not a page: the browser
    saves it rather than rendering it)."""
    return [
        r for r in routes(w.app) if r.part == "portal" and r.method == "GET" and r.doors and not r.path.endswith(".csv")
    ]


def test_no_page_runs_or_renders_the_markup_in_an_orders_text(world: World, page: Any, shot: Any) -> None:
    sign_in(page, world, "admin")
    given = values(world)
    visited, wrong = [], []
    for route in pages(world):
        if any(p not in given for p in route.params):
            wrong.append(f"{route.label}: no value for {route.params} in the escaping world — add one")
            continue
        url = world.url + route.url(given)
        response = page.goto(url)
        assert response is not None
        html = response.text() if response.ok else ""
        visited.append(route.label)
        raw = [r for r in RAW if r in html]
        if raw:
            wrong.append(f"{route.label}: the HTML carries {raw} unescaped")
        probe = page.evaluate(hostile.DOM_PROBE)
        hits = {k: v for k, v in probe.items() if v}
        if hits:
            wrong.append(f"{route.label}: injected into the DOM: {hits}")
    refused = [m for m in page.watched.console_errors if "Content Security Policy" in m or "Refused" in m]
    wrong += [f"dialog opened: {d}" for d in page.watched.dialogs]
    wrong += [f"the CSP had to refuse something: {m}" for m in refused]
    assert visited, "no page visited"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("screen", "path"), [("inbox", "/orders"), ("order page", "/orders/{order_id}")])
def test_the_orders_hostile_text_is_shown_as_text(world: World, page: Any, shot: Any, screen: str, path: str) -> None:
    if path not in {r.path for r in pages(world)}:
        pytest.fail(f"the {screen} ({path}) is not served: the escaping check has nothing to open")
    sign_in(page, world, "admin")
    page.goto(world.url + path.replace("{order_id}", str(values(world)["order_id"])))
    shot(page, screen.replace(" ", "-"))
    text = page.locator("main").inner_text()
    assert "alert('ob-xss-svg')" in text  # the order's number, as the channel sent it, as text
    assert page.evaluate(hostile.DOM_PROBE) == {"scripts": [], "images": [], "svgs": [], "handlers": [], "flag": False}


def test_the_probe_finds_each_payload_when_it_is_markup(page: Any) -> None:
    """The check above can fail: the same payloads written into a page as markup are all found."""
    page.set_content(f"<html><body><p>{hostile.IMG}</p><div>{hostile.SVG}</div></body></html>")
    page.add_script_tag(content="window.obXss = 1; // ob-xss")
    probe = page.evaluate(hostile.DOM_PROBE)
    assert probe["images"] and probe["svgs"] and probe["scripts"] and probe["flag"] is True
    assert any("onerror" in h for h in probe["handlers"]) and any("onload" in h for h in probe["handlers"])
    assert any("ob-xss" in d for d in page.watched.dialogs)  # the img's onerror ran


def test_the_diff_between_two_hostile_addresses_is_shown_as_text(world: World, page: Any, shot: Any) -> None:
    """The hostile order's address was changed in the store: its Versions section shows the change
    from one payload to the other, as text."""
    sign_in(page, world, "admin")
    page.goto(f"{world.url}/orders/{values(world)['order_id']}?from=1&to=2#versions")
    shot(page, "order-versions")
    section = page.locator("#versions").inner_text()
    assert "shipping_address.city" in section and "shipping_address.address1" in section
    assert hostile.SVG in section and hostile.IMG in section and hostile.SCRIPT in section  # before and after, as text
    assert page.evaluate(hostile.DOM_PROBE) == {"scripts": [], "images": [], "svgs": [], "handlers": [], "flag": False}
