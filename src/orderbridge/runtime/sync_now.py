"""The embedded runner of Sync now: requests run in a small thread pool of the serving process.

``orderbridge serve`` makes one (:class:`ThreadSyncRunner`) and gives it to the web app, which
hands it each request the portal or the API queued (``services.sync_now.request_sync``). A pool,
not the scheduler's thread: a person who presses Sync now sees it start at once, even while the
scheduler is in the middle of another connection's sync. What the request does and how its
progress is read is :mod:`orderbridge.services.sync_now`; on the procrastinate engine
(docs/scaling.md) ``runtime.engine.ProcrastinateSyncRunner`` replaces this class with one that
defers a job any worker takes — nothing else changes (decision 115).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import structlog

from orderbridge.services.hub import Hub
from orderbridge.services.sync_now import QueuedSync, SyncProgress, run_requested

log = structlog.get_logger("orderbridge.sync_now")

#: requests of different connections that run at once (one per connection: the lease)
WORKERS = 2


class ThreadSyncRunner:
    def __init__(self, hub: Hub, *, wake: Callable[[], None] | None = None, workers: int = WORKERS) -> None:
        self.hub = hub
        self.wake = wake
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync-now")
        self._futures: list[Future[SyncProgress | None]] = []

    def submit(self, request: QueuedSync) -> None:
        log.info(
            "sync_now.submitted",
            tenant_id=request.tenant_id,
            connection_id=request.connection_id,
            run_id=request.run_id,
        )
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(self._pool.submit(run_requested, self.hub, request, wake=self.wake))

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the requests submitted so far (tests, and a clean shutdown)."""
        for future in list(self._futures):
            future.result(timeout=timeout)

    def close(self) -> None:
        """Stop taking requests; a sync still running finishes in its thread (a process killed
        meanwhile loses nothing: the next sync resumes from the committed cursor)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class LeftQueued:
    """The runner of a web-only process (``serve --no-workers`` on the embedded engine): a request
    stays ``queued`` in the ledger and the process that runs jobs (``serve --no-http``) takes it
    after its grace (``services.sync_now.queued_syncs``)."""

    def submit(self, request: QueuedSync) -> None:
        log.info("sync_now.left_queued", tenant_id=request.tenant_id, connection_id=request.connection_id)
