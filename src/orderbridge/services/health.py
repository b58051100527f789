"""Connection health: healthy, degraded, failing, silent — and the alert when it turns bad.

- ``healthy``: the last run succeeded and, for a channel, orders arrive at their usual pace.
- ``degraded``: transient errors (429, 5xx, timeouts) are being retried; fewer than
  ``failing_after`` runs in a row have failed. Also a channel's sync while orders the database
  refused to store as sent are held or quarantined (code ``storage_refused``, decision 44): the
  sync works, but not everything it read is stored whole, until the channel sends a corrected
  version.
- ``failing``: the system refused the credentials or settings (a person must act), or
  ``failing_after`` runs in a row failed. Raises an alert (one per episode, not one per run).
- ``silent``: a channel whose runs succeed but whose newest order is older than
  ``silent_factor`` × its usual gap between orders (and at least ``silent_min_s``) — the "auto-import
  switched itself off" or "webhook quietly disabled" failure that nobody notices. Raises an alert.

The usual gap is the median gap between the last 200 orders' creation times in the channel: robust
to bursts, and learnt per connection (a shop taking one order a day is not silent after an hour).
No alert is possible before ``silent_min_orders`` orders are known.

Health is kept per **job** of a connection (:data:`JOBS`: its sync, posting, shipment download,
fulfilment push, audit, connection test, webhook registration), each with its own failing alert
(``connection_failing:<id>:<job>``), resolved only by that job's next success — so a push refused
a permission while polls succeed is one open episode, not an alert re-opened every cycle. Refused
credentials (HTTP 401) are one cause for every job: one alert (``connection_failing:<id>:credentials``)
whichever jobs meet it, and any job that works again settles them all (as it settles a failed
connection test: a working run proves what the test proves). The connection's own ``health``
columns hold the worst job's state, with a message naming the job.

Nothing here ever disables a connection: its jobs keep running on schedule, and the first success
returns it to ``healthy`` and resolves its alert (so a later episode alerts again).
"""

from __future__ import annotations

import itertools
import json
import statistics
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, func, insert, select, update

from orderbridge.connectors.base import ApiVersionNotice, Role
from orderbridge.domain.events import EventKind
from orderbridge.errors import AuthFailed, FixConfiguration, OrderBridgeError, PermissionDenied
from orderbridge.fixes import Fix, FixAction, check_connection, run_audit
from orderbridge.services import notify
from orderbridge.services.hub import ConnectionRow, Hub
from orderbridge.services.ingest import ingest_failures_open, pending_reread_counts, resolve_ingest_failures
from orderbridge.services.ledger import add_events, event_row
from orderbridge.services.scope import Scope
from orderbridge.storage.repos.connections import with_order_cursor
from orderbridge.storage.tables import connection_jobs, connections, orders, sync_runs

log = structlog.get_logger("orderbridge.health")

GAP_SAMPLE = 200


#: the jobs that report a connection's health, and how messages name them
JOBS: dict[str, str] = {
    "sync": "order sync",
    "post": "posting",
    "shipments": "shipment download",
    "push": "fulfilment push",
    "audit": "audit",
    "check": "connection test",
    "webhooks": "webhook registration",
    "api_version": "API version",
    "deliveries": "file pickup watch",
}
_RANK = {"healthy": 0, "silent": 1, "degraded": 2, "failing": 3}
#: the alert "job" of refused credentials (HTTP 401): one cause for every job of the connection
CREDENTIALS = "credentials"


def failing_key(connection_id: int, job: str) -> str:
    """``job`` is a key of :data:`JOBS`, or :data:`CREDENTIALS` for refused credentials."""
    return f"connection_failing:{connection_id}:{job}"


def silent_key(connection_id: int) -> str:
    return f"connection_silent:{connection_id}"


def api_version_key(connection_id: int) -> str:
    return f"api_version_deprecated:{connection_id}"


