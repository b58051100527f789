"""Hostile shipments on the way back: the ShipStation sandbox ships posted orders with tracking
numbers and carrier codes a careless or hostile warehouse could enter (escape sequences, Rich
markup, a NUL, 300 characters, a number, a list, nothing), and the hub's shipment poll and
fulfilment push carry them to the Shopify sandbox, on SQLite and PostgreSQL.

Each shipment ends one of two ways, named by the case: **pushed** — exactly one Shopify fulfilment,
with the tracking number and company as the warehouse entered them (text is data: what is odd about
it is the terminal's business, not the channel's) — or **held** — no fulfilment, the push held with
the named reason. Always: the poll and the push never crash (one shipment with a NUL used to fail
the whole poll on PostgreSQL, so no shipment of that warehouse was ever recorded), the other
shipments are pushed, no error is logged, and ``orders show`` prints no raw control character.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from orderbridge.runtime.worker import run_cycle
from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import fulfilment_pushes, orders
from tests.adversarial.cases import CAP, LINE
from tests.adversarial.harness import TALLY, assert_quiet, assert_terminal_safe, world
from tests.scoped import cid, tenant

PUSHED, HELD = "pushed", "held"
#: name → (ship_now overrides, outcome, reason code when held, (tracking, company) when pushed)
SHIPMENTS: dict[str, tuple[dict[str, Any], str, str, tuple[str, str] | None]] = {
    "tracking with escapes": (
        {"tracking_number": "1Z\x1b]0;owned\x07\x1b[2J"},
        PUSHED,
        "",
        ("1Z\x1b]0;owned\x07\x1b[2J", "ups"),
    ),
    "tracking with link markup": (
        {"tracking_number": "[link=https://e.example]1Z[/link]"},
        PUSHED,
        "",
        ("[link=https://e.example]1Z[/link]", "ups"),
    ),
    "tracking of 300 characters": ({"tracking_number": "1Z" + "9" * 298}, PUSHED, "", ("1Z" + "9" * 298, "ups")),
    "tracking in many scripts": ({"tracking_number": "1Z🦄\u202e日本"}, PUSHED, "", ("1Z🦄\u202e日本", "ups")),
    "tracking as a number": ({"tracking_number": 12345}, PUSHED, "", ("12345", "ups")),
    "carrier with HTML and escapes": ({"carrier_code": "<script>x</script>\x1b[2J"}, PUSHED, "", None),
    "tracking with a NUL": ({"tracking_number": "1Z\x00X"}, HELD, "invalid_text", None),
    "carrier with a NUL": ({"carrier_code": "u\x00ps"}, HELD, "invalid_text", None),
    "tracking as a list": ({"tracking_number": ["1Z"]}, HELD, "tracking_number_missing", None),
    "tracking as an object": ({"tracking_number": {"n": "1Z"}}, HELD, "tracking_number_missing", None),
    "no tracking": ({"tracking_number": None}, HELD, "tracking_number_missing", None),
    "empty tracking": ({"tracking_number": ""}, HELD, "tracking_number_missing", None),
    "no carrier": ({"carrier_code": None}, HELD, "carrier_missing", None),
}


def test_every_hostile_shipment_is_pushed_once_as_entered_or_held_by_name_and_never_stops_the_poll(hub: Hub) -> None:
    with world(hub, bulk=False) as w:
        made = {name: w.shop.add_order(line_items=[LINE, CAP]) for name in SHIPMENTS}
        plain = w.shop.add_order(line_items=[LINE])
        assert sync_channel(tenant(hub), cid(hub, "shop")).ok
        run_cycle(tenant(hub), sync=False, shipments=False, push=False)
        keys = {e.key.split("-", 2)[2]: e.key for e in w.ss.entries("order_created")}
        for name, o in made.items():
            w.ss.ship_now(keys[str(o["id"])], **SHIPMENTS[name][0])
        w.ss.ship_now(keys[str(plain["id"])])
        report = run_cycle(tenant(hub), sync=False, post=False)
        assert report.crashed == [], report
        assert report.shipments[0]["shipments_new"] == len(SHIPMENTS) + 1, report

        with hub.db.read() as conn:
            pushes = {
                ext: (status, code or "")
                for ext, status, code in conn.execute(
                    select(orders.c.external_id, fulfilment_pushes.c.status, fulfilment_pushes.c.reason_code).join(
                        orders, orders.c.id == fulfilment_pushes.c.order_id
                    )
                )
            }
        wrong = []
        for name, o in made.items():
            _overrides, outcome, code, sent = SHIPMENTS[name]
            fulfilments = w.shop.fulfillments(o["id"])
            got = (pushes.get(str(o["id"])), [(f["tracking_number"], f["tracking_company"]) for f in fulfilments])
            if outcome == PUSHED:
                ok = got[0] == (PUSHED, "") and len(fulfilments) == 1 and (sent is None or got[1] == [sent])
            else:
                ok = got[0] == (HELD, code) and fulfilments == []
            if not ok:
                wrong.append(f"{name}: expected {outcome} {code or sent}, got {got}")
            TALLY[("hand-written", "posted" if outcome == PUSHED else "held")] += 1
        assert not wrong, "\n".join(wrong)
        assert len(w.shop.fulfillments(plain["id"])) == 1  # the plain shipment beside them

        again = run_cycle(tenant(hub), sync=False, post=False)  # a later poll and push: nothing new, nothing twice
        assert again.crashed == [] and all(len(w.shop.fulfillments(o["id"])) <= 1 for o in made.values())
        assert_terminal_safe(w, [str(o["id"]) for o in made.values()])
        assert_quiet(w)
