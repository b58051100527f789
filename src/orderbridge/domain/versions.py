"""The version rule: what a channel's version of an order is, next to the ledger's.

Pure — no I/O, no clock: ingest (``services/ingest``) applies the verdict to the ledger.

- **new**: the ledger has no version of the order.
- **stale**: older than the ledger's (both dated, the incoming one earlier): ignored.
- **unchanged**: the same content (content hash) as the ledger's: nothing to write but, when it is
  dated later, the ledger's ``updated_at`` (:func:`moves_forward`).
- **tie**: other content with the ledger's own ``updated_at``. Shopify's timestamps have whole
  seconds, so two edits in one second carry the same one, and which of the two arrived last says
  nothing about which is newer: only the channel can settle it (re-read the order; the answer is
  *authoritative*). Never settled by arrival order (decision 37).
- **changed**: other content, dated later (or undated on either side): a new version.

Within one batch the newest version of each order is kept (:func:`latest`); an undated version
wins over the one before it, as the later in the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Protocol, TypeVar


class Verdict(Enum):
    NEW = "new"
    STALE = "stale"
    UNCHANGED = "unchanged"
    TIE = "tie"
    CHANGED = "changed"


def judge(
    updated_at: datetime | None,
    content_hash: str,
    ledger_updated_at: datetime | None,
    ledger_hash: str | None,
) -> Verdict:
    """The incoming version (``updated_at``, ``content_hash``) against the ledger's; ``ledger_hash``
    ``None`` means the ledger has no version of the order."""
    if ledger_hash is None:
        return Verdict.NEW
    if ledger_updated_at is not None and updated_at is not None and updated_at < ledger_updated_at:
        return Verdict.STALE
    if content_hash == ledger_hash:
        return Verdict.UNCHANGED
    if ledger_updated_at is not None and updated_at == ledger_updated_at:
        return Verdict.TIE
    return Verdict.CHANGED


def moves_forward(updated_at: datetime | None, ledger_updated_at: datetime | None) -> bool:
    """Whether an unchanged version carries a later ``updated_at`` than the ledger's (to record)."""
    return updated_at is not None and (ledger_updated_at is None or updated_at > ledger_updated_at)


class Dated(Protocol):
    @property
    def external_id(self) -> str: ...

    @property
    def updated_at(self) -> datetime | None: ...


D = TypeVar("D", bound=Dated)


def newer_or_equal(a: Dated, b: Dated) -> bool:
    """Whether ``a`` replaces ``b`` when both are versions of one order in one batch."""
    if a.updated_at is None or b.updated_at is None:
        return True
    return a.updated_at >= b.updated_at


def latest(records: Iterable[D]) -> dict[str, D]:
    """The newest version of each order (by ``external_id``), in first-seen order."""
    out: dict[str, D] = {}
    for rec in records:
        prev = out.get(rec.external_id)
        if prev is None or newer_or_equal(rec, prev):
            out[rec.external_id] = rec
    return out