def record_api_version(scope: Scope, row: ConnectionRow, notice: ApiVersionNotice | None) -> str:
    """What a run's responses said about the connection's API version (issue #12): a deprecated or
    retired version makes the connection degraded (job ``api_version``) and raises one alert with
    the fix — the setting to change and the date support ends — until a response says nothing;
    then the job is healthy again and the alert resolved. Returns the connection's state."""
    with scope.db.transaction() as conn:
        _lock(conn, row)
        now = scope.now()
        key = api_version_key(row.id)
        if notice is None:
            had = conn.execute(
                select(connection_jobs.c.health).where(
                    connection_jobs.c.connection_id == row.id, connection_jobs.c.job == "api_version"
                )
            ).scalar_one_or_none()
            if had is None:  # nothing was ever reported: nothing to settle
                return str(conn.execute(select(connections.c.health).where(connections.c.id == row.id)).scalar_one())
            _set_job(scope, conn, row, "api_version", "healthy", "", now, failures=0, succeeded=True)
            notify.resolve_alert(conn, scope.tenant_id, key, now)
            return _aggregate(scope, conn, row, now, {})
        message = f"{notice.message}; set its {notice.setting} setting to {notice.recommended!r}" + (
            f", before support ends on {notice.ends.isoformat()}" if notice.ends and notice.ends > now.date() else ""
        )
        _set_job(
            scope,
            conn,
            row,
            "api_version",
            "degraded",
            message,
            now,
            failures=0,
            succeeded=True,
            code="api_version_deprecated",
        )
        _alert(
            scope,
            conn,
            row,
            key,
            "api_version_deprecated",
            f"{row.name}: {notice.message}",
            message,
            now,
            data={
                "setting": notice.setting,
                "current": notice.current,
                "recommended": notice.recommended,
                "served": notice.served,
                "ends": notice.ends.isoformat() if notice.ends else None,
            },
            fixes=(
                Fix.of(
                    FixAction.SET_SETTING,
                    f"Set the connection's {notice.setting} setting to {notice.recommended!r}.",
                    connection=row.name,
                    setting=notice.setting,
                    value=json.dumps(notice.recommended),
                ),
            ),
        )
        return _aggregate(scope, conn, row, now, {})


def record_success(scope: Scope, row: ConnectionRow, conn: Connection | None = None, *, job: str) -> str:
    """A run of ``job`` succeeded: that job is healthy (or, for a channel's sync with no recent
    orders, silent), its failing alert is resolved. Returns the connection's state (worst job)."""
    if conn is None:
        with scope.db.transaction() as c:
            return record_success(scope, row, c, job=job)
    _lock(conn, row)
    now = scope.now()
    # the connection's "last success" (and the sync-lag figures) is its main job's: a connection
    # test or an audit that works says nothing about whether orders still flow
    main = "sync" if row.role is Role.CHANNEL else "post"
    values: dict[str, Any] = {"last_success_at": now} if job == main else {}
    state, message = "healthy", ""
    if row.role is Role.CHANNEL and job == "sync":  # silence is the sync's to judge: it sees the orders
        last, gap, n = _order_pace(conn, row.id)
        values.update(last_order_at=last, usual_gap_s=gap)
        quiet = _silence(scope, last, gap, n, now)
        if quiet is not None:
            state = "silent"
            message = (
                f"no new orders from {row.name} for {_span(quiet)} (usually one every {_span(gap or 0)}); "
                "the channel answers, so check that orders are still being placed and that the store "
                "has not changed how it publishes them"
            )
    silent = state == "silent"
    code = None
    if row.role is Role.CHANNEL and job == "sync":  # orders the database refused: the sync works, not all is stored
        refused = _refused_message(conn, row, now)
        if refused:
            state, code = "degraded", REFUSED
            message = refused + (f"; and {message}" if message else "")
    _set_job(scope, conn, row, job, state, message, now, failures=0, succeeded=True, code=code)
    notify.resolve_alert(conn, scope.tenant_id, failing_key(row.id, job), now)
    _settle_proven(scope, conn, row, job, now)
    if job == "sync":
        if silent:
            _alert(
                scope,
                conn,
                row,
                silent_key(row.id),
                "connection_silent",
                f"{row.name} has gone silent",
                message + ".",
                now,
                fixes=(check_connection(row.name), run_audit(row.name)),
            )
        else:
            notify.resolve_alert(conn, scope.tenant_id, silent_key(row.id), now)
    return _aggregate(scope, conn, row, now, values)


