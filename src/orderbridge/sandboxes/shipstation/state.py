"""State of the ShipStation sandbox: orders upserted by ``orderKey``, a lazy warehouse, rate windows.

What it emulates (ShipStation V1, see ``/work/shared/api-facts.md``):

- **Orders.** ``createorder`` creates an order, or updates the one whose ``orderId``/``orderKey``
  matches; every create and update is written to the ledger (``order_created`` /
  ``order_updated``, key = ``orderKey``) so tests can prove "posted exactly once" from the remote
  side. The incoming JSON object is stored as is (it was freshly parsed for this request, so it is
  not copied again) plus the fields ShipStation assigns — this keeps ``createorders`` at tens of
  thousands of orders per second.
- **Warehouse.** Each order received in ``awaiting_shipment`` gets a "ship" event due
  ``ship_after_seconds`` later on a heap. Events are applied lazily, whenever someone looks
  (shipment listing, control routes), in due-time order, and a shipment's ``createDate`` is the
  event's due time — so results depend only on the clock, never on when the listing happened.
  With ``partial_rate`` a multi-line order ships in two shipments; with ``void_rate`` its first
  label is voided one delay later and a reshipment with a new tracking number is created. Which
  orders are partial/voided is a hash of ``(seed, orderKey)``: deterministic, no RNG state.
- **Rate limit.** Fixed windows of ``window_seconds`` (60 in reality) aligned to the clock's epoch,
  ``requests_per_minute`` requests per window per key pair; 429s do not consume the budget.
- **Field lengths.** :data:`MAX_LENGTHS` (decision 47: ShipStation's Custom Store order format,
  the V1 reference being silent) are enforced as ASP.NET's model validation does: a string over
  its length, counted in UTF-16 code units, refuses the request with 400 and a ``ModelState``
  naming each field (:func:`length_errors`). Restated here on purpose, apart from the connector's
  table, so a test that posts through the connector proves the connector's limits, not the
  sandbox's copy of them.
- **Time.** The real API speaks naive timestamps in US Pacific time; the sandbox does the same in
  ``timezone`` (default ``America/Los_Angeles``) and keeps aware UTC values internally.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from orderbridge.sandboxes.base import LedgerEntry, SandboxState

ORDER_STATUSES = frozenset(
    {"awaiting_payment", "awaiting_shipment", "pending_fulfillment", "shipped", "on_hold", "cancelled"}
)
DEFAULT_CARRIER = "ups"
DEFAULT_SERVICE = "ups_ground"
MAX_BATCH = 100
MAX_SHIPMENT_PAGE = 500

#: sentinel for "no override given" in :meth:`ShipStationState.ship_now`
KEEP: Any = object()

Json = dict[str, Any]


class OrderInvalid(ValueError):
    """One order body ShipStation would refuse; the text is ShipStation's style of message."""


@dataclass
class Window:
    index: int
    used: int


@dataclass
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Reset": str(self.reset),
        }


@dataclass
class ShipmentRecord:
    """A shipment as the API shows it (``doc``) plus its creation time for filtering/sorting."""

    created: datetime
    shipped: datetime
    doc: Json


@dataclass
class _OrderTrack:
    received: datetime
    shipped_keys: set[str] = field(default_factory=set)
    done: bool = False


