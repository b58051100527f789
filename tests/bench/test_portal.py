"""``orderbridge bench portal``: it seeds a realistic ledger through the writers and prints every
page's figures, timed over HTTP with a signed-in session, on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orderbridge.bench.portal import PAGES, reuse, seed
from orderbridge.services.hub import Hub
from orderbridge.services.inbox import InboxQuery, inbox
from orderbridge.storage.tables import order_reasons, order_skus, orders, postings, tenants
from tests.conftest import PG_OK
from tests.e2e.helpers import cli


@pytest.mark.slow
def test_the_portal_benchmark_times_every_page_on_each_database_and_prints_one_json_object(tmp_path: Path) -> None:
    result = cli(
        {"ORDERBRIDGE_DATA_DIR": str(tmp_path)},
        *("bench", "portal", "--orders", "2000", "--repeats", "3", "--json"),
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["orders"] == 2000
    names = [db["database"] for db in data["databases"]]
    assert names == ["sqlite", "postgresql"]  # skipped, and said so, when PostgreSQL is not reachable
    for db in data["databases"]:
        if not PG_OK and db["database"] == "postgresql":
            assert "skipped" in db
            continue
        assert db["seed_s"] > 0
        for timed in ("pages", "services"):
            assert list(db[timed]) == list(PAGES)
            for figures in db[timed].values():
                assert figures["samples"] == 3 and 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]


def test_the_seed_writes_a_ledger_in_realistic_proportions_through_the_writers(hub: Hub) -> None:
    seed(hub, 2_000, progress=lambda n: None)
    with hub.db.read() as conn:
        per_tenant = dict(
            conn.execute(
                select(tenants.c.slug, func.count())
                .join(orders, orders.c.tenant_id == tenants.c.id)
                .group_by(tenants.c.slug)
            ).all()
        )
        states = dict(conn.execute(select(orders.c.state, func.count()).group_by(orders.c.state)).all())
        held_for = conn.execute(select(func.count(func.distinct(order_reasons.c.order_id)))).scalar_one()
        skus_each = conn.execute(select(func.count()).select_from(order_skus)).scalar_one() / 2_000
        posted = conn.execute(
            select(func.count()).select_from(postings).where(postings.c.status == "posted")
        ).scalar_one()
        unplaced = conn.execute(select(func.count()).where(orders.c.placed_at.is_(None))).scalar_one()
    assert per_tenant == {"bench-a": 1_800, "bench-b": 200}
    assert 30 <= states["held"] <= 90 and states["fulfilled"] > states["posted"] > 300
    assert held_for == states["held"] + states["skipped"]
    assert 2.0 <= skus_each <= 2.8 and unplaced == 0
    assert posted == states["posted"] + states["fulfilled"] + states.get("cancelled", 0)
    found = reuse(hub, 2_000)
    assert found is not None and found.scope.slug == "bench-a" and len(found.channels) == 3
    page = inbox(found.scope, InboxQuery(email=found.emails[0]))
    assert page.rows and all(r.customer_email.lower() == found.emails[0].lower() for r in page.rows)
