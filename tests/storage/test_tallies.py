"""The order tallies the order writer keeps (decision 110): they count what was written, whoever
raced it, by the hour each order was received in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from orderbridge.domain.states import OrderState
from orderbridge.services.hub import Hub
from orderbridge.storage.repos import orders as repo
from orderbridge.storage.tables import orders

NOW = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)


def row(ext: str, state: str, received: datetime) -> tuple[object, ...]:
    return (1, 1, ext, state, 1, received, received, f"#{ext}", "h" * 64, None, None, "USD", None, None, {}, None)


def setup(hub: Hub) -> None:
    with hub.db.transaction() as conn:
        conn.execute(
            text(
                "INSERT INTO connections (tenant_id, name, kind, role, base_url, credentials, settings, enabled,"
                " health, health_message, consecutive_failures, created_at)"
                " VALUES (1, 'shop', 'shopify', 'channel', 'x', '', '{}', true, 'healthy', '', 0, :at)"
            ),
            {"at": NOW if hub.db.dialect == "postgresql" else "2026-12-01 00:00:00.000000"},
        )


def counted(hub: Hub) -> dict[str, int]:
    with hub.db.read() as conn:
        return dict(conn.execute(select(orders.c.state, func.count()).group_by(orders.c.state)).all())  # type: ignore[arg-type]


def test_an_insert_another_writer_won_is_not_tallied_and_the_others_are_by_receipt_hour(hub: Hub) -> None:
    setup(hub)
    with hub.db.transaction() as conn:
        repo.insert_new(conn, [row("1", "held", NOW)], now=NOW)
    with hub.db.transaction() as conn:
        inserted = repo.insert_new(
            conn,
            [
                row("1", "ready", NOW),
                row("2", "ready", NOW - timedelta(hours=3)),
                row("3", "held", NOW - timedelta(days=5)),
            ],
            now=NOW,
        )
        assert sorted(ext for _id, ext in inserted) == ["2", "3"]
        got = repo.tallies(conn, 1)
    assert got.by_state == counted(hub) == {"held": 2, "ready": 1}
    assert got.by_hour == {
        (datetime(2026, 12, 2, 10, tzinfo=UTC), "held"): 1,
        (datetime(2026, 12, 2, 7, tzinfo=UTC), "ready"): 1,
    }  # the five-day-old order is tallied as earlier


def test_a_move_written_from_the_state_the_row_really_is_in_is_tallied_from_that_state(hub: Hub) -> None:
    setup(hub)
    with hub.db.transaction() as conn:
        ((oid, _),) = repo.insert_new(conn, [row("1", "ready", NOW - timedelta(minutes=90))], now=NOW)
    with hub.db.transaction() as conn:  # another transaction held it meanwhile
        repo.transition(conn, [repo.Move(oid, OrderState.READY, OrderState.HELD)], NOW)
    with hub.db.transaction() as conn:  # this one still thinks it is ready: judged from held
        repo.transition(conn, [repo.Move(oid, OrderState.READY, OrderState.SKIPPED)], NOW)
        got = repo.tallies(conn, 1)
    assert got.by_state == counted(hub) == {"skipped": 1}
    assert got.by_hour == {(datetime(2026, 12, 2, 9, tzinfo=UTC), "skipped"): 1}


def test_a_move_of_an_order_received_long_ago_is_tallied_as_earlier_and_the_sums_stay_right(hub: Hub) -> None:
    setup(hub)
    received = NOW - timedelta(hours=30)
    with hub.db.transaction() as conn:
        ((oid, _),) = repo.insert_new(conn, [row("1", "ready", received)], now=received)
    later = NOW + timedelta(days=3)
    with hub.db.transaction() as conn:
        repo.transition(conn, [repo.Move(oid, OrderState.READY, OrderState.POSTED)], later)
        got = repo.tallies(conn, 1)
    # +1 ready at its hour, then -1 ready / +1 posted as earlier: the totals are exact
    assert got.by_state == {"posted": 1}
    with hub.db.transaction() as conn:
        repo.compact_tallies(conn, 1, later)
        folded = repo.tallies(conn, 1)
    assert folded.by_state == {"posted": 1} and folded.by_hour == {} and folded.rows == 1


def test_the_hours_asked_for_are_read_and_an_hour_ahead_of_the_clock_is_left_out_of_them(hub: Hub) -> None:
    setup(hub)
    ahead = NOW + timedelta(days=20)  # a receipt time ahead of the hub's clock (a seed, a skewed clock)
    with hub.db.transaction() as conn:
        repo.insert_new(conn, [row("1", "held", NOW), row("2", "held", ahead)], now=NOW)
        got = repo.tallies(conn, 1, since=NOW - timedelta(hours=2), until=NOW + timedelta(hours=1))
    assert got.by_state == {"held": 2}  # every order is counted in its state
    assert got.by_hour == {(datetime(2026, 12, 2, 10, tzinfo=UTC), "held"): 1}
