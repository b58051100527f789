"""The Shopify sandbox's state: the store's orders with their indexes (and, mixed in, its rate
buckets in :mod:`.limits`, its bulk slot in :mod:`.bulk`, its fulfilments in :mod:`.fulfilments`).

Orders are :class:`~.generator.OrderSeed` records indexed three ways (id, created, updated) as
sorted lists, so keyset pagination on any sort is a ``bisect`` plus a short scan, whatever the
store size. A changed order keeps its full REST dict on ``seed.overlay`` and its filter facts on
the seed; serialised REST JSON is cached per order and dropped on change.

A deleted order leaves the store and leaves a ``destroy`` event (``deleted_events``), which REST
``events.json`` lists as Shopify does.

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
from datetime import UTC, datetime
from typing import Any

from orderbridge.sandboxes.base import SandboxState
from orderbridge.sandboxes.shopify.bulk import BulkOperation, BulkSlot
from orderbridge.sandboxes.shopify.edits import apply_changes
from orderbridge.sandboxes.shopify.fulfilments import _FULFILMENT_TOPICS, Fulfilments
from orderbridge.sandboxes.shopify.generator import (
    FIRST_NUMBER,
    FIRST_ORDER_ID,
    SHOP_TZ,
    OrderSeed,
    expand,
    generate,
    make_seed,
)
from orderbridge.sandboxes.shopify.limits import GRAPHQL_MAX_AVAILABLE, PLANS, RateLimits
from orderbridge.sandboxes.shopify.nodes import order_node, utc_iso
from orderbridge.sandboxes.shopify.restview import full_order
from orderbridge.sandboxes.shopify.webhooks import WebhookDispatcher

try:  # orjson is ~5x faster; fall back to the standard library when it is absent
    import orjson

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


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


def time_bound(value: str) -> float:
    ts = epoch(value.strip().strip("'\""))
    assert ts is not None
    return float(ts)


__all__ = ["BulkOperation", "ShopifyState", "dumps", "epoch", "local_iso", "time_bound"]


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
FINANCIAL_FILTERS: dict[str, set[str] | None] = {
    "unpaid": {"pending", "authorized", "partially_paid"},
    "any": None,
}


class ShopifyState(SandboxState, RateLimits, BulkSlot, Fulfilments):
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
        #: the access scopes the token holds (None: every scope the sandbox models); a test removes
        #: some to play a token installed with too few
        self.scopes: tuple[str, ...] | None = None
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
        #: served API version → the deprecation its responses announce (X-Shopify-API-Deprecated-Reason)
        self.deprecated_versions: dict[str, str] = {}
        #: REST events of deleted orders (``events.json``), oldest first
        self.deleted_events: list[dict[str, Any]] = []
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
            cached = dumps(full_order(expand(self.orders[order_id])))
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
            cached = order_node(expand(s), s)
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
            s = self.orders[order_id]
            node = self._node_cache.get(order_id) or order_node(expand(s), s)
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
            apply_changes(s.overlay, overrides)
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
            apply_changes(s.overlay, changes)
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
            at = self.clock()
            self.deleted_events.append(
                {
                    "id": 9_000_000_000 + len(self.deleted_events) + 1,
                    "subject_id": order_id,
                    "created_at": at.astimezone(SHOP_TZ).isoformat(timespec="seconds"),
                    "subject_type": "Order",
                    "verb": "destroy",
                    "arguments": [f"#{s.number}"],
                    "body": None,
                    "message": f"Order #{s.number} was deleted.",
                    "author": "Shopify",
                    "description": f"Order #{s.number} was deleted.",
                    "path": f"/admin/orders/{order_id}",
                    "_at": at.timestamp(),
                }
            )
            dispatcher = self.webhook_dispatcher
            if dispatcher.has_subscribers("orders/delete"):
                dispatcher.publish("orders/delete", order_id, dumps({"id": order_id}), self.clock())

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
