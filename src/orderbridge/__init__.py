"""OrderBridge: an order synchronization hub.

Every order placed on a connected channel is either posted to each of its destinations exactly
once, or held/skipped on a visible list with the reason and the fix. The package is layered:

- ``orderbridge.domain``: pure model and rules (no I/O, no clock);
- ``orderbridge.storage``: SQLAlchemy tables, migrations and the unit of work;
- ``orderbridge.connectors``: adapters to external APIs (the only code that speaks HTTP to them);
- ``orderbridge.sandboxes``: local emulators of those APIs for tests, benchmarks and the demo;
- ``orderbridge.services``: use cases (sync, post, back-sync, mappings) over a unit of work;
- ``orderbridge.runtime``: the embedded scheduler/worker (database leases: ``storage.leases``;
  crash points for tests: ``orderbridge.seams``);
- ``orderbridge.cli``: the Typer command line, one module per command group;
- foundation modules (``errors``, ``settings``, ``logging``, ``seams`` …) that import no layer.

The layer order is enforced by import-linter contracts (``pyproject.toml``, ``docs/architecture.md``).
"""

__version__ = "0.1.0"
