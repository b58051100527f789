"""The dashboard's read model: counts per state and per hour from the order tallies, held orders by
cause with the fix, connections' health and lag, the latest audit's proof, open alerts — one tenant's."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select

from orderbridge.domain.states import OrderState
from orderbridge.fixes import FixAction
from orderbridge.runtime.worker import run_cycle
from orderbridge.services.connections import add_connection
from orderbridge.services.dashboard import HOURS, compact, dashboard
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import find_order_id, retry_order
from orderbridge.services.reconcile import reconcile
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import order_tallies, orders
from tests.builders import T0, order
from tests.fakes import FakeChannel, FakeDestination, install, revoked
from tests.scoped import cid, tenant

NOW = T0 + timedelta(hours=2, minutes=10)


def world(hub: Hub) -> tuple[FakeChannel, FakeDestination]:
    """Five orders that post, three held for SKU ABC-1, one for shipping method Drone."""
    channel, dest = FakeChannel(), FakeDestination()
    for i in range(1, 6):
        channel.put(order(i, updated_minutes=i))
    for i in range(6, 9):
        channel.put(order(i, skus=("ABC-1",), updated_minutes=i))
    channel.put(order(9, shipping="Drone", updated_minutes=9))
    install(hub, channel, dest)
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    hub.now = lambda: NOW  # type: ignore[method-assign]
    run_cycle(tenant(hub))
    return channel, dest


def counted(hub: Hub, tenant_id: int) -> dict[str, int]:
    """The orders counted row by row, the slow way the tallies replace."""
    with hub.db.read() as conn:
        return {
            s: int(n)
            for s, n in conn.execute(
                select(orders.c.state, func.count()).where(orders.c.tenant_id == tenant_id).group_by(orders.c.state)
            )
        }


def tallied(hub: Hub, tenant_id: int) -> dict[str, int]:
    with hub.db.read() as conn:
        return order_repo.tallies(conn, tenant_id).by_state


def test_the_dashboard_counts_every_state_and_the_tallies_agree_with_the_orders_after_each_step(hub: Hub) -> None:
    _, dest = world(hub)
    scope = tenant(hub)
    board = dashboard(scope)
    assert [s.state for s in board.states] == [s.value for s in OrderState]
    assert (board.total, board.count("posted"), board.held_orders, board.count("ready")) == (9, 5, 4, 0)
    assert tallied(hub, scope.tenant_id) == counted(hub, scope.tenant_id) == {"posted": 5, "held": 4}
    # a mapping releases three, they post; a rejection holds one, a retry readies it again
    set_mapping(scope, "sku", "ABC-1", "W-BAD", cid(hub, "wh"))
    assert tallied(hub, scope.tenant_id) == counted(hub, scope.tenant_id) == {"posted": 5, "ready": 3, "held": 1}
    dest.reject_skus.add("W-BAD")
    post_ready(scope, cid(hub, "wh"))
    assert tallied(hub, scope.tenant_id) == counted(hub, scope.tenant_id) == {"posted": 5, "held": 4}
    dest.reject_skus.clear()
    assert retry_order(scope, "#1006") == "ready"
    assert tallied(hub, scope.tenant_id) == counted(hub, scope.tenant_id) == {"posted": 5, "held": 3, "ready": 1}
    assert dashboard(scope).count("ready") == 1


def test_orders_per_hour_are_the_orders_received_in_each_of_the_last_24_hours_by_the_state_they_are_in_now(
    hub: Hub,
) -> None:
    world(hub)
    scope = tenant(hub)
    hours = dashboard(scope).hours
    assert (
        len(hours) == HOURS
        and hours[-1].hour == NOW.replace(minute=0)
        and hours[0].hour == hours[-1].hour - timedelta(hours=HOURS - 1)
    )
    assert hours[-1].by_state == {"posted": 5, "held": 4} and hours[-1].orders == 9
    assert all(h.orders == 0 for h in hours[:-1])
    # two hours later: still in their hour, now mostly posted
    hub.now = lambda: NOW + timedelta(hours=2)  # type: ignore[method-assign]
    set_mapping(scope, "sku", "ABC-1", "W-ABC", cid(hub, "wh"))
    run_cycle(scope, sync=False)
    hours = dashboard(scope).hours
    assert hours[-3].hour == NOW.replace(minute=0) and hours[-3].by_state == {"posted": 8, "held": 1}
    assert hours[-1].orders == 0


def test_held_orders_are_grouped_by_root_cause_with_the_fix_and_their_first_orders(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    causes = dashboard(scope).causes
    assert [(c.kind, c.code, c.value, c.orders) for c in causes] == [
        ("hold", "sku_unmapped", "ABC-1", 3),
        ("hold", "shipping_method_unmapped", "Drone", 1),
    ]
    sku = causes[0]
    assert (sku.fix.action, sku.fix.args) == (FixAction.MAP_SKU, {"sku": "ABC-1", "destination": "wh"})
    assert sku.examples == ["#1006", "#1007", "#1008"]
    assert list(sku.example_ids) == [find_order_id(scope, n) for n in ("#1006", "#1007", "#1008")]
    assert "SKU 'ABC-1' has no mapping for destination 'wh'" in sku.message


def test_each_connection_shows_its_health_its_last_sync_and_how_old_the_ledgers_view_of_it_is(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    hub.now = lambda: NOW + timedelta(seconds=90)  # type: ignore[method-assign]
    shop, wh = dashboard(scope).connections
    assert (shop.name, shop.role, shop.health, wh.name, wh.role) == ("shop", "channel", "healthy", "wh", "destination")
    assert shop.sync_lag_s == 90 and wh.sync_lag_s == 90
    assert shop.last_sync is not None and shop.last_sync.outcome == "ok" and shop.last_sync.counts["fetched"] == 9
    assert wh.last_sync is None  # a destination does not sync orders: its lag is its posting's
    assert {j.job for j in shop.jobs} >= {"sync"} and {j.job for j in wh.jobs} >= {"post"}


def test_a_failing_channel_shows_failing_with_the_lag_since_it_last_worked_and_its_open_alert(hub: Hub) -> None:
    channel, _ = world(hub)
    scope = tenant(hub)
    hub.now = lambda: NOW + timedelta(minutes=30)  # type: ignore[method-assign]
    channel.fail_after_pages, channel.error = 0, revoked()
    sync_channel(scope, cid(hub, "shop"))
    board = dashboard(scope)
    shop = board.connections[0]
    assert shop.health == "failing" and shop.sync_lag_s == 30 * 60
    assert shop.last_sync is not None and shop.last_sync.outcome == "failed"
    assert [a.connection for a in board.alerts] == ["shop"] and board.alerts[0].state == "open"


def test_the_latest_audit_of_each_channel_says_what_it_proved(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    assert dashboard(scope).audits == [(cid(hub, "shop"), "shop", None)]  # never audited yet
    reconcile(scope, cid(hub, "shop"), since=T0 - timedelta(hours=1), until=NOW, kind="hourly")
    ((channel_id, name, proof),) = dashboard(scope).audits
    assert proof is not None and (channel_id, name) == (cid(hub, "shop"), "shop")
    assert (proof.outcome, proof.channel_count, proof.ledger_count, proof.missing) == ("ok", 9, 9, 0)
    hub.now = lambda: NOW + timedelta(minutes=5)  # type: ignore[method-assign]
    later = reconcile(scope, cid(hub, "shop"), since=T0, until=NOW, kind="manual")
    latest = dashboard(scope).audits[0][2]
    assert latest is not None and latest.run_id == later.run_id and latest.kind == "manual"


def test_another_tenants_orders_causes_connections_and_alerts_are_not_on_the_dashboard(hub: Hub) -> None:
    world(hub)
    other = add_tenant(hub, "globex", "Globex")
    channel = FakeChannel()
    channel.put(order(1, skus=("ZZZ-9",)))
    add_connection(other, "globex-shop", "fake_channel", "http://fake", {"token": "t"})
    add_connection(other, "globex-wh", "fake_destination", "http://fake", {"key": "k"})
    hub.connectors[other.connection_id("globex-shop")] = channel
    hub.connectors[other.connection_id("globex-wh")] = FakeDestination()
    run_cycle(other)
    mine, theirs = dashboard(tenant(hub)), dashboard(other)
    assert (mine.total, theirs.total) == (9, 1)
    # theirs: one order held for its SKU and its shipping method (no mapping there at all)
    assert sorted(c.value for c in theirs.causes) == ["Standard", "ZZZ-9"]
    assert sorted(c.value for c in mine.causes) == ["ABC-1", "Drone"]
    assert [c.name for c in mine.connections] == ["shop", "wh"]
    assert [c.name for c in theirs.connections] == ["globex-shop", "globex-wh"]
    assert tallied(hub, other.tenant_id) == counted(hub, other.tenant_id) == {"held": 1}


def test_the_housekeeping_folds_the_tallies_and_hours_past_48_become_earlier_without_changing_a_count(
    hub: Hub,
) -> None:
    world(hub)
    scope = tenant(hub)
    set_mapping(scope, "sku", "ABC-1", "W-ABC", cid(hub, "wh"))
    run_cycle(scope, sync=False)
    before = tallied(hub, scope.tenant_id)
    with hub.db.read() as conn:
        rows = order_repo.tallies(conn, scope.tenant_id).rows
    assert rows > 3
    assert compact(scope) > 0
    with hub.db.read() as conn:
        folded = order_repo.tallies(conn, scope.tenant_id)
    assert folded.by_state == before and folded.rows == len(folded.by_hour) == 2  # posted, held in NOW's hour
    assert compact(scope) == 0  # nothing left to fold
    hub.now = lambda: NOW + timedelta(days=3)  # type: ignore[method-assign]
    compact(scope)
    with hub.db.read() as conn:
        old = order_repo.tallies(conn, scope.tenant_id)
    assert old.by_state == before and old.by_hour == {} and old.rows == 2
    assert all(h.orders == 0 for h in dashboard(scope).hours)


def test_rebuilding_the_tallies_counts_the_orders_a_bulk_load_wrote_past_the_writer(hub: Hub) -> None:
    world(hub)
    scope: Scope = tenant(hub)
    with hub.db.transaction() as conn:  # a bulk load straight into the table (a benchmark's seed)
        conn.execute(
            insert(orders),
            [
                {
                    "tenant_id": scope.tenant_id,
                    "connection_id": cid(hub, "shop"),
                    "external_id": f"bulk-{i}",
                    "number": f"B{i}",
                    "state": "fulfilled",
                    "version": 1,
                    "content_hash": "0" * 64,
                    "raw": {},
                    "received_at": NOW - timedelta(days=3 * i),
                    "updated_at": NOW,
                }
                for i in range(4)
            ],
        )
    assert "fulfilled" not in tallied(hub, scope.tenant_id)
    with hub.db.transaction() as conn:
        order_repo.rebuild_tallies(conn, scope.tenant_id, NOW)
        n = conn.execute(select(func.count()).select_from(order_tallies)).scalar_one()
    assert tallied(hub, scope.tenant_id) == counted(hub, scope.tenant_id) == {"posted": 5, "held": 4, "fulfilled": 4}
    assert n == 4  # posted and held this hour, fulfilled this hour (one) and earlier (three)
    assert dashboard(scope).hours[-1].by_state == {"posted": 5, "held": 4, "fulfilled": 1}
