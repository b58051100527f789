"""A hub posting run killed (SIGKILL) between two of Heartland's calls leaves, once the next run has
gone on, one sale for the order in Heartland — resumed at the next step, said on the order's timeline.

The run is a child process over the test's SQLite ledger and the same sandboxes (real HTTP), killed by
the seam (``ORDERBRIDGE_CRASH_AT=heartland.after_write:N``) right after Heartland answered its N-th
write of the order's sales-order flow (customer, address, order, 2 lines, tax, payment, open, invoice,
2 invoice lines, complete)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from tests.scoped import cid, tenant
from tests.services.test_heartland_through_the_hub import World
from tests.services.test_heartland_through_the_hub import world as world

ROOT = Path(__file__).resolve().parents[2]
CHILD = textwrap.dedent(
    """
    import sys
    from orderbridge.services.hub import Hub
    from orderbridge.services.posting import post_ready
    from orderbridge.services.scope import Scope
    from orderbridge.settings import Settings

    hub = Hub.from_settings(Settings(), migrate=False)
    post_ready(Scope.named(hub, "default"), int(sys.argv[1]))
    """
)


def _run_killed(hub: Hub, destination_id: int, point: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "ORDERBRIDGE_DATABASE_URL": hub.settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": hub.settings.resolved_secret_key(),
        "ORDERBRIDGE_DATA_DIR": str(hub.settings.data_dir),
        "ORDERBRIDGE_CRASH_AT": point,
        "ORDERBRIDGE_LEASE_TTL_S": "2",  # the killed run's lease expires soon after it
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(destination_id)], env=env, capture_output=True, text=True, timeout=120
    )
    time.sleep(2.2)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


@pytest.mark.parametrize("point", [3, 5, 8, 11, 12])
def test_a_hub_run_killed_between_two_heartland_calls_is_resumed_by_the_next_run_with_one_sale(
    world: World, point: int
) -> None:
    if world.hub.db.engine.dialect.name != "sqlite":
        pytest.skip("the child process opens the test's SQLite file; the connector's own kill test covers the rest")
    order = world.order()
    sync_channel(tenant(world.hub), cid(world.hub, "shop"))
    _run_killed(world.hub, cid(world.hub, "pos"), f"heartland.after_write:{point}")
    assert world.state(order) == "ready"  # the run died before it recorded anything

    report = world.run()
    assert report.posted == 1 and world.state(order) == "posted"
    [sale] = world.sales(order)
    assert sale["status"] == "closed" and [li["qty"] for li in sale["lines"]] == [1, 2]
    assert len(sale["payments"]) == 1 and len(world.pos.invoices) == 1
    assert len(world.pos.entries("order_created")) == 1 and len(world.pos.entries("invoice_completed")) == 1
    assert world.pos.stock("SKU-2")["on_hand"] == 98
    notes = [e["message"] for e in world.timeline(order, "field_shortened")]
    assert any("already held sales order" in n for n in notes), notes  # said on the order's timeline
    [posted] = world.timeline(order, "posted")
    assert posted["document_id"] == f"order:{sale['id']}"
    assert world.run().posted == 0
