"""Hostile edits to orders the 3PL already has: the store turns a posted order into one of the
hostile cases (quantity 0, a 301-character name, a NUL, an unknown status, escape sequences, no
lines, 1,001 lines, an unmapped SKU, a cancellation...), by the REST webhook and by the next sync.

The rule (decision 5, refined by order updates, issue #15): an order already posted gets a new
version and a ``version_changed`` event naming the fields, and the 3PL's document is never changed
to the hostile version. A change the default policies send for review (lines, totals, payment,
refunds the 3PL cannot take) holds the order with ``update_needs_review`` — nothing is sent until a
person decides, and accepting checks the version like any post (``services/order_updates``); a
change applied at once (the shipping address) is checked before it goes and held with the
destination's limit. So every input here ends *posted exactly once* — one document created,
never updated, with the content first posted — and posted or held again; nothing about the new
version may block a later sync or reach the terminal raw.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.runtime.worker import run_cycle
from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import events, orders
from tests.adversarial.cases import CAP, LINE
from tests.adversarial.harness import (
    Expect,
    World,
    assert_quiet,
    assert_terminal_safe,
    held_again,
    judge,
    posted,
    world,
)
from tests.scoped import cid, tenant

Json = dict[str, Any]
EDITS: dict[str, Callable[[Json], Json]] = {
    "a line's quantity set to 0": lambda o: {"line_items": [LINE, {**CAP, "quantity": 0}]},
    "a line's price made negative": lambda o: {"line_items": [LINE, {**CAP, "price": "-1.00"}]},
    "quantity of ten million": lambda o: {"line_items": [LINE, {**CAP, "quantity": 10_000_000}]},
    "name of 301 characters": lambda o: {"name": "#" + "N" * 300},
    "name with a NUL": lambda o: {"name": "#1\x002"},
    "name with markup and escapes": lambda o: {"name": "#[link=x]y[/link]\x1b]0;t\x07\x9b2J"},
    "unknown financial status": lambda o: {"financial_status": "under_review"},
    "refunded": lambda o: {"financial_status": "refunded"},
    "made a test order": lambda o: {"test": True},
    "an unmapped SKU with escapes": lambda o: {"line_items": [LINE, {**CAP, "sku": "NOPE-\x1b[2J"}]},
    "a SKU of 301 characters": lambda o: {"line_items": [LINE, {**CAP, "sku": "S" * 301}]},
    "every line removed": lambda o: {"line_items": []},
    "1,001 lines": lambda o: {"line_items": [CAP] * 1001},
    "a street of 150 characters": lambda o: {"shipping_address": {**o["shipping_address"], "address1": "S" * 150}},
    "a note of 20,000 characters": lambda o: {"note": "n" * 20_000},
    "300 tags": lambda o: {"tags": [f"t{i}" for i in range(300)]},
    "total below the subtotal": lambda o: {"total_price": "0.01"},
}


#: what each edit ends as when it is not simply "posted": held for review (nothing sent until a
#: person decides), or held by the 3PL's limit before the address update is sent
HELD_AGAIN: dict[str, Expect] = {
    **{
        name: held_again("update_needs_review")
        for name in (
            "a line's quantity set to 0",
            "a line's price made negative",
            "quantity of ten million",
            "unknown financial status",
            "refunded",
            "an unmapped SKU with escapes",
            "a SKU of 301 characters",
            "every line removed",
            "1,001 lines",
            "total below the subtotal",
        )
    },
    "a street of 150 characters": held_again("destination_field_too_long", "shipTo.street1"),
}


def _first_posted(w: World) -> dict[str, list[tuple[str, int]]]:
    return {
        key.split("-", 2)[2]: [(i["sku"], i["quantity"]) for i in doc["items"]]
        for key, doc in w.ss.orders_by_key().items()
    }


@pytest.mark.parametrize("road", ["sync", "webhook"])
def test_a_posted_order_edited_into_a_hostile_one_is_never_posted_again_and_its_new_version_is_recorded(
    hub: Hub, road: str
) -> None:
    with world(hub, bulk=False) as w:
        made = {name: w.shop.add_order(line_items=[LINE, CAP]) for name in EDITS}
        assert sync_channel(tenant(hub), cid(hub, "shop")).ok
        run_cycle(tenant(hub), sync=False, shipments=False, push=False)
        as_posted = _first_posted(w)
        assert len(as_posted) == len(EDITS)

        real_clock = w.shop.clock
        w.shop.clock = lambda: real_clock() + timedelta(minutes=2)  # a later update time than the ledger's
        for name, edit in EDITS.items():
            w.shop.update_order(made[name]["id"], **edit(made[name]))
            if road == "webhook":
                response = w.deliver(body=w.shop.rest_json(made[name]["id"]), topic="orders/updated")
                assert response.status_code == 200, (name, response.text)
                assert response.json()["outcome"] == "changed", (name, response.text)
        if road == "sync":
            report = sync_channel(tenant(hub), cid(hub, "shop"))
            assert report.ok, report.error
            assert report.counts.changed == len(EDITS), report.as_dict()
        run_cycle(tenant(hub), sync=False, shipments=False, push=False)

        labels = {str(o["id"]): name for name, o in made.items()}
        judge(
            w,
            {ext: HELD_AGAIN.get(name, posted()) for ext, name in labels.items()},
            source="hand-written",
            labels=labels,
        )
        assert _first_posted(w) == as_posted  # the 3PL's documents are as first posted
        assert all(n == 0 for n in w.ss.updates.values()), w.ss.updates  # and were never updated
        with hub.db.read() as conn:
            changed = {
                ext
                for ext, kind in conn.execute(
                    select(orders.c.external_id, events.c.kind).join(orders, orders.c.id == events.c.order_id)
                )
                if kind == "version_changed"
            }
            versions = dict(conn.execute(select(orders.c.external_id, orders.c.version)).all())
        assert changed == set(labels)  # each new version recorded
        assert all(versions[ext] == 2 for ext in labels), versions

        w.shop.clock = lambda: real_clock() + timedelta(minutes=4)
        later = str(w.shop.add_order(line_items=[LINE])["id"])
        again = sync_channel(tenant(hub), cid(hub, "shop"))
        assert again.ok, again.error
        run_cycle(tenant(hub), sync=False, shipments=False, push=False)
        judge(w, {later: posted()}, source="plain")
        assert_terminal_safe(w, list(labels))
        assert_quiet(w)
