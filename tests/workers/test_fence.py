"""Leases as the write fence under procrastinate (decision 228): a job's leases are held as its
attempt; recovery frees exactly those, so the retry takes them at once (not after the TTL), and the
dead-or-partitioned attempt's next renewal — inside its batch's transaction — fails and rolls back."""

from __future__ import annotations

import pytest

from orderbridge.services.hub import Hub
from orderbridge.storage.leases import (
    Lease,
    LeaseBusy,
    acting_for_job,
    held,
    holder_id,
    job_holder,
    release_held_by,
)


def test_a_recovered_attempts_leases_are_freed_for_the_retry_and_fence_off_the_old_attempt(hub: Hub) -> None:
    ttl = 3600.0  # far longer than the test: only the freeing can let the retry in
    with acting_for_job(41, 0) as holder:
        assert holder == job_holder(41, 0) == holder_id()
        lease = Lease(hub.db, "sync:7", holder_id(), ttl, hub.now)  # the attempt that "dies" holding it
        assert lease.try_acquire()
    with pytest.raises(LeaseBusy), acting_for_job(42, 0), held(hub.db, "sync:7", ttl, hub.now):
        pass  # another job cannot take it while it is held
    assert release_held_by(hub.db, job_holder(41, 0)) == 1  # what recover_stalled does first
    with acting_for_job(41, 1), held(hub.db, "sync:7", ttl, hub.now) as retry:  # the retry, at once
        with pytest.raises(LeaseBusy), hub.db.transaction() as conn:
            lease.renew(conn)  # the old attempt, still running somewhere: its batch rolls back
        retry.renew()
    assert holder_id() != job_holder(41, 1), "outside a job, a holder of its own"
