"""Nudges: the jobs a state change needs, written in the transaction that makes the change.

The services know *that* something must happen next — orders became ready, so each destination
must be posted to; a webhook said a channel changed, so it should be synced soon — not *how* the
process runs it. The hub carries a :class:`Nudges` given by the composition root:

- the embedded runtime (``orderbridge serve`` with ``job_engine=embedded``) needs none written: its
  poster is woken after the commit and its scheduler polls (:class:`NoNudges`);
- the procrastinate engine (``runtime.engine.ProcrastinateNudges``) writes each nudge as a
  procrastinate job row through the very connection ``conn`` of the transaction, so the order and
  its ``post`` job commit together or not at all (decision 226): no crash can separate them.

Every method is called inside a write transaction, with its connection.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection


class Nudges(Protocol):
    #: whether a verified webhook delivery is stored ``queued`` and ingested by a job
    #: (:func:`orderbridge.services.webhooks.ingest_queued`) rather than inside its request
    ingest_in_job: bool

    def orders_ready(self, conn: Connection, tenant_id: int) -> None:
        """Orders of the tenant became (or may have become) ready: post to its destinations."""

    def channel_changed(self, conn: Connection, tenant_id: int, connection_id: int) -> None:
        """A webhook said the channel changed: one sync of it soon (a storm collapses into one)."""

    def deliveries_queued(self, conn: Connection, tenant_id: int, connection_id: int) -> None:
        """Webhook deliveries of the channel were stored ``queued``: ingest them (one pending job
        per connection, however many deliveries arrive meanwhile)."""


class NoNudges:
    """The embedded runtime's: nothing is written (its loops poll and are woken in-process)."""

    ingest_in_job = False

    def orders_ready(self, conn: Connection, tenant_id: int) -> None:
        return None

    def channel_changed(self, conn: Connection, tenant_id: int, connection_id: int) -> None:
        return None

    def deliveries_queued(self, conn: Connection, tenant_id: int, connection_id: int) -> None:
        return None
