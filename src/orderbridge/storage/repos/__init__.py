"""Repositories: one module per table — its lookups, its conflict-safe insert, and the ONLY
statements that insert, update or delete it. Functions take the caller's ``Connection`` (the unit
of work's transaction); they import only ``storage`` itself, ``domain`` and the foundation modules.

A repository writes batches in few statements (the hot paths hand it whole batches) and, where the
table has states, checks every move against the state machine declared in
:mod:`orderbridge.domain.states` and appends the timeline event that tells it — so no path can
write a state the machine does not allow, or change one without a trace.

- :mod:`.orders` — orders: lookups by channel id, the new-order insert, a new version's content,
  and :func:`.orders.transition`, the one writer of an order's state.
- :mod:`.order_reasons` — the open hold/skip reasons of orders and of fulfilment pushes.
- :mod:`.events` — the append-only timeline.
- :mod:`.postings` — postings and their attempts (reserve, record, supersede, reopen).
- :mod:`.shipments` — shipments from destinations.
- :mod:`.fulfilment_pushes` — pushes back to channels, the one writer of a push's state.
- :mod:`.cursors`, :mod:`.connections` — the sync cursors; lookups of connections.
- :mod:`.users`, :mod:`.web_sessions`, :mod:`.api_tokens`, :mod:`.login_attempts` — who signs in
  and how (0009); :mod:`.user_actions` — the append-only audit trail; :mod:`.tenant_settings`.

``tests/storage/test_writers.py`` scans ``src/`` and fails when a ledger table is written anywhere
but its repository.
"""
