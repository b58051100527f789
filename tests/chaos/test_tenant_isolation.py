"""A job of tenant A never reads tenant B's rows or credentials (issue #18 item 7).

A job is ``(tenant_id, connection_id)`` and nothing else (decision 83): whatever runs it — the
embedded runtime's loops or a worker process taking it from the queue — rebuilds the tenant's
scope from the first and loads the connection through it. Two tenants, each with its own Shopify
store and ShipStation account (separate sandboxes, credentials of their own, the same connection
names and SKUs). While a job runs, three spies watch:

- every SQL statement's bound parameters: no parameter naming a tenant (``tenant_id…``) carries
  B's id, and none naming a connection carries one of B's connection ids;
- the secret box: B's credentials are never decrypted;
- B's sandboxes: they receive no request at all.

A job carrying A's tenant and one of B's connections (a forged or misrouted job) is refused with
:class:`NotFound` before any of that — by the task function, and by an ``orderbridge worker``
process taking such jobs from procrastinate's queue; A's own jobs, over a ledger where B has
orders, shipments and audits of its own, touch only A.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from orderbridge.errors import NotFound
from orderbridge.runtime.tasks import run_job
from orderbridge.runtime.worker import CycleReport, housekeeping, run_cycle
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.reconcile import reconcile
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant

#: each job kind as both engines run it (runtime/tasks.py): (tenant_id, connection_id) → the task function
JOBS: dict[str, Callable[[Hub, int, int], Any]] = {
    "sync": lambda hub, t, c: run_job(hub, "sync", t, c),
    "post": lambda hub, t, c: run_job(hub, "post", t, c),
    "shipments": lambda hub, t, c: run_job(hub, "shipments", t, c),
    "push": lambda hub, t, c: run_job(hub, "push", t, c),
    "audit": lambda hub, t, c: reconcile(Scope.of(hub, t), c, since=Scope.of(hub, t).now() - timedelta(days=30)),
}
#: which connection of the tenant each job takes
ROLE = {"sync": "shop", "post": "warehouse", "shipments": "warehouse", "push": "shop", "audit": "shop"}


@dataclass
class Side:
    slug: str
    scope: Scope
    shop: ShopifyState
    ss: ShipStationState
    token: str
    ids: dict[str, int] = field(default_factory=dict)


@dataclass
class Spy:
    statements: list[dict[str, Any]] = field(default_factory=list)
    opened: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def spying(hub: Hub) -> Iterator[Spy]:
    spy = Spy()

    def before(_conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        rows = parameters if executemany else [parameters]
        for p in rows or []:
            if isinstance(p, dict):
                spy.statements.append(p)

    real_open = hub.box.open

    def opened(token: str, *, what: str = "credentials") -> dict[str, str]:
        out = real_open(token, what=what)
        spy.opened.append(out)
        return out

    event.listen(hub.db.engine, "before_cursor_execute", before)
    hub.box.open = opened  # type: ignore[method-assign]
    hub._clients.clear()  # every connector is built (and its credentials opened) afresh
    try:
        yield spy
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", before)
        hub.box.open = real_open  # type: ignore[method-assign]


def never_b(spy: Spy, b: Side) -> None:
    for params in spy.statements:
        for name, value in params.items():
            if "tenant_id" in name:
                assert value != b.scope.tenant_id, f"a statement was bound to tenant B: {name}={value}"
            if name.startswith(("connection_id", "channel_id", "destination_id")):
                assert value not in b.ids.values(), f"a statement was bound to B's connection: {name}={value}"
    assert all(c.get("access_token") != b.token for c in spy.opened), "B's Shopify token was decrypted"
    assert all(c.get("api_key") != f"key-{b.slug}" for c in spy.opened), "B's ShipStation key was decrypted"


@pytest.fixture(scope="module")
def sides(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Side, Side]]:
    from orderbridge.crypto import generate_key
    from orderbridge.settings import Settings
    from tests.conftest import _truncate_pg
    from tests.workers.conftest import truncate_jobs

    _truncate_pg(pg_url)
    truncate_jobs(pg_url)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("isolation"),
        database_url=pg_url,
        secret_key=generate_key(),
        cursor_overlap_s=5,
    )
    hub = Hub.from_settings(settings, migrate=False)
    hub.sleep = lambda _s: None
    made: list[Side] = []
    servers: list[Any] = []
    try:
        for slug in ("acme", "globex"):
            token = f"shpat_{slug}_only"
            shop, shop_app = shopify_sandbox(orders=12, seed=3, limits=False, realistic=False, access_token=token)
            ss, ss_app = shipstation_sandbox(
                limits=False, ship_after_seconds=0.0, api_key=f"key-{slug}", api_secret=f"secret-{slug}"
            )
            shop_srv, ss_srv = run_in_thread(shop_app), run_in_thread(ss_app)
            shop_run, ss_run = shop_srv.__enter__(), ss_srv.__enter__()
            servers += [shop_srv, ss_srv]
            scope = add_tenant(hub, slug, slug.title())
            side = Side(slug, scope, shop, ss, token)
            side.ids["shop"] = add_connection(
                scope, "shop", "shopify", shop_run.base_url, {"access_token": token}, {"bulk_backfill": False}
            ).id
            side.ids["warehouse"] = add_connection(
                scope, "warehouse", "shipstation", ss_run.base_url,
                {"api_key": f"key-{slug}", "api_secret": f"secret-{slug}"},
            ).id  # fmt: skip
            for sku, _t, _p in generator.CATALOG:
                set_mapping(scope, "sku", sku, sku, side.ids["warehouse"])
            set_mapping(scope, "shipping", "*", "ups:ups_ground", side.ids["warehouse"])
            made.append(side)
        a, b = made
        # B has a ledger of its own: orders posted, shipped, pushed, audited
        for _ in range(2):
            report = run_cycle(b.scope)
            assert report.crashed == []
        assert b.ss.orders_by_key() and b.shop.entries("fulfillment")
        yield hub, a, b
    finally:
        for srv in reversed(servers):
            srv.__exit__(None, None, None)
        hub.close()


@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_job_of_tenant_a_naming_tenant_bs_connection_is_refused_before_reading_anything(
    sides: tuple[Hub, Side, Side], job: str
) -> None:
    hub, a, b = sides
    before_b = b.ss.requests_seen, b.shop.requests_seen
    with spying(hub) as spy, pytest.raises(NotFound):
        JOBS[job](hub, a.scope.tenant_id, b.ids[ROLE[job]])
    never_b(spy, b)
    assert spy.opened == [], "credentials were decrypted for a job that was refused"
    assert (b.ss.requests_seen, b.shop.requests_seen) == before_b


def test_every_job_of_tenant_a_reads_and_writes_only_tenant_a(sides: tuple[Hub, Side, Side]) -> None:
    hub, a, b = sides
    before_b = b.ss.requests_seen, b.shop.requests_seen
    with spying(hub) as spy:
        for job in sorted(JOBS):  # each job kind on its own, as a worker takes them from the queue
            JOBS[job](hub, a.scope.tenant_id, a.ids[ROLE[job]])
        for _ in range(2):  # and whole passes, as the embedded runtime runs them
            assert run_cycle(Scope.of(hub, a.scope.tenant_id)).crashed == []
            report = CycleReport()
            housekeeping(Scope.of(hub, a.scope.tenant_id), report, check_webhooks=True)
            assert report.crashed == []
    never_b(spy, b)
    assert any(c.get("access_token") == a.token for c in spy.opened), "the spy saw nothing: it proves nothing"
    assert len(spy.statements) > 50
    bound = {v for p in spy.statements for k, v in p.items() if "tenant_id" in k}
    assert a.scope.tenant_id in bound, "no statement named its tenant: the parameter check proves nothing"
    assert (b.ss.requests_seen, b.shop.requests_seen) == before_b
    assert a.ss.orders_by_key() and len(a.ss.orders_by_key()) == 12


def test_a_worker_process_given_forged_jobs_ends_them_without_touching_tenant_b(
    sides: tuple[Hub, Side, Side], tmp_path: Any
) -> None:
    """Jobs naming tenant A with B's connections, as a misrouted queue row would, are taken by an
    ``orderbridge worker`` and end as ``job.gone``; B's systems never hear of them, while the
    worker's one honest job (A's shipment poll) reaches A's account."""
    import os
    import subprocess
    import sys

    import psycopg

    from orderbridge.runtime.engine import ProcrastinateNudges
    from orderbridge.runtime.tasks import KINDS
    from tests.workers.conftest import wait_for

    hub, a, b = sides
    settings = hub.settings.model_copy(update={"job_engine": "procrastinate"})
    nudges = ProcrastinateNudges(settings)
    with hub.db.transaction() as conn:
        forged = [
            nudges.connection_job(conn, KINDS["post"], a.scope.tenant_id, b.ids["warehouse"]),
            nudges.connection_job(conn, KINDS["shipments"], a.scope.tenant_id, b.ids["warehouse"]),
            nudges.connection_job(conn, KINDS["push"], a.scope.tenant_id, b.ids["shop"]),
        ]
        honest = nudges.connection_job(conn, KINDS["shipments"], a.scope.tenant_id, a.ids["warehouse"])
    before_a, before_b = a.ss.requests_seen, (b.ss.requests_seen, b.shop.requests_seen)
    env = {
        **os.environ,
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
        "ORDERBRIDGE_DATA_DIR": str(tmp_path),
        "ORDERBRIDGE_JOB_ENGINE": "procrastinate",
        "ORDERBRIDGE_WORKER_KEEP_JOBS": "true",
        "ORDERBRIDGE_WEBHOOKS": "false",
        "ORDERBRIDGE_LOG_LEVEL": "DEBUG",  # job.gone is an info line
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        # the posts queue only: the periodic dispatcher's jobs (every tenant's syncs) stay queued
        worker = subprocess.Popen(
            [sys.executable, "-m", "orderbridge.cli.main", "worker", "--queue", "posts", "--name", "isolation"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:

            def finished() -> bool:
                with psycopg.connect(settings.resolved_database_url.replace("+psycopg", "")) as conn:
                    rows = conn.execute(
                        "SELECT id, status FROM procrastinate_jobs WHERE id = ANY(%s)", ([*forged, honest],)
                    ).fetchall()
                return len(rows) == 4 and all(status in ("succeeded", "failed") for _id, status in rows)

            wait_for(finished, 60, "the worker to end the four jobs")
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert text.count("job.gone") == 3, text[-3000:]
    assert (b.ss.requests_seen, b.shop.requests_seen) == before_b
    assert a.ss.requests_seen > before_a, "the worker ran nothing: the test proves nothing"
