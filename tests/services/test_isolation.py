"""One order the database refuses never stops its store (issue #10, poison-pill isolation).

A real database error is injected on one row of a batch — a trigger the test creates, raising for
one order (PostgreSQL: plpgsql ``RAISE``; SQLite: ``RAISE(ABORT, …)``) — and, on PostgreSQL, a NUL
character its text columns refuse. Orders come from the Shopify sandbox by ``sync`` (paged and bulk
export) and go to the ShipStation sandbox, whose own ledger says what was posted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.connections import add_connection
from orderbridge.services.health import health_report
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.queries import holds, retry_order, show_order
from orderbridge.services.sync import sync_channel
from orderbridge.storage.repos.cursors import read_cursor
from orderbridge.storage.tables import ingest_failures, orders
from tests.dbfaults import refusing
from tests.e2e.helpers import TOKEN
from tests.scoped import cid, tenant


@dataclass
class World:
    hub: Hub
    shop: ShopifyState
    warehouse: ShipStationState
    ids: list[str]

    def posted_ids(self) -> set[str]:
        """The channel ids of the orders the ShipStation sandbox holds, read from its own ledger."""
        with self.hub.db.read() as conn:
            shop_id = tenant(self.hub).connection_named(conn, "shop").id
        created = {e.key for e in self.warehouse.entries("order_created")}
        return {key.removeprefix(f"ob-{shop_id}-") for key in created}

    def state_of(self, external_id: str) -> str:
        with self.hub.db.read() as conn:
            state: str = conn.execute(select(orders.c.state).where(orders.c.external_id == external_id)).scalar_one()
        return state

    def shop_health(self) -> dict[str, Any]:
        report = health_report(tenant(self.hub))
        found: dict[str, Any] = next(c for c in report["connections"] if c["name"] == "shop")
        return found


def world_of(hub: Hub, n: int, *, bulk: bool) -> Iterator[World]:
    shop_state, shop_app = shopify_sandbox(orders=0, seed=11, limits=False)
    ss_state, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    ids = [str(shop_state.add_order()["id"]) for _ in range(n)]
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss:
        add_connection(tenant(hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN}, {"bulk_backfill": bulk})
        add_connection(
            tenant(hub), "warehouse", "shipstation", ss.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
        )
        for sku, _t, _p in generator.CATALOG:
            set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
        set_mapping(tenant(hub), "shipping", "*", "ups:ups_ground", cid(hub, "warehouse"))
        yield World(hub, shop_state, ss_state, ids)


@pytest.fixture(params=["paged", "bulk"])
def world(hub: Hub, request: pytest.FixtureRequest) -> Iterator[World]:
    """Eight new paid orders in the Shopify sandbox (one batch), read by pages or by a bulk export."""
    yield from world_of(hub, 8, bulk=request.param == "bulk")


@pytest.fixture
def paged(hub: Hub) -> Iterator[World]:
    yield from world_of(hub, 8, bulk=False)


def open_reasons(hub: Hub, external_id: str) -> list[dict[str, Any]]:
    return show_order(tenant(hub), external_id).reasons


def test_an_order_the_database_refuses_is_held_and_the_rest_of_its_batch_is_stored_and_posted(world: World) -> None:
    hub, bad = world.hub, world.ids[3]
    with refusing(hub, bad):
        report = sync_channel(tenant(hub), cid(hub, "shop"))
        assert report.ok, report.error
        assert (report.counts.fetched, report.counts.inserted, report.counts.refused) == (8, 8, 1)
        run_cycle(tenant(hub), sync=False)
        # the others are stored as usual and reach the 3PL; the refused one is held, not posted
        assert world.posted_ids() == set(world.ids) - {bad}
        assert world.state_of(bad) == "held"
        for other in set(world.ids) - {bad}:  # stored once, as in a batch nothing refused: no trace of the retry
            detail = show_order(tenant(hub), other)
            assert (detail.state, detail.version, detail.reasons) == ("posted", 1, [])
            assert [e["kind"] for e in detail.timeline].count("received") == 1
        (reason,) = open_reasons(hub, bad)
        assert reason["code"] == "storage_refused"
        assert f"order {bad} refused by the test trigger" in reason["message"]
        assert "the next sync stores the order whole" in reason["fix"].text
        detail = show_order(tenant(hub), bad)
        assert str(detail.raw["id"]).rsplit("/", 1)[-1] == bad  # the raw payload is kept (a GraphQL node)
        # the cursor moved past the batch
        with hub.db.read() as conn:
            cursor = read_cursor(conn, tenant(hub).connection_named(conn, "shop").id)
            newest = conn.execute(select(func.max(orders.c.channel_updated_at))).scalar_one()
        assert cursor is not None and cursor >= newest
        # a second sync is not stopped by the same order: it is already handled
        again = sync_channel(tenant(hub), cid(hub, "shop"))
        assert again.ok and again.counts.refused == 0 and again.counts.inserted == 0
        # health names the refused order
        shop = world.shop_health()
        assert shop["health"] == "degraded" and shop["ingest_failures"] == 1
        assert "could not be stored as sent" in shop["message"] and "refused by the test trigger" in shop["message"]
        assert {j["job"]: j["health"] for j in shop["jobs"]}["sync"] == "degraded"
        assert health_report(tenant(hub))["status"] == "degraded"
        groups = [g for g in holds(tenant(hub)) if g.code == "storage_refused"]
        assert [(g.value, g.orders) for g in groups] == [("refused_by_trigger", 1)]


def test_a_corrected_version_is_stored_whole_released_posted_and_health_recovers(paged: World) -> None:
    hub, bad = paged.hub, paged.ids[2]
    with refusing(hub, bad):
        assert sync_channel(tenant(hub), cid(hub, "shop")).counts.refused == 1
    # the cause is gone (the trigger dropped) and the channel sends a new version
    paged.shop.update_order(int(bad), note="corrected")
    report = sync_channel(tenant(hub), cid(hub, "shop"))
    assert report.ok and report.counts.changed == 1 and report.counts.refused == 0
    assert open_reasons(hub, bad) == []
    run_cycle(tenant(hub), sync=False)
    assert paged.posted_ids() == set(paged.ids)
    shop = paged.shop_health()
    assert (shop["health"], shop["ingest_failures"]) == ("healthy", 0)
    with hub.db.read() as conn:
        assert conn.execute(select(ingest_failures.c.resolved_at)).scalar_one() is not None


def test_an_order_refused_even_in_its_minimal_form_is_quarantined_with_its_raw_bytes(paged: World) -> None:
    hub, bad = paged.hub, paged.ids[5]
    with refusing(hub, bad, minimal_too=True):
        report = sync_channel(tenant(hub), cid(hub, "shop"))
        assert report.ok and (report.counts.inserted, report.counts.quarantined) == (7, 1)
        run_cycle(tenant(hub), sync=False)
        assert paged.posted_ids() == set(paged.ids) - {bad}
        with hub.db.read() as conn:
            row = conn.execute(select(ingest_failures)).one()
            assert conn.execute(select(func.count()).where(orders.c.external_id == bad)).scalar_one() == 0
            assert read_cursor(conn, tenant(hub).connection_named(conn, "shop").id) is not None
        assert (row.external_id, row.stage, row.kind) == (bad, "quarantined", "refused_by_trigger")
        assert f'"legacyResourceId":"{bad}"'.encode() in row.raw.replace(b" ", b"")  # the GraphQL node's bytes
        (group,) = [g for g in holds(tenant(hub)) if g.code == "storage_refused"]
        assert group.kind == "quarantine" and group.orders == 1 and bad in group.examples[0]
        again = sync_channel(tenant(hub), cid(hub, "shop"))  # the batch is refused again, isolated again, and commits
        assert again.ok and again.counts.quarantined == 1
        shop = paged.shop_health()
        assert shop["health"] == "degraded" and "quarantined" in shop["message"] and shop["ingest_failures"] == 1
    with hub.db.read() as conn:
        assert conn.execute(select(ingest_failures.c.attempts)).scalar_one() == 2


def test_a_batch_nothing_refuses_is_one_orders_insert_with_no_savepoint_per_order(paged: World) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper() + " " + " ".join(statement.split()[1:3]))

    event.listen(paged.hub.db.engine, "before_cursor_execute", seen)
    try:
        assert sync_channel(tenant(paged.hub), cid(paged.hub, "shop")).counts.inserted == 8
    finally:
        event.remove(paged.hub.db.engine, "before_cursor_execute", seen)
    assert sum(1 for s in statements if s.startswith("INSERT INTO orders")) == 1
    assert sum(1 for s in statements if s.startswith("SAVEPOINT")) == 1  # the batch's one


def test_an_error_that_is_not_the_rows_still_fails_the_batch(paged: World) -> None:
    hub = paged.hub
    if hub.db.dialect != "postgresql":
        pytest.skip("a trigger raising a serialization failure is PostgreSQL's")
    with hub.db.transaction() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION test_refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " RAISE EXCEPTION 'could not serialize' USING ERRCODE = 'serialization_failure'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER test_refuse_one BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION test_refuse_one()"
            )
        )
    try:
        with pytest.raises(DBAPIError, match="could not serialize"):
            sync_channel(tenant(hub), cid(hub, "shop"))
    finally:
        with hub.db.transaction() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS test_refuse_one ON orders"))
            conn.execute(text("DROP FUNCTION IF EXISTS test_refuse_one()"))
    with hub.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(ingest_failures)).scalar_one() == 0


def test_a_nul_character_is_held_by_the_input_limits_before_postgresql_can_refuse_it(paged: World) -> None:
    """PostgreSQL refuses NUL in text: the validation layer (decision 40) keeps the order storable
    (the number without the NUL, the canonical form and raw payload whole) and holds it by name, so
    the database never refuses the row — and the rest of the batch is posted."""
    hub = paged.hub
    bad = paged.ids[4]
    paged.shop.update_order(int(bad), name="#NUL\u0000NAME")
    report = sync_channel(tenant(hub), cid(hub, "shop"))
    assert report.ok and (report.counts.inserted, report.counts.refused, report.counts.quarantined) == (8, 0, 0)
    run_cycle(tenant(hub), sync=False)
    assert paged.posted_ids() == set(paged.ids) - {bad}
    (reason,) = open_reasons(hub, bad)
    assert reason["code"] == "invalid_text" and reason["value"].startswith("number=")
    assert "NUL" in reason["message"]
    assert show_order(tenant(hub), bad).number == "#NUL\ufffdNAME"  # the column gets a replacement character
    assert sync_channel(tenant(hub), cid(hub, "shop")).counts.changed == 0  # the same version again: unchanged


def test_a_refused_new_version_holds_an_order_not_yet_posted_and_a_retry_cannot_post_the_older_one(
    paged: World,
) -> None:
    hub, bad = paged.hub, paged.ids[1]
    assert sync_channel(tenant(hub), cid(hub, "shop")).counts.inserted == 8  # all ready, nothing posted yet
    paged.shop.update_order(int(bad), note="second version")
    with refusing(hub, bad):
        report = sync_channel(tenant(hub), cid(hub, "shop"))
    assert report.ok and (report.counts.changed, report.counts.refused) == (1, 1)
    detail = show_order(tenant(hub), bad)
    assert (detail.state, detail.version) == ("held", 2)
    assert detail.raw["note"] == "second version"  # the refused version's raw payload is kept
    assert any(e["kind"] == "version_changed" and "could not be stored whole" in e["message"] for e in detail.timeline)
    assert retry_order(tenant(hub), bad) == "held"  # no content to post: an older version never goes
    run_cycle(tenant(hub), sync=False)
    assert paged.posted_ids() == set(paged.ids) - {bad}


def test_a_refused_new_version_of_a_posted_order_keeps_the_posted_content_and_says_so(paged: World) -> None:
    hub, bad = paged.hub, paged.ids[6]
    run_cycle(tenant(hub))  # synced and posted
    assert paged.posted_ids() == set(paged.ids)
    paged.shop.update_order(int(bad), note="after posting")
    with refusing(hub, bad):
        report = sync_channel(tenant(hub), cid(hub, "shop"))
    assert report.ok and report.counts.refused == 1
    detail = show_order(tenant(hub), bad)
    assert (detail.state, detail.version, detail.reasons) == ("posted", 2, [])
    assert detail.raw["note"] == "after posting"
    (changed,) = [e for e in detail.timeline if e["kind"] == "version_changed"]
    assert "could not be stored whole" in changed["message"] and "already posted" in changed["message"]
    with hub.db.read() as conn:
        assert conn.execute(select(ingest_failures.c.stage)).scalar_one() == "kept"
        assert conn.execute(select(orders.c.canonical).where(orders.c.external_id == bad)).scalar_one() is not None
    assert paged.shop_health()["health"] == "degraded"
    assert len(paged.warehouse.entries("order_created")) == 8  # not posted again
