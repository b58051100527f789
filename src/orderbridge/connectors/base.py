"""The declared connector interface: what the hub asks of a channel and of a destination.

Kept deliberately small so every connector (Shopify, WooCommerce, Mirakl, ShipStation, Square,
QuickBooks, file export …) can implement it and pass one shared contract suite
(``tests/connectors/contract.py``). Connectors raise only :mod:`orderbridge.errors` types.

Cursor semantics: a channel yields :class:`ChannelBatch` objects; each carries ``cursor_after``,
the value the hub may store *after* committing that batch (``None``: not yet — e.g. a bulk export
that is not sorted by update time only yields a cursor with its last batch). The hub never moves
a cursor before the batch it covers is committed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from orderbridge.domain.order import Order
from orderbridge.domain.pipeline import ResolvedOrder
from orderbridge.domain.reasons import Reason
from orderbridge.domain.shipments import Shipment
from orderbridge.errors import OrderBridgeError


class Role(StrEnum):
    CHANNEL = "channel"
    DESTINATION = "destination"


class Capability(StrEnum):
    LIST_CHANGED = "list_changed"
    FETCH_ORDER = "fetch_order"
    BULK_BACKFILL = "bulk_backfill"
    PUSH_FULFILMENT = "push_fulfilment"
    POST_ORDERS = "post_orders"
    LIST_SHIPMENTS = "list_shipments"
    LIST_ORDER_STAMPS = "list_order_stamps"
    WEBHOOKS = "webhooks"


@dataclass(frozen=True, slots=True)
class CredentialField:
    name: str
    description: str
    secret: bool = True
    required: bool = True


@dataclass(frozen=True, slots=True)
class Declaration:
    kind: str
    role: Role
    title: str
    capabilities: frozenset[Capability]
    credentials: tuple[CredentialField, ...]
    default_settings: Mapping[str, Any] = field(default_factory=dict)
    cursor_field: str = "updated_at"


@dataclass(frozen=True, slots=True)
class UnreadableOrder:
    """A channel record the mapper could not turn into an :class:`Order`.

    It is still stored (raw payload kept) and held with ``invalid_order`` — never dropped. An empty
    ``external_id`` means the record has no usable id: it cannot be stored without being merged into
    another order, so the hub refuses it instead, counted on the sync report and logged.
    """

    external_id: str
    number: str
    updated_at: datetime | None
    problem: str
    raw: Mapping[str, Any]


ChannelRecord = Order | UnreadableOrder


@dataclass(slots=True)
class ChannelBatch:
    records: list[ChannelRecord]
    cursor_after: datetime | None
    #: API cost of producing this batch, for reports (requests, GraphQL points …)
    cost: int = 0


@dataclass(frozen=True, slots=True)
class OrderStamp:
    """An order's id and last update time: what a reconciliation audit compares with the ledger."""

    external_id: str
    updated_at: datetime
    number: str = ""


@dataclass(slots=True)
class StampBatch:
    stamps: list[OrderStamp]
    #: API requests made and their cost (GraphQL points, or requests for REST) for the audit report
    requests: int = 1
    cost: int = 0


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    id: str
    topic: str
    address: str


@dataclass(frozen=True, slots=True)
class FulfilmentLine:
    line_external_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class FulfilmentRequest:
    order_external_id: str
    lines: tuple[FulfilmentLine, ...]
    tracking_number: str
    carrier: str
    tracking_url: str | None = None
    notify_customer: bool = False
    #: when set, update the tracking of this existing channel fulfilment instead of creating one
    replaces_fulfilment_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingOrder:
    """One order version for one destination."""

    idempotency_key: str
    #: stable per (order, destination): the destination's upsert key (e.g. ShipStation orderKey)
    order_key: str
    resolved: ResolvedOrder


