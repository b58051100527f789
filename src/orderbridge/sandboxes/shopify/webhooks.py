"""Shopify webhooks in the sandbox: subscriptions, and signed deliveries that retry, fail and get lost.

What Shopify documents and the sandbox therefore does (``shared/api-facts.md``, "Webhooks"):

- A subscription is (topic, callback URL); the same pair twice is refused ("Address for this
  topic has already been taken").
- A delivery is an HTTP POST of the order's REST JSON *as it was when the event happened*, signed
  with ``X-Shopify-Hmac-Sha256`` = base64(HMAC-SHA256(app secret, raw body)), with
  ``X-Shopify-Topic``, ``-Shop-Domain``, ``-API-Version``, ``-Webhook-Id``, ``-Triggered-At`` and
  ``-Event-Id``. A retry resends the same bytes and the same webhook id (receivers deduplicate on
  it), so a retry that arrives late carries an old version of the order.
- Success is any 2xx within 5 seconds. Anything else is retried 8 times over about 4 hours
  (:data:`RETRY_DELAYS`, 13,900 s in all; ``retry_scale`` multiplies them so tests take
  milliseconds), then the delivery is given up. A subscription whose endpoint failed every
  attempt of a delivery — at least ``1 + 8`` consecutive failures with no success in between —
  is deleted, as Shopify deletes subscriptions that keep failing.
- Delivery is not guaranteed: ``drop_rate`` loses that share of deliveries silently (seeded, so a
  run is repeatable); they are never sent nor retried. This is what a reconciliation audit exists
  to catch.

Shape. Deliveries queue in *lanes*, one per (callback URL, order): a lane sends its deliveries
one at a time in event order, so a receiver never sees an order's ``orders/updated`` before its
``orders/create``, and a delivery waiting for a retry holds back only the later events of the same
order to the same address. Lanes that are due wait in a FIFO; lanes waiting for a retry sit in a
heap keyed by due time, so one failing endpoint never blocks the others. A few daemon threads
(started with the first subscription, never at import) take due lanes and POST with a real
``httpx.Client``. The dispatcher's own condition variable guards the lanes; the state's lock is
never held during HTTP, and ledger records are written after the dispatcher's lock is released
(the state calls :meth:`WebhookDispatcher.publish` while holding its lock, so taking the locks in
the other order could deadlock).

Why hand-written: no library emulates Shopify's delivery and retry behaviour; the sandbox must
fail the way Shopify fails so the hub's receiver and audits can be tested against it.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

#: GraphQL ``WebhookSubscriptionTopic`` values → the wire names sent in ``X-Shopify-Topic``
TOPICS: dict[str, str] = {
    "ORDERS_CREATE": "orders/create",
    "ORDERS_UPDATED": "orders/updated",
    "ORDERS_CANCELLED": "orders/cancelled",
    "ORDERS_FULFILLED": "orders/fulfilled",
    "ORDERS_PARTIALLY_FULFILLED": "orders/partially_fulfilled",
    "ORDERS_PAID": "orders/paid",
    "ORDERS_EDITED": "orders/edited",
    "ORDERS_DELETE": "orders/delete",
    "BULK_OPERATIONS_FINISH": "bulk_operations/finish",
}
ENUMS: dict[str, str] = {wire: enum for enum, wire in TOPICS.items()}

#: seconds before retry 1 … 8 (Shopify: "8 retries over 4 hours"); × ``retry_scale``
RETRY_DELAYS: tuple[float, ...] = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
DELIVERY_TIMEOUT = 5.0
SHOP_DOMAIN = "orderbridge-sandbox.myshopify.com"
TAKEN = "Address for this topic has already been taken"


def sign(secret: str, body: bytes) -> str:
    """Shopify's webhook signature: base64 of HMAC-SHA256 over the raw body with the app secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Subscription:
    id: int
    topic: str  # wire name, e.g. "orders/create"
    callback_url: str
    api_version: str
    format: str = "JSON"
    created_at: str = field(default_factory=_utc_now)
    #: failed attempts since the last success (any delivery to this subscription)
    failures: int = 0

    @property
    def gid(self) -> str:
        return f"gid://shopify/WebhookSubscription/{self.id}"

    def node(self) -> dict[str, Any]:
        """The GraphQL ``WebhookSubscription`` dict."""
        return {
            "id": self.gid,
            "legacyResourceId": str(self.id),
            "topic": ENUMS[self.topic],
            "format": self.format,
            "callbackUrl": self.callback_url,
            "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": self.callback_url},
            "uri": self.callback_url,
            "includeFields": [],
            "metafieldNamespaces": [],
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "apiVersion": {"handle": self.api_version, "displayName": self.api_version, "supported": True},
        }

    def rest(self) -> dict[str, Any]:
        """The REST ``webhook`` dict."""
        return {
            "id": self.id,
            "address": self.callback_url,
            "topic": self.topic,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "format": self.format.lower(),
            "fields": [],
            "metafield_namespaces": [],
            "api_version": self.api_version,
        }


