"""The reason tallies the reasons' writer keeps (decision 147): summed, they are the open reasons by
cause, whatever was opened, released twice or folded — and the migration counts the ones it finds."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, inspect, select, text

from orderbridge.domain.reasons import Reason
from orderbridge.fixes import show_holds
from orderbridge.services.hub import Hub
from orderbridge.storage.repos import order_reasons as repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import order_reasons, reason_tallies
from tests.storage.test_migrations import AT, engine, migrate  # noqa: F401 (the engine fixture)
from tests.storage.test_tallies import NOW, row, setup

CAUSES = [("hold", "sku_unmapped", "MUG"), ("hold", "sku_unmapped", "CUP"), ("skip", "unpaid", "pending")]


def reason(code: str, value: str) -> Reason:
    return Reason(code, value, f"{code} {value}", show_holds(code, value, text="fix it"))


def orders_of(hub: Hub, n: int) -> list[int]:
    setup(hub)
    with hub.db.transaction() as conn:
        made = order_repo.insert_new(conn, [row(str(k), "held", NOW) for k in range(n)], now=NOW)
    return sorted(int(oid) for oid, _ in made)


def open_counted(hub: Hub, tenant_id: int = 1) -> dict[tuple[str, str, str], int]:
    r = order_reasons.c
    with hub.db.read() as conn:
        rows = conn.execute(
            select(r.kind, r.code, r.value, func.count())
            .where(r.tenant_id == tenant_id, r.released_at.is_(None))
            .group_by(r.kind, r.code, r.value)
        ).all()
    return {(k, c, v): int(n) for k, c, v, n in rows}


def tallied(hub: Hub, tenant_id: int = 1) -> dict[tuple[str, str, str], int]:
    with hub.db.read() as conn:
        causes = repo.open_causes(conn, tenant_id, ["hold", "skip", "push"])
    return {(c.kind, c.code, c.value): c.n for c in causes}


def test_opened_and_released_reasons_are_tallied_once_even_when_released_twice(hub: Hub) -> None:
    ids = orders_of(hub, 3)
    with hub.db.transaction() as conn:
        repo.add(conn, [repo.reason_row(1, oid, "hold", reason("sku_unmapped", "MUG"), NOW) for oid in ids])
        repo.add(conn, [repo.reason_row(1, ids[0], "skip", reason("unpaid", "pending"), NOW)])
    assert tallied(hub) == open_counted(hub) == {("hold", "sku_unmapped", "MUG"): 3, ("skip", "unpaid", "pending"): 1}
    with hub.db.read() as conn:
        first = conn.execute(select(order_reasons.c.id).where(order_reasons.c.order_id == ids[0])).scalars().all()
    with hub.db.transaction() as conn:
        repo.release(conn, first, NOW)
    with hub.db.transaction() as conn:  # released again: nothing is open any more, nothing is counted
        repo.release(conn, first, NOW)
        assert repo.release_code(conn, ids[0], "sku_unmapped", NOW) == 0
        assert repo.release_code_of(conn, ids[1:], "sku_unmapped", NOW) == 2
    assert tallied(hub) == open_counted(hub) == {}


def test_folding_keeps_the_sums_and_leaves_one_row_per_open_cause(hub: Hub) -> None:
    ids = orders_of(hub, 4)
    for oid in ids:
        with hub.db.transaction() as conn:
            repo.add(conn, [repo.reason_row(1, oid, "hold", reason("sku_unmapped", "CUP"), NOW)])
    with hub.db.transaction() as conn:
        repo.release_code_of(conn, ids[:1], "sku_unmapped", NOW)
        repo.add(conn, [repo.reason_row(1, ids[0], "hold", reason("sku_unmapped", "MUG"), NOW)])
        repo.release_code(conn, ids[0], "sku_unmapped", NOW)  # the MUG cause opens and closes: gone
    with hub.db.transaction() as conn:
        assert repo.compact_tallies(conn, 1) == 7 - 1
        assert repo.compact_tallies(conn, 1) == 0  # already folded
        rows = conn.execute(select(reason_tallies.c.code, reason_tallies.c.value, reason_tallies.c.n)).all()
    assert [tuple(r) for r in rows] == [("sku_unmapped", "CUP", 3)]
    assert tallied(hub) == open_counted(hub) == {("hold", "sku_unmapped", "CUP"): 3}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["open", "release", "release_code", "fold"]), st.integers(0, 4), st.integers(0, 2)),
        max_size=25,
    )
)
def test_any_sequence_of_opens_releases_and_folds_tallies_what_is_open(hub: Hub, steps: list) -> None:  # type: ignore[type-arg]
    with hub.db.transaction() as conn:  # each example starts with no reason on the same 5 orders
        conn.execute(reason_tallies.delete())
        conn.execute(order_reasons.delete())
        ids = sorted(conn.execute(text("SELECT id FROM orders")).scalars().all())
    if not ids:
        ids = orders_of(hub, 5)
    for action, k, c in steps:
        kind, code, value = CAUSES[c]
        with hub.db.transaction() as conn:
            if action == "open":
                repo.add(conn, [repo.reason_row(1, ids[k], kind, reason(code, value), NOW)])
            elif action == "release":
                found = conn.execute(
                    select(order_reasons.c.id).where(order_reasons.c.order_id == ids[k], order_reasons.c.code == code)
                ).scalars()
                repo.release(conn, list(found), NOW)
            elif action == "release_code":
                repo.release_code_of(conn, [ids[k]], code, NOW)
            else:
                repo.compact_tallies(conn, 1)
    assert tallied(hub) == open_counted(hub)


def test_0019_counts_the_open_reasons_already_in_the_ledger(engine: Engine) -> None:  # noqa: F811
    migrate(engine, "upgrade", "0018")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, created_at) VALUES (7, 't7', 'T', :at)"), {"at": AT})
        conn.execute(
            text(
                "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                " enabled, health, health_message, consecutive_failures, created_at)"
                " VALUES (7, 7, 'shop', 'shopify', 'channel', 'http://x', 't', '{}', true, 'healthy', '', 0, :at)"
            ),
            {"at": AT},
        )
        for oid in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO orders (id, tenant_id, connection_id, external_id, number, state, version,"
                    " content_hash, raw, received_at, updated_at)"
                    " VALUES (:id, 7, 7, :ext, :number, 'held', 1, 'h', '{}', :at, :at)"
                ),
                {"id": oid, "ext": str(oid), "number": f"#{oid}", "at": AT},
            )
        reasons = [(1, "MUG", None), (2, "MUG", None), (3, "MUG", AT), (3, "CUP", None)]
        for oid, value, released in reasons:
            conn.execute(
                text(
                    "INSERT INTO order_reasons (tenant_id, order_id, kind, code, value, message, fix, created_at,"
                    " released_at) VALUES (7, :oid, 'hold', 'sku_unmapped', :value, 'm', '{}', :at, :released)"
                ),
                {"oid": oid, "value": value, "at": AT, "released": released},
            )
    migrate(engine, "upgrade", "0019")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT tenant_id, kind, code, value, n FROM reason_tallies")).all()
    assert Counter({tuple(r[:4]): r[4] for r in rows}) == Counter(
        {(7, "hold", "sku_unmapped", "MUG"): 2, (7, "hold", "sku_unmapped", "CUP"): 1}
    )
    migrate(engine, "downgrade", "0018")
    with engine.connect() as conn:
        assert "reason_tallies" not in inspect(conn).get_table_names()


def test_postgresql_sessions_plan_serially_and_sort_a_narrow_filters_orders_from_an_index(hub: Hub) -> None:
    """Decision 148: no parallel workers on the hub's PostgreSQL sessions, and the orders' keys by id."""
    with hub.db.read() as conn:
        names = {i["name"] for i in inspect(conn).get_indexes("orders")}
        if hub.db.dialect != "postgresql":
            assert "ix_orders_keys" not in names  # SQLite finds a row by its rowid already
            return
        assert conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar_one() == "0"
        found = conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'orders' AND indexname = 'ix_orders_keys'"
        ).scalar_one()
    assert "(id) INCLUDE (tenant_id, placed_at)" in found
    assert "ix_orders_keys" in names
