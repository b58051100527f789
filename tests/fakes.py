"""In-memory fakes of the connector interface, for fast service tests (no HTTP).

They subclass nothing but honour the same Protocols as the real connectors; the end-to-end
tests use the real connectors against the sandboxes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from orderbridge.connectors.base import (
    Capability,
    ChannelBatch,
    ChannelRecord,
    CredentialField,
    Declaration,
    FulfilmentLine,
    FulfilmentRequest,
    OrderStamp,
    OutgoingOrder,
    PostResult,
    Role,
    Setting,
    SettingScope,
    ShipmentBatch,
    StampBatch,
)
from orderbridge.connectors.shopify.connector import CHANNEL_RULES as SHOPIFY_RULES
from orderbridge.domain.channel_rules import ChannelAction, RemoteLine, RemoteOrderState, RemoteShipment
from orderbridge.domain.mappings import MappingKind
from orderbridge.domain.order import Order
from orderbridge.domain.push_plan import PlannedCall
from orderbridge.domain.shipments import Shipment
from orderbridge.errors import AuthFailed, DestinationRejected, HoldOrder, NotFound, OrderBridgeError
from tests.scoped import cid, tenant

#: the fake shop's default download rules: seed 000's, as Shopify declares them
DEFAULT_RULES = {"financial_statuses": ["paid"], "fulfillment_statuses": ["unfulfilled", "partial"]}

#: what the fakes implement, declared as a real connector declares it (the hub schedules by it)
CHANNEL_DECL = Declaration(
    "fake_channel",
    Role.CHANNEL,
    "Fake",
    frozenset(
        {Capability.LIST_CHANGED, Capability.FETCH_ORDER, Capability.PUSH_FULFILMENT, Capability.LIST_ORDER_STAMPS}
    ),
    (CredentialField("token", "t"),),
    settings=(Setting("download_rules", "seed 000's rules", DEFAULT_RULES, SettingScope.HUB),),
    # a shop like Shopify: fulfilments with their lines and tracking, cancel while unfulfilled
    channel_rules=SHOPIFY_RULES,
)
DESTINATION_DECL = Declaration(
    "fake_destination",
    Role.DESTINATION,
    "Fake",
    frozenset({Capability.POST_ORDERS, Capability.LIST_SHIPMENTS}),
    (CredentialField("key", "k"),),
    mapping_kinds=frozenset({MappingKind.SKU, MappingKind.SHIPPING}),
)


@dataclass
class FakeChannel:
    orders: dict[str, ChannelRecord] = field(default_factory=dict)
    page_size: int = 3
    fail_after_pages: int | None = None
    error: OrderBridgeError | None = None
    pushed: list[FulfilmentRequest] = field(default_factory=list)
    #: ids that polls do not see (an order that became visible late) — audits still list them
    hidden: set[str] = field(default_factory=set)
    stamp_calls: int = 0
    #: what listings show instead of an order's current version (a page read before its last edit)
    listed_instead: dict[str, ChannelRecord] = field(default_factory=dict)
    #: the ids fetch_order was asked for, in order; fetch_error, when set, is what it raises
    fetched: list[str] = field(default_factory=list)
    fetch_error: OrderBridgeError | None = None
    #: what push_fulfilment raises, when set
    push_error: OrderBridgeError | None = None
    #: issue #16: every planned call made, tracking replaced per fulfilment, orders cancelled
    calls: list[tuple[str, PlannedCall]] = field(default_factory=list)
    tracking_updates: dict[str, str] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    #: called with each id fetch_order is asked for, before it answers (to race it in tests)
    on_fetch: Callable[[str], None] | None = None
    #: cost points a successful fetch_order is charged, and the total charged so far
    fetch_cost: int = 5
    spent: int = 0
    declaration: ClassVar[Declaration] = CHANNEL_DECL

    def put(self, order: Order) -> None:
        self.orders[order.external_id] = order

    def check(self) -> str:
        if self.error:
            raise self.error
        return "fake shop"

    def close(self) -> None:
        pass

    def list_changed(self, since: datetime | None, until: datetime | None = None) -> Iterator[ChannelBatch]:
        items = sorted(
            (
                self.listed_instead.get(o.external_id, o)
                for o in self.orders.values()
                if o.external_id not in self.hidden and (since is None or (o.updated_at and o.updated_at >= since))
            ),
            key=lambda o: (o.updated_at, o.external_id),
        )
        for page, i in enumerate(range(0, len(items), self.page_size)):
            if self.fail_after_pages is not None and page >= self.fail_after_pages and self.error:
                raise self.error
            chunk = items[i : i + self.page_size]
            yield ChannelBatch(list(chunk), max(o.updated_at for o in chunk if o.updated_at), cost=1)

    def fetch_order(self, external_id: str) -> ChannelRecord:
        self.fetched.append(external_id)
        if self.on_fetch is not None:
            self.on_fetch(external_id)
        if self.fetch_error is not None:
            raise self.fetch_error
        if external_id not in self.orders:
            raise NotFound(f"fake has no order {external_id}", hint="Check the order id.")
        self.spent += self.fetch_cost
        return self.orders[external_id]

    def api_cost_spent(self) -> int:
        return self.spent

    def list_order_stamps(self, since: datetime, until: datetime) -> Iterator[StampBatch]:
        if self.error:
            raise self.error
        items = sorted(
            (o for o in self.orders.values() if o.updated_at and since <= o.updated_at <= until),
            key=lambda o: (o.updated_at, o.external_id),
        )
        for i in range(0, len(items), 250):
            self.stamp_calls += 1
            chunk = items[i : i + 250]
            yield StampBatch(
                [OrderStamp(o.external_id, o.updated_at, getattr(o, "number", "")) for o in chunk if o.updated_at],
                requests=1,
                cost=2 + len(chunk),
            )

    def push_fulfilment(self, request: FulfilmentRequest) -> str:
        found = self.find_fulfilment(request)
        if found is not None:
            return found
        if self.push_error is not None:
            raise self.push_error
        self.pushed.append(request)
        return f"F{len(self.pushed)}"

    # --- PlannedChannel (issue #16): a shop whose state follows the fulfilments pushed to it ------
    def remote_state(self, external_id: str) -> RemoteOrderState:
        order = self.orders.get(external_id)
        if order is None or not isinstance(order, Order):
            raise NotFound(f"fake has no order {external_id}", hint="Check the order id.")
        shipped: dict[str, int] = {}
        shipments = []
        for n, done in enumerate(self.pushed, 1):
            if done.order_external_id != external_id:
                continue
            tracking = self.tracking_updates.get(f"F{n}", done.tracking_number)
            shipments.append(
                RemoteShipment(
                    f"F{n}", tracking, done.carrier, tuple((ln.line_external_id, ln.quantity) for ln in done.lines)
                )
            )
            for ln in done.lines:
                shipped[ln.line_external_id] = shipped.get(ln.line_external_id, 0) + ln.quantity
        lines = tuple(
            RemoteLine(line.external_id, line.quantity, shipped=min(shipped.get(line.external_id, 0), line.quantity))
            for line in order.lines
        )
        if external_id in self.cancelled:
            state = "CANCELLED"
        elif all(ln.open_quantity == 0 for ln in lines):
            state = "FULFILLED"
        elif any(ln.shipped for ln in lines):
            state = "PARTIALLY_FULFILLED"
        else:
            state = "UNFULFILLED"
        return RemoteOrderState(
            external_id, state, lines, tuple(shipments), url=f"https://fake.example/orders/{external_id}"
        )

    def perform(self, external_id: str, call: PlannedCall) -> str:
        self.calls.append((external_id, call))
        tracking = call.tracking
        if call.action is ChannelAction.TRACKING and call.shipment_id and tracking is not None:
            if self.push_error is not None:
                raise self.push_error
            self.tracking_updates[call.shipment_id] = tracking.number
            return call.shipment_id
        if call.action is ChannelAction.SHIP and tracking is not None:
            return self.push_fulfilment(
                FulfilmentRequest(
                    external_id,
                    tuple(FulfilmentLine(line, qty) for line, qty in call.lines),
                    tracking.number,
                    tracking.carrier,
                    tracking_url=tracking.url,
                )
            )
        if call.action is ChannelAction.CANCEL:
            if self.push_error is not None:
                raise self.push_error
            self.cancelled.add(external_id)
            return external_id
        raise HoldOrder(f"fake has no {call.action}", code="action_not_supported")

    def find_fulfilment(self, request: FulfilmentRequest) -> str | None:
        for n, done in enumerate(self.pushed, 1):
            if (done.order_external_id, done.tracking_number, done.lines) == (
                request.order_external_id,
                request.tracking_number,
                request.lines,
            ):
                return f"F{n}"
        return None


@dataclass
class FakeDestination:
    documents: dict[str, dict[str, object]] = field(default_factory=dict)
    creates: dict[str, int] = field(default_factory=dict)
    reject_skus: set[str] = field(default_factory=set)
    error: OrderBridgeError | None = None
    shipments: list[Shipment] = field(default_factory=list)
    max_batch: int = 2
    #: the idempotency key of every order it was sent, in order (rejected ones too)
    received: list[str] = field(default_factory=list)
    declaration: ClassVar[Declaration] = DESTINATION_DECL

    def check(self) -> str:
        return "fake 3pl"

    def close(self) -> None:
        pass

    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        if self.error:
            raise self.error
        results = []
        for o in orders:
            self.received.append(o.idempotency_key)
            body = {
                "number": o.resolved.order.number,
                "key": o.idempotency_key,
                "lines": [{"sku": ln.destination_sku} for ln in o.resolved.lines],
            }
            bad = [ln.destination_sku for ln in o.resolved.lines if ln.destination_sku in self.reject_skus]
            if bad:
                results.append(
                    PostResult(o.order_key, None, DestinationRejected(f"unknown product {bad[0]}"), sent=body)
                )
                continue
            if o.order_key not in self.documents:
                self.creates[o.order_key] = self.creates.get(o.order_key, 0) + 1
            self.documents[o.order_key] = {"number": o.resolved.order.number, "key": o.idempotency_key}
            results.append(PostResult(o.order_key, f"D-{o.order_key}", sent=body))
        return results

    def list_shipments(self, since: datetime | None) -> Iterator[ShipmentBatch]:
        items = [s for s in self.shipments if since is None or (s.ship_date and s.ship_date >= since)]
        if items:
            yield ShipmentBatch(items, max(s.ship_date for s in items if s.ship_date))


def revoked() -> AuthFailed:
    return AuthFailed("fake refused the credentials (HTTP 401)", hint="Renew the token.")


__all__ = ["FakeChannel", "FakeDestination", "revoked"]


def install(hub: object, channel: FakeChannel | None = None, destination: FakeDestination | None = None) -> None:
    """Register the fake kinds and add connections ``shop`` / ``wh`` served by the given fakes."""
    from orderbridge.connectors import registry
    from orderbridge.services.connections import add_connection

    registry.register("fake_channel", FakeChannel)
    registry.register("fake_destination", FakeDestination)
    if channel is not None:
        add_connection(tenant(hub), "shop", "fake_channel", "http://fake", {"token": "t"})  # type: ignore[arg-type]
        hub.connectors[cid(hub, "shop")] = channel  # type: ignore[attr-defined]
    if destination is not None:
        add_connection(tenant(hub), "wh", "fake_destination", "http://fake", {"key": "k"})  # type: ignore[arg-type]
        hub.connectors[cid(hub, "wh")] = destination  # type: ignore[attr-defined]


def standard_world(hub: object, n: int) -> FakeChannel:
    """A fake shop with ``n`` ready-to-post orders (one minute apart) and a fake 3PL with mappings."""
    from orderbridge.services.mappings import set_mapping
    from tests.builders import order

    channel = FakeChannel()
    for i in range(n):
        channel.put(order(i, updated_minutes=i))
    install(hub, channel, FakeDestination())
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))  # type: ignore[arg-type]
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))  # type: ignore[arg-type]
    return channel
