"""The embedded worker: scheduler and jobs in one process (``orderbridge serve``).

Jobs are idempotent nudges over the database, which is the source of truth: a sync pulls from
the cursor, a post run sends whatever is ``ready``, a shipment poll reads from its cursor, a push
run sends what has no push yet. Each job runs only on the connections whose kind declares the
capability it needs (:func:`scheduled`, decision 71): syncs for ``LIST_CHANGED`` channels, posts
for ``POST_ORDERS`` destinations, shipment polls for ``LIST_SHIPMENTS`` destinations, pushes for
``PUSH_FULFILMENT`` channels; audits (``LIST_ORDER_STAMPS``) and the webhook check (``WEBHOOKS``)
likewise, in the housekeeping. Killing the process at any instruction loses nothing; the next
run picks up from committed state. Each job runs under a database lease, so two workers (or a
worker and a CLI ``sync``) never run the same connection's job at once — the second one skips.

An unexpected exception in a job (a bug) is logged with its traceback and counted; the loop goes
on with the next job rather than stopping every connection's sync silently.

The process serves every tenant: each pass of each loop makes one scope per tenant
(:meth:`~orderbridge.services.scope.Scope.every`, read afresh, so a tenant added while serving is
picked up) and runs that tenant's jobs in it, by connection id (decision 83). A job needs nothing
but ``(tenant_id, connection_id)`` to run again elsewhere: the service functions it runs are the
ones ``runtime.tasks`` names for procrastinate workers (``runtime.engine``,
``job_engine=procrastinate``: docs/scaling.md), which replace this module's loops there; this module
calls them directly because ``runtime.tasks`` reads this one (post schedules, housekeeping), and a
package's modules import no cycle (the import contract).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import structlog

from orderbridge.connectors.base import Capability, Role
from orderbridge.errors import InvalidInput
from orderbridge.runtime.schedule import Schedule
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.deliveries import watch_deliveries
from orderbridge.services.hub import ConnectionRow, Hub
from orderbridge.services.posting import last_posted_at, post_ready
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.services.sync_now import QueuedSync, queued_syncs, run_requested
from orderbridge.storage.leases import LeaseBusy

log = structlog.get_logger("orderbridge.worker")

#: how often the alongside poster looks for ready orders while a sync runs
ALONGSIDE_INTERVAL_S = 0.2
#: how soon the poster looks again when another process holds a destination's post lease
BUSY_RETRY_S = 0.02
#: how often serve checks for due audits, the digest and undelivered alerts
HOUSEKEEPING_EVERY_S = 5.0

#: how often serve asks webhook channels whether their subscriptions are still there
WEBHOOK_CHECK_EVERY_S = 300.0

T = TypeVar("T")


@dataclass
class CycleReport:
    syncs: list[dict[str, Any]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    shipments: list[dict[str, Any]] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)


def _guard(report: CycleReport, what: str, fn: Callable[[], Any], sink: list[dict[str, Any]]) -> None:
    try:
        sink.append(fn().as_dict())
    except LeaseBusy as exc:
        report.busy.append(exc.name)
    except Exception:
        log.exception("job.crashed", job=what)
        report.crashed.append(what)


@contextmanager
def _posting_alongside(scope: Scope, report: CycleReport, destinations: dict[int, str]) -> Iterator[None]:
    """While channels sync, a second thread posts what is already ready, so a large backfill
    starts reaching destinations before its last page is read (and the two overlap on I/O)."""
    if not destinations:
        yield
        return
    with scope.read() as conn:  # build the connectors before two threads share the hub
        for row in scope.connections(conn, Role.DESTINATION):
            scope.destination(row)
    stop = threading.Event()

    def poster() -> None:
        while not stop.wait(ALONGSIDE_INTERVAL_S):
            for cid, name in destinations.items():
                _guard(report, f"post:{name}", lambda c=cid: post_ready(scope, c), report.posts)  # type: ignore[misc]

    thread = threading.Thread(target=poster, name="post-alongside-sync", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _merge_posts(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per destination out of the alongside passes and the final one."""
    merged: dict[str, dict[str, Any]] = {}
    for p in posts:
        m = merged.setdefault(p["destination"], {**p, "posted": 0, "rejected": 0, "held": 0, "batches": 0})
        for key in ("posted", "rejected", "held", "batches"):
            m[key] += p[key]
        if p["error"] is not None:
            m["error"] = p["error"]
        if "preflight" in p and m.get("preflight") is not p["preflight"]:  # a POS destination's (issue #17)
            m["preflight"] = _merge_preflight(m.get("preflight"), p["preflight"])
    return list(merged.values())


