"""The procrastinate job engine: jobs as rows in PostgreSQL, run by ``orderbridge worker`` processes.

Picked by ``ORDERBRIDGE_JOB_ENGINE=procrastinate`` (PostgreSQL only; docs/scaling.md). The jobs run
the task functions of :mod:`orderbridge.runtime.tasks` — the same ones the embedded runtime runs.
Nothing here is a scheduler or a lock of our own: procrastinate (an existing, maintained engine over
the same PostgreSQL) fetches jobs with ``FOR UPDATE SKIP LOCKED``, keeps one ``doing`` job per
``lock``, one ``todo`` job per ``queueing_lock``, a heartbeat per worker, and defers each periodic
task once per period however many workers run (its ``procrastinate_periodic_defers`` unique key).

- **Deferred in the state change's transaction** (decision 226). :class:`ProcrastinateNudges`
  writes the job row with procrastinate's own ``defer`` given the SQLAlchemy transaction's psycopg
  connection (``Task.configure(connection=...)``: the job INSERT runs on that connection, so it
  commits or rolls back with the order). It goes in a SAVEPOINT: a ``queueing_lock`` already taken
  raises a unique violation, which must cost only the nudge, never the order's transaction.
- **One job per connection at a time** (decision 227): each job's ``lock`` is set at defer time,
  ``<kind>:<connection id>`` (:meth:`~orderbridge.runtime.tasks.JobKind.lock`), and the same string
  is its ``queueing_lock``, so a storm of webhooks or dispatcher passes leaves one pending job.
- **Stalled jobs** (decision 229): the ``recover_stalled`` periodic task asks procrastinate for the
  ``doing`` jobs of workers whose heartbeat is older than ``worker_stalled_after_s``, frees the leases
  that dead attempt held (``storage.leases``: the write fence, decision 228) and retries the job; when
  another job with its queueing lock is already pending, the stalled one is ended ``aborted`` instead
  (the pending one, which its lock held back, does the same idempotent work).
- **Periodic work** (decision 230): ``dispatch`` (due syncs, Sync now requests nobody took, posts
  for tenants with ready orders, housekeeping), ``backsync`` (shipments, pushes, file deliveries),
  ``webhook_check`` and ``recover_stalled`` are procrastinate periodic tasks; they only *defer*
  per-connection jobs with queueing locks, so even an overlap could not run a connection twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from procrastinate import App, JobContext, PsycopgConnector, SyncPsycopgConnector
from procrastinate import exceptions as pexc
from procrastinate.jobs import Status
from sqlalchemy import Connection, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from orderbridge.connectors.base import Capability, Role
from orderbridge.domain.states import OrderState
from orderbridge.errors import InvalidInput, NotFound, SettingsError
from orderbridge.runtime import tasks
from orderbridge.runtime.tasks import INGEST, KINDS, SYNC, JobKind
from orderbridge.services.hub import ConnectionRow, Hub
from orderbridge.services.scope import Scope
from orderbridge.services.sync_now import QueuedSync, queued_syncs
from orderbridge.settings import Settings
from orderbridge.storage.leases import LeaseBusy, acting_for_job, job_holder, release_held_by
from orderbridge.storage.tables import connections, orders

log = structlog.get_logger("orderbridge.engine")

#: every task's name starts with this (the ``task_name`` column of procrastinate_jobs)
PREFIX = "orderbridge."
HOUSEKEEPING_QUEUE = "housekeeping"
#: how often the dispatcher defers each tenant's housekeeping (audits due, alerts, digest, tallies)
HOUSEKEEPING_EVERY_S = 5
#: how often each tenant's webhook subscriptions are checked
WEBHOOK_CHECK_EVERY_S = 300
#: a Sync now job's priority (the others' is procrastinate's default, 0): see ``sync_now``
SYNC_NOW_PRIORITY = 10


def task_name(kind: str) -> str:
    return PREFIX + kind


def conninfo(database_url: str) -> str:
    """The libpq connection string of the hub's PostgreSQL URL (procrastinate's connector)."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgres"):
        raise SettingsError(
            f"job_engine=procrastinate needs PostgreSQL; the database is {url.drivername}",
            hint="Set ORDERBRIDGE_DATABASE_URL to a postgresql:// URL, or ORDERBRIDGE_JOB_ENGINE=embedded.",
        )
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