def record_failure(
    scope: Scope, row: ConnectionRow, error: OrderBridgeError, conn: Connection | None = None, *, job: str
) -> str:
    """A run of ``job`` failed: degraded while retrying, failing when a person must act (one alert
    per job and episode). Returns the connection's state (worst job)."""
    if conn is None:
        with scope.db.transaction() as c:
            return record_failure(scope, row, error, c, job=job)
    _lock(conn, row)
    now = scope.now()
    found = conn.execute(
        select(connection_jobs.c.consecutive_failures).where(
            connection_jobs.c.connection_id == row.id, connection_jobs.c.job == job
        )
    ).scalar_one_or_none()
    failures = (found or 0) + 1
    needs_person = isinstance(error, FixConfiguration)
    state = "failing" if needs_person or failures >= scope.settings.failing_after else "degraded"
    message = str(error)
    if state == "failing" and not needs_person:
        message = f"{failures} runs in a row failed; last: {error}"
    _set_job(scope, conn, row, job, state, message, now, failures=failures, succeeded=False, code=error.code)
    if isinstance(error, PermissionDenied):  # the remote took the credentials, only not for this
        _settle_proven(scope, conn, row, job, now)
    if state == "failing":
        hint = error.hint or "See the message; the next run tries again on its own."
        # a connector does not know which connection it serves: the fix is about this one
        fixes = [error.fix.with_params(connection=row.name)] if error.fix is not None else []
        if not any(f.action is FixAction.TEST_CONNECTION for f in fixes):
            fixes.append(check_connection(row.name))
        credentials = isinstance(error, AuthFailed)  # one cause for every job: one alert, not one per job
        what = "its credentials were refused" if credentials else f"its {JOBS.get(job, job)} cannot run"
        _alert(
            scope,
            conn,
            row,
            failing_key(row.id, CREDENTIALS if credentials else job),
            "connection_failing",
            f"{row.name} is failing: {error.message}"
            if credentials
            else f"{row.name} is failing ({JOBS.get(job, job)}): {error.message}",
            f"Connection {row.name} ({row.kind}) is failing: {what}.\n\n"
            f"What happened: {error.message}\nWhat to do: {hint}\n\nNothing is lost: every run resumes "
            f"from the last committed cursor, so once this is fixed the next run catches up.",
            now,
            data={"code": error.code, "failures": failures, "job": job},
            fixes=tuple(fixes),
        )
    return _aggregate(scope, conn, row, now, {"last_error_at": now})


#: the ``code`` of a sync job degraded only because orders were refused by the database
REFUSED = "storage_refused"


def _refused_message(conn: Connection, row: ConnectionRow, now: datetime) -> str:
    """What the sync job says while orders of ``row`` the database refused are not stored whole
    (closing first those stored whole since), or "" when there are none."""
    resolve_ingest_failures(conn, row.id, now)
    n, newest = ingest_failures_open(conn, row.id)
    if not n:
        return ""
    held = [f for f in newest if f["stage"] != "quarantined"]
    shown = ", ".join(f"{f['number'] or f['external_id']} ({f['error'][:120]})" for f in newest)
    what = "held storage_refused" if len(held) == len(newest) else "held storage_refused or quarantined"
    return (
        f"{n} order(s) from {row.name} could not be stored as sent and are {what} — {shown}"
        f"{', …' if n > len(newest) else ''}; the other orders are stored. The holds list them with the fix; once "
        "the channel sends a corrected version, the next sync stores it whole"
    )