@dataclass
class Delivery:
    """One event for one subscription; its headers (and so its webhook id) never change on retry."""

    subscription_id: int
    topic: str
    order_id: int
    address: str
    body: bytes
    headers: dict[str, str]
    attempt: int = 0  # attempts made so far

    @property
    def webhook_id(self) -> str:
        return self.headers["X-Shopify-Webhook-Id"]


class _Lane:
    """The deliveries for one (address, order), sent one at a time in event order.

    ``state`` is where the lane is: ``ready`` (in the FIFO), ``delayed`` (in the heap until
    ``due``), ``busy`` (its head is being sent) or ``dead`` (empty and forgotten). Heap entries
    carry the lane's ``gen`` at scheduling time, so a rescheduled lane's old entry is ignored.
    """

    __slots__ = ("due", "gen", "key", "queue", "state")

    def __init__(self, key: tuple[str, int]) -> None:
        self.key = key
        self.queue: deque[Delivery] = deque()
        self.state = "ready"
        self.gen = 0
        self.due = 0.0


class Recorder(Protocol):
    def record(self, kind: str, key: str, **data: Any) -> None: ...


Record = tuple[str, str, dict[str, Any]]


class WebhookDispatcher:
    """Subscriptions and the delivery queue of one sandbox store (thread-safe)."""

    def __init__(
        self,
        ledger: Recorder,
        *,
        secret: str,
        seed: int = 1,
        retry_scale: float = 1.0,
        drop_rate: float = 0.0,
        timeout: float = DELIVERY_TIMEOUT,
        workers: int = 4,
        shop_domain: str = SHOP_DOMAIN,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if retry_scale < 0:
            raise ValueError("retry_scale must be ≥ 0")
        self.ledger = ledger
        self.secret = secret
        self.retry_scale = retry_scale
        self.timeout = timeout
        self.shop_domain = shop_domain
        self.monotonic: Callable[[], float] = time.monotonic
        self._drop_rate = 0.0
        self.set_drop_rate(drop_rate)
        self._rng = random.Random(seed * 6_700_417 + 31)
        self._workers = max(1, workers)
        self._transport = transport
        self._cond = threading.Condition(threading.Lock())
        self._subs: dict[int, Subscription] = {}
        self._next_sub = 1_500_000_000
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self._ready: deque[_Lane] = deque()
        self._delayed: list[tuple[float, int, int, _Lane]] = []
        self._seq = 0
        self._recording = 0
        self._threads: list[threading.Thread] = []
        self._http: httpx.Client | None = None
        self._stopping = False
        self.counts: dict[str, int] = {
            "sent": 0,
            "retried": 0,
            "failed": 0,
            "dropped": 0,
            "discarded": 0,
            "subscriptions_removed": 0,
        }

    # --- subscriptions ---------------------------------------------------------------------------
    def subscribe(
        self, topic: str, callback_url: str, *, api_version: str, format: str = "JSON"
    ) -> tuple[Subscription | None, list[dict[str, Any]]]:
        """Create a subscription; (subscription, userErrors) like ``webhookSubscriptionCreate``."""
        if topic not in ENUMS:
            return None, [{"field": ["topic"], "message": f"Invalid topic specified: {topic}"}]
        parts = urlsplit(callback_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None, [{"field": ["webhookSubscription", "callbackUrl"], "message": "Address is invalid"}]
        if format.upper() != "JSON":
            return None, [{"field": ["webhookSubscription", "format"], "message": "The sandbox only sends JSON"}]
        with self._cond:
            if any(s.topic == topic and s.callback_url == callback_url for s in self._subs.values()):
                return None, [{"field": ["webhookSubscription", "callbackUrl"], "message": TAKEN}]
            self._next_sub += 1
            sub = Subscription(self._next_sub, topic, callback_url, api_version)
            self._subs[sub.id] = sub
            self._start_locked()
            return sub, []

    def unsubscribe(self, subscription_id: int) -> bool:
        """Delete one subscription; its queued deliveries are discarded. False when unknown."""
        with self._cond:
            found = self._subs.pop(subscription_id, None) is not None
            records = self._purge_locked({subscription_id}) if found else []
        self._flush(records)
        return found

    def unsubscribe_all(self) -> int:
        with self._cond:
            ids = set(self._subs)
            self._subs.clear()
            records = self._purge_locked(ids)
        self._flush(records)
        return len(ids)

    def subscriptions(self) -> list[Subscription]:
        with self._cond:
            return sorted(self._subs.values(), key=lambda s: s.id)

    def subscription(self, subscription_id: int) -> Subscription | None:
        with self._cond:
            return self._subs.get(subscription_id)

    def has_subscribers(self, topic: str) -> bool:
        with self._cond:
            return any(s.topic == topic for s in self._subs.values())

    # --- switches --------------------------------------------------------------------------------
    @property
    def drop_rate(self) -> float:
        return self._drop_rate

    def set_drop_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"drop rate must be between 0 and 1, not {rate}")
        self._drop_rate = rate

    def queued(self) -> int:
        """Deliveries not yet settled (waiting, being sent or waiting for a retry)."""
        with self._cond:
            return sum(len(lane.queue) for lane in self._lanes.values())

    # --- events ----------------------------------------------------------------------------------
    def publish(self, topic: str, order_id: int, body: bytes, triggered_at: datetime) -> None:
        """Queue one event for every subscription to ``topic`` (in the caller's event order)."""
        records: list[Record] = []
        with self._cond:
            subs = [s for s in self._subs.values() if s.topic == topic]
            if not subs:
                return
            event_id = str(uuid.uuid4())
            signature = sign(self.secret, body)
            when = triggered_at.astimezone(UTC).isoformat()
            for sub in sorted(subs, key=lambda s: s.id):
                webhook_id = str(uuid.uuid4())
                if self._rng.random() < self._drop_rate:
                    self.counts["dropped"] += 1
                    records.append(
                        (
                            "webhook_dropped",
                            str(order_id),
                            {"webhook_id": webhook_id, "topic": topic, "attempt": 0, "status": None},
                        )
                    )
                    continue
                headers = {
                    "Content-Type": "application/json",
                    "X-Shopify-Topic": topic,
                    "X-Shopify-Hmac-Sha256": signature,
                    "X-Shopify-Shop-Domain": self.shop_domain,
                    "X-Shopify-API-Version": sub.api_version,
                    "X-Shopify-Webhook-Id": webhook_id,
                    "X-Shopify-Triggered-At": when,
                    "X-Shopify-Event-Id": event_id,
                }
                key = (sub.callback_url, order_id)
                lane = self._lanes.get(key)
                if lane is None:
                    lane = self._lanes[key] = _Lane(key)
                    self._ready.append(lane)
                lane.queue.append(Delivery(sub.id, topic, order_id, sub.callback_url, body, headers))
            self._cond.notify_all()
        self._flush(records)

    # --- lifecycle -------------------------------------------------------------------------------
    def _start_locked(self) -> None:
        if self._threads or self._stopping:
            return
        self._http = httpx.Client(timeout=self.timeout, transport=self._transport)
        for n in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"shopify-webhooks-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the senders (deliveries still queued are abandoned) and close the HTTP client."""
        with self._cond:
            self._stopping = True
            threads, self._threads = self._threads, []
            self._cond.notify_all()
        for thread in threads:
            thread.join(timeout)
        if self._http is not None:
            self._http.close()
            self._http = None

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or in flight and no retry falls due within ``timeout`` seconds.

        Returns False if that did not happen in time. Retries due later than the deadline do not
        count: with Shopify's real delays a failing endpoint would otherwise block for hours.
        """
        deadline = self.monotonic() + timeout
        with self._cond:
            while True:
                if self._idle_locked(deadline):
                    return True
                left = deadline - self.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))

    def _idle_locked(self, deadline: float) -> bool:
        if self._recording:
            return False
        for lane in self._lanes.values():
            if lane.state in ("ready", "busy") or (lane.state == "delayed" and lane.due <= deadline):
                return False
        return True

    # --- the senders -----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                lane = self._take_locked()
                if lane is None:
                    return
                delivery = lane.queue[0]
                delivery.attempt += 1
            status, error = self._post(delivery)
            with self._cond:
                records = self._settle_locked(lane, delivery, status, error)
                self._recording += 1  # not idle until the outcome is in the ledger
            try:
                self._flush(records)
            finally:
                with self._cond:
                    self._recording -= 1
                    self._cond.notify_all()

    def _take_locked(self) -> _Lane | None:
        """The next lane whose head is due, marked busy (waiting as needed); None when stopping."""
        while not self._stopping:
            now = self.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                _, _, gen, lane = heapq.heappop(self._delayed)
                if lane.state == "delayed" and lane.gen == gen:
                    self._make_ready_locked(lane)
            while self._ready:
                lane = self._ready.popleft()
                if lane.state == "ready":
                    lane.state = "busy"
                    return lane
            self._cond.wait(self._delayed[0][0] - now if self._delayed else None)
        return None

    def _make_ready_locked(self, lane: _Lane) -> None:
        lane.state = "ready"
        lane.gen += 1
        self._ready.append(lane)

    def _post(self, delivery: Delivery) -> tuple[int | None, str]:
        http = self._http
        if http is None:
            return None, "stopped"
        try:
            response = http.post(delivery.address, content=delivery.body, headers=delivery.headers)
        except httpx.TimeoutException:
            return None, f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, ""

    def _settle_locked(self, lane: _Lane, d: Delivery, status: int | None, error: str) -> list[Record]:
        records: list[Record] = []
        sub = self._subs.get(d.subscription_id)
        data: dict[str, Any] = {"webhook_id": d.webhook_id, "topic": d.topic, "attempt": d.attempt, "status": status}
        if status is not None and 200 <= status < 300:
            if sub is not None:
                sub.failures = 0
            self.counts["sent"] += 1
            records.append(("webhook_sent", str(d.order_id), data))
            self._advance_locked(lane)
            return records
        if error:
            data["error"] = error
        if sub is not None:
            sub.failures += 1
        if sub is not None and d.attempt < MAX_ATTEMPTS and not self._stopping:
            delay = RETRY_DELAYS[d.attempt - 1] * self.retry_scale
            self.counts["retried"] += 1
            records.append(("webhook_retrying", str(d.order_id), {**data, "retry_in": delay}))
            lane.state, lane.gen, lane.due = "delayed", lane.gen + 1, self.monotonic() + delay
            self._seq += 1
            heapq.heappush(self._delayed, (lane.due, self._seq, lane.gen, lane))
            return records
        self.counts["failed"] += 1
        records.append(("webhook_failed", str(d.order_id), data))
        self._advance_locked(lane)
        if sub is not None and sub.failures >= MAX_ATTEMPTS:
            del self._subs[sub.id]
            self.counts["subscriptions_removed"] += 1
            records.append(
                (
                    "webhook_subscription_removed",
                    sub.gid,
                    {"topic": sub.topic, "address": sub.callback_url, "failures": sub.failures},
                )
            )
            records.extend(self._purge_locked({sub.id}))
        return records

    def _advance_locked(self, lane: _Lane) -> None:
        """The head is settled: the lane's next delivery is due now, or the lane is done."""
        lane.queue.popleft()
        if lane.queue:
            self._make_ready_locked(lane)
        else:
            lane.state = "dead"
            self._lanes.pop(lane.key, None)

    def _purge_locked(self, subscription_ids: set[int]) -> list[Record]:
        """Drop queued deliveries of deleted subscriptions (a delivery being sent finishes first)."""
        records: list[Record] = []
        if not subscription_ids:
            return records
        for lane in list(self._lanes.values()):
            busy = lane.state == "busy"
            head = lane.queue[0] if lane.queue else None
            keep: deque[Delivery] = deque()
            for d in lane.queue:
                if d.subscription_id in subscription_ids and not (busy and d is head):
                    self.counts["discarded"] += 1
                    records.append(
                        (
                            "webhook_discarded",
                            str(d.order_id),
                            {"webhook_id": d.webhook_id, "topic": d.topic, "attempt": d.attempt, "status": None},
                        )
                    )
                else:
                    keep.append(d)
            if len(keep) == len(lane.queue):
                continue
            lane.queue = keep
            if not keep:
                lane.state = "dead"
                self._lanes.pop(lane.key, None)
            elif lane.state == "delayed" and keep[0] is not head:
                self._make_ready_locked(lane)  # the new head never failed: it need not wait
        return records

    def _flush(self, records: list[Record]) -> None:
        for kind, key, data in records:
            self.ledger.record(kind, key, **data)
