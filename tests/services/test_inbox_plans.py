"""SQLite plans the inbox's pages as the inbox chose (decision 95): without statistics its planner
takes any ``tenant_id = ?`` index for a narrow one, so each page's terms not read through the chosen
index are hidden from it. These read ``EXPLAIN QUERY PLAN`` for each kind of page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Connection

from orderbridge.bench.portal import reuse, seed
from orderbridge.domain.states import OrderState
from orderbridge.services import inbox as inbox_module
from orderbridge.services.hub import Hub
from orderbridge.services.inbox import InboxQuery, Sort, _page_ids, _rows, plan_page


def plan_of(conn: Connection, tenant_id: int, query: InboxQuery) -> str:
    plan = plan_page(conn, tenant_id, query)
    assert plan is not None
    sql = str(_page_ids(tenant_id, query, plan, None, False).compile(conn, compile_kwargs={"literal_binds": True}))
    return " | ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: PostgreSQL plans by its statistics, so nothing is hidden from its planner (its
    pages are timed by ``bench portal``, not planned here)."""
    path = tmp_path / "orderbridge.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def ledger(hub: Hub) -> tuple[Hub, int]:
    seed(hub, 1_500, progress=lambda n: None)
    found = reuse(hub, 1_500)
    assert found is not None
    return hub, found.scope.tenant_id


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (InboxQuery(), "ix_orders_inbox_created"),
        (InboxQuery(sort=Sort.OLDEST), "ix_orders_inbox_created"),
        (InboxQuery(sort=Sort.UPDATED), "ix_orders_inbox_updated"),
        (InboxQuery(sort=Sort.NUMBER), "ix_orders_inbox_number"),
        (InboxQuery(sort=Sort.TOTAL), "ix_orders_inbox_total"),
        (InboxQuery(state=OrderState.HELD, connection_id=3), "ix_orders_inbox_state"),
    ],
)
def test_a_page_sorted_and_filtered_by_an_index_prefix_walks_that_index(
    ledger: tuple[Hub, int], query: InboxQuery, index: str
) -> None:
    hub, tenant_id = ledger
    with hub.db.read() as conn:
        plan = plan_of(conn, tenant_id, query)
    assert index in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize(
    "query",
    [
        InboxQuery(email="ana.martin.0@example.com"),
        InboxQuery(sku="SKU-00002"),
        InboxQuery(reason="sku_unmapped", reason_value="NEW-101"),
        InboxQuery(number="#1001"),
        InboxQuery(state=OrderState.HELD, sort=Sort.TOTAL),
        InboxQuery(connection_id=3),
    ],
)
def test_a_narrow_filter_drives_the_page_from_its_own_index(ledger: tuple[Hub, int], query: InboxQuery) -> None:
    hub, tenant_id = ledger
    with hub.db.read() as conn:
        plan = plan_of(conn, tenant_id, query)
    # the outer query reads the driver's ids by primary key; only the driver's subquery uses an index
    assert plan.startswith("SEARCH orders USING INTEGER PRIMARY KEY (rowid=?) | LIST SUBQUERY"), plan


def test_a_broad_filter_walks_the_sorts_index_and_checks_each_order(
    ledger: tuple[Hub, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, tenant_id = ledger
    monkeypatch.setattr(inbox_module, "DRIVE_AT_MOST", 0)  # every filter is broad now
    with hub.db.read() as conn:
        for query in (InboxQuery(sku="SKU-00001"), InboxQuery(reason="sku_unmapped"), InboxQuery(connection_id=3)):
            plan = plan_of(conn, tenant_id, query)
            assert plan.startswith("SEARCH orders USING") and "ix_orders_inbox_created (tenant_id=?)" in plan, plan
            assert "TEMP" not in plan, plan


def test_the_pages_rows_are_read_by_id(ledger: tuple[Hub, int]) -> None:
    hub, tenant_id = ledger
    with hub.db.read() as conn:
        statements: list[str] = []
        real = conn.execute

        def capture(stmt, *args, **kw):  # type: ignore[no-untyped-def]
            statements.append(str(stmt.compile(conn, compile_kwargs={"literal_binds": True})))
            return real(stmt, *args, **kw)

        conn.execute = capture  # type: ignore[method-assign]
        _rows(conn, tenant_id, [5, 6, 7])
        conn.execute = real  # type: ignore[method-assign]
        (sql,) = statements
        plan = " | ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert plan.startswith("SEARCH orders USING INTEGER PRIMARY KEY") and "ix_order_reasons_order" in plan, plan