def record_ingest_failures(scope: Scope, row: ConnectionRow) -> str:
    """A webhook stored an order the database refused (``services/webhooks.py``): the sync job says
    so now, not at the next sync — unless it is failing or degraded for a cause of its own, which
    the next sync reports with these. Returns the connection's state (worst job)."""
    with scope.db.transaction() as conn:
        _lock(conn, row)
        now = scope.now()
        current = conn.execute(
            select(connection_jobs.c.health, connection_jobs.c.code, connection_jobs.c.consecutive_failures).where(
                connection_jobs.c.connection_id == row.id, connection_jobs.c.job == "sync"
            )
        ).one_or_none()
        if current is not None and current.health not in ("healthy", "silent") and current.code != REFUSED:
            return _aggregate(scope, conn, row, now, {})
        message = _refused_message(conn, row, now)
        if message:
            failures = current.consecutive_failures if current is not None else 0
            _set_job(
                scope, conn, row, "sync", "degraded", message, now, failures=failures, succeeded=False, code=REFUSED
            )
        return _aggregate(scope, conn, row, now, {})


def _lock(conn: Connection, row: ConnectionRow) -> None:
    """Serialise health updates of one connection (jobs in other threads and processes record
    theirs concurrently; the connection's state is computed from all of its jobs' rows). SQLite's
    write transactions are serial already; on PostgreSQL this locks the connection's row."""
    conn.execute(select(connections.c.id).where(connections.c.id == row.id).with_for_update())


def needs_recovery(scope: Scope, row: ConnectionRow, job: str) -> bool:
    """Whether ``job`` is recorded as anything but healthy: a run that worked but had nothing to do
    (no order to post, no shipment to push) records its success only then, so an idle job that
    failed before does not stay failing, and a healthy idle one costs no write."""
    with scope.db.read() as conn:
        health = conn.execute(
            select(connection_jobs.c.health).where(
                connection_jobs.c.connection_id == row.id, connection_jobs.c.job == job
            )
        ).scalar_one_or_none()
    return health not in (None, "healthy")


def _set_job(
    scope: Scope,
    conn: Connection,
    row: ConnectionRow,
    job: str,
    state: str,
    message: str,
    now: datetime,
    *,
    failures: int,
    succeeded: bool,
    code: str | None = None,
) -> None:
    """Upsert the job's row (``code``: the last failure's error code); ``since`` moves only when its
    state changes."""
    when = {"last_success_at": now} if succeeded else {"last_error_at": now}
    where = (connection_jobs.c.connection_id == row.id, connection_jobs.c.job == job)
    current = conn.execute(select(connection_jobs.c.health).where(*where)).scalar_one_or_none()
    values = {"health": state, "message": message, "consecutive_failures": failures, "code": code, **when}
    if current is None:
        conn.execute(
            insert(connection_jobs).values(
                tenant_id=scope.tenant_id, connection_id=row.id, job=job, since=now, **values
            )
        )
        return
    if current != state:
        values["since"] = now
    conn.execute(update(connection_jobs).where(*where).values(**values))


def _settle_proven(scope: Scope, conn: Connection, row: ConnectionRow, job: str, now: datetime) -> None:
    """A run of ``job`` worked, so the connection answers and takes its credentials: what a failed
    connection test, or another job's refused credentials, said is no longer so. Those jobs are
    healthy again (their next run would show it anyway) and the credentials alert is resolved.
    A job that failed for its own reason (a permission, a setting, its endpoint) keeps its state."""
    notify.resolve_alert(conn, scope.tenant_id, failing_key(row.id, CREDENTIALS), now)
    settled = conn.execute(
        select(connection_jobs.c.job).where(
            connection_jobs.c.connection_id == row.id,
            connection_jobs.c.job != job,
            connection_jobs.c.health != "healthy",
            (connection_jobs.c.job == "check") | (connection_jobs.c.code == AuthFailed.code),
        )
    ).scalars()
    for other in list(settled):
        _set_job(scope, conn, row, other, "healthy", "", now, failures=0, succeeded=True)
        notify.resolve_alert(conn, scope.tenant_id, failing_key(row.id, other), now)


