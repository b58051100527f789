"""What ingest is given (a channel's context) and what it reports (counts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orderbridge.connectors.base import ChannelRecord, UnreadableOrder
from orderbridge.domain import reasons as R
from orderbridge.domain.mappings import DestinationPolicy
from orderbridge.domain.pipeline import Decision, evaluate
from orderbridge.domain.rules import DownloadRules
from orderbridge.domain.states import OrderState
from orderbridge.services.hub import ConnectionRow

#: how many refusal messages a report keeps (the count is always whole)
REFUSALS_KEPT = 20


@dataclass
class IngestCounts:
    fetched: int = 0
    inserted: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0
    #: versions with the ledger's ``updated_at`` but other content, not applied (see :func:`settle_ties`)
    tied: int = 0
    #: of those, the orders the channel could not be asked about (the ledger keeps its version)
    unsettled: int = 0
    #: pending re-reads (ties not settled earlier) asked about again (see :func:`settle_pending`)
    rereads: int = 0
    #: records without a usable id: not stored (see the module docstring); ``unidentified_records`` says why
    unidentified: int = 0
    unidentified_records: list[str] = field(default_factory=list)
    #: orders the database refused as sent: stored in a minimal form and held (or, already posted,
    #: their new version's raw payload kept) — counted in ``inserted``/``changed`` as well
    refused: int = 0
    #: orders not stored even in a minimal form: their raw bytes are in ``ingest_failures`` only
    quarantined: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    #: the external ids of the ties, for the caller to settle once its transaction has committed
    tied_ids: list[str] = field(default_factory=list)

    def add(self, other: IngestCounts) -> None:
        self.fetched += other.fetched
        self.inserted += other.inserted
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.tied += other.tied
        self.unsettled += other.unsettled
        self.rereads += other.rereads
        self.refused += other.refused
        self.unidentified += other.unidentified
        self.unidentified_records.extend(
            other.unidentified_records[: max(0, REFUSALS_KEPT - len(self.unidentified_records))]
        )
        self.quarantined += other.quarantined
        self.tied_ids.extend(other.tied_ids)
        for k, v in other.by_state.items():
            self.by_state[k] = self.by_state.get(k, 0) + v

    def as_dict(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "inserted": self.inserted,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "stale": self.stale,
            "tied": self.tied,
            "unsettled": self.unsettled,
            "rereads": self.rereads,
            "refused": self.refused,
            "unidentified": self.unidentified,
            "unidentified_records": list(self.unidentified_records),
            "quarantined": self.quarantined,
            "by_state": dict(self.by_state),
        }


@dataclass
class ChannelContext:
    row: ConnectionRow
    rules: DownloadRules
    policies: Sequence[DestinationPolicy]


def decide(record: ChannelRecord, ctx: ChannelContext) -> Decision:
    if isinstance(record, UnreadableOrder):
        return Decision(OrderState.HELD, (R.invalid_order(record.problem),))
    return evaluate(record, ctx.rules, ctx.policies)