def cron_every(seconds: float) -> str:
    """A procrastinate cron (6 columns: the last is seconds) firing about every ``seconds``: the
    nearest period cron can say (a divisor of 60 s, 60 min or 24 h)."""
    s = max(1, round(seconds))
    if s < 60:
        n = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d <= s)
        return f"* * * * * */{n}"
    m = round(s / 60)
    if m < 60:
        n = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d <= m)
        return f"*/{n} * * * * 0"
    h = max(d for d in (1, 2, 3, 4, 6, 8, 12) if d <= max(1, round(m / 60)))
    return f"0 */{h} * * * 0"


# --- deferring: in the caller's transaction ---------------------------------------------------


class ProcrastinateNudges:
    """:class:`orderbridge.services.nudges.Nudges` as procrastinate job rows (see the module)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ingest_in_job = settings.webhook_ingest == "job"
        # never opened: every defer runs on the caller's connection, so it needs no pool of its own
        self._app = App(connector=SyncPsycopgConnector())

    def defer(
        self,
        conn: Connection,
        kind: str,
        *,
        lock: str,
        queue: str,
        queueing_lock: str | None = None,
        schedule_in: float | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> int | None:
        """Write one job in ``conn``'s transaction; None when its queueing lock is taken (a job
        doing the same is already pending)."""
        options: dict[str, Any] = {"lock": lock, "queueing_lock": queueing_lock, "queue": queue, "priority": priority}
        if schedule_in:
            options["schedule_in"] = {"seconds": schedule_in}
        raw = conn.connection.driver_connection
        try:
            with conn.begin_nested():  # a taken queueing lock costs this nudge only
                job_id: int = self._app.configure_task(task_name(kind), connection=raw, **options).defer(**kwargs)
        except pexc.AlreadyEnqueued:
            return None
        return job_id

    def connection_job(
        self, conn: Connection, kind: JobKind, tenant_id: int, connection_id: int, *, schedule_in: float | None = None
    ) -> int | None:
        lock = kind.lock(connection_id)
        return self.defer(
            conn,
            kind.name,
            lock=lock,
            queueing_lock=lock,
            queue=kind.queue,
            schedule_in=schedule_in,
            tenant_id=tenant_id,
            connection_id=connection_id,
        )

    def orders_ready(self, conn: Connection, tenant_id: int) -> None:
        for row in _connections(conn, tenant_id, Role.DESTINATION, Capability.POST_ORDERS):
            self.connection_job(conn, KINDS["post"], tenant_id, row.id)

    def channel_changed(self, conn: Connection, tenant_id: int, connection_id: int) -> None:
        self.connection_job(conn, SYNC, tenant_id, connection_id, schedule_in=self.settings.webhook_sync_delay_s)

    def deliveries_queued(self, conn: Connection, tenant_id: int, connection_id: int) -> None:
        """The channel's ingest job — unless one is pending: then its row is held ``FOR SHARE`` until
        this transaction commits, so procrastinate's fetch (``FOR UPDATE SKIP LOCKED``) cannot start
        it before the delivery is visible, and the job is sure to take it. One indexed read instead of
        a defer its queueing lock would refuse (savepoint, procrastinate's insert, unique violation)
        for every delivery of a storm."""
        pending = conn.execute(
            text("SELECT id FROM procrastinate_jobs WHERE queueing_lock = :lock AND status = 'todo' FOR SHARE"),
            {"lock": INGEST.lock(connection_id)},
        ).first()
        if pending is None:
            self.connection_job(conn, INGEST, tenant_id, connection_id)

    def sync_now(self, conn: Connection, request: QueuedSync) -> int | None:
        """A Sync now request: its own job (its own queueing lock: a pending scheduled sync must
        not swallow it), under the channel's sync lock, at :data:`SYNC_NOW_PRIORITY` — procrastinate
        runs same-lock jobs by priority, then id, whatever their ``scheduled_at``, so at the default
        priority a webhook's sync scheduled 10 s out would hold the person's request back."""
        return self.defer(
            conn,
            "sync_now",
            lock=SYNC.lock(request.connection_id),
            queueing_lock=f"sync_now:{request.run_id}",
            queue=SYNC.queue,
            priority=SYNC_NOW_PRIORITY,
            tenant_id=request.tenant_id,
            connection_id=request.connection_id,
            run_id=request.run_id,
        )

    def tenant_job(self, conn: Connection, kind: str, tenant_id: int, **kwargs: Any) -> int | None:
        lock = f"{kind}:{tenant_id}"
        return self.defer(
            conn, kind, lock=lock, queueing_lock=lock, queue=HOUSEKEEPING_QUEUE, tenant_id=tenant_id, **kwargs
        )


def _connections(conn: Connection, tenant_id: int, role: Role, capability: Capability) -> list[ConnectionRow]:
    rows = conn.execute(
        select(connections).where(connections.c.tenant_id == tenant_id, connections.c.role == role.value)
    ).all()
    out = []
    for r in rows:
        row = ConnectionRow.from_row(r)
        try:
            if row.can(capability):
                out.append(row)
        except InvalidInput:  # a kind no longer registered: the embedded scheduler reports it too
            log.error("job.unknown_kind", tenant_id=tenant_id, connection_id=row.id, kind=row.kind)
    return out


class ProcrastinateSyncRunner:
    """Sync now under procrastinate: the request becomes a job any worker takes (decision 115)."""

    def __init__(self, hub: Hub, nudges: ProcrastinateNudges) -> None:
        self.hub, self.nudges = hub, nudges

    def submit(self, request: QueuedSync) -> None:
        with self.hub.db.transaction() as conn:
            self.nudges.sync_now(conn, request)


def install(hub: Hub) -> ProcrastinateNudges | None:
    """Give ``hub`` the nudges of the configured engine (the composition root calls this)."""
    if hub.settings.job_engine != "procrastinate":
        return None
    conninfo(hub.settings.resolved_database_url)  # refuses SQLite with a fix hint
    nudges = ProcrastinateNudges(hub.settings)
    hub.nudges = nudges
    return nudges


# --- the worker side -------------------------------------------------------------------------


def _hub(context: JobContext) -> Hub:
    hub: Hub = context.additional_context["hub"]
    return hub


def _nudges(hub: Hub) -> ProcrastinateNudges:
    if isinstance(hub.nudges, ProcrastinateNudges):
        return hub.nudges
    raise SettingsError(
        "the worker's hub has no procrastinate nudges",
        hint="Run the worker command, which composes its hub for the procrastinate engine.",
    )


@contextmanager
def _as_job(context: JobContext, what: str, **fields: Any) -> Iterator[None]:
    """Run a job's body with its leases held as its attempt; a lease another holder has (a CLI
    ``sync`` beside the workers) or a tenant/connection removed meanwhile ends it quietly.

    So does a database that went away under the job (a PostgreSQL restart or failover:
    ``OperationalError``), logged as ``job.database_unavailable``: every job is an idempotent
    nudge the periodic dispatcher defers again (syncs when due, the posting sweep, pushes), so its
    work is done within one interval once the database is back — whereas ending it ``failed``
    would leave a failed job no alert could even be written for (decision 237; the chaos run's
    database restart found it). A procrastinate retry is no answer: a retried job returns to
    ``todo`` and collides with the pending job holding its queueing lock. Any other exception is
    a bug (the task functions record the failures they expect on the connection's health): logged
    ``job.crashed`` and left to procrastinate, which marks the job ``failed`` — the next
    dispatcher pass defers the connection's job again."""
    job = context.job
    assert job.id is not None
    with acting_for_job(job.id, job.attempts):
        try:
            yield
        except LeaseBusy as exc:
            log.info("job.busy", job=what, lease=exc.name, **fields)
        except NotFound as exc:
            log.info("job.gone", job=what, error=str(exc), **fields)
        except OperationalError as exc:
            log.warning("job.database_unavailable", job=what, error=str(exc.orig or exc)[:300], **fields)
        except Exception:  # a bug: logged as the embedded runtime logs it; procrastinate marks it failed
            log.exception("job.crashed", job=what, job_id=job.id, **fields)
            raise


def _connection_task(kind: JobKind) -> Callable[..., Any]:
    def run(context: JobContext, tenant_id: int, connection_id: int) -> dict[str, Any] | None:
        with _as_job(context, kind.name, tenant_id=tenant_id, connection_id=connection_id):
            return tasks.run_job(_hub(context), kind.name, tenant_id, connection_id)
        return None

    run.__name__ = f"{kind.name}_job"
    return run


def sync_now_job(context: JobContext, tenant_id: int, connection_id: int, run_id: int) -> str | None:
    with _as_job(context, "sync_now", tenant_id=tenant_id, connection_id=connection_id):
        return tasks.run_sync_now(_hub(context), tenant_id, connection_id, run_id)
    return None


def housekeeping_job(context: JobContext, tenant_id: int) -> list[str]:
    with _as_job(context, "housekeeping", tenant_id=tenant_id):
        crashed = tasks.housekeeping(_hub(context), tenant_id)
        if crashed:
            log.error("worker.housekeeping_with_crashes", jobs=crashed, tenant_id=tenant_id)
        return crashed
    return []


def webhook_check_job(context: JobContext, tenant_id: int) -> list[str]:
    from orderbridge.services.webhooks import check_subscriptions

    with _as_job(context, "webhook_check", tenant_id=tenant_id):
        return check_subscriptions(Scope.of(_hub(context), tenant_id))
    return []


def _every_tenant(hub: Hub, fn: Callable[[Scope, Connection], None]) -> None:
    """``fn`` for each tenant in a transaction of its own (one tenant's trouble never stops the
    others'; what it defers commits together)."""
    for scope in Scope.every(hub):
        try:
            with hub.db.transaction() as conn:
                fn(scope, conn)
        except Exception:
            log.exception("job.crashed", job="dispatch", **scope.log_fields())


def _has_ready(conn: Connection, tenant_id: int) -> bool:
    """Whether the tenant has a ``ready`` order (one probe of ``ix_orders_tenant_state``)."""
    found = conn.execute(
        select(orders.c.id).where(orders.c.tenant_id == tenant_id, orders.c.state == OrderState.READY.value).limit(1)
    ).first()
    return found is not None


def dispatch(context: JobContext, timestamp: int) -> None:
    """Defer what is due: each channel's sync once its poll interval has passed since its last sync
    (any run's: webhook-driven, Sync now, CLI), the Sync now requests nobody took, a post to each
    destination of a tenant with ``ready`` orders (those made ready by a person — a mapping that
    released holds, a retry, a manual order — carry no nudge of their own), and each tenant's
    housekeeping."""
    hub = _hub(context)
    nudges = _nudges(hub)
    now = hub.now()

    def due(scope: Scope, conn: Connection) -> None:
        from orderbridge.runtime.worker import poll_interval

        last = tasks.last_sync_started(scope)
        for row in _connections(conn, scope.tenant_id, Role.CHANNEL, Capability.LIST_CHANGED):
            started = last.get(row.id)
            if started is None or (now - started).total_seconds() >= poll_interval(scope, row):
                nudges.connection_job(conn, SYNC, scope.tenant_id, row.id)
        for request in queued_syncs(scope):
            nudges.sync_now(conn, request)
        if _has_ready(conn, scope.tenant_id):  # made ready without a nudge: a released hold, a retry
            nudges.orders_ready(conn, scope.tenant_id)
        if timestamp % HOUSEKEEPING_EVERY_S < hub.settings.worker_tick_s:
            nudges.tenant_job(conn, "housekeeping", scope.tenant_id)

    _every_tenant(hub, due)


def backsync(context: JobContext, timestamp: int) -> None:
    """Defer each destination's shipment poll, file-delivery watch and a post (what a failed post
    left ``pending`` is sent again), and each channel's pushes."""
    hub = _hub(context)
    nudges = _nudges(hub)

    def every(scope: Scope, conn: Connection) -> None:
        for name in ("post", "shipments", "deliveries", "push"):
            kind = KINDS[name]
            for row in _connections(conn, scope.tenant_id, kind.role, kind.capability):
                nudges.connection_job(conn, kind, scope.tenant_id, row.id)

    _every_tenant(hub, every)


def webhook_check(context: JobContext, timestamp: int) -> None:
    hub = _hub(context)
    nudges = _nudges(hub)

    def check(scope: Scope, conn: Connection) -> None:
        nudges.tenant_job(conn, "webhook_check", scope.tenant_id)

    _every_tenant(hub, check)


async def recover_stalled(context: JobContext, timestamp: int) -> int:
    """Retry the jobs of workers whose heartbeat stopped (a worker SIGKILLed, its machine gone):
    free the leases of that attempt, then put the job back to ``todo`` — or end it ``aborted`` when
    a job with its queueing lock is already pending. Returns how many were recovered."""
    hub = _hub(context)
    assert context.app is not None
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=hub.settings.worker_stalled_after_s)
    recovered = 0
    for job in stalled:
        assert job.id is not None
        freed = await asyncio.to_thread(release_held_by, hub.db, job_holder(job.id, job.attempts))
        try:
            await manager.retry_job(job)
            outcome = "retried"
        except pexc.UniqueViolation:  # a job with its queueing lock is pending: it does the same work
            # "aborted" (procrastinate's end state for a job stopped before its end); this frees the
            # lock the pending job waits on
            try:
                await manager.finish_job_by_id_async(job.id, status=Status.ABORTED, delete_job=False)
            except pexc.ConnectorException:  # another pass of this task ended it first (chaos soak)
                continue
            outcome = "aborted"
        except pexc.ConnectorException:  # it finished or was recovered meanwhile
            continue
        recovered += 1
        log.warning(
            "job.stalled_recovered",
            job_id=job.id,
            task=job.task_name,
            lock=job.lock,
            attempts=job.attempts,
            leases_freed=freed,
            outcome=outcome,
        )
    return recovered