def _aggregate(scope: Scope, conn: Connection, row: ConnectionRow, now: datetime, values: dict[str, Any]) -> str:
    """The connection's health is its worst job's; its message names each job in that state."""
    jobs = list(
        conn.execute(
            select(
                connection_jobs.c.job,
                connection_jobs.c.health,
                connection_jobs.c.message,
                connection_jobs.c.consecutive_failures,
            )
            .where(connection_jobs.c.connection_id == row.id)
            .order_by(connection_jobs.c.job)
        )
    )
    state = max((j.health for j in jobs), key=lambda h: _RANK.get(h, 0), default="healthy")
    worst = [j for j in jobs if j.health == state]
    message = "" if state == "healthy" else "; ".join(f"{JOBS.get(j.job, j.job)}: {j.message}" for j in worst)
    failures = max((j.consecutive_failures for j in jobs), default=0)
    current = conn.execute(select(connections.c.health).where(connections.c.id == row.id)).scalar_one()
    _transition(scope, conn, row, current, state, message, {**values, "consecutive_failures": failures}, now)
    return state


def job_health(scope: Scope, connection_id: int) -> list[dict[str, Any]]:
    """Each job's health for one connection (for ``/healthz`` and the CLI)."""
    with scope.db.read() as conn:
        return [
            {
                "job": j.job,
                "health": j.health,
                "message": j.message,
                "since": _iso(j.since),
                "consecutive_failures": j.consecutive_failures,
                "code": j.code,
                "last_success_at": _iso(j.last_success_at),
                "last_error_at": _iso(j.last_error_at),
            }
            for j in conn.execute(
                select(connection_jobs)
                .where(connection_jobs.c.tenant_id == scope.tenant_id, connection_jobs.c.connection_id == connection_id)
                .order_by(connection_jobs.c.job)
            )
        ]


def _alert(
    scope: Scope,
    conn: Connection,
    row: ConnectionRow,
    key: str,
    kind: str,
    subject: str,
    body: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    *,
    fixes: tuple[Fix, ...],
) -> None:
    """A connection's alert; its fixes are about the connection (its e-mail links to its screen)."""
    notify.raise_alert(
        conn,
        scope.tenant_id,
        key=key,
        kind=kind,
        subject=subject,
        body=body,
        fixes=fixes,
        now=now,
        connection_id=row.id,
        data=data,
    )


def _transition(
    scope: Scope,
    conn: Connection,
    row: ConnectionRow,
    current: str,
    state: str,
    message: str,
    values: dict[str, Any],
    now: datetime,
) -> None:
    values = {**values, "health": state, "health_message": message}
    if current != state:
        values["health_since"] = now
        add_events(
            conn,
            [
                event_row(
                    scope.tenant_id,
                    None,
                    EventKind.HEALTH_CHANGED,
                    now,
                    f"{row.name}: {current} → {state}" + (f" — {message}" if message else ""),
                    connection_id=row.id,
                    previous=current,
                    state=state,
                )
            ],
        )
        log.info("connection.health", tenant_id=scope.tenant_id, connection_id=row.id, previous=current, state=state)
    conn.execute(update(connections).where(connections.c.id == row.id).values(**values))


def _order_pace(conn: Connection, connection_id: int) -> tuple[datetime | None, float | None, int]:
    """Newest order creation time, median gap (s) over the last orders, and how many were sampled."""
    times = list(
        conn.execute(
            select(orders.c.channel_created_at)
            .where(orders.c.connection_id == connection_id, orders.c.channel_created_at.is_not(None))
            .order_by(orders.c.channel_created_at.desc())
            .limit(GAP_SAMPLE + 1)
        ).scalars()
    )
    if not times:
        return None, None, 0
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(times)]
    gap = statistics.median(gaps) if gaps else None
    return times[0], gap, len(times)