def _merge_preflight(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    """Two passes' pre-flight figures as one: counts added, the last pass's failing checks."""
    if a is None:
        return dict(b)
    out = {k: a.get(k, 0) + v if isinstance(v, int) else v for k, v in b.items()}
    out["failed_checks"] = b["failed_checks"] if b.get("connection_reads") else a.get("failed_checks", [])
    return out


def scheduled(scope: Scope, role: Role, capability: Capability, report: CycleReport | None = None) -> dict[int, str]:
    """The tenant's connections (id → name) of ``role`` whose kind declares ``capability``: the
    only ones the job for it runs on (a destination that lists no shipments is never polled for
    them). A connection whose kind is not registered is logged and counted as crashed, never
    silently left out."""
    names: dict[int, str] = {}
    with scope.read() as conn:
        rows = scope.connections(conn, role)
    for row in rows:
        try:
            if row.can(capability):
                names[row.id] = row.name
        except InvalidInput:
            log.error("job.unknown_kind", **scope.log_fields(row), kind=row.kind)
            if report is not None:
                report.crashed.append(f"{capability.value}:{row.name}")
    return names


def run_cycle(
    scope: Scope,
    *,
    sync: bool = True,
    post: bool = True,
    shipments: bool = True,
    push: bool = True,
    channels: Collection[int] | None = None,
    deliveries: bool = True,
) -> CycleReport:
    """One pass over one tenant's connections: sync its channels (only those in ``channels`` when
    given: the ones due), posting alongside, then post, poll shipments, push fulfilments."""
    report = CycleReport()
    destinations = scheduled(scope, Role.DESTINATION, Capability.POST_ORDERS, report)
    if sync:
        syncing = {
            cid: name
            for cid, name in scheduled(scope, Role.CHANNEL, Capability.LIST_CHANGED, report).items()
            if channels is None or cid in channels
        }
        with _posting_alongside(scope, report, destinations if post and syncing else {}):
            for cid, name in syncing.items():
                _guard(report, f"sync:{name}", lambda c=cid: sync_channel(scope, c), report.syncs)  # type: ignore[misc]
    if post:
        for cid, name in destinations.items():
            _guard(report, f"post:{name}", lambda c=cid: post_ready(scope, c), report.posts)  # type: ignore[misc]
        report.posts = _merge_posts(report.posts)
    if shipments:
        for cid, name in scheduled(scope, Role.DESTINATION, Capability.LIST_SHIPMENTS, report).items():
            _guard(report, f"shipments:{name}", lambda c=cid: poll_shipments(scope, c), report.shipments)  # type: ignore[misc]
    if push:
        for cid, name in scheduled(scope, Role.CHANNEL, Capability.PUSH_FULFILMENT, report).items():
            _guard(report, f"push:{name}", lambda c=cid: push_fulfilments(scope, c), report.pushes)  # type: ignore[misc]
    if deliveries:  # file-export destinations: what the package did with each file (issue #15 item 5)
        for cid, name in scheduled(scope, Role.DESTINATION, Capability.WATCH_DELIVERIES, report).items():
            _guard(report, f"deliveries:{name}", lambda c=cid: watch_deliveries(scope, c), report.deliveries)  # type: ignore[misc]
    return report


def post_due(scope: Scope, row: ConnectionRow, last: dict[int, datetime], now: datetime) -> bool:
    """Whether the poster may post to ``row`` now: always, unless its kind declares a
    ``post_schedule`` and the connection sets one (``runtime/schedule.py``); then only when due
    since ``last[row.id]`` — the last scheduled post that went through, which the caller records
    (so a busy lease or a failing destination keeps the slot due). ``last`` starts from the
    ledger's newest posting there, so a restart after a slot still posts once for it. A schedule
    that cannot be read is logged and ignored (posting goes on whenever orders are ready: nothing
    is held back by a typo)."""
    try:
        spec = row.hub_setting("post_schedule")
    except (KeyError, InvalidInput):
        return True
    if not spec:
        return True
    try:
        schedule = Schedule.parse(str(spec))
    except ValueError as exc:
        log.error("post.schedule_unreadable", **scope.log_fields(row), error=str(exc))
        return True
    if row.id not in last:
        newest = last_posted_at(scope, row.id)
        if newest is not None:
            last[row.id] = newest
    return schedule.due(last.get(row.id), now)


def poster_loop(hub: Hub, stop: threading.Event, wake: threading.Event, *, tick_s: float = 1.0) -> None:
    """Post ready orders whenever woken (a webhook wrote an order) and at least every tick.

    A dedicated thread, so an order that arrives by webhook is posted within milliseconds even while
    the main loop is busy with a long sync or audit. When another process holds a destination's
    post lease, it looks again shortly instead of waiting a whole tick.
    """
    last: dict[int, datetime] = {}
    while not stop.is_set():
        wake.wait(tick_s)
        wake.clear()
        if stop.is_set():
            return
        for scope in _tenants(hub):
            for cid, name in scheduled(scope, Role.DESTINATION, Capability.POST_ORDERS).items():
                try:
                    started = scope.now()
                    if not post_due(scope, scope.load(cid), last, started):
                        continue
                    if post_ready(scope, cid).error is None:
                        last[cid] = started
                except LeaseBusy:
                    stop.wait(BUSY_RETRY_S)
                    wake.set()
                except Exception:
                    log.exception("job.crashed", job=f"post:{name}", **scope.log_fields())


def housekeeping(scope: Scope, report: CycleReport, *, check_webhooks: bool = False) -> None:
    """One tenant's audits (those asked for by hand, then the scheduled ones), webhook deliveries left
    queued, hold alerts, digest, alert dispatch and the folding of its order tallies: each guarded
    like any other job."""
    from orderbridge.services import dashboard, notify
    from orderbridge.services.audits import run_queued_audits
    from orderbridge.services.reconcile import ReconcileReport, due_audits, reconcile, settled

    asked: list[ReconcileReport] = []  # "Run audit now" (services/audits.py): before the scheduled ones
    report.audits.extend(r.as_dict() for r in _safe(report, "queued_audits", lambda: run_queued_audits(scope), asked))
    none: list[tuple[int, str, datetime]] = []
    for cid, kind, since in _safe(report, "audits", lambda: due_audits(scope), none):
        _guard(
            report,
            f"reconcile:{cid}",
            lambda c=cid, k=kind, s=since: reconcile(scope, c, since=s, until=settled(scope), kind=k),  # type: ignore[misc]
            report.audits,
        )
    # webhook deliveries left queued for a minute (their ingest job failed, or the engine was
    # switched to embedded with some still queued): ingested here (decision 241)
    from orderbridge.services.webhooks import QUEUED_SWEEP_AFTER_S, ingest_queued, queued_channels

    no_channels: list[int] = []
    left = _safe(
        report, "queued_deliveries", lambda: queued_channels(scope, older_than_s=QUEUED_SWEEP_AFTER_S), no_channels
    )
    for cid in left:
        _safe(report, f"ingest:{cid}", lambda c=cid: ingest_queued(scope, c), None)  # type: ignore[misc]
    _safe(report, "hold_alerts", lambda: notify.sync_hold_alerts(scope), (0, 0))
    # issue #16: channel deadlines near, and held cancel/refund/accept/refuse requests, as alerts
    from orderbridge.services.deadlines import sync_channel_alerts

    _safe(report, "channel_alerts", lambda: sync_channel_alerts(scope), (0, 0))
    if check_webhooks:
        from orderbridge.services.webhooks import check_subscriptions

        no_names: list[str] = []
        _safe(report, "webhook_check", lambda: check_subscriptions(scope), no_names)
    _safe(report, "digest", lambda: notify.send_digest_if_due(scope), False)
    _guard(report, "notify", lambda: notify.dispatch(scope), report.notifications)
    _safe(report, "tallies", lambda: dashboard.compact(scope), 0)


def _safe(report: CycleReport, what: str, fn: Callable[[], T], default: T) -> T:
    try:
        return fn()
    except Exception:
        log.exception("job.crashed", job=what)
        report.crashed.append(what)
        return default


def housekeeping_loop(hub: Hub, stop: threading.Event, *, every_s: float = HOUSEKEEPING_EVERY_S) -> None:
    """Audits, hold alerts, the webhook check, the digest and alert dispatch, every ``every_s``, in a
    thread of their own: a 100,000-order audit (seconds) or a mail relay that does not answer (up to
    the timeout) never holds up a poll, a shipment poll or a push."""
    last_hooks = float("-inf")
    while not stop.is_set():
        started = time.monotonic()
        check = started - last_hooks >= WEBHOOK_CHECK_EVERY_S
        for scope in _tenants(hub):
            report = CycleReport()
            housekeeping(scope, report, check_webhooks=check)
            if report.crashed:
                log.error("worker.housekeeping_with_crashes", jobs=report.crashed, **scope.log_fields())
        if check:
            last_hooks = started
        stop.wait(max(0.0, every_s - (time.monotonic() - started)))


def poll_interval(scope: Scope, row: ConnectionRow) -> float:
    """Seconds between two scheduled syncs of a channel: its ``poll_interval_s`` setting, else the
    hub's ``poll_interval_s``."""
    try:
        own = row.hub_setting("poll_interval_s")
    except (KeyError, InvalidInput):  # an unknown kind: scheduled() reports it
        own = None
    return float(own) if isinstance(own, int | float) and own > 0 else scope.settings.poll_interval_s


def due_channels(scope: Scope, last: dict[int, float], now: float) -> set[int]:
    """The tenant's channels whose poll interval has passed since their last scheduled sync
    (``last``: connection id → monotonic start time, updated here for those returned)."""
    due: set[int] = set()
    with scope.read() as conn:
        rows = scope.connections(conn, Role.CHANNEL)
    for row in rows:
        if now - last.get(row.id, float("-inf")) >= poll_interval(scope, row):
            due.add(row.id)
            last[row.id] = now
    return due


def run_queued_syncs(scope: Scope, report: CycleReport, wake: threading.Event | None = None) -> None:
    """Sync now requests no runner took within their grace (a web process without a runner, or one
    that stopped): run here, one after the other. ``run_requested`` settles each request's row
    whatever happens and wakes the poster when it wrote orders."""
    none: list[QueuedSync] = []
    for request in _safe(report, "sync_now", lambda: queued_syncs(scope), none):
        run_requested(scope.hub, request, wake=None if wake is None else wake.set)


def _tenants(hub: Hub) -> list[Scope]:
    """Every tenant's scope, read afresh each pass; none (logged) when the database cannot say."""
    try:
        return Scope.every(hub)
    except Exception:
        log.exception("job.crashed", job="tenants")
        return []


def serve(
    hub: Hub,
    stop: threading.Event,
    *,
    tick_s: float = 1.0,
    wake: threading.Event | None = None,
    housekeeping_every_s: float = HOUSEKEEPING_EVERY_S,
) -> None:
    """Run jobs until ``stop`` is set: each channel's sync every ``poll_interval_s`` (its own setting,
    else the hub's: :func:`poll_interval`), Sync now requests no runner took, shipment polls every
    ``shipment_poll_interval_s``, pushes every tick; posting runs in its own thread
    (:func:`poster_loop`), woken by ``wake``, and audits/digest/alerts in another
    (:func:`housekeeping_loop`) every ``housekeeping_every_s``."""
    wake = wake or threading.Event()
    last_ship = float("-inf")
    last_sync: dict[int, float] = {}
    log.info("worker.start", poll_interval_s=hub.settings.poll_interval_s)
    poster = threading.Thread(
        target=poster_loop, args=(hub, stop, wake), kwargs={"tick_s": tick_s}, name="poster", daemon=True
    )
    housekeeper = threading.Thread(
        target=housekeeping_loop,
        args=(hub, stop),
        kwargs={"every_s": housekeeping_every_s},
        name="housekeeper",
        daemon=True,
    )
    poster.start()
    housekeeper.start()
    try:
        while not stop.is_set():
            started = time.monotonic()
            do_ship = started - last_ship >= hub.settings.shipment_poll_interval_s
            for scope in _tenants(hub):
                report = CycleReport()
                nothing: set[int] = set()
                due = _safe(report, "schedule", partial(due_channels, scope, last_sync, started), nothing)
                cycle = run_cycle(
                    scope, sync=bool(due), post=False, shipments=do_ship, push=True, channels=due, deliveries=do_ship
                )
                run_queued_syncs(scope, cycle, wake)
                cycle.crashed.extend(report.crashed)
                if any(s["inserted"] or s["changed"] for s in cycle.syncs):
                    wake.set()
                if cycle.crashed:
                    log.error("worker.cycle_with_crashes", jobs=cycle.crashed, **scope.log_fields())
            if do_ship:
                last_ship = started
            stop.wait(max(0.0, tick_s - (time.monotonic() - started)))
    finally:
        stop.set()
        wake.set()
        poster.join()
        housekeeper.join()
    log.info("worker.stop")
