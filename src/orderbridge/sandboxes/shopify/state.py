"""The Shopify sandbox's state: the store's orders with their indexes, rate buckets and bulk ops.

Orders are :class:`~.generator.OrderSeed` records indexed three ways (id, created, updated) as
sorted lists, so keyset pagination on any sort is a ``bisect`` plus a short scan, whatever the
store size. A changed order keeps its full REST dict on ``seed.overlay`` and its filter facts on
the seed; serialised REST JSON is cached per order and dropped on change.

Both of Shopify's limits are modelled on an injectable monotonic clock (``state.monotonic``) so
tests can make time pass without sleeping: the REST leaky bucket (size 40, leak 2/4/20 per second
by plan) and the GraphQL cost bucket (1,000 points, restore 100/200/1,000 per second by plan).

Webhooks: every write that Shopify would announce fires its topics through the store's
:class:`~.webhooks.WebhookDispatcher` *while the lock is held*, so events queue in the order the
writes happened and each payload is the order's REST JSON at that moment (the cached bytes are
immutable; the next change builds new ones). Which writes fire what:

- ``add_order``: ``orders/create``, then ``orders/paid`` when it is created paid;
- ``update_order``: ``orders/cancelled`` when ``cancelled_at`` becomes set, ``orders/paid`` when
  ``financial_status`` becomes ``paid``, ``orders/fulfilled``/``orders/partially_fulfilled`` when
  ``fulfillment_status`` becomes that, then ``orders/updated``;
- ``create_fulfillment``: ``orders/fulfilled`` or ``orders/partially_fulfilled``, then
  ``orders/updated``; ``update_tracking``: ``orders/updated``.

The specific topic comes first and the catch-all ``orders/updated`` last. When nobody subscribes
to a topic nothing is built, so the webhook machinery costs the store nothing until it is used.
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from orderbridge.sandboxes.base import SandboxState
from orderbridge.sandboxes.shopify.generator import (
    CENT,
    FIRST_NUMBER,
    FIRST_ORDER_ID,
    SHOP_TZ,
    OrderSeed,
    expand,
    generate,
    hash_sku,
    make_seed,
)
from orderbridge.sandboxes.shopify.nodes import order_node, utc_iso
from orderbridge.sandboxes.shopify.webhooks import WebhookDispatcher

try:  # orjson is ~5x faster; fall back to the standard library when it is absent
    import orjson

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


PLANS: dict[str, tuple[float, float]] = {
    # plan: (REST leak per second, GraphQL restore points per second)
    "standard": (2.0, 100.0),
    "advanced": (4.0, 200.0),
    "plus": (20.0, 1000.0),
    "enterprise": (20.0, 2000.0),
}
REST_BUCKET = 40
GRAPHQL_MAX_AVAILABLE = 1000.0
_REST_CACHE_MAX = 60_000


def epoch(value: str | None) -> int | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def local_iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, SHOP_TZ).isoformat()


#: statuses in which a bulk query holds the shop's one slot (a new run is refused)
BULK_BUSY = frozenset({"CREATED", "RUNNING", "CANCELING"})


@dataclass
class BulkOperation:
    """One bulk query. It belongs to the store, not to the request that started it: its status is a
    function of the sandbox's clock (see :meth:`ShopifyState.bulk_due`), so an operation whose
    requester died goes on running and completes on time, as on Shopify."""

    id: int
    query: str
    created_at: str
    status: str = "CREATED"
    completed_at: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    url: str | None = None
    file_size: int | None = None
    error_code: str | None = None
    #: the sandbox's address as the starting request saw it (the result URL is served there)
    base_url: str = ""
    #: ``state.monotonic()`` when it was created, when cancelling began, when it completed
    started: float = 0.0
    canceling_since: float | None = None
    finished: float | None = None

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.id}"

    def node(self) -> dict[str, Any]:
        return {
            "id": self.gid,
            "status": self.status,
            "errorCode": self.error_code,
            "objectCount": str(self.object_count),
            "rootObjectCount": str(self.root_object_count),
            "fileSize": None if self.file_size is None else str(self.file_size),
            "url": self.url,
            "partialDataUrl": None,
            "createdAt": self.created_at,
            "completedAt": self.completed_at,
            "query": self.query,
            "type": "QUERY",
        }


class Predicate:
    """Filter facts on a seed: ranges on timestamps and id, status and statuses."""

    def __init__(self) -> None:
        self.ids: set[int] | None = None
        self.min_id: int | None = None
        self.created: tuple[float, float] = (-math.inf, math.inf)
        self.updated: tuple[float, float] = (-math.inf, math.inf)
        self.status = "any"
        self.financial: set[str] | None = None
        self.fulfillment: set[str | None] | None = None
        self.test: bool | None = None
        self.number: int | None = None

    def __call__(self, s: OrderSeed) -> bool:
        if self.ids is not None and s.id not in self.ids:
            return False
        if self.min_id is not None and s.id <= self.min_id:
            return False
        if not (self.created[0] <= s.created <= self.created[1]):
            return False
        if not (self.updated[0] <= s.updated <= self.updated[1]):
            return False
        st = self.status
        if st == "open" and (s.closed or s.cancelled):
            return False
        if st == "closed" and not s.closed:
            return False
        if st == "cancelled" and not s.cancelled:
            return False
        if self.financial is not None and s.financial not in self.financial:
            return False
        if self.fulfillment is not None and s.fulfillment not in self.fulfillment:
            return False
        if self.test is not None and s.test != self.test:
            return False
        return self.number is None or s.number == self.number


FULFILLMENT_FILTERS: dict[str, set[str | None] | None] = {
    "shipped": {"fulfilled"},
    "fulfilled": {"fulfilled"},
    "partial": {"partial"},
    "unshipped": {None},
    "unfulfilled": {None, "partial"},
    "any": None,
}
_FULFILMENT_TOPICS = {"fulfilled": "orders/fulfilled", "partial": "orders/partially_fulfilled"}
FINANCIAL_FILTERS: dict[str, set[str] | None] = {
    "unpaid": {"pending", "authorized", "partially_paid"},
    "any": None,
}


class ShopifyState(SandboxState):
    """One Shopify store: orders, fulfilments, bulk operations and both rate limits."""

    def __init__(
        self,
        *,
        orders: int = 0,
        seed: int = 1,
        realistic: bool = True,
        lines_per_order: int | None = None,
        limits: bool = True,
        plan: str = "standard",
        access_token: str = "shpat_sandbox",
        maximum_available: float = GRAPHQL_MAX_AVAILABLE,
        restore_rate: float | None = None,
        rest_leak_rate: float | None = None,
        max_query_cost: int = 1000,
        bulk_seconds: float = 0.05,
        bulk_cancel_seconds: float = 0.05,
        shop_name: str = "OrderBridge Sandbox Store",
        now: datetime | None = None,
        api_secret: str = "shpss_sandbox",
        webhook_retry_scale: float = 1.0,
        webhook_drop_rate: float = 0.0,
    ) -> None:
        super().__init__(credentials={access_token})
        if plan not in PLANS:
            raise ValueError(f"unknown plan {plan!r}; known: {', '.join(PLANS)}")
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.monotonic: Callable[[], float] = time.monotonic
        self.limits = limits
        self.plan = plan
        leak, restore = PLANS[plan]
        self.rest_leak_rate = rest_leak_rate or leak
        self.restore_rate = restore_rate or restore
        self.maximum_available = maximum_available
        self.max_query_cost = max_query_cost
        self.shop_name = shop_name
        self.lines_per_order = lines_per_order
        self.seed = seed
        self.rng = random.Random(seed * 7919 + 1)
        self.api_secret = api_secret
        #: subscriptions and deliveries; its sender threads start with the first subscription
        self.webhook_dispatcher = WebhookDispatcher(
            self, secret=api_secret, seed=seed, retry_scale=webhook_retry_scale, drop_rate=webhook_drop_rate
        )
        self._points = maximum_available
        self._points_at = self.monotonic()
        self._rest_level = 0.0
        self._rest_at = self.monotonic()
        #: how long a bulk query runs, and how long a cancelled one stays CANCELING (state.monotonic)
        self.bulk_seconds = bulk_seconds
        self.bulk_cancel_seconds = bulk_cancel_seconds
        #: a COMPLETED operation's URL expires after this long (Shopify: a week), status EXPIRED
        self.bulk_expire_seconds = 7 * 24 * 3600.0
        #: the app's current bulk operation (what ``currentBulkOperation`` answers), and every one by id
        self.bulk: BulkOperation | None = None
        self.bulk_operations: dict[int, BulkOperation] = {}
        self.bulk_results: dict[int, bytes] = {}
        self._next_bulk = 1
        self._next_fulfillment = 4_100_000_000
        self.orders: dict[int, OrderSeed] = {}
        self._ids: list[int] = []
        self._by_created: list[tuple[int, int]] = []
        self._by_updated: list[tuple[int, int]] = []
        self._rest_cache: dict[int, bytes] = {}
        self._node_cache: dict[int, dict[str, Any]] = {}
        #: per bulk query text: each order's JSONL block (its line and its children's), as bytes
        self._bulk_cache: dict[str, dict[int, bytes]] = {}
        seeds = generate(
            orders, seed=seed, lines_per_order=lines_per_order, realistic=realistic, now=now or self.clock()
        )
        for s in seeds:
            self.orders[s.id] = s
        self._ids = list(self.orders)
        self._by_created = sorted((s.created, s.id) for s in seeds)
        self._by_updated = sorted((s.updated, s.id) for s in seeds)

    # --- reading ---------------------------------------------------------------------------------
    def order(self, order_id: int) -> dict[str, Any] | None:
        s = self.orders.get(order_id)
        return None if s is None else expand(s)

    def rest_json(self, order_id: int) -> bytes:
        cached = self._rest_cache.get(order_id)
        if cached is None:
            cached = dumps(expand(self.orders[order_id]))
            if len(self._rest_cache) >= _REST_CACHE_MAX:
                self._rest_cache.pop(next(iter(self._rest_cache)))
            self._rest_cache[order_id] = cached
        return cached

    def node(self, order_id: int) -> dict[str, Any] | None:
        """The GraphQL ``Order`` node dict (cached until the order changes)."""
        cached = self._node_cache.get(order_id)
        if cached is None:
            s = self.orders.get(order_id)
            if s is None:
                return None
            cached = order_node(expand(s))
            if len(self._node_cache) >= _REST_CACHE_MAX:
                self._node_cache.pop(next(iter(self._node_cache)))
            self._node_cache[order_id] = cached
        return cached

    def bulk_block(self, query: str, order_id: int, build: Callable[[dict[str, Any]], bytes]) -> bytes:
        """The order's JSONL block for bulk ``query`` (``build`` from its node), cached until it changes.

        Bytes are not tracked by the garbage collector, so a warm store of any size costs the
        sandbox's collector nothing; a repeated export is a join. The node itself is built without
        entering the node cache (a whole-store export would otherwise fill it with dicts)."""
        blocks = self._bulk_cache.get(query)
        if blocks is None:
            if len(self._bulk_cache) >= 8:  # a handful of distinct bulk queries at most
                self._bulk_cache.pop(next(iter(self._bulk_cache)))
            blocks = self._bulk_cache[query] = {}
        block = blocks.get(order_id)
        if block is None:
            node = self._node_cache.get(order_id) or order_node(expand(self.orders[order_id]))
            block = blocks[order_id] = build(node)
        return block

    def stamp_node(self, s: OrderSeed) -> dict[str, Any]:
        """The cheap fields of an ``Order`` node, built from the seed without expanding the order.

        Used when a query selects nothing else (an audit's id/updated-at listing): expanding and
        converting 100,000 orders costs seconds, reading four facts off the seed microseconds.
        Values are identical to :meth:`node`'s (a test holds them to it).
        """
        o = s.overlay
        oid: Any = s.id
        if o is not None:
            created, updated, name = utc_iso(o.get("created_at")), utc_iso(o.get("updated_at")), o.get("name")
            oid = o.get("id")  # as node() serves it (a test may store an order without an id)
        else:
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.created))
            updated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.updated))
            name = f"#{s.number}"
        return {
            "id": f"gid://shopify/Order/{oid}",
            "legacyResourceId": str(oid),
            "name": name,
            "createdAt": created,
            "updatedAt": updated,
        }

    def now_epoch(self) -> int:
        return int(self.clock().timestamp())

    def scan(
        self,
        sort: str,
        descending: bool,
        predicate: Predicate | None,
        after: tuple[int, int] | None = None,
    ) -> Iterator[tuple[tuple[int, int], OrderSeed]]:
        """Seeds matching ``predicate`` in sort order, strictly after the key ``after``."""
        index: list[tuple[int, int]] | list[int]
        if sort == "updated":
            index = self._by_updated
        elif sort == "created":
            index = self._by_created
        else:
            index = self._ids
        keyed = sort in ("updated", "created")
        lo_bound = None
        if predicate is not None and not descending and after is None:
            bound = predicate.updated[0] if sort == "updated" else predicate.created[0] if sort == "created" else None
            if bound is not None and bound != -math.inf:
                lo_bound = (math.ceil(bound), -1)
        if after is not None:
            probe: Any = after if keyed else after[1]
            pos = bisect.bisect_right(index, probe) if not descending else bisect.bisect_left(index, probe) - 1
        elif lo_bound is not None:
            pos = bisect.bisect_left(index, lo_bound)
        else:
            pos = len(index) - 1 if descending else 0
        step = -1 if descending else 1
        orders = self.orders
        n = len(index)
        while 0 <= pos < n:
            entry = index[pos]
            key: tuple[int, int] = entry if keyed else (entry, entry)  # type: ignore[assignment]
            pos += step
            seed = orders[key[1]]
            if predicate is not None:
                if not descending and sort == "updated" and key[0] > predicate.updated[1]:
                    return
                if not predicate(seed):
                    continue
            yield key, seed

    @staticmethod
    def encode_key(key: tuple[int, int]) -> str:
        return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode()

    @staticmethod
    def decode_key(token: str) -> tuple[int, int]:
        a, _, b = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return int(a), int(b)

    # --- writing ---------------------------------------------------------------------------------
    def _reindex(self, s: OrderSeed, old_created: int, old_updated: int) -> None:
        for index, old, new in (
            (self._by_created, old_created, s.created),
            (self._by_updated, old_updated, s.updated),
        ):
            if old != new:
                pos = bisect.bisect_left(index, (old, s.id))
                if pos < len(index) and index[pos] == (old, s.id):
                    del index[pos]
                bisect.insort(index, (new, s.id))
        self._rest_cache.pop(s.id, None)
        self._node_cache.pop(s.id, None)
        for blocks in self._bulk_cache.values():
            blocks.pop(s.id, None)

    def _sync(self, s: OrderSeed, old_created: int, old_updated: int) -> None:
        o = s.overlay
        assert o is not None
        s.created = epoch(o.get("created_at")) or s.created
        s.updated = epoch(o.get("updated_at")) or s.updated
        s.financial = o.get("financial_status") or "pending"
        s.fulfillment = o.get("fulfillment_status")
        s.closed = o.get("closed_at") is not None
        s.cancelled = o.get("cancelled_at") is not None
        s.test = bool(o.get("test"))
        self._reindex(s, old_created, old_updated)

    def add_order(self, **overrides: Any) -> dict[str, Any]:
        """Create an order now (paid, unfulfilled, "Standard"), with REST-shaped overrides."""
        with self.lock:
            order_id = (self._ids[-1] + 1) if self._ids else FIRST_ORDER_ID
            number = max((s.number for s in self._tail()), default=FIRST_NUMBER - 1) + 1
            now = self.now_epoch()
            s = make_seed(
                self.rng,
                order_id,
                number,
                now,
                now,
                lines_per_order=self.lines_per_order or 2,
                realistic=False,
            )
            s.overlay = expand(s)
            self.orders[order_id] = s
            self._ids.append(order_id)
            bisect.insort(self._by_created, (s.created, order_id))
            bisect.insort(self._by_updated, (s.updated, order_id))
            _apply(s.overlay, overrides)
            self._sync(s, s.created, s.updated)
            self.record("order_created", str(order_id))
            self._emit("orders/create", order_id)
            if s.financial == "paid":
                self._emit("orders/paid", order_id)
            return s.overlay

    def _tail(self) -> list[OrderSeed]:
        return [self.orders[i] for i in self._ids[-50:]]

    def update_order(self, order_id: int, **changes: Any) -> dict[str, Any]:
        """Apply REST-shaped changes and bump ``updated_at`` (unless it is among the changes)."""
        with self.lock:
            s = self.orders.get(order_id)
            if s is None:
                raise KeyError(f"no order {order_id}")
            old_created, old_updated = s.created, s.updated
            was = (s.cancelled, s.financial, s.fulfillment)
            if s.overlay is None:
                s.overlay = expand(s)
            changes.setdefault("updated_at", local_iso(max(self.now_epoch(), s.updated)))
            _apply(s.overlay, changes)
            self._sync(s, old_created, old_updated)
            if s.cancelled and not was[0]:
                self._emit("orders/cancelled", order_id)
            if s.financial == "paid" and was[1] != "paid":
                self._emit("orders/paid", order_id)
            if s.fulfillment != was[2] and s.fulfillment in _FULFILMENT_TOPICS:
                self._emit(_FULFILMENT_TOPICS[s.fulfillment], order_id)
            self._emit("orders/updated", order_id)
            return s.overlay

    def delete_order(self, order_id: int) -> None:
        """Delete an order, as a merchant does in the admin: it leaves every listing, count, export and
        lookup, and ``orders/delete`` subscribers get Shopify's payload for it, ``{"id": …}``."""
        with self.lock:
            s = self.orders.pop(order_id, None)
            if s is None:
                raise KeyError(f"no order {order_id}")
            self._ids.remove(order_id)
            for index, key in ((self._by_created, (s.created, order_id)), (self._by_updated, (s.updated, order_id))):
                pos = bisect.bisect_left(index, key)
                if pos < len(index) and index[pos] == key:
                    del index[pos]
            self._rest_cache.pop(order_id, None)
            self._node_cache.pop(order_id, None)
            for blocks in self._bulk_cache.values():
                blocks.pop(order_id, None)
            self.record("order_deleted", str(order_id))
            dispatcher = self.webhook_dispatcher
            if dispatcher.has_subscribers("orders/delete"):
                dispatcher.publish("orders/delete", order_id, dumps({"id": order_id}), self.clock())

    def fulfillments(self, order_id: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for e in self.entries("fulfillment"):
                if order_id is None or e.key == str(order_id):
                    out.append(self.fulfillment(int(e.data["fulfillment_id"])) or {})
            return out

    def fulfillment(self, fulfillment_id: int) -> dict[str, Any] | None:
        with self.lock:
            for e in self.entries("fulfillment"):
                if e.data["fulfillment_id"] == fulfillment_id:
                    order = self.order(int(e.key)) or {}
                    for f in order.get("fulfillments", []):
                        if f["id"] == fulfillment_id:
                            return dict(f)
            return None

    def create_fulfillment(
        self,
        by_fulfillment_order: list[dict[str, Any]],
        tracking: dict[str, Any] | None,
        notify_customer: bool = False,
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Shopify's ``fulfillmentCreate``: returns (REST fulfillment, userErrors)."""
        with self.lock:
            if not by_fulfillment_order:
                return None, [_user_error(["fulfillment", "lineItemsByFulfillmentOrder"], "must not be empty")]
            order_ids = {_gid_number(g.get("fulfillmentOrderId")) for g in by_fulfillment_order}
            if len(order_ids) != 1 or None in order_ids:
                return None, [_user_error(["fulfillment"], "All fulfillment orders must belong to the same order.")]
            order_id = order_ids.pop()
            assert order_id is not None
            s = self.orders.get(order_id)
            if s is None:
                return None, [
                    _user_error(
                        ["fulfillment", "lineItemsByFulfillmentOrder", "0", "fulfillmentOrderId"],
                        "Fulfillment order does not exist.",
                    )
                ]
            order = expand(s)
            if order.get("cancelled_at"):
                return None, [_user_error(["fulfillment"], "Fulfillment order is cancelled and cannot be fulfilled.")]
            lines = {li["id"]: li for li in order.get("line_items", [])}
            wanted: dict[int, int] = {}
            for group in by_fulfillment_order:
                items = group.get("fulfillmentOrderLineItems")
                if items is None:  # whole fulfillment order
                    for li in lines.values():
                        if li.get("fulfillable_quantity", 0) > 0:
                            wanted[li["id"]] = wanted.get(li["id"], 0) + li["fulfillable_quantity"]
                    continue
                for item in items:
                    line_id = _gid_number(item.get("id"))
                    if line_id is None or line_id not in lines:
                        return None, [
                            _user_error(["fulfillment"], f"Invalid fulfillment order line item id: {item.get('id')}.")
                        ]
                    wanted[line_id] = wanted.get(line_id, 0) + int(item.get("quantity", 0))
            if not wanted:
                return None, [_user_error(["fulfillment"], "Fulfillment order has no remaining quantity to fulfill.")]
            for line_id, qty in wanted.items():
                remaining = lines[line_id].get("fulfillable_quantity", 0)
                if qty <= 0 or qty > remaining:
                    return None, [
                        _user_error(
                            ["fulfillment"],
                            f"Invalid quantity {qty} for fulfillment order line item {line_id}: "
                            f"{remaining} remaining to fulfill.",
                        )
                    ]
            old_created, old_updated = s.created, s.updated
            if s.overlay is None:
                s.overlay = order
            order = s.overlay
            now = local_iso(max(self.now_epoch(), s.updated))
            for li in order["line_items"]:
                if li["id"] in wanted:
                    li["fulfillable_quantity"] -= wanted[li["id"]]
                    li["fulfillment_status"] = "fulfilled" if li["fulfillable_quantity"] == 0 else "partial"
            remaining_total = sum(li.get("fulfillable_quantity", 0) for li in order["line_items"])
            order["fulfillment_status"] = "fulfilled" if remaining_total == 0 else "partial"
            order["updated_at"] = now
            self._next_fulfillment += 1
            fid = self._next_fulfillment
            tracking = tracking or {}
            numbers = list(tracking.get("numbers") or ([tracking["number"]] if tracking.get("number") else []))
            urls = list(tracking.get("urls") or ([tracking["url"]] if tracking.get("url") else []))
            fulfillment = {
                "id": fid,
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fid}",
                "order_id": order_id,
                "status": "success",
                "created_at": now,
                "updated_at": now,
                "tracking_company": tracking.get("company"),
                "tracking_number": numbers[0] if numbers else None,
                "tracking_numbers": numbers,
                "tracking_url": urls[0] if urls else None,
                "tracking_urls": urls,
                "notify_customer": bool(notify_customer),
                "line_items": [{"id": lid, "quantity": q} for lid, q in wanted.items()],
            }
            order.setdefault("fulfillments", []).append(fulfillment)
            self._sync(s, old_created, old_updated)
            self.record(
                "fulfillment",
                str(order_id),
                fulfillment_id=fid,
                tracking_number=fulfillment["tracking_number"],
                company=fulfillment["tracking_company"],
                lines={str(k): v for k, v in wanted.items()},
            )
            self._emit(_FULFILMENT_TOPICS[order["fulfillment_status"]], order_id)
            self._emit("orders/updated", order_id)
            return dict(fulfillment), []

    def update_tracking(
        self, fulfillment_id: int | None, tracking: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        with self.lock:
            for e in self.entries("fulfillment"):
                if e.data["fulfillment_id"] == fulfillment_id:
                    s = self.orders[int(e.key)]
                    old_created, old_updated = s.created, s.updated
                    if s.overlay is None:  # pragma: no cover - fulfilled orders always have one
                        s.overlay = expand(s)
                    now = local_iso(max(self.now_epoch(), s.updated))
                    for f in s.overlay.get("fulfillments", []):
                        if f["id"] == fulfillment_id:
                            numbers = list(tracking.get("numbers") or [tracking.get("number")])
                            f["tracking_number"], f["tracking_numbers"] = numbers[0], numbers
                            f["tracking_company"] = tracking.get("company") or f.get("tracking_company")
                            f["tracking_url"] = tracking.get("url")
                            f["tracking_urls"] = [tracking["url"]] if tracking.get("url") else []
                            f["updated_at"] = now
                            s.overlay["updated_at"] = now
                            self._sync(s, old_created, old_updated)
                            self.record(
                                "tracking_update",
                                str(fulfillment_id),
                                tracking_number=numbers[0],
                                company=f["tracking_company"],
                            )
                            self._emit("orders/updated", s.id)
                            return dict(f), []
            return None, [_user_error(["fulfillmentId"], "Fulfillment does not exist.")]

    # --- limits ----------------------------------------------------------------------------------
    def take_points(self, requested: int) -> tuple[bool, dict[str, float]]:
        """Take ``requested`` GraphQL points if available; return (taken, throttleStatus)."""
        with self.lock:
            now = self.monotonic()
            self._points = min(
                self.maximum_available, self._points + max(0.0, now - self._points_at) * self.restore_rate
            )
            self._points_at = now
            ok = not self.limits or requested <= self._points
            if ok and self.limits:
                self._points -= requested
            return ok, self.throttle_status()

    def refund_points(self, points: int) -> dict[str, float]:
        with self.lock:
            if self.limits:
                self._points = min(self.maximum_available, self._points + points)
            return self.throttle_status()

    def throttle_status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": math.floor(self._points) if self.limits else self.maximum_available,
            "restoreRate": self.restore_rate,
        }

    def drain_points(self, points: float) -> None:
        """Spend points as another app would (tests of throttling)."""
        with self.lock:
            self.take_points(0)
            self._points = max(0.0, self._points - points)

    def take_rest_call(self) -> tuple[bool, int, float]:
        """REST leaky bucket: (allowed, used after this call, Retry-After seconds when refused)."""
        with self.lock:
            now = self.monotonic()
            self._rest_level = max(0.0, self._rest_level - max(0.0, now - self._rest_at) * self.rest_leak_rate)
            self._rest_at = now
            if not self.limits:
                return True, 1, 0.0
            if self._rest_level + 1 > REST_BUCKET:
                return False, REST_BUCKET, (self._rest_level + 1 - REST_BUCKET) / self.rest_leak_rate
            self._rest_level += 1
            return True, math.ceil(self._rest_level), 0.0

    # --- bulk ------------------------------------------------------------------------------------
    # One bulk query per app and shop at a time. An operation's status moves with the sandbox's
    # clock, not with requests: whoever looks next (``currentBulkOperation``, a new run, a cancel)
    # first brings it up to date — :meth:`bulk_due` says what is due, the app builds the result
    # file when completion is due (it needs the GraphQL executor). Nobody looking changes nothing
    # that anyone could see.
    def bulk_due(self, op: BulkOperation) -> str:
        """The status ``op`` has reached by now on the sandbox's clock (caller holds the lock)."""
        now = self.monotonic()
        if op.status in ("CREATED", "RUNNING"):
            return "COMPLETED" if now - op.started >= self.bulk_seconds else "RUNNING"
        if op.status == "CANCELING" and op.canceling_since is not None:
            return "CANCELED" if now - op.canceling_since >= self.bulk_cancel_seconds else "CANCELING"
        if op.status == "COMPLETED" and op.finished is not None and now - op.finished >= self.bulk_expire_seconds:
            return "EXPIRED"
        return op.status

    def settle_bulk(self, op: BulkOperation, status: str) -> None:
        """Move ``op`` to CANCELED or EXPIRED (COMPLETED is the app's: it builds the result)."""
        with self.lock:
            if status == "CANCELED":
                op.completed_at = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
                op.finished = self.monotonic()
            elif status == "EXPIRED":  # the signed URL stops working: the file is gone
                op.url = None
                self.bulk_results.pop(op.id, None)
            op.status = status

    def start_bulk(self, query: str, base_url: str = "") -> tuple[BulkOperation | None, list[dict[str, Any]]]:
        with self.lock:
            if self.bulk is not None and self.bulk.status in BULK_BUSY:
                message = f"A bulk query operation for this app and shop is already in progress: {self.bulk.gid}."
                return None, [{**_user_error(None, message), "code": "OPERATION_IN_PROGRESS"}]
            op = BulkOperation(
                self._next_bulk,
                query,
                self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
                base_url=base_url,
                started=self.monotonic(),
            )
            self._next_bulk += 1
            self.bulk = op
            self.bulk_operations[op.id] = op
            self.record("bulk_operation", op.gid, query=query)
            return op, []

    def cancel_bulk(self, gid: str) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
        """``bulkOperationCancel``: a CREATED or RUNNING operation turns CANCELING (then CANCELED
        after ``bulk_cancel_seconds``); any other is refused with a userError naming its status."""
        with self.lock:
            number = _gid_number(gid) if str(gid).startswith("gid://shopify/BulkOperation/") else None
            op = self.bulk_operations.get(number) if number is not None else None
            if op is None:
                return None, [_user_error(["id"], "Bulk operation does not exist.")]
            if op.status not in ("CREATED", "RUNNING"):
                return op, [_user_error(None, f"A bulk operation cannot be canceled when it is {op.status.lower()}.")]
            op.status, op.canceling_since = "CANCELING", self.monotonic()
            self.record("bulk_operation_cancel", op.gid, query=op.query)
            return op, []

    # --- webhooks --------------------------------------------------------------------------------
    def _emit(self, topic: str, order_id: int) -> None:
        """Announce a write (caller holds the lock): the order's JSON now, to ``topic``'s subscribers."""
        dispatcher = self.webhook_dispatcher
        if dispatcher.has_subscribers(topic):
            dispatcher.publish(topic, order_id, self.rest_json(order_id), self.clock())

    def set_webhook_drop_rate(self, rate: float) -> None:
        """Lose this share of deliveries from now on (0 … 1), recorded as ``webhook_dropped``."""
        self.webhook_dispatcher.set_drop_rate(rate)

    def disable_webhooks(self) -> int:
        """Delete every subscription (as when an app loses them); queued deliveries are discarded."""
        removed = self.webhook_dispatcher.unsubscribe_all()
        self.record("webhooks_disabled", "", subscriptions=removed)
        return removed

    def close(self) -> None:
        """Stop the webhook senders (daemon threads; calling this is tidy, not required)."""
        self.webhook_dispatcher.stop()

    def control_extra(self) -> dict[str, Any]:
        dispatcher = self.webhook_dispatcher
        return {
            "orders": len(self.orders),
            "fulfillments": len(self.entries("fulfillment")),
            "graphql_points_available": self.throttle_status()["currentlyAvailable"],
            "webhook_subscriptions": len(dispatcher.subscriptions()),
            "webhooks_queued": dispatcher.queued(),
            "webhooks": dict(dispatcher.counts),
        }


def _user_error(field: list[str] | None, message: str) -> dict[str, Any]:
    return {"field": field, "message": message}


def _gid_number(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value).rsplit("/", 1)[-1]
    try:
        return int(text)
    except ValueError:
        return None


def _apply(order: dict[str, Any], changes: dict[str, Any]) -> None:
    """Apply REST-shaped changes to an order dict, filling line defaults and recomputing totals.

    Conveniences beyond REST: ``shipping_method`` (one shipping line with that code and title) and
    ``tags`` as a list. Totals are recomputed when lines or shipping change, unless given.
    """
    changes = dict(changes)
    recompute = False
    if "shipping_method" in changes:
        method = changes.pop("shipping_method")
        changes["shipping_lines"] = (
            []
            if method is None
            else [
                {
                    "id": order["id"] * 100 + 91,
                    "title": method,
                    "code": method,
                    "price": "5.00",
                    "source": "shopify",
                }
            ]
        )
    if isinstance(changes.get("tags"), list | tuple):
        changes["tags"] = ", ".join(changes["tags"])
    if "line_items" in changes:
        changes["line_items"] = [_line(order["id"], k, li) for k, li in enumerate(changes["line_items"])]
        recompute = True
    if "shipping_lines" in changes:
        recompute = True
    if changes.get("fulfillment_status") == "fulfilled":
        for li in changes.get("line_items", order.get("line_items", [])):
            li["fulfillable_quantity"], li["fulfillment_status"] = 0, "fulfilled"
    order.update(changes)
    if recompute:
        _recompute_totals(order, explicit=set(changes))


def _line(order_id: int, k: int, given: dict[str, Any]) -> dict[str, Any]:
    line_id = given.get("id") or order_id * 100 + k + 1
    sku = given.get("sku")
    variant = given.get("variant_id", 40_000_000_000 + hash_sku(sku) % 1_000_000)
    qty = int(given.get("quantity", 1))
    title = given.get("title") or (sku or "Custom item")
    line = {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "sku": sku,
        "variant_id": variant,
        "product_id": given.get("product_id", 8_000_000_000 + (variant or 0) % 100_000),
        "quantity": qty,
        "fulfillable_quantity": qty,
        "price": str(given.get("price", "10.00")),
        "title": title,
        "name": given.get("name", title),
        "fulfillment_status": None,
        "requires_shipping": True,
        "properties": [],
    }
    line.update({k: v for k, v in given.items() if k not in ("id",)})
    return line


def _recompute_totals(order: dict[str, Any], explicit: set[str]) -> None:
    try:
        items = sum((Decimal(str(li["price"])) * int(li["quantity"]) for li in order["line_items"]), Decimal(0))
        discount = Decimal(str(order.get("total_discounts") or "0"))
        shipping = sum((Decimal(str(s.get("price") or 0)) for s in order.get("shipping_lines", [])), Decimal(0))
        rate = Decimal(str((order.get("tax_lines") or [{}])[0].get("rate", 0)))
        tax = ((items - discount) * rate).quantize(CENT)
        values = {
            "total_line_items_price": items,
            "subtotal_price": items - discount,
            "total_tax": tax,
            "total_price": items - discount + shipping + tax,
        }
        # an amount too large to round to cents (a price of 1e308) is as malformed as one in words
        rounded = {key: str(value.quantize(CENT)) for key, value in values.items() if key not in explicit}
    except (ArithmeticError, ValueError, KeyError, TypeError):
        return  # deliberately malformed orders keep what the caller gave
    order.update(rounded)
    if "tax_lines" not in explicit and order.get("tax_lines"):
        order["tax_lines"][0]["price"] = order["total_tax"]
