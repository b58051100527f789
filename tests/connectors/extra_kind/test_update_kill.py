"""A posting run killed (SIGKILL) between any two steps of a void-and-re-post leaves TinyBooks' books
with one live invoice of the order once a later run settles it — never a second one, never none.

The run is a child process over the same SQLite ledger and the same sandboxes (real HTTP), killed by
the seam (``ORDERBRIDGE_CRASH_AT``) the first time it reaches the named crash point; the test kinds
are registered in the child as in ``conftest.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orderbridge.services import order_updates
from orderbridge.services.hub import Hub
from orderbridge.services.posting import post_ready
from orderbridge.services.principals import Actor
from tests.connectors.extra_kind.test_order_updates import PLATES, World
from tests.connectors.extra_kind.test_order_updates import world as world
from tests.scoped import cid, tenant

ROOT = Path(__file__).resolve().parents[3]
CHILD = textwrap.dedent(
    """
    import sys
    from orderbridge.connectors import registry
    from orderbridge.services.hub import Hub
    from orderbridge.services.posting import post_ready
    from orderbridge.services.scope import Scope
    from orderbridge.settings import Settings
    from tests.connectors.extra_kind.tinybooks import TinyBooksDestination

    registry.register("tinyshop", "tests.connectors.extra_kind.tinyshop:TinyShopChannel")
    registry.register("tinybooks", TinyBooksDestination)
    hub = Hub.from_settings(Settings(), migrate=False)
    post_ready(Scope.named(hub, "default"), int(sys.argv[1]))
    """
)


def _run_killed(hub: Hub, destination_id: int, point: str) -> int:
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
    return done.returncode


@pytest.mark.parametrize("point", ["amend.after_reserve:1", "amend.after_send:1", "amend.after_send:2"])
def test_a_run_killed_between_two_steps_of_a_void_and_repost_leaves_one_live_invoice(world: World, point: str) -> None:
    if world.hub.db.engine.dialect.name != "sqlite":
        pytest.skip("the child process opens the test's SQLite file; PostgreSQL is proven in process")
    placed = world.shop.add_order()
    world.cycle()
    key = world.key(placed["id"])
    world.shop.update_order(placed["id"], items=PLATES)
    world.cycle()
    [update] = order_updates.pending_reviews(tenant(world.hub))
    order_updates.decide(Actor.cli(tenant(world.hub)), [update.id], "accept")

    assert _run_killed(world.hub, cid(world.hub, "books"), point) == -signal.SIGKILL
    assert len(world.books.live(key)) <= 1
    post_ready(tenant(world.hub), cid(world.hub, "books"))  # the next run settles what the killed one left
    post_ready(tenant(world.hub), cid(world.hub, "books"))

    [live] = world.books.live(key)
    assert [line["sku"] for line in live["lines"]] == ["ITEM-MUG", "ITEM-PLATE"]
    assert world.books.creates[key] == 2  # the first invoice, and the one posted after its void
    assert world.order(placed["id"])["state"] == "posted"
