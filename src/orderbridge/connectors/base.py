"""The declared connector interface: what the hub asks of a channel and of a destination.

Kept deliberately small so every connector (Shopify, WooCommerce, Mirakl, ShipStation, Square,
QuickBooks, file export …) can implement it and pass one shared contract suite
(``tests/connectors/contract_*.py``). Connectors raise only :mod:`orderbridge.errors` types.

**The declaration is the connector's whole story to the hub** (decision 70). A connector class
carries one :class:`Declaration`: its kind, role and title; what it can do (:class:`Capability`
— the hub schedules a job only for a connection whose kind declares it, and the contract suite
runs a capability's tests only where it is declared); its credentials (:class:`CredentialField`)
and settings (:class:`Setting`, each with its default and whether the connector or the hub reads
it — a channel's default download rules are its ``download_rules`` setting's default); for a
channel that sends webhooks, its :class:`WebhookAdapter` (signature, delivery id, topics, payload
→ record); for a destination, the mapping kinds it needs and the format of its document key. The
hub reads nothing about a kind anywhere else: adding a connector is its package plus one
:mod:`orderbridge.connectors.registry` entry (``docs/connectors/writing-a-connector.md``).

A connector is built as ``cls(base_url, credentials, settings, http=…, sleep=…)``
(:class:`ConnectorFactory`) with the connection's base URL, its decrypted credentials and the
settings it declared with :attr:`SettingScope.CONNECTOR` — never the hub's own.

Cursor semantics: a channel yields :class:`ChannelBatch` objects; each carries ``cursor_after``,
the value the hub may store *after* committing that batch (``None``: not yet — e.g. a bulk export
that is not sorted by update time only yields a cursor with its last batch). The hub never moves
a cursor before the batch it covers is committed.
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import httpx

from orderbridge.domain.changes import ChangeClass
from orderbridge.domain.channel_rules import ChannelRules, RemoteOrderState
from orderbridge.domain.mappings import MappingKind
from orderbridge.domain.money import Money
from orderbridge.domain.order import Order
from orderbridge.domain.pipeline import ResolvedOrder
from orderbridge.domain.push_plan import PlannedCall
from orderbridge.domain.reasons import Reason
from orderbridge.domain.rules import DownloadRules
from orderbridge.domain.shipments import Shipment
from orderbridge.errors import OrderBridgeError


class Role(StrEnum):
    CHANNEL = "channel"
    DESTINATION = "destination"


class Capability(StrEnum):
    """What a connector can do. Each names the methods it promises (:data:`CAPABILITY_METHODS`)
    and, for the scheduled ones, the job the hub runs for it (decision 71)."""

    LIST_CHANGED = "list_changed"  # channel: polled by the sync
    FETCH_ORDER = "fetch_order"  # channel: one order re-read (ties, audits' recoveries)
    BULK_BACKFILL = "bulk_backfill"  # channel: a first sync reads the whole store in one export
    PUSH_FULFILMENT = "push_fulfilment"  # channel: shipments are pushed back to it
    LIST_ORDER_STAMPS = "list_order_stamps"  # channel: audited by the reconciliation
    WEBHOOKS = "webhooks"  # channel: subscribed, its deliveries verified and read
    POST_ORDERS = "post_orders"  # destination: ready orders are posted to it
    LIST_SHIPMENTS = "list_shipments"  # destination: its shipments are polled
    AMEND_DOCUMENTS = "amend_documents"  # destination: a posted document is found, updated, voided, adjusted
    WATCH_DELIVERIES = "watch_deliveries"  # destination: what the remote did with each delivered file is read
    PREFLIGHT = "preflight"  # destination (a POS): pre-flight checks on "test connection" and before each post


#: the capabilities each role may declare
ROLE_CAPABILITIES: Mapping[Role, frozenset[Capability]] = {
    Role.CHANNEL: frozenset(
        {
            Capability.LIST_CHANGED,
            Capability.FETCH_ORDER,
            Capability.BULK_BACKFILL,
            Capability.PUSH_FULFILMENT,
            Capability.LIST_ORDER_STAMPS,
            Capability.WEBHOOKS,
        }
    ),
    Role.DESTINATION: frozenset(
        {
            Capability.POST_ORDERS,
            Capability.LIST_SHIPMENTS,
            Capability.AMEND_DOCUMENTS,
            Capability.WATCH_DELIVERIES,
            Capability.PREFLIGHT,
        }
    ),
}

#: the methods a connector class must have for each capability it declares (checked when the
#: registry loads it, so a declaration cannot promise what the class does not implement)
CAPABILITY_METHODS: Mapping[Capability, tuple[str, ...]] = {
    Capability.LIST_CHANGED: ("list_changed",),
    Capability.FETCH_ORDER: ("fetch_order",),
    Capability.BULK_BACKFILL: ("list_changed",),
    # issue #16: pushed through the planner (PlannedChannel); the declaration carries channel_rules
    Capability.PUSH_FULFILMENT: ("remote_state", "perform"),
    Capability.LIST_ORDER_STAMPS: ("list_order_stamps", "api_cost_spent", "fetch_order"),
    Capability.WEBHOOKS: ("register_webhooks", "remove_webhooks", "list_webhooks", "webhook_topics"),
    Capability.POST_ORDERS: ("post_orders", "max_batch"),
    Capability.LIST_SHIPMENTS: ("list_shipments",),
    Capability.AMEND_DOCUMENTS: ("find_document", "update_document", "void_document", "post_adjustment"),
    Capability.WATCH_DELIVERIES: ("watch_deliveries",),
    Capability.PREFLIGHT: ("preflight_connection", "preflight_order", "create_helper_items", "document_state"),
}

#: issue #16: every channel declaring ``PUSH_FULFILMENT`` declares :attr:`Declaration.channel_rules`
#: and is pushed to through the planner, with these methods (the legacy ``push_fulfilment`` /
#: ``find_fulfilment`` pair is no longer what the hub calls)
PLANNED_PUSH_METHODS = ("remote_state", "perform")


class Amendment(StrEnum):
    """What a destination does with an order it already holds when the order changes (issue #15).

    Declared per :class:`~orderbridge.domain.changes.ChangeClass` in
    :attr:`Declaration.amendments`; a class a destination does not declare is :attr:`NOTHING`."""

    #: the posted document is changed where it is: ShipStation's ``orderKey`` upsert (a re-post
    #: through ``post_orders``), QuickBooks' sparse update with its ``SyncToken`` (``update_document``)
    UPDATE_IN_PLACE = "update_in_place"
    #: the posted document is voided and the new version posted as a new document
    VOID_AND_REPOST = "void_and_repost"
    #: an adjustment document is posted against it (a RefundReceipt, a CreditMemo)
    ADJUST = "adjust"
    #: the destination can do nothing with it: the update is held for a person, with the reason
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True)
class CredentialField:
    name: str
    description: str
    secret: bool = True
    required: bool = True
    #: what a value looks like, for hints and help (``shpat_…``); the name when empty
    example: str = ""

    @property
    def placeholder(self) -> str:
        return self.example or f"<{self.name}>"


class SettingScope(StrEnum):
    #: passed to the connector's constructor
    CONNECTOR = "connector"
    #: read by the hub (pipeline, download rules, webhook verification); never passed to the connector
    HUB = "hub"


@dataclass(frozen=True, slots=True)
class Setting:
    """One connection setting: its name, what it does, its default and who reads it."""

    name: str
    description: str
    default: Any = None
    scope: SettingScope = SettingScope.CONNECTOR


#: settings the hub reads on every connection of a role, whatever its kind; a declaration gives
#: its own default by declaring a setting of the same name (Shopify's ``download_rules``)
HUB_SETTINGS: Mapping[Role, tuple[Setting, ...]] = {
    Role.CHANNEL: (
        Setting(
            "download_rules",
            "which orders are taken (financial_statuses, fulfillment_statuses, include_closed, include_test, "
            "earliest); a key left out takes the kind's default",
            {},
            SettingScope.HUB,
        ),
        Setting(
            "webhook_address",
            "the receiver URL the channel's webhooks are subscribed to (written by `webhooks register`)",
            "",
            SettingScope.HUB,
        ),
        Setting(
            "poll_interval_s",
            "seconds between two scheduled syncs of this channel (null: the hub's ORDERBRIDGE_POLL_INTERVAL_S)",
            None,
            SettingScope.HUB,
        ),
    ),
    Role.DESTINATION: (
        Setting(
            "sku_mapping",
            "'required': an unmapped SKU holds the order; 'identity': the channel's SKU is sent unchanged",
            "required",
            SettingScope.HUB,
        ),
        Setting(
            "shipping_mapping",
            "'required': an unmapped shipping method holds the order; anything else sends none",
            "required",
            SettingScope.HUB,
        ),
        Setting(
            "required_fields",
            "order fields (dotted, e.g. shipping_address.city) without which the order is held",
            [],
            SettingScope.HUB,
        ),
    ),
}

#: the placeholders a destination's :attr:`Declaration.document_key` may use
DOCUMENT_KEY_FIELDS = frozenset({"channel_id", "external_id"})


@dataclass(frozen=True, slots=True)
class WebhookSource:
    """What a webhook adapter may know of the connection a delivery is addressed to."""

    name: str
    base_url: str
    #: the value of the adapter's :attr:`WebhookAdapter.secret_credential` (never empty here)
    secret: str
    settings: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One delivery as the adapter read it."""

    webhook_id: str
    topic: str
    triggered_at: datetime | None
    external_id: str | None
    #: the order in the payload, or None for topics that carry no order (deletions)
    record: ChannelRecord | None


@runtime_checkable
class WebhookAdapter(Protocol):
    """How one channel kind signs, names and shapes its webhooks (declared with ``WEBHOOKS``).

    The hub's receiver (``services/webhooks.py``) is kind-agnostic: it finds the connection, checks
    that :attr:`secret_credential` is set, asks :meth:`verify`, then :meth:`parse`, ignores a topic
    outside :attr:`topics`, and ingests the record like a polled one."""

    #: the credential whose value signs the deliveries
    secret_credential: str
    #: the topics the hub subscribes to; a delivery of any other topic is answered 200 and ignored
    topics: tuple[str, ...]

    def verify(self, source: WebhookSource, headers: Mapping[str, str], body: bytes) -> str:
        """The empty string when authentic, else the reason for refusing (answered 401, nothing stored). Runs on
        the raw body and compares in constant time."""
        ...

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """The delivery's id, topic and order; ``ValueError``, an ``InvalidInput`` or a
        :class:`orderbridge.boundedjson.JsonRefused` when it cannot be read. Pure: anything it
        raises was caused by the delivery, and is answered with a 4xx."""
        ...


@dataclass(frozen=True, slots=True)
class Declaration:
    kind: str
    role: Role
    title: str
    capabilities: frozenset[Capability]
    credentials: tuple[CredentialField, ...]
    #: the kind's own settings, and its defaults for the hub's (:data:`HUB_SETTINGS`)
    settings: tuple[Setting, ...] = ()
    #: channels declaring ``WEBHOOKS``: how their deliveries are verified and read
    webhooks: WebhookAdapter | None = None
    #: destinations: the mappings an order needs before it can be posted (none: values pass unchanged)
    mapping_kinds: frozenset[MappingKind] = frozenset()
    #: destinations: the key of the document an order becomes, stable per (channel connection,
    #: order) — a re-post updates that document; placeholders ``{channel_id}`` and ``{external_id}``
    document_key: str = "ob-{channel_id}-{external_id}"
    #: destinations: what the kind does with a posted document when the order changes, per change
    #: class (a class left out: :attr:`Amendment.NOTHING`); anything but ``NOTHING`` and
    #: ``UPDATE_IN_PLACE`` needs ``AMEND_DOCUMENTS`` (``UPDATE_IN_PLACE`` without it is a re-post
    #: through ``post_orders``, which the document key upserts)
    amendments: Mapping[ChangeClass, Amendment] = field(default_factory=lambda: MappingProxyType({}))
    #: channels: the order state machine, API actions, required fields and deadlines (issue #16) —
    #: what the push planner plans from and docs/channels.md is generated from
    channel_rules: ChannelRules | None = None
    #: the page in docs/connectors that describes the kind
    docs: str = ""

    def __post_init__(self) -> None:
        problems: list[str] = []
        foreign = self.capabilities - ROLE_CAPABILITIES[self.role]
        if foreign:
            problems.append(f"a {self.role} cannot declare {', '.join(sorted(foreign))}")
        if (Capability.WEBHOOKS in self.capabilities) != (self.webhooks is not None):
            problems.append("WEBHOOKS and a webhook adapter go together")
        if self.webhooks is not None and self.webhooks.secret_credential not in {c.name for c in self.credentials}:
            problems.append(f"the webhook secret {self.webhooks.secret_credential!r} is not a declared credential")
        names = [s.name for s in self.settings]
        if len(names) != len(set(names)):
            problems.append("a setting is declared twice")
        hub_names = {s.name for s in HUB_SETTINGS[self.role]}
        for s in self.settings:
            if s.name in hub_names and s.scope is not SettingScope.HUB:
                problems.append(f"{s.name!r} is read by the hub: declare it with SettingScope.HUB")
        if self.role is Role.DESTINATION:
            used = {f for _, f, _, _ in string.Formatter().parse(self.document_key) if f is not None}
            if used - DOCUMENT_KEY_FIELDS or "external_id" not in used:
                problems.append(f"document_key {self.document_key!r} must use {{external_id}} and only {{channel_id}}")
            needs_amend = {
                c.value for c, a in self.amendments.items() if a in (Amendment.VOID_AND_REPOST, Amendment.ADJUST)
            }
            if needs_amend and Capability.AMEND_DOCUMENTS not in self.capabilities:
                problems.append(f"amendments for {', '.join(sorted(needs_amend))} need AMEND_DOCUMENTS")
        elif self.mapping_kinds or self.amendments:
            problems.append("only destinations declare mapping kinds and amendments")
        if self.channel_rules is not None and self.role is not Role.CHANNEL:
            problems.append("only channels declare channel rules")
        if Capability.PUSH_FULFILMENT in self.capabilities and self.channel_rules is None:
            # issue #16: every push goes through the planner, which plans from the channel's rules
            problems.append("PUSH_FULFILMENT needs channel_rules (the push planner plans from them)")
        if problems:
            raise ValueError(f"declaration of {self.kind!r}: " + "; ".join(problems))

    # --- settings ------------------------------------------------------------------------------
    def all_settings(self) -> tuple[Setting, ...]:
        """Every setting a connection of this kind has: the hub's for its role (with this kind's
        defaults where it declares them), then its own."""
        own = {s.name: s for s in self.settings}
        hub = tuple(own.pop(s.name, s) for s in HUB_SETTINGS[self.role])
        return hub + tuple(own.values())

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.all_settings() if s.name == name), None)

    @property
    def made_by_hub(self) -> bool:
        """A kind with neither credentials nor capabilities (the manual channel): nobody adds one;
        the hub makes the tenant's one connection of it itself, on first use."""
        return not self.credentials and not self.capabilities

    @property
    def default_settings(self) -> dict[str, Any]:
        """The defaults of the connector's own settings (stored with a new connection)."""
        return {s.name: s.default for s in self.settings if s.scope is SettingScope.CONNECTOR}

    def unknown_settings(self, names: Iterable[str]) -> list[str]:
        known = {s.name for s in self.all_settings()}
        return sorted(set(names) - known)

    def connector_settings(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """What the connector is built with: its declared settings (stored value, else default)."""
        return {s.name: stored.get(s.name, s.default) for s in self.settings if s.scope is SettingScope.CONNECTOR}

    def hub_setting(self, stored: Mapping[str, Any], name: str) -> Any:
        """A setting the hub reads: the connection's value, else this kind's default."""
        declared = self.setting(name)
        if declared is None or declared.scope is not SettingScope.HUB:
            raise KeyError(f"{name!r} is not a hub setting of {self.kind!r}")
        return stored.get(name, declared.default)

    def download_rules(self, given: Mapping[str, Any] | None) -> DownloadRules:
        """A channel connection's rules: ``given`` (its ``download_rules`` setting) over this
        kind's declared default; ``ValueError`` names a rule that cannot be read."""
        default = self.setting("download_rules")
        base = default.default if default is not None and isinstance(default.default, Mapping) else {}
        return DownloadRules.from_settings({**base, **dict(given or {})})

    # --- destinations --------------------------------------------------------------------------
    def amendment(self, change: ChangeClass) -> Amendment:
        """What this destination does with a posted document for one class of change."""
        return self.amendments.get(change, Amendment.NOTHING)

    def order_key(self, channel_id: int, external_id: str) -> str:
        """The destination document key of one channel order (stable across versions)."""
        return self.document_key.format(channel_id=channel_id, external_id=external_id)

    def about(self) -> dict[str, Any]:
        """The declaration as plain data (``connections kinds --json``, docs)."""
        return {
            "kind": self.kind,
            "role": self.role.value,
            "title": self.title,
            "capabilities": sorted(c.value for c in self.capabilities),
            "credentials": [
                {"name": c.name, "description": c.description, "required": c.required, "secret": c.secret}
                for c in self.credentials
            ],
            "settings": [
                {"name": s.name, "description": s.description, "default": s.default, "read_by": s.scope.value}
                for s in self.all_settings()
            ],
            "webhook_topics": list(self.webhooks.topics) if self.webhooks else [],
            "mapping_kinds": sorted(k.value for k in self.mapping_kinds),
            "document_key": self.document_key if self.role is Role.DESTINATION else None,
            "amendments": {c.value: a.value for c, a in sorted(self.amendments.items())},
            "docs": self.docs,
        }


class ConnectorFactory(Protocol):
    """How the registry builds a connector: the class itself, called with the connection."""

    declaration: Declaration

    def __call__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Any: ...


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
    #: the document sent for this order (the request body, or its part for this order in a batch),
    #: as JSON data: kept with the attempt so the order's page shows what went out (decision 108);
    #: None when nothing was sent (refused before sending) or the connector does not say
    sent: Mapping[str, Any] | None = None

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


@runtime_checkable
class FulfilmentChannel(ChannelConnector, Protocol):
    """A channel that accepts shipments back as fulfilments (``PUSH_FULFILMENT``)."""

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
class PlannedChannel(ChannelConnector, Protocol):
    """A channel pushed to through the planner (``PUSH_FULFILMENT`` with ``channel_rules``, issue #16).

    The hub reads :meth:`remote_state`, plans from the declaration's rules
    (:func:`orderbridge.domain.push_plan.plan`) and makes each planned call with :meth:`perform`,
    reading the state again before any retry. A connector never decides on its own to make a call
    the plan did not name (no implicit accept before a ship)."""

    def remote_state(self, external_id: str) -> RemoteOrderState:
        """Read only: what the channel holds for the order now (state, lines, shipments with their
        tracking, flags, refunds, deadlines, the back-office link). ``HoldOrder`` when the channel
        no longer has the order."""
        ...

    def perform(self, external_id: str, call: PlannedCall) -> str:
        """Make one planned call; return the channel's id of what it made or changed (a fulfilment,
        a note, a refund; the order id when the call only moves the state). A lost answer raises
        ``OutcomeUnknown`` (the hub reads :meth:`remote_state` before anything is sent again); the
        channel refusing it raises ``HoldOrder`` with its words (outside text: data)."""
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


@dataclass(frozen=True, slots=True)
class PostedDocument:
    """A document the posting ledger says a destination holds for an order (a ``posted`` posting)."""

    order_key: str
    document_id: str
    #: the idempotency key of the posting that made it (``order:destination:vN``)
    idempotency_key: str
    #: the order version it carries
    version: int


@dataclass(frozen=True, slots=True)
class RemoteDocument:
    """What the destination itself holds under an order key, read fresh (``find_document``)."""

    order_key: str
    document_id: str
    #: ``live`` or ``voided`` (a destination may name more; the hub only reads these two)
    state: str
    #: the destination's concurrency token for an update (QuickBooks' ``SyncToken``), if any
    version_token: str | None = None
    #: the destination's own number for it (QuickBooks' ``DocNumber``), if any
    number: str | None = None
    total: Money | None = None


@dataclass(frozen=True, slots=True)
class Adjustment:
    """An adjustment document to post against a posted one (a refund: RefundReceipt / CreditMemo)."""

    #: unique per (order, destination, version, kind): a repeat finds the first, never a second
    idempotency_key: str
    #: ``refund`` (the only kind so far)
    kind: str
    #: the amount the adjustment carries, and one sentence saying why (shown on the document's memo)
    amount: Money
    reason: str
    #: the order version that caused it (its lines and prices are what a line-level refund reads)
    resolved: ResolvedOrder


@runtime_checkable
class AmendableDestination(DestinationConnector, Protocol):
    """A destination whose posted documents can be read, updated, voided and adjusted
    (``AMEND_DOCUMENTS``). Every method is idempotent by its idempotency key; a call whose answer
    is lost raises ``OutcomeUnknown`` and is settled by :meth:`find_document` before any retry."""

    def find_document(self, order_key: str) -> RemoteDocument | None:
        """Read only: the live (else the newest voided) document the destination holds for the key."""
        ...

    def update_document(self, document: PostedDocument, order: OutgoingOrder) -> PostResult:
        """Change ``document`` in place to carry ``order`` (its ``idempotency_key`` is the new
        version's); ``document_id`` of the result is the same document's."""
        ...

    def void_document(self, document: PostedDocument, idempotency_key: str) -> PostResult:
        """Void ``document`` (already voided: the same answer, not an error)."""
        ...

    def post_adjustment(self, document: PostedDocument, adjustment: Adjustment) -> PostResult:
        """Post ``adjustment`` against ``document``; the result's ``document_id`` is the adjustment's."""
        ...


@runtime_checkable
class RotatingCredentials(Protocol):
    """A connector whose remote replaces a credential as it is used (issue #15: QuickBooks' OAuth 2
    refresh token — Intuit may answer each refresh with a new one, and then only the newest works).

    The hub registers a callback right after building the connector (``services/hub.py``); the
    connector calls it with the replaced credentials (``{"refresh_token": new}``) *as soon as* the
    remote issues them, before using them, and the hub stores them encrypted with the connection's
    others — so a crash or restart never starts from a credential the remote has already retired.
    A connector that does not rotate anything simply does not have the method."""

    def on_credentials_rotated(self, callback: Callable[[Mapping[str, str]], None]) -> None: ...


@runtime_checkable
class ShipmentSource(DestinationConnector, Protocol):
    """A destination whose shipments are read back (``LIST_SHIPMENTS``)."""

    def list_shipments(self, since: datetime | None) -> Iterator[ShipmentBatch]: ...


class DeliveryFate(StrEnum):
    """What the remote did with one delivered file (``WATCH_DELIVERIES``)."""

    #: still where it was written, with neither acknowledgement nor error beside it
    WAITING = "waiting"
    #: taken: moved or deleted by the package, or acknowledged
    IMPORTED = "imported"
    #: refused: the package wrote an error file for it (or moved it to its error folder)
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One file a destination wrote, and its fate as read from the remote just now."""

    file: str
    written_at: datetime
    #: by when the remote should have taken it (``written_at`` + the connection's pickup limit)
    due_by: datetime
    #: the idempotency keys of the postings it carries, by position (document id ``file#position``)
    keys: tuple[str, ...]
    fate: DeliveryFate
    #: the remote's own words for a rejection (outside text: data), or what was seen (moved to …)
    message: str = ""


@runtime_checkable
class WatchedDestination(DestinationConnector, Protocol):
    """A destination that delivers files a package imports on its own schedule (``WATCH_DELIVERIES``):
    the hub learns whether each was imported only by reading what the package did with it."""

    def watch_deliveries(self) -> list[Delivery]:
        """Every file this destination wrote that is not known to be settled, with its fate now. It
        changes nothing the remote reads (a destination may remember a refusal it saw, so that a
        refusal stays one); a fate read twice is the same fate (the hub's handling is idempotent)."""
        ...


# --- POS destinations (issue #17) -----------------------------------------------------------------


class PosDocumentState(StrEnum):
    """Where a posted sale stands in the POS (the order page shows it, with whether stock moved)."""

    PENDING = "pending"
    OPEN = "open"
    INVOICED = "invoiced"
    COMPLETED = "completed"
    VOIDED = "voided"


@dataclass(frozen=True, slots=True)
class PosDocument:
    """What the POS holds for one posted order, read fresh (``document_state``)."""

    document_id: str
    state: PosDocumentState
    #: whether the POS has adjusted inventory for it (Heartland's pending orders do not)
    stock_moved: bool
    #: the POS's own number or reference for it, and the total it computed
    number: str | None = None
    total: Money | None = None


@dataclass(frozen=True, slots=True)
class PreflightCheck:
    """One pre-flight check's result: ``reason`` None when it passed. ``name`` is stable
    (``employee``, ``helper_items``, ``location``, ``required_fields``, ``skus``, ``totals``)."""

    name: str
    #: what was checked, one sentence ("team member 'Online orders' is ACTIVE")
    detail: str
    reason: Reason | None = None
    #: a fix the connector can make itself when asked (``create_helper_items``), else empty
    action: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


@runtime_checkable
class PreflightDestination(DestinationConnector, Protocol):
    """A POS destination (``PREFLIGHT``): every trap it can fall into is checked before posting.

    Connection-level checks run on "test connection" and before each post run; order-level checks
    before each order is sent. A failed check is a typed hold with its fix; the hub re-runs the
    checks of held orders on every cycle and releases them once the cause is fixed."""

    def preflight_connection(self) -> list[PreflightCheck]:
        """The acting employee / team member, the helper items, the location / station — read fresh."""
        ...

    def preflight_order(self, order: OutgoingOrder) -> list[PreflightCheck]:
        """The order's required custom fields, SKUs and totals as the POS would compute them."""
        ...

    def create_helper_items(self) -> list[str]:
        """Create the helper items the checks found missing (idempotently: one that exists is left
        as it is); return the SKUs created."""
        ...

    def document_state(self, document_id: str) -> PosDocument | None:
        """Read only: the posted sale's state in the POS and whether stock moved (None: not found)."""
        ...


def missing_methods(cls: Any, declaration: Declaration) -> list[str]:
    """The methods (and attributes) ``cls`` lacks for the capabilities its declaration promises."""
    wanted = {"check", "close"}
    for capability in declaration.capabilities:
        wanted.update(CAPABILITY_METHODS[capability])
    return sorted(name for name in wanted if not hasattr(cls, name))


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
