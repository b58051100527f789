"""End to end over real HTTP and a real drop directory: Shopify sandbox → OrderBridge → files a
package imports; the CLI (``orderbridge export run`` / ``status``) as a subprocess; the oracle read
from the sandbox's own REST API, the result read from the files themselves."""

from __future__ import annotations

import json
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.queries import accounting, holds
from orderbridge.services.sync import sync_channel
from orderbridge.settings import Settings
from orderbridge.storage.tables import postings
from tests.connectors.file_export.env import delivered, read_csv
from tests.e2e.helpers import TOKEN, all_shopify_orders, cli
from tests.scoped import cid, tenant

COLUMNS = ["order_key", "document_id", "order_id", "order_number", "currency", "line_id", "sku", "quantity", "total"]


def exportable(order: dict[str, Any]) -> bool:
    """Seed 000's download rules restated, for a destination that maps nothing: paid, unfulfilled or
    partial, open, live, every line left to fulfil with a SKU."""
    if order.get("test") or order.get("cancelled_at") or order.get("closed_at"):
        return False
    if order.get("financial_status") != "paid" or order.get("fulfillment_status") not in (None, "partial"):
        return False
    lines = [li for li in order.get("line_items") or [] if li.get("fulfillable_quantity", li.get("quantity", 0)) > 0]
    return bool(lines) and all(li.get("sku") for li in lines)


def test_shopify_orders_reach_the_drop_directory_once_each_and_the_cli_reads_their_fate(
    hub: Hub, settings: Settings, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    _state, app = shopify_sandbox(orders=60, seed=15, limits=False)
    env = {
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
    }
    with run_in_thread(app) as shop:
        add_connection(tenant(hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN}, {"bulk_backfill": False})
        add_connection(
            tenant(hub),
            "books",
            "file_export",
            "",
            {},
            {"directory": str(drop), "template": {"columns": COLUMNS}, "max_batch": 25},
        )
        refused = cli(env, "export", "run", "--connection", "shop")
        assert refused.returncode != 0 and "delivers no files" in refused.stderr, refused.stderr[-2000:]
        synced = cli(env, "sync", "--json")
        assert synced.returncode == 0, synced.stderr[-3000:]
        ran = cli(env, "export", "run", "--connection", "books", "--json")
        assert ran.returncode == 0, ran.stderr[-3000:] + ran.stdout[-3000:]
        again = cli(env, "export", "run", "--connection", "books", "--json")
        assert json.loads(again.stdout)["post"]["posted"] == 0
        expected = {str(o["id"]): o for o in all_shopify_orders(shop.base_url) if exportable(o)}

    files = delivered(drop)
    rows = [(f.name, r) for f in files for r in read_csv(f)]
    documents = Counter((name, r["document_id"], r["order_id"]) for name, r in rows)
    per_order = Counter(order_id for _n, _d, order_id in documents)
    written = {oid.rsplit("/", 1)[-1] for oid in per_order}
    assert written == set(expected) and len(expected) > 10
    assert all(n == 1 for n in per_order.values()), "each order in one file, at one position"
    for _name, r in rows:
        assert Decimal(r["total"]) == Decimal(str(expected[r["order_id"].rsplit("/", 1)[-1]]["total_price"]))
    assert accounting(tenant(hub))["posted"] == len(expected)
    assert len(files) == -(-len(expected) // 25)  # batches of 25

    # the package takes the first file and refuses the second
    held_before = accounting(tenant(hub))["held"]
    files[0].unlink()
    (drop / f"{files[1].name}.err").write_text("Import failed: customer missing", encoding="utf-8")
    status = cli(env, "export", "status", "--connection", "books", "--json")
    assert status.returncode == 0, status.stderr[-3000:]
    fates = {f["file"]: f["fate"] for f in json.loads(status.stdout)}
    assert fates[files[0].name] == "imported" and fates[files[1].name] == "rejected"
    watched = cli(env, "export", "run", "--connection", "books", "--json")
    report = json.loads(watched.stdout)["deliveries"]
    assert (report["imported"], report["rejected"]) == (1, 1)
    refused = {r["order_id"] for r in read_csv(files[1])}
    assert accounting(tenant(hub))["held"] - held_before == len(refused)
    groups = [g for g in holds(tenant(hub)) if g.code == "destination_rejected" and g.value == "books"]
    assert len(groups) == 1 and groups[0].orders == len(refused)
    assert "Import failed: customer missing" in groups[0].message
    table = cli({**env, "COLUMNS": "300"}, "export", "status", "--connection", "books")
    assert "rejected" in table.stdout and "Import failed: customer missing" in table.stdout


CRASHES = ["export.mid_write:1", "post.after_send:1", "export.before_record:2", "post.after_commit:1"]


def test_export_run_killed_at_each_seam_then_run_again_writes_every_order_exactly_once(
    hub: Hub, settings: Settings, tmp_path: Path
) -> None:
    """The whole CLI SIGKILLed mid-write, between the write and the hub's record, and after a
    commit; then run again: from the drop directory and the ledger, each order once, none lost, no
    partial or temporary file."""
    drop = tmp_path / "drop"
    drop.mkdir()
    _state, app = shopify_sandbox(orders=50, seed=21, limits=False)
    env = {
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
        "ORDERBRIDGE_LEASE_TTL_S": "2",
    }
    with run_in_thread(app) as shop:
        add_connection(tenant(hub), "shop", "shopify", shop.base_url, {"access_token": TOKEN}, {"bulk_backfill": False})
        add_connection(
            tenant(hub),
            "books",
            "file_export",
            "",
            {},
            {"directory": str(drop), "template": {"columns": COLUMNS}, "max_batch": 6},
        )
        sync_channel(tenant(hub), cid(hub, "shop"))
        expected = {str(o["id"]) for o in all_shopify_orders(shop.base_url) if exportable(o)}
    for point in CRASHES:
        killed = cli(env, "export", "run", "--connection", "books", crash_at=point)
        assert killed.returncode == -9, (point, killed.stderr[-2000:])
        for path in delivered(drop):  # what the package sees at any moment: whole files only
            assert all(r["currency"] for r in read_csv(path))
        time.sleep(2.1)  # the killed run's lease expires
    final = cli(env, "export", "run", "--connection", "books", "--json")
    assert final.returncode == 0, final.stderr[-3000:]
    seen = Counter((path.name, r["document_id"], r["order_id"]) for path in delivered(drop) for r in read_csv(path))
    per_order = Counter(order_id for _f, _d, order_id in seen)
    assert set(per_order) == expected and all(n == 1 for n in per_order.values())
    assert not list(drop.glob(".*.tmp"))
    assert accounting(tenant(hub))["posted"] == len(expected)
    with hub.db.read() as conn:
        docs = Counter(conn.execute(select(postings.c.document_id).where(postings.c.status == "posted")).scalars())
    assert len(docs) == len(expected) and all(n == 1 for n in docs.values())
