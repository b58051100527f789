"""A sync killed (SIGKILL) during the first bulk export leaves Shopify running it; the syncs after
the restart adopt that export instead of fighting it — proven from the Shopify sandbox's ledger of
bulk operations (one started, none cancelled) and from the hub's ledger (every order, the cursor)."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from orderbridge.bench.procs import sandbox_process
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.settings import Settings
from orderbridge.storage.repos.cursors import read_cursor
from orderbridge.storage.tables import orders, sync_runs
from tests.e2e.helpers import API, TOKEN, all_shopify_orders, cli, ledger_entries
from tests.scoped import tenant


def current_bulk(base_url: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}{API}/graphql.json",
        json={"query": "{ currentBulkOperation { id status createdAt } }"},
        headers={"X-Shopify-Access-Token": TOKEN},
        timeout=30,
    )
    op: dict[str, Any] = response.json()["data"]["currentBulkOperation"]
    return op


@pytest.mark.slow
def test_syncs_killed_during_the_first_bulk_export_are_followed_by_one_that_adopts_it_and_downloads_every_order(
    hub: Hub, settings: Settings
) -> None:
    with sandbox_process("shopify", "--orders", "300", "--seed", "21", "--no-limits", "--bulk-seconds", "10") as shop:
        add_connection(tenant(hub), "shop", "shopify", shop, {"access_token": TOKEN})  # bulk_backfill is the default
        env = {
            "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
            "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
            "ORDERBRIDGE_LEASE_TTL_S": "2",
        }
        first = cli(env, "sync", "--json", crash_at="bulk.after_start:1")  # killed once Shopify took the start
        assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
        started = ledger_entries(shop, "bulk_operation")
        assert len(started) == 1
        time.sleep(2.1)  # the killed worker's lease expires
        assert current_bulk(shop)["status"] == "RUNNING", "the export outlived its requester"

        # the next sync adopts it, and is killed too while it waits for it
        second = cli(env, "sync", "--json", crash_at="sync.after_fetch:2")
        assert second.returncode == -signal.SIGKILL, "it should have been waiting, not failing: " + second.stdout
        time.sleep(2.1)

        third = cli(env, "sync", "--json")
        assert third.returncode == 0, third.stderr[-2000:] + third.stdout[-2000:]
        report = json.loads(third.stdout)["syncs"][0]
        assert report["error"] is None

        assert [e["key"] for e in ledger_entries(shop, "bulk_operation")] == [started[0]["key"]], "one export"
        assert ledger_entries(shop, "bulk_operation_cancel") == []
        op = current_bulk(shop)
        assert op["id"] == started[0]["key"] and op["status"] == "COMPLETED"
        expected = {str(o["id"]) for o in all_shopify_orders(shop)}
        assert len(expected) == 300
        with hub.db.read() as conn:
            row = tenant(hub).connection_named(conn, "shop")
            stored = set(conn.execute(select(orders.c.external_id).where(orders.c.connection_id == row.id)).scalars())
            cursor = read_cursor(conn, row.id)
            outcomes = list(
                conn.execute(select(sync_runs.c.outcome).where(sync_runs.c.connection_id == row.id)).scalars()
            )
        assert stored == expected, "every order downloaded"
        assert cursor == datetime.fromisoformat(op["createdAt"]), "the adopted export's createdAt is the cursor"
        # the next sync to hold the lease marks what the killed ones left running (Sync now shows it)
        assert sorted(outcomes) == ["interrupted", "interrupted", "ok"], "two killed runs, no failed one"

        later = cli(env, "sync", "--json")  # an incremental sync from that cursor
        assert later.returncode == 0 and json.loads(later.stdout)["syncs"][0]["error"] is None
        assert len(ledger_entries(shop, "bulk_operation")) == 1