@dataclass(frozen=True, slots=True)
class PostResult:
    order_key: str
    document_id: str | None
    error: OrderBridgeError | None = None
    #: the reason to hold the order with, when the connector refused it before sending (a field over
    #: the destination's limit); without it a refusal holds the order as ``destination_rejected``
    hold: Reason | None = None
    #: what the connector changed to fit the destination's limits (a name shortened, a field left
    #: out), one sentence each: written to the order's timeline when the post succeeds
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and self.document_id is not None


@dataclass(slots=True)
class ShipmentBatch:
    shipments: list[Shipment]
    cursor_after: datetime | None


@runtime_checkable
class Connector(Protocol):
    declaration: Declaration

    def check(self) -> str:
        """Make one cheap authenticated call; return a human description (shop name …)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ChannelConnector(Connector, Protocol):
    def list_changed(self, since: datetime | None, until: datetime | None = None) -> Iterator[ChannelBatch]:
        """Orders updated at or after ``since`` (all when ``None``), oldest update first."""
        ...

    def fetch_order(self, external_id: str) -> ChannelRecord: ...

    def push_fulfilment(self, request: FulfilmentRequest) -> str:
        """Create (or update tracking of) a fulfilment; return the channel's fulfilment id.

        Idempotent: the channel's fulfilments are read first and one that already carries the request
        is returned, not created again. A create whose answer is lost raises ``OutcomeUnknown`` unless
        reading the channel settles it; a request with no lines is refused (``HoldOrder``), never
        widened to the whole order."""
        ...

    def find_fulfilment(self, request: FulfilmentRequest) -> str | None:
        """Read only: the channel's fulfilment that already carries ``request`` (same tracking number,
        lines and quantities), or None — how a push whose outcome is unknown is settled."""
        ...


@runtime_checkable
class AuditableChannel(ChannelConnector, Protocol):
    """A channel that can list order ids and update times cheaply (``LIST_ORDER_STAMPS``)."""

    def list_order_stamps(self, since: datetime, until: datetime) -> Iterator[StampBatch]:
        """Every order updated in ``[since, until]``, as ids and update times only, in pages."""
        ...

    def api_cost_spent(self) -> int:
        """The API cost points this connector's calls have been charged so far (cumulative; 0 for an
        API without cost accounting): an audit reports what its per-order fetches cost."""
        ...


@runtime_checkable
class WebhookChannel(ChannelConnector, Protocol):
    """A channel that pushes order changes to a URL (``WEBHOOKS``)."""

    webhook_topics: tuple[str, ...]

    def register_webhooks(self, address: str) -> list[WebhookSubscription]:
        """Subscribe ``address`` to every topic in ``webhook_topics``; idempotent."""
        ...

    def remove_webhooks(self, address: str | None = None) -> int:
        """Delete the subscriptions pointing at ``address`` (all when ``None``); return how many."""
        ...

    def list_webhooks(self) -> list[WebhookSubscription]: ...


@runtime_checkable
class DestinationConnector(Connector, Protocol):
    max_batch: int

    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        """Post a batch; one result per order, in order. Whole-batch failures raise."""
        ...

    def list_shipments(self, since: datetime | None) -> Iterator[ShipmentBatch]: ...


@dataclass(frozen=True, slots=True)
class ApiVersionNotice:
    """The remote system said the API version a connection asks for is deprecated, or answered with
    another one (a retired version): the connection's health and one alert carry it with the fix."""

    #: the connection setting that picks the version, what it asks for, and what the connector
    #: is written and tested against (the fix)
    setting: str
    current: str
    recommended: str
    #: the version that answered
    served: str
    #: when support for ``current`` ends (or ended), when known
    ends: date | None
    #: what happened, in the connector's words (the remote's reason is outside text: data)
    message: str


@runtime_checkable
class VersionedApi(Protocol):
    """A connector whose remote API is versioned and says when a version is going away."""

    def api_version_notice(self) -> ApiVersionNotice | None:
        """What the last response said about the API version (None: nothing to report)."""