class ShipStationState(SandboxState):
    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        limits: bool,
        requests_per_minute: int,
        window_seconds: float,
        ship_after_seconds: float,
        partial_rate: float,
        void_rate: float,
        seed: int,
        clock: Callable[[], datetime],
        timezone: str,
    ) -> None:
        super().__init__(credentials={f"{api_key}:{api_secret}"})
        self.limits = limits
        self.requests_per_minute = requests_per_minute
        self.window_seconds = window_seconds
        self.ship_after = timedelta(seconds=ship_after_seconds)
        self.partial_rate = partial_rate
        self.void_rate = void_rate
        self.seed = seed
        self.clock = clock
        self.tz = ZoneInfo(timezone)
        self.orders: dict[int, Json] = {}
        self.order_ids_by_key: dict[str, int] = {}
        self.creates: dict[str, int] = {}
        self.updates: dict[str, int] = {}
        self.shipments: list[ShipmentRecord] = []
        self._tracks: dict[int, _OrderTrack] = {}
        self._events: list[tuple[datetime, int, int, str]] = []
        self._seq = 0
        self._next_order_id = 100_001
        self._next_shipment_id = 500_001
        self._windows: dict[str, Window] = {}

    # --- time ----------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def fmt(self, when: datetime) -> str:
        """ShipStation's timestamp style: naive local time with seven fractional digits."""
        return when.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"

    def parse_time(self, text: str) -> datetime:
        """A query parameter: naive values are local (Pacific) time, aware ones are honoured."""
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.astimezone(UTC)

    # --- rate limit ----------------------------------------------------------------------------
    def take_request(self, credential: str) -> RateDecision:
        limit = self.requests_per_minute
        if not self.limits:
            return RateDecision(True, limit, limit, math.ceil(self.window_seconds))
        ts = self.now().timestamp()
        index = math.floor(ts / self.window_seconds)
        reset = max(1, math.ceil((index + 1) * self.window_seconds - ts))
        with self.lock:
            window = self._windows.get(credential)
            if window is None or window.index != index:
                window = self._windows[credential] = Window(index, 0)
            if window.used >= limit:
                return RateDecision(False, limit, 0, reset)
            window.used += 1
            return RateDecision(True, limit, limit - window.used, reset)

    # --- orders --------------------------------------------------------------------------------
    def upsert_many(self, bodies: Iterable[Any]) -> list[tuple[Json | None, str | None]]:
        """Upsert each body; per body ``(order, None)`` or ``(None, error message)``."""
        now = self.now()
        stamp = self.fmt(now)
        out: list[tuple[Json | None, str | None]] = []
        with self.lock:
            for body in bodies:
                try:
                    out.append((self._upsert(body, now, stamp), None))
                except OrderInvalid as exc:
                    out.append((None, str(exc)))
        return out

    def upsert(self, body: Any) -> Json:
        """Upsert one body; raises :class:`OrderInvalid` with ShipStation's message."""
        now = self.now()
        with self.lock:
            return self._upsert(body, now, self.fmt(now))

    def _upsert(self, raw: Any, now: datetime, stamp: str) -> Json:
        validate_order(raw)
        body: Json = raw
        at = now.isoformat()  # the ledger speaks aware UTC like every sandbox; ``stamp`` is ShipStation's style
        order_id = body.get("orderId")
        key = body.get("orderKey")
        existing: Json | None = None
        if order_id is not None:
            existing = self.orders.get(order_id) if isinstance(order_id, int) else None
            if existing is None:
                raise OrderInvalid(f"Order with orderId {order_id} was not found.")
        elif key:
            found = self.order_ids_by_key.get(key)
            existing = self.orders.get(found) if found is not None else None
        if existing is not None:
            order_id = existing["orderId"]
            key = existing["orderKey"]
            body["orderId"] = order_id
            body["orderKey"] = key
            body["createDate"] = existing["createDate"]
            body["modifyDate"] = stamp
            track = self._tracks.get(order_id)
            if track is not None and track.done:
                body["orderStatus"] = "shipped"  # the warehouse's truth wins over a late update
            self.orders[order_id] = body
            self.updates[key] = self.updates.get(key, 0) + 1
            self.ledger.append(LedgerEntry(at, "order_updated", key, {"orderId": order_id}))
        else:
            order_id = self._next_order_id
            self._next_order_id += 1
            if not key:
                key = f"{self.seed:08x}{order_id:024x}"
            body["orderId"] = order_id
            body["orderKey"] = key
            body["createDate"] = stamp
            body["modifyDate"] = stamp
            self.orders[order_id] = body
            self.order_ids_by_key[key] = order_id
            self.creates[key] = 1
            self.ledger.append(
                LedgerEntry(at, "order_created", key, {"orderId": order_id, "orderNumber": body["orderNumber"]})
            )
        if body["orderStatus"] == "awaiting_shipment" and order_id not in self._tracks:
            self._tracks[order_id] = _OrderTrack(now)
            self._schedule(now + self.ship_after, order_id, "ship")
        return body

    def orders_by_key(self) -> dict[str, Json]:
        with self.lock:
            return {order["orderKey"]: order for order in self.orders.values()}

    def order_by_key(self, order_key: str) -> Json | None:
        with self.lock:
            order_id = self.order_ids_by_key.get(order_key)
            return self.orders.get(order_id) if order_id is not None else None

    def create_count(self, order_key: str) -> int:
        with self.lock:
            return self.creates.get(order_key, 0)

    def update_count(self, order_key: str) -> int:
        with self.lock:
            return self.updates.get(order_key, 0)

    def order_summaries(self) -> list[Json]:
        with self.lock:
            return [
                {
                    "orderId": o["orderId"],
                    "orderKey": o["orderKey"],
                    "orderNumber": o["orderNumber"],
                    "orderStatus": o["orderStatus"],
                    "creates": self.creates.get(o["orderKey"], 0),
                    "updates": self.updates.get(o["orderKey"], 0),
                }
                for o in self.orders.values()
            ]

    # --- warehouse -----------------------------------------------------------------------------
    def _schedule(self, due: datetime, order_id: int, stage: str) -> None:
        self._seq += 1
        heapq.heappush(self._events, (due, self._seq, order_id, stage))

    def ship_due(self) -> list[Json]:
        """Apply every warehouse event due by now; return the shipments created."""
        now = self.now()
        with self.lock:
            start = len(self.shipments)
            while self._events and self._events[0][0] <= now:
                due, _, order_id, stage = heapq.heappop(self._events)
                self._apply(order_id, stage, due)
            return [r.doc for r in self.shipments[start:]]

    def ship_all_now(self) -> list[Json]:
        """Apply every pending event at once (follow-ups too): events not yet due happen now."""
        now = self.now()
        with self.lock:
            start = len(self.shipments)
            while self._events:
                due, _, order_id, stage = heapq.heappop(self._events)
                self._apply(order_id, stage, min(due, now), follow_up_at=now)
            return [r.doc for r in self.shipments[start:]]

    def ship_now(
        self,
        order_key: str,
        *,
        tracking_number: Any = KEEP,
        carrier_code: Any = KEEP,
        service_code: Any = KEEP,
    ) -> list[Json]:
        """Ship every not-yet-shipped line of one order now, in one shipment, with overrides.

        Pass ``tracking_number=None`` or ``carrier_code=None`` to get the incomplete shipments the
        hub must hold rather than push.
        """
        self.ship_due()
        now = self.now()
        with self.lock:
            order_id = self.order_ids_by_key.get(order_key)
            if order_id is None:
                raise KeyError(f"no order with orderKey {order_key!r}")
            track = self._tracks.setdefault(order_id, _OrderTrack(now))
            if track.done:
                return []
            order = self.orders[order_id]
            lines = [i for i in _items(order) if _line_key(i) not in track.shipped_keys]
            record = self._ship(order, lines, now, track)
            overrides = {
                "trackingNumber": tracking_number,
                "carrierCode": carrier_code,
                "serviceCode": service_code,
            }
            record.doc.update({k: v for k, v in overrides.items() if v is not KEEP})
            self._finish(order, track)
            return [record.doc]

    def _apply(self, order_id: int, stage: str, at: datetime, follow_up_at: datetime | None = None) -> None:
        track = self._tracks[order_id]
        order = self.orders[order_id]
        if track.done:
            return
        if order.get("orderStatus") not in ("awaiting_shipment", "pending_fulfillment"):
            track.done = True  # cancelled / on hold / unpaid orders do not leave the warehouse
            return
        items = _items(order)
        follow_up = follow_up_at if follow_up_at is not None else at + self.ship_after
        if stage == "ship":
            key = order["orderKey"]
            if len(items) > 1 and self._chance("partial", key) < self.partial_rate:
                self._ship(order, items[: len(items) // 2], at, track)
                self._schedule(follow_up, order_id, "ship_rest")
                return
            if self._chance("void", key) < self.void_rate:
                self._ship(order, items, at, track)
                self._schedule(follow_up, order_id, "void_reship")
                return
            self._ship(order, items, at, track)
        elif stage == "ship_rest":
            self._ship(order, [i for i in items if _line_key(i) not in track.shipped_keys], at, track)
        elif stage == "void_reship":
            for record in self.shipments:
                if record.doc["orderId"] == order_id and not record.doc["voided"]:
                    record.doc["voided"] = True
                    record.doc["voidDate"] = self.fmt(at)
            self._ship(order, items, at, track)
        self._finish(order, track)

    def _finish(self, order: Json, track: _OrderTrack) -> None:
        track.done = True
        order["orderStatus"] = "shipped"
        order["shipDate"] = self.shipments[-1].doc["shipDate"] if self.shipments else None

    def _chance(self, kind: str, key: str) -> float:
        digest = hashlib.blake2b(f"{self.seed}:{kind}:{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def _ship(self, order: Json, items: list[Json], at: datetime, track: _OrderTrack) -> ShipmentRecord:
        shipment_id = self._next_shipment_id
        self._next_shipment_id += 1
        carrier = order.get("carrierCode") or DEFAULT_CARRIER
        service = order.get("serviceCode") or (DEFAULT_SERVICE if carrier == DEFAULT_CARRIER else None)
        if carrier == "ups":
            tracking = f"1Z{self.seed % 1000:03d}E{shipment_id:012d}"
        else:
            tracking = f"9400{self.seed % 10000:04d}{shipment_id:014d}"
        shipment_items = [
            {
                "orderItemId": None,
                "lineItemKey": item.get("lineItemKey"),
                "sku": item.get("sku"),
                "name": item.get("name"),
                "quantity": item.get("quantity", 0),
                "unitPrice": item.get("unitPrice"),
            }
            for item in items
        ]
        for item in items:
            track.shipped_keys.add(_line_key(item))
        doc: Json = {
            "shipmentId": shipment_id,
            "orderId": order["orderId"],
            "orderKey": order["orderKey"],
            "userId": None,
            "customerEmail": order.get("customerEmail"),
            "orderNumber": order["orderNumber"],
            "createDate": self.fmt(at),
            "shipDate": at.astimezone(self.tz).date().isoformat(),
            "shipmentCost": 0,
            "insuranceCost": 0,
            "trackingNumber": tracking,
            "isReturnLabel": False,
            "batchNumber": None,
            "carrierCode": carrier,
            "serviceCode": service,
            "packageCode": "package",
            "confirmation": "none",
            "warehouseId": None,
            "voided": False,
            "voidDate": None,
            "marketplaceNotified": False,
            "notifyErrorMessage": None,
            "shipTo": order.get("shipTo"),
            "shipmentItems": shipment_items,
        }
        record = ShipmentRecord(at, at, doc)
        self.shipments.append(record)
        return record

    def list_shipments(
        self,
        *,
        order_number: str | None = None,
        order_id: int | None = None,
        create_start: datetime | None = None,
        create_end: datetime | None = None,
        ship_start: datetime | None = None,
        ship_end: datetime | None = None,
        descending: bool = False,
    ) -> list[Json]:
        """Shipments matching the filters (inclusive bounds), by ``createDate`` then id."""
        self.ship_due()
        with self.lock:
            found = [
                r
                for r in self.shipments
                if (order_number is None or r.doc["orderNumber"] == order_number)
                and (order_id is None or r.doc["orderId"] == order_id)
                and (create_start is None or r.created >= create_start)
                and (create_end is None or r.created <= create_end)
                and (ship_start is None or r.shipped >= ship_start)
                and (ship_end is None or r.shipped <= ship_end)
            ]
            found.sort(key=lambda r: (r.created, r.doc["shipmentId"]), reverse=descending)
            return [r.doc for r in found]

    def all_shipments(self) -> list[Json]:
        return self.list_shipments()

    def control_extra(self) -> dict[str, Any]:
        with self.lock:
            return {
                "orders": len(self.orders),
                "shipments": len(self.shipments),
                "pending_warehouse_events": len(self._events),
            }


def validate_order(body: Any) -> None:
    """Refuse what ShipStation refuses, with its wording (``The X field is required.``)."""
    if not isinstance(body, dict):
        raise OrderInvalid("The request is invalid: an order must be a JSON object.")
    number = body.get("orderNumber")
    if not isinstance(number, str) or not number.strip():
        raise OrderInvalid("The orderNumber field is required.")
    date = body.get("orderDate")
    if not isinstance(date, str) or not date:
        raise OrderInvalid("The orderDate field is required.")
    try:
        datetime.fromisoformat(date.replace("Z", "+00:00"))
    except ValueError:
        raise OrderInvalid(f"The value '{date}' is not valid for orderDate.") from None
    status = body.get("orderStatus")
    if status not in ORDER_STATUSES:
        if not status:
            raise OrderInvalid("The orderStatus field is required.")
        raise OrderInvalid(f"Invalid orderStatus '{status}'. Valid values: {', '.join(sorted(ORDER_STATUSES))}.")
    for name in ("billTo", "shipTo"):
        if not isinstance(body.get(name), dict):
            raise OrderInvalid(f"The {name} field is required.")
    key = body.get("orderKey")
    if key is not None and not isinstance(key, str):
        raise OrderInvalid("The value for orderKey is not valid.")
    items = body.get("items")
    if items is not None:
        if not isinstance(items, list):
            raise OrderInvalid("The value for items is not valid.")
        for item in items:
            if not isinstance(item, dict):
                raise OrderInvalid("The value for items is not valid.")
            quantity = item.get("quantity", 0)
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                raise OrderInvalid(f"The value '{quantity}' is not valid for quantity.")


#: ShipStation's field lengths (decision 47), by path: ``[]`` is each element of a list
_ADDRESS_LENGTHS = {
    "name": 100,
    "company": 100,
    "street1": 100,
    "street2": 100,
    "street3": 100,
    "city": 100,
    "state": 100,
    "postalCode": 50,
    "country": 2,
    "phone": 50,
}
MAX_LENGTHS: dict[str, int] = {
    "orderNumber": 50,
    "orderKey": 50,
    "customerUsername": 50,
    "customerEmail": 254,
    **{f"shipTo.{k}": v for k, v in _ADDRESS_LENGTHS.items()},
    **{f"billTo.{k}": v for k, v in _ADDRESS_LENGTHS.items()},
    "items[].lineItemKey": 50,
    "items[].sku": 100,
    "items[].name": 200,
    "items[].options[].name": 100,
    "items[].options[].value": 255,
    "customerNotes": 1000,
    "internalNotes": 1000,
    "giftMessage": 1000,
    "requestedShippingService": 100,
    "carrierCode": 50,
    "serviceCode": 50,
}


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _grouped() -> list[tuple[list[str], list[tuple[str, int]]]]:
    groups: dict[str, list[tuple[str, int]]] = {}
    for path, limit in MAX_LENGTHS.items():
        container, _, key = path.rpartition(".")
        groups.setdefault(container, []).append((key, limit))
    return [(container.split(".") if container else [], keys) for container, keys in groups.items()]


#: the limits by the object they sit in, so a body is walked once per object (the hot path)
_BY_CONTAINER = _grouped()


def _objects_at(node: Any, path: list[str], where: str) -> Iterable[tuple[Json, str]]:
    if not isinstance(node, dict):
        return
    if not path:
        yield node, where
        return
    step = path[0]
    name = step.removesuffix("[]")
    value = node.get(name)
    here = f"{where}.{name}"
    if step.endswith("[]"):
        for i, element in enumerate(value if isinstance(value, list) else ()):
            yield from _objects_at(element, path[1:], f"{here}[{i}]")
    else:
        yield from _objects_at(value, path[1:], here)


def length_errors(body: Any, prefix: str) -> dict[str, list[str]]:
    """ASP.NET's ``ModelState`` for the strings of ``body`` over their length (empty: none)."""
    errors: dict[str, list[str]] = {}
    for container, keys in _BY_CONTAINER:
        for obj, where in _objects_at(body, container, prefix):
            for key, limit in keys:
                text = obj.get(key)
                if type(text) is str and len(text) > limit // 2 and _units(text) > limit:
                    errors[f"{where}.{key}"] = [f"The field {key} must be a string with a maximum length of {limit}."]
    return errors


def _items(order: Json) -> list[Json]:
    items = order.get("items") or []
    return [i for i in items if i.get("quantity", 0) > 0]


def _line_key(item: Json) -> str:
    return str(item.get("lineItemKey") or item.get("sku") or id(item))
