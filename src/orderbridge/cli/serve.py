"""``orderbridge sync`` and ``orderbridge serve``: one pass, or the long-running process.

``serve`` composes the process: the hub, the embedded worker (``runtime.worker``) on a thread, and
the web app (webhooks, ``/healthz``, ``/metrics``) under uvicorn, with signal handling so SIGINT and
SIGTERM stop the worker and exit 0.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from orderbridge.cli.common import JsonOpt, connection_id, console, err, errors, print_json, run
from orderbridge.cli.render import clean, line, plain
from orderbridge.settings import Settings


def sync(
    connection: Annotated[str | None, typer.Argument(help="Channel to pull (default: every channel)")] = None,
    full: Annotated[bool, typer.Option(help="Ignore the cursor and re-read everything")] = False,
    as_json: JsonOpt = False,
) -> None:
    """One full pass: pull orders, post ready ones, read shipments, push fulfilments."""
    from orderbridge.connectors.base import Role
    from orderbridge.runtime.worker import run_cycle
    from orderbridge.services.sync import SyncReport, sync_channel

    def work(scope: Any) -> dict[str, Any]:
        from orderbridge import heap

        heap.settle()
        with scope.read() as conn:
            channels = (
                [(connection_id(scope, connection), connection)]
                if connection
                else [(c.id, c.name) for c in scope.connections(conn, Role.CHANNEL)]
            )
        reports = []
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=as_json,
        ) as progress:
            for cid, name in channels:
                task = progress.add_task(f"{clean(name)}: fetching")

                def show(r: SyncReport, task: Any = task, name: str = name) -> None:
                    progress.update(
                        task,
                        description=f"{clean(name)}: {r.counts.fetched} fetched, "
                        f"{r.counts.inserted} new, {r.counts.changed} changed",
                    )

                reports.append(sync_channel(scope, cid, progress=show, full=full).as_dict())
            cycle = run_cycle(scope, sync=False)
        return {
            "syncs": reports,
            "posts": cycle.posts,
            "shipments": cycle.shipments,
            "pushes": cycle.pushes,
            "busy": cycle.busy,
            "crashed": cycle.crashed,
        }

    result = run(work)
    if as_json:
        print_json(result)
    else:
        for s in result["syncs"]:
            console.print(
                line(
                    s["connection"],
                    f": {s['fetched']} fetched, {s['inserted']} new, {s['changed']} changed, "
                    f"{s['unchanged']} unchanged"
                    + (
                        f", {s['refused']} refused (no usable id: see `orderbridge health`)" if s.get("refused") else ""
                    ),
                    *((" — ", plain(s["error"]["message"], "red")) if s["error"] else ()),
                )
            )
            if s.get("refused") or s.get("quarantined"):  # the rest of their batches are stored
                console.print(
                    f"{s['connection']}: {s['refused']} order(s) the database refused are held storage_refused, "
                    f"{s['quarantined']} quarantined — see orderbridge holds"
                )
        for p in result["posts"]:
            console.print(
                line(
                    p["destination"],
                    f": {p['posted']} posted, {p['rejected']} rejected",
                    *((" — ", plain(p["error"]["message"], "red")) if p["error"] else ()),
                )
            )
        for p in result["pushes"]:
            console.print(line(p["connection"], f": {p['pushed']} fulfilments pushed, {p['held']} held"))
    if result["crashed"] or any(s["error"] for s in result["syncs"]) or any(p["error"] for p in result["posts"]):
        raise typer.Exit(1)


def serve(
    tick: Annotated[float, typer.Option(help="Seconds between scheduler ticks")] = 1.0,
    port: Annotated[int, typer.Option(help="HTTP port for webhooks, /healthz and /metrics")] = 8000,
    host: Annotated[str, typer.Option(help="HTTP interface to listen on")] = "127.0.0.1",
    http: Annotated[bool, typer.Option(help="Serve HTTP (--no-http: scheduler and workers only)")] = True,
    register: Annotated[bool, typer.Option(help="Subscribe channels' webhooks to this server at start")] = True,
    workers: Annotated[
        bool,
        typer.Option(help="Run jobs here (--no-workers: web and webhooks only; `orderbridge worker` runs them)"),
    ] = True,
) -> None:
    """Run the scheduler, workers and the hub's HTTP server in this process until interrupted.

    It serves every tenant (``--tenant`` does not narrow it): each pass runs each tenant's jobs in
    that tenant's scope, and each webhook URL names the connection — and so the tenant — it is for.
    With ``ORDERBRIDGE_JOB_ENGINE=procrastinate`` (PostgreSQL) jobs are rows run by ``orderbridge
    worker`` processes, and serve is web and webhooks only, as with ``--no-workers``."""
    import signal

    from orderbridge.runtime.engine import ProcrastinateSyncRunner, install
    from orderbridge.runtime.worker import serve as serve_loop

    stop = threading.Event()
    wake = threading.Event()
    settings = Settings()
    if "public_url" not in settings.model_fields_set:
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        settings = settings.model_copy(update={"public_url": f"http://{reachable}:{port}"})
        if http and register and reachable != host:
            err.print(
                plain(
                    f"ORDERBRIDGE_PUBLIC_URL is not set: webhooks will be subscribed to {settings.public_url}, "
                    "which only this machine can reach — set it to the address channels can reach.",
                    "yellow",
                )
            )
    with errors():
        from orderbridge.cli.present import PRESENTATION
        from orderbridge.services.hub import Hub

        hub = Hub.from_settings(settings, present=PRESENTATION)  # commands here, links in its alerts
        nudges = install(hub)  # procrastinate: webhooks and Sync now defer jobs for the workers
    if nudges is not None:
        workers = False
    if not workers and not http:
        err.print(plain("--no-workers --no-http leaves nothing to serve", "red"))
        raise typer.Exit(2)
    from orderbridge import heap

    heap.settle()
    try:
        if not http:
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            console.print(f"serving; polling channels every {hub.settings.poll_interval_s:g}s (Ctrl-C stops)")
            try:
                serve_loop(hub, stop, tick_s=tick, wake=wake)
            except KeyboardInterrupt:
                stop.set()
            return
        import uvicorn

        from orderbridge.runtime.sync_now import LeftQueued, ThreadSyncRunner
        from orderbridge.web.app import create_app
        from orderbridge.web.metrics import HubMetrics

        metrics = HubMetrics(hub)
        hub.observer = metrics
        worker = threading.Thread(
            target=serve_loop, args=(hub, stop), kwargs={"tick_s": tick, "wake": wake}, name="worker", daemon=True
        )
        sync_runner: Any
        if nudges is not None:  # Sync now is a job any worker takes
            sync_runner = ProcrastinateSyncRunner(hub, nudges)
        elif workers:
            worker.start()
            sync_runner = ThreadSyncRunner(hub, wake=wake.set)  # Sync now, beside the scheduler (decision 115)
        else:  # requests stay queued: the process running jobs takes them after their grace
            sync_runner = LeftQueued()
        config = uvicorn.Config(
            create_app(hub, metrics=metrics, wake=wake.set, sync_runner=sync_runner),
            host=host,
            port=port,
            log_level="warning",
        )
        console.print(
            f"serving on http://{host}:{port} (the portal, the API under /api/v1, webhooks, /healthz, /metrics); "
            + (
                f"polling channels every {hub.settings.poll_interval_s:g}s (Ctrl-C stops)"
                if workers
                else "no jobs run here: `orderbridge worker` runs them (Ctrl-C stops)"
            )
        )
        # uvicorn handles SIGINT/SIGTERM while it runs and re-raises the signal afterwards to the
        # handlers found before: these, so the process then stops the worker and exits 0.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        server = uvicorn.Server(config)
        if register and hub.settings.webhooks:
            # a channel delivers as soon as a topic is subscribed: subscribing before the receiver
            # listens makes the first deliveries fail and wait for the channel's retry (10 s and more)
            threading.Thread(target=_register_when_listening, args=(hub, server), name="webhooks", daemon=True).start()
        server.run()  # returns on SIGINT/SIGTERM
        stop.set()
        if isinstance(sync_runner, ThreadSyncRunner):
            sync_runner.close()
        if worker.is_alive():
            worker.join(timeout=60)
    finally:
        hub.close()


def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", help="Queue to serve (repeatable; default: syncs, posts, housekeeping)"),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default ORDERBRIDGE_WORKER_CONCURRENCY)", min=1)
    ] = None,
    name: Annotated[str, typer.Option(help="This worker's name in the logs")] = "",
) -> None:
    """Run a procrastinate worker (PostgreSQL, ORDERBRIDGE_JOB_ENGINE=procrastinate) until SIGTERM.

    It runs the jobs of every tenant — syncs, posts, shipment polls, pushes, housekeeping — and,
    like every worker, the periodic tasks (each once per period however many workers run). SIGTERM
    or Ctrl-C lets the jobs in progress finish, then exits 0; a second one stops at once (a job cut
    short is retried by another worker: docs/scaling.md)."""
    from orderbridge.runtime.engine import install, run_worker
    from orderbridge.runtime.tasks import QUEUES

    with errors():
        from orderbridge.cli.present import PRESENTATION
        from orderbridge.services.hub import Hub

        settings = Settings()
        if settings.job_engine != "procrastinate":
            settings = settings.model_copy(update={"job_engine": "procrastinate"})
        hub = Hub.from_settings(settings, present=PRESENTATION)
        try:
            install(hub)
        except Exception:
            hub.close()
            raise
    from orderbridge import heap

    heap.settle()
    queues = queue or list(QUEUES)
    console.print(
        f"worker{' ' + clean(name) if name else ''}: queues {', '.join(queues)}, "
        f"{concurrency or hub.settings.worker_concurrency} at once (SIGTERM stops after the jobs in progress)"
    )
    try:
        run_worker(hub, queues=queues, concurrency=concurrency, name=name)
    finally:
        hub.close()


def _register_when_listening(hub: Any, server: Any) -> None:
    """Subscribe the channels' webhooks once uvicorn accepts connections (never if it stops first)."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    _register_all(hub)


def _register_all(hub: Any) -> None:
    """Subscribe every tenant's webhook-capable channels; a failure is shown on the connection, never
    fatal. With several tenants, each line names the tenant too (``tenant/connection``)."""
    from orderbridge.services.scope import Scope
    from orderbridge.services.subscriptions import register_all

    scopes = Scope.every(hub)
    for scope in scopes:
        for r in register_all(scope):
            _show_registration(r, f"{scope.slug}/" if len(scopes) > 1 else "")


def _show_registration(r: Any, prefix: str) -> None:
    who = prefix + r.connection
    if r.no_secret:
        err.print(
            line(
                (clean(who), "yellow"),
                (f": no {r.secret_credential}, so no webhooks — polled and audited only", "yellow"),
            )
        )
    elif r.error is not None:
        err.print(line(plain(who, "red"), (": webhooks not registered:", "red"), " ", str(r.error)))
    else:
        subs = r.subscriptions
        console.print(line(who, f": {len(subs)} webhook topics → ", subs[0].address if subs else "-"))
