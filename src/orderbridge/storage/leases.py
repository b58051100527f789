"""Named leases in the database: one sync per connection at a time, across processes.

A lease is a row ``(name, holder, expires_at)``. Acquire = one conditional UPDATE (free or expired
or already ours) or, if no row exists, an INSERT that the primary key makes race-free. Because it
is just rows and a unique key, the same code holds on SQLite (one file, many processes) and on
PostgreSQL (many machines). A killed holder's lease expires after its TTL; holders renew while
they work (:meth:`Lease.renew`, called per batch, inside the batch's own transaction where there is one).

Under procrastinate workers (docs/scaling.md, decision 228) the job's ``lock`` decides who runs a
connection's job; the lease stays as the *write fence*: a job holds its leases as
``job:<job id>:<attempt>`` (:func:`acting_for_job`), so the stalled-job recovery, which knows the
dead attempt, frees exactly its leases before retrying it (the retry runs at once rather than after
the TTL) — and a worker that only lost its heartbeat, still running, finds its lease gone at its
next batch and rolls back instead of writing beside the retry. A CLI ``sync`` beside the workers
still meets the lease and skips.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, update
from sqlalchemy.exc import IntegrityError

from orderbridge.errors import RetryLater
from orderbridge.storage.db import Database
from orderbridge.storage.tables import leases

#: the holder a procrastinate job's leases are taken as (None: a holder of its own per lease)
_job_holder: ContextVar[str | None] = ContextVar("orderbridge_job_holder", default=None)


def job_holder(job_id: int, attempts: int) -> str:
    """The holder of the leases a procrastinate job's attempt takes."""
    return f"job:{job_id}:{attempts}"


@contextmanager
def acting_for_job(job_id: int, attempts: int) -> Iterator[str]:
    """Take every lease in this context as the job's attempt (see the module docstring)."""
    token = _job_holder.set(job_holder(job_id, attempts))
    try:
        yield job_holder(job_id, attempts)
    finally:
        _job_holder.reset(token)


def release_held_by(db: Database, holder: str) -> int:
    """Free every lease ``holder`` holds (a stalled job's attempt, before it is retried)."""
    with db.transaction() as conn:
        return int(conn.execute(delete(leases).where(leases.c.holder == holder)).rowcount)


def holder_id() -> str:
    return _job_holder.get() or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseBusy(RetryLater):
    """Another worker holds the lease: this run skips; the holder (or a later run) does the work."""

    code = "busy"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is already running in another worker",
            hint="Wait for it to finish; a killed worker's lease expires after ORDERBRIDGE_LEASE_TTL_S.",
        )
        self.name = name


class Lease:
    def __init__(self, db: Database, name: str, holder: str, ttl_s: float, now: Callable[[], datetime]) -> None:
        self.db, self.name, self.holder, self.ttl, self.now = db, name, holder, timedelta(seconds=ttl_s), now

    def try_acquire(self) -> bool:
        now = self.now()
        with self.db.transaction() as conn:
            taken = conn.execute(
                update(leases)
                .where(
                    leases.c.name == self.name,
                    (leases.c.expires_at < now) | (leases.c.holder == self.holder),
                )
                .values(holder=self.holder, expires_at=now + self.ttl)
            ).rowcount
            if taken:
                return True
        try:
            with self.db.transaction() as conn:
                conn.execute(insert(leases).values(name=self.name, holder=self.holder, expires_at=now + self.ttl))
            return True
        except IntegrityError:
            return False

    def renew(self, conn: Connection | None = None) -> None:
        """Extend the lease by its TTL, or raise :class:`LeaseBusy` if it is no longer ours.

        With ``conn`` the extension is part of that transaction: the work it commits is committed
        only while the lease is still held (a holder that stalled past its TTL, and whose lease
        another worker took, has its batch rolled back instead of writing alongside the new holder),
        and the batch needs no commit of its own for the renewal.
        """
        if conn is None:
            with self.db.transaction() as own:
                self._extend(own)
        else:
            self._extend(conn)

    def _extend(self, conn: Connection) -> None:
        ok = conn.execute(
            update(leases)
            .where(leases.c.name == self.name, leases.c.holder == self.holder)
            .values(expires_at=self.now() + self.ttl)
        ).rowcount
        if not ok:
            raise LeaseBusy(self.name)

    def release(self) -> None:
        with self.db.transaction() as conn:
            conn.execute(delete(leases).where(leases.c.name == self.name, leases.c.holder == self.holder))


@contextmanager
def held(
    db: Database, name: str, ttl_s: float, now: Callable[[], datetime], holder: str | None = None
) -> Iterator[Lease]:
    lease = Lease(db, name, holder or holder_id(), ttl_s, now)
    if not lease.try_acquire():
        raise LeaseBusy(name)
    try:
        yield lease
    finally:
        lease.release()