def build_app(hub: Hub) -> App:
    """The worker's procrastinate app: the tasks, the periodic tasks (their crons from the
    settings) and the connector to the hub's PostgreSQL."""
    s = hub.settings
    app = App(
        connector=PsycopgConnector(
            conninfo=conninfo(s.resolved_database_url), min_size=1, max_size=s.worker_concurrency + 4
        )
    )
    for kind in KINDS.values():
        app.task(name=task_name(kind.name), queue=kind.queue, pass_context=True)(_connection_task(kind))
    app.task(name=task_name("sync_now"), queue=SYNC.queue, pass_context=True)(sync_now_job)
    for name, fn in (("housekeeping", housekeeping_job), ("webhook_check", webhook_check_job)):
        app.task(name=task_name(name), queue=HOUSEKEEPING_QUEUE, pass_context=True)(fn)
    periodic: list[tuple[str, Callable[..., Any], float]] = [
        ("dispatch", dispatch, s.worker_tick_s),
        ("backsync", backsync, s.shipment_poll_interval_s),
        ("webhook_check_all", webhook_check, WEBHOOK_CHECK_EVERY_S),
        ("recover_stalled", recover_stalled, s.worker_tick_s),
    ]
    for name, fn, every in periodic:
        task = app.task(name=task_name(name), queue=HOUSEKEEPING_QUEUE, pass_context=True)(fn)
        app.periodic(cron=cron_every(every), periodic_id=name)(task)
    return app


def run_worker(
    hub: Hub, *, queues: Iterable[str] | None = None, concurrency: int | None = None, name: str = ""
) -> None:
    """Run one procrastinate worker until SIGINT/SIGTERM (procrastinate's handlers: the jobs in
    progress finish, then it exits; a second signal stops at once)."""
    s = hub.settings
    if not isinstance(hub.nudges, ProcrastinateNudges):
        install(hub)
    app = build_app(hub)
    app.run_worker(
        queues=list(queues) if queues else None,
        concurrency=concurrency or s.worker_concurrency,
        name=name or None,
        additional_context={"hub": hub},
        install_signal_handlers=True,
        update_heartbeat_interval=s.worker_heartbeat_s,
        stalled_worker_timeout=s.worker_stalled_after_s,
        fetch_job_polling_interval=1.0,
        delete_jobs="never" if s.worker_keep_jobs else "successful",
    )
