"""Download rules: which channel orders a connection takes — the generic rule engine.

Each rule is a setting on the connection (``download_rules``). Which orders a channel's
connections take *by default* is that channel's knowledge, declared by its connector package as
the default of its ``download_rules`` setting (Shopify's follows seed 000: paid, unfulfilled or
partially fulfilled, open, not test orders); the hub merges the connection's rules over it. The
engine's own defaults take every status and leave out closed and test orders. An order the rules
exclude is ``skipped`` with a reason, never dropped.

``channel_states`` (issue #16) filters on the channel's own state name (:attr:`Order.channel_state`):
WooCommerce's default takes ``processing`` only, and an order in another status is skipped with
``channel_state_not_downloaded`` naming its status and the ones taken. An order whose channel
has no state of its own (empty) is not judged by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orderbridge.domain import reasons
from orderbridge.domain.order import FulfilmentStatus, Order, PaymentStatus
from orderbridge.domain.reasons import Reason

#: "any": the status decides nothing (a channel declares its own defaults)
ANY = frozenset({"any"})
DEFAULT_FINANCIAL = ANY
DEFAULT_FULFILMENT = ANY


@dataclass(frozen=True, slots=True)
class DownloadRules:
    financial_statuses: frozenset[str] = DEFAULT_FINANCIAL
    fulfilment_statuses: frozenset[str] = DEFAULT_FULFILMENT
    include_closed: bool = False
    include_test: bool = False
    earliest: datetime | None = None
    #: issue #17 (seed 001's "download cancelled orders" switch): a cancelled order goes through the
    #: pipeline like any other instead of being skipped (off by default: skipped, with the switch named)
    include_cancelled: bool = False
    #: the channel's own states taken (``{"any"}``: every one)
    channel_states: frozenset[str] = ANY

    @classmethod
    def from_settings(cls, data: dict[str, Any] | None) -> DownloadRules:
        """Build from a connection's JSON settings; unknown keys are refused by name."""
        data = dict(data or {})
        known = {
            "financial_statuses",
            "fulfillment_statuses",
            "include_closed",
            "include_test",
            "include_cancelled",
            "earliest",
            "channel_states",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown download rule(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        earliest = data.get("earliest")
        if isinstance(earliest, str):
            earliest = datetime.fromisoformat(earliest)
            if earliest.tzinfo is None:
                raise ValueError(f"earliest date {data['earliest']!r} needs a timezone, e.g. 2024-01-01T00:00:00+00:00")
        return cls(
            financial_statuses=frozenset(data.get("financial_statuses", DEFAULT_FINANCIAL)),
            fulfilment_statuses=frozenset(data.get("fulfillment_statuses", DEFAULT_FULFILMENT)),
            include_closed=bool(data.get("include_closed", False)),
            include_test=bool(data.get("include_test", False)),
            earliest=earliest,
            include_cancelled=bool(data.get("include_cancelled", False)),
            channel_states=frozenset(data.get("channel_states", ANY)),
        )

    def to_settings(self) -> dict[str, Any]:
        return {
            "financial_statuses": sorted(self.financial_statuses),
            "fulfillment_statuses": sorted(self.fulfilment_statuses),
            "include_closed": self.include_closed,
            "include_test": self.include_test,
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "include_cancelled": self.include_cancelled,
            "channel_states": sorted(self.channel_states),
        }

    def skip_reasons(self, order: Order) -> list[Reason]:
        """Every rule the order fails, in a stable order (all of them, not just the first).

        A status the channel sent but OrderBridge does not know (``UNKNOWN``) decides nothing here:
        no rule can say whether it should be downloaded, so the order is held by the input limits
        (``unknown_status``, with the value) rather than skipped under a catch-all."""
        found: list[Reason] = []
        if order.cancelled_at is not None and not self.include_cancelled:
            found.append(reasons.cancelled_order())
        if order.test and not self.include_test:
            found.append(reasons.test_order())
        if order.closed_at is not None and not self.include_closed:
            found.append(reasons.closed_order())
        payment, fulfilment = order.payment_status, order.fulfilment_status
        if (
            payment is not PaymentStatus.UNKNOWN
            and "any" not in self.financial_statuses
            and payment.value not in self.financial_statuses
        ):
            found.append(reasons.financial_status_not_downloaded(order.payment_status.value, self.financial_statuses))
        if (
            fulfilment is not FulfilmentStatus.UNKNOWN
            and "any" not in self.fulfilment_statuses
            and fulfilment.value not in self.fulfilment_statuses
        ):
            found.append(
                reasons.fulfilment_status_not_downloaded(order.fulfilment_status.value, self.fulfilment_statuses)
            )
        if self.earliest is not None and order.created_at < self.earliest:
            found.append(reasons.before_earliest_date(order.created_at.isoformat(), self.earliest.isoformat()))
        state = order.channel_state
        if state and "any" not in self.channel_states and state not in self.channel_states:
            found.append(reasons.channel_state_not_downloaded(state, self.channel_states))
        return found
