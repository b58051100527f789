"""Every hand-written hostile order in one Shopify sandbox store, read by each road a store's data
takes (GraphQL pages, the bulk export, REST webhooks over the hub's real receiver), on SQLite and
PostgreSQL, with the ShipStation sandbox as destination.

One store and one sync per road, not one per case: the cases sit in the same batches as plain
orders placed between them, which is exactly what must come through unaffected.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from orderbridge.runtime.worker import run_cycle
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.sync import sync_channel
from tests.adversarial.cases import LINE, STORE_CASES, StoreCase
from tests.adversarial.harness import Expect, World, assert_quiet, assert_terminal_safe, judge, posted, world
from tests.scoped import cid, tenant

ROADS = ("pages", "bulk", "webhook")
PLAIN_EVERY = 8  # a plain order between every few hostile ones


def _post(w: World) -> None:
    run_cycle(tenant(w.hub), sync=False, shipments=False, push=False)


def _expectation(case: StoreCase, road: str) -> Expect:
    return case.webhook if road == "webhook" and case.webhook is not None else case.expect


def _place(w: World) -> tuple[list[tuple[str, StoreCase | None]], set[str]]:
    """Every case (and the plain orders between them) in the store: [(external id, case or None)]."""
    placed: list[tuple[str, StoreCase | None]] = []
    for k, case in enumerate(STORE_CASES):
        if k % PLAIN_EVERY == 0:
            placed.append((str(w.shop.add_order(line_items=[LINE])["id"]), None))
        order = w.shop.add_order(**case.overrides)
        seed_id = w.shop._ids[-1]  # the store's own id, also for an order it serves without one
        if case.then is not None:
            case.then(w.shop, {**order, "id": seed_id})
        placed.append((str(seed_id), case))
    placed.append((str(w.shop.add_order(line_items=[LINE])["id"]), None))
    return placed, {sku for case in STORE_CASES for sku in case.maps}


def _deliver_all(w: World, placed: list[tuple[str, StoreCase | None]]) -> None:
    for ext, case in placed:
        expect = posted() if case is None else _expectation(case, "webhook")
        response = w.deliver(body=w.shop.rest_json(int(ext)), topic="orders/create")
        if expect.kind == "refused":
            assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
            if expect.status is not None:
                assert response.status_code == expect.status, (case, response.text)
            assert expect.value in response.text, (case, response.text)
        else:
            assert response.status_code == 200, (case, response.text)


def _check_documents(w: World, placed: list[tuple[str, StoreCase | None]]) -> None:
    for ext, case in placed:
        if case is not None and case.items is not None:
            doc = w.document(ext)
            assert doc is not None, case.name
            sent: Counter[str] = Counter()
            for item in doc["items"]:
                sent[item["sku"]] += item["quantity"]
            assert dict(sent) == case.items, (case.name, doc["items"])


@pytest.mark.parametrize("road", ROADS)
def test_every_hostile_store_order_ends_as_it_expects_and_the_plain_orders_beside_it_are_posted_once(
    hub: Hub, road: str
) -> None:
    with world(hub, bulk=road == "bulk") as w:
        real_clock = w.shop.clock
        w.shop.clock = lambda: real_clock() - timedelta(minutes=30)  # so the later sync moves the cursor
        placed, mapped = _place(w)
        for sku in sorted(mapped):
            set_mapping(tenant(hub), "sku", sku, "W-MAPPED", cid(hub, "warehouse"))
        cases: dict[str, Expect] = {ext: _expectation(c, road) for ext, c in placed if c is not None}
        plain = {ext: posted() for ext, c in placed if c is None}

        if road == "webhook":
            _deliver_all(w, placed)
        else:
            report = sync_channel(tenant(hub), cid(hub, "shop"))
            assert report.ok, report.error
            assert report.counts.unidentified == sum(e.kind == "refused" for e in cases.values()), report.as_dict()
            assert report.counts.refused == report.counts.quarantined == 0  # the database refused nothing
        _post(w)
        judge(w, plain, source="plain")
        labels = {ext: c.name for ext, c in placed if c is not None}
        judge(w, cases, source="hand-written", labels=labels)
        _check_documents(w, placed)
        stored = {ext for ext, e in cases.items() if e.kind != "refused"} | set(plain)
        assert set(w.rows()) == stored  # nothing else, and nothing for a refused order

        if road == "webhook":  # the store polled afterwards agrees with what its webhooks said
            assert sync_channel(tenant(hub), cid(hub, "shop")).ok
            _post(w)
            polled = {ext: c.expect for ext, c in placed if c is not None}  # what the store's own copy gives
            judge(w, plain | polled, source="again", labels=labels)

        # a later sync still succeeds, moves the cursor, and brings the next order
        w.shop.clock = real_clock
        before = w.cursor()
        later = str(w.shop.add_order(line_items=[LINE])["id"])
        again = sync_channel(tenant(hub), cid(hub, "shop"))
        assert again.ok, again.error
        assert again.counts.inserted == 1, again.as_dict()
        _post(w)
        judge(w, {later: posted()}, source="plain")
        assert before is not None and (w.cursor() or before) > before
        assert max(w.posted().values()) == 1  # nothing was posted twice, on any road

        assert_terminal_safe(w, [ext for ext, _c in placed])
        assert_quiet(w)
