"""Keep the garbage collector off the ingest hot path: :func:`settle` once the process is set up.

CPython's cyclic collector walks every tracked container it has not frozen. A hub process holds a
few hundred thousand long-lived objects after start-up (SQLAlchemy's metadata and compiled
statements, graphql-core's schema, Typer/Rich, the connectors' query documents), and ingest makes
many short-lived containers (the JSON of every order), so the collector's full passes kept walking
those start-up objects again and again: measured on the 20,000-order backfill, 1.5 s of a ~6 s
ingest was collection, 0.4 s after freezing. ``gc.freeze()`` (the standard library's own tool for
exactly this, Python ≥ 3.7) moves everything alive into a permanent generation that collections
skip; nothing is disabled, and cycles created later are still collected.

Called by the entry points that then run for long (``serve``, ``sync``, the benchmarks, the
sandboxes), after they have built their hub. Domain values are ``msgspec`` Structs with
``gc=False``, so orders themselves are never tracked. A foundation module: it imports nothing of
the project, so the sandboxes use it without importing the runtime.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Freeze everything alive now into the permanent generation (collections skip it)."""
    gc.collect()
    gc.freeze()