def _silence(scope: Scope, last: datetime | None, gap: float | None, n: int, now: datetime) -> float | None:
    """Seconds of silence when they exceed the threshold, else None."""
    s = scope.settings
    if last is None or gap is None or n < s.silent_min_orders:
        return None
    quiet = (now - last).total_seconds()
    threshold = max(s.silent_factor * gap, s.silent_min_s)
    return quiet if quiet > threshold else None


def _span(seconds: float) -> str:
    td = timedelta(seconds=round(seconds))
    if td.days >= 2:
        return f"{td.days} days"
    hours = td.total_seconds() / 3600
    if hours >= 1:
        return f"{hours:.1f} h"
    minutes = td.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes >= 1 else f"{td.total_seconds():.0f} s"


def health_report(scope: Scope) -> dict[str, Any]:
    """Per-connection health as JSON (``/healthz``); ``status`` is the worst of them."""
    now = scope.now()
    with scope.db.read() as conn:
        rows = with_order_cursor(conn, scope.tenant_id)
        # ties the channel has not settled yet (decision 37)
        pending = pending_reread_counts(conn, scope.tenant_id)
        unidentified = _unidentified_last_sync(conn, scope.tenant_id)
        # orders the database refused to store as sent, not yet stored whole (decision 43)
        refused = {r.id: ingest_failures_open(conn, r.id, limit=0)[0] for r in rows if r.role == Role.CHANNEL}
    items = []
    for r in rows:
        items.append(
            {
                "id": r.id,
                "tenant": scope.slug,
                "name": r.name,
                "kind": r.kind,
                "role": r.role,
                "health": r.health,
                "message": r.health_message,
                "since": _iso(r.health_since),
                "last_success_at": _iso(r.last_success_at),
                "last_error_at": _iso(r.last_error_at),
                "consecutive_failures": r.consecutive_failures,
                "last_order_at": _iso(r.last_order_at),
                "usual_gap_s": r.usual_gap_s,
                "cursor": _iso(r.cursor),
                "sync_lag_s": None if r.last_success_at is None else (now - r.last_success_at).total_seconds(),
                "jobs": job_health(scope, r.id),
                "pending_rereads": pending.get(r.id, 0),
                "unidentified_last_sync": unidentified.get(r.id, 0),
                "ingest_failures": refused.get(r.id, 0),
            }
        )
    return {"status": _worst(items), "at": now.isoformat(), "connections": items}


def hub_health(hub: Hub) -> dict[str, Any]:
    """Every tenant's :func:`health_report` in one (``/healthz`` of a process that serves them all):
    the connections of each, each item naming its tenant; ``status`` is the worst of them."""
    items = [item for scope in Scope.every(hub) for item in health_report(scope)["connections"]]
    return {"status": _worst(items), "at": hub.now().isoformat(), "connections": items}


def _worst(items: list[dict[str, Any]]) -> str:
    states = {i["health"] for i in items}
    return "failing" if "failing" in states else "degraded" if states & {"degraded", "silent"} else "ok"


def _unidentified_last_sync(conn: Connection, tenant_id: int) -> dict[int, int]:
    """Per channel, the records its last finished sync refused for want of a usable id (decision 41)."""
    last = (
        select(sync_runs.c.connection_id, func.max(sync_runs.c.id).label("id"))
        .where(sync_runs.c.tenant_id == tenant_id, sync_runs.c.kind == "orders", sync_runs.c.finished_at.is_not(None))
        .group_by(sync_runs.c.connection_id)
        .subquery()
    )
    rows = conn.execute(select(sync_runs.c.connection_id, sync_runs.c.counts).join(last, sync_runs.c.id == last.c.id))
    return {cid: int((counts or {}).get("unidentified", 0)) for cid, counts in rows}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
