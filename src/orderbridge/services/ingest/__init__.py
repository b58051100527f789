"""Ingest: channel records → the ledger, idempotently, with the pipeline applied.

The importer's fixed sequence (after OCA/connector): fetch a batch → dedupe within it → look up
what the ledger has (one query per batch) → insert new orders with ``ON CONFLICT DO NOTHING`` on
``(connection_id, external_id)`` (the database is the binder, so a racing webhook cannot create a
duplicate) → update changed ones (new version, content hash differs, not older than the ledger's:
the rule is ``domain/versions.py``)
→ run the pipeline → write reasons and events → store the cursor → commit. The cursor is written
in the same transaction as the batch it covers, so it can never be ahead of committed data; a
crash anywhere repeats at most one batch, and repeating it is a no-op (unchanged hashes).

A version with the ledger's own ``updated_at`` but other content (two edits within one second)
is settled by the channel, never by arrival order: after the batch commits, the order is re-read
and that version wins (:func:`.ties.settle_ties`). A re-read that fails leaves a pending re-read, which
every sync retries until the channel answers (:func:`.ties.settle_pending`).

A record without a usable id (the connector's mapper leaves its ``external_id`` empty) is never
stored — under a made-up key it would merge with the next such record — and never stops the rest
of its batch: it is *refused*, counted (``IngestCounts.unidentified``, on the sync report, its run's
row and ``health``), logged and recorded as a connection event quoting the problem.

An order some destination already holds a document for that changes in the channel gets a new
version and a ``version_changed`` event with the changed fields, and is handed to
:func:`orderbridge.services.order_updates.note_version` instead of the pipeline: the tenant's
update policy applies it (the destinations' documents are amended by their next posting run),
holds it for review (``update_needs_review``) or ignores it — never a blind second post (issue #15).

**One order the database refuses never fails its batch** (poison-pill isolation, decision 43).
Each batch runs inside a savepoint (``SAVEPOINT``/``RELEASE``: two statements per batch, nothing
per order — the hot path's one executemany per batch is unchanged). When the database refuses a
row — a value longer than its column, a NUL character PostgreSQL's text refuses, a constraint, a
trigger, a value the driver cannot encode; :func:`orderbridge.storage.refusals.refusal` tells those
from the database's own trouble, which still fails the batch — the savepoint is rolled back and
the batch is stored again order by order, each in its own savepoint, so the others are stored
exactly as they would have been (same states, reasons and events). An order that is refused on its
own is stored in a **minimal form** the database accepts (its id, its number made storable, its raw
payload with the values no column takes rewritten, no canonical content) and held
``storage_refused`` with the database's words and the fix; an order already posted keeps its posted
content and gets the new version's raw payload and an event. If even that is refused (the channel's
id itself, say), the order is **quarantined**: its raw bytes go to ``ingest_failures`` alone,
listed by ``orderbridge holds``. Every refusal has a row in ``ingest_failures``, open until a later
version of the order is stored whole; while one is open the connection's sync reports ``degraded``
naming it (``services/health.py``). Either way the batch commits and the cursor moves, so the next
sync is not stopped by the same order: the minimal form carries the content hash of the version
refused, so meeting that version again is "unchanged", and a corrected version is stored whole.

Why this shape, not validating every value first: the database is the only judge of what it stores
(a trigger, a constraint or an encoding the hub does not know about refuses as surely as a column
size), the boundary's validation layer already shortens what it knows, and checking before every
insert would cost the hot path for the rare order that fails. Why not one savepoint per order
always: two more statements per order, on a path that makes a handful per batch.

One module per concept:

- :mod:`.writer` — :func:`ingest_records` (the entry point: savepoint, isolation, races) and
  :func:`commit_batch` (a sync's batch with its cursor, ``storage/repos/cursors.py``);
- :mod:`.batch` — the hot path: one batch's steps (dedupe, look up, insert new, judge and write
  changed versions, events and decisions), and the refusal of records without a usable id;
- :mod:`.rows` — an order's row values from a channel record, and the ledger's current versions;
- :mod:`.isolation` — orders the database refuses: minimal form, quarantine, ``ingest_failures``;
- :mod:`.ties` — ties and pending re-reads, settled by asking the channel;
- :mod:`.context` — what ingest is given (:class:`ChannelContext`) and reports (:class:`IngestCounts`).
"""

from orderbridge.services.ingest.context import ChannelContext, IngestCounts
from orderbridge.services.ingest.isolation import ingest_failures_open, quarantined, resolve_ingest_failures
from orderbridge.services.ingest.rows import ORDER_COLUMNS
from orderbridge.services.ingest.ties import pending_reread_counts, settle_pending, settle_ties
from orderbridge.services.ingest.writer import commit_batch, ingest_records

__all__ = [
    "ORDER_COLUMNS",
    "ChannelContext",
    "IngestCounts",
    "commit_batch",
    "ingest_failures_open",
    "ingest_records",
    "pending_reread_counts",
    "quarantined",
    "resolve_ingest_failures",
    "settle_pending",
    "settle_ties",
]
