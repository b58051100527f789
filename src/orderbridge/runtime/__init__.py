"""Runtime: the embedded scheduler/worker (leases are in ``storage.leases``, crash points in ``seams``)."""
