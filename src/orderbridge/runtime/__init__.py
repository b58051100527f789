"""Runtime: database leases, the embedded scheduler/worker and crash points for tests."""
