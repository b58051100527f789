"""The WooCommerce sandbox's store: orders in the v3 shape, notes, webhooks and their deliveries.

What is emulated, from ``shared/api-facts.md`` (each ``(?)`` there is a setting here):

- **Orders** carry the v3 fields (money as strings, each date twice: site-local and ``_gmt``, whole
  seconds). Every change bumps ``date_modified`` and fires ``order.updated``; a status change also
  adds WooCommerce's own internal note ("Order status changed from Processing to Completed.") and
  sets ``date_completed``/``date_paid`` as WooCommerce does.
- **Status moves.** WooCommerce's REST API lets a key with write access set any registered status
  from any other (``status_rules="permissive"``, the default, as the real API). A test that wants
  to prove the hub never makes a move outside the usual flow sets ``status_rules="strict"``:
  moves outside :data:`STRICT_MOVES` are then refused with 400 ``woocommerce_rest_invalid_status``
  — the sandbox's own code, documented as such, since real WooCommerce has none.
- **Listing** (``GET /orders``): ``status`` (default ``any``: every status but ``trash``),
  ``after/before`` (created), ``modified_after/modified_before`` (exclusive, like WordPress's
  ``date_query``), ``dates_are_gmt`` (false: the times are in the site's timezone, the
  ``timezone`` setting, not UTC by default so a client that forgets it is caught), ``orderby``
  (``date, id, include, title, slug`` — anything else is a 400), ``order``, ``include``,
  ``exclude``, ``search``, ``offset``, ``page``, ``per_page`` (1–100), ``_fields``.
- **Webhooks**: topics ``resource.event``; a delivery is a signed POST
  (``X-WC-Webhook-Signature`` = base64 HMAC-SHA256 of the body with the webhook's secret) made by a
  background thread over real HTTP, in event order. Creating or re-activating a webhook first sends
  the unsigned ping (form body ``webhook_id=<id>``). A delivery that is not answered 2xx counts as
  a failure; after ``max_failures`` (5) consecutive failures the webhook's status becomes
  ``disabled`` and it delivers nothing more; no delivery is ever retried. Delivery ids are
  WooCommerce's: a hash of the webhook id and the current second, so they repeat within a second.
  Re-activating a webhook resets its failure count (?).

Hand-written: no library emulates WooCommerce; the sandbox's point is to fail the way it does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import queue
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from orderbridge.sandboxes.base import SandboxState

STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash",
            "checkout-draft")  # fmt: skip
#: status moves the strict mode allows (the usual flow of a shop; real WooCommerce allows all)
STRICT_MOVES: dict[str, frozenset[str]] = {
    "checkout-draft": frozenset({"pending", "processing"}),
    "pending": frozenset({"processing", "on-hold", "failed", "cancelled"}),
    "failed": frozenset({"pending", "processing", "cancelled"}),
    "on-hold": frozenset({"processing", "completed", "cancelled"}),
    "processing": frozenset({"completed", "cancelled", "refunded", "on-hold"}),
    "completed": frozenset({"refunded"}),
    "cancelled": frozenset(),
    "refunded": frozenset(),
    "trash": frozenset(),
}
TITLES = {s: s.replace("-", " ").title().replace("On Hold", "On hold") for s in STATUSES}
RESOURCES = ("order", "product", "customer", "coupon")
EVENTS = ("created", "updated", "deleted", "restored")
CATALOG = (("MUG-1", "Mug", "9.50"), ("TEE-M", "T-shirt M", "19.00"), ("CAP-2", "Cap", "12.25"),
           ("POSTER-A2", "Poster A2", "15.00"))  # fmt: skip


class Refused(Exception):
    """An API call WooCommerce answers with its error body."""

    def __init__(self, status: int, code: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "data": {"status": self.status, **self.data}}


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Webhook:
    id: int
    name: str
    topic: str
    delivery_url: str
    secret: str
    status: str
    created: datetime
    modified: datetime
    failures: int = 0

    def view(self, state: WooState) -> dict[str, Any]:
        resource, _, event = self.topic.partition(".")
        return {
            "id": self.id, "name": self.name, "status": self.status, "topic": self.topic,
            "resource": resource, "event": event, "hooks": [f"woocommerce_{resource}_{event}"],
            "delivery_url": self.delivery_url, "secret": self.secret,
            "date_created": state.local(self.created), "date_created_gmt": state.gmt(self.created),
            "date_modified": state.local(self.modified), "date_modified_gmt": state.gmt(self.modified),
        }  # fmt: skip


@dataclass
class _Job:
    hook_id: int
    topic: str
    body: bytes
    form: bool = False  # the ping
    extra: dict[str, Any] = field(default_factory=dict)


class WooState(SandboxState):
    def __init__(
        self,
        *,
        consumer_key: str = "ck_sandbox",
        consumer_secret: str = "cs_sandbox",
        site_url: str = "",
        timezone: str = "Europe/Paris",
        status_rules: str = "permissive",
        max_failures: int = 5,
        delivery_timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
        seed: int = 1,
    ) -> None:
        super().__init__(credentials={consumer_key})
        if status_rules not in ("permissive", "strict"):
            raise ValueError("status_rules is 'permissive' or 'strict'")
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        #: the site's own address (what the webhooks' X-WC-Webhook-Source says); set when served
        self.site_url = site_url
        self.zone = ZoneInfo(timezone)
        self.status_rules = status_rules
        self.max_failures = max_failures
        self.delivery_timeout = delivery_timeout
        self.clock = clock or (lambda: datetime.now(UTC))
        self.random = random.Random(seed)
        self.orders: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.webhooks: dict[int, Webhook] = {}
        #: OAuth nonces seen, per consumer key: nonce → timestamp
        self.nonces: dict[str, dict[str, int]] = {}
        self._next = {"order": 100, "line": 1000, "note": 5000, "hook": 1}
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._busy = 0
        self._idle = threading.Condition(self.lock)
        self._worker: threading.Thread | None = None

    # --- time ---------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(microsecond=0)

    def gmt(self, when: datetime | None) -> str | None:
        return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")

    def local(self, when: datetime | None) -> str | None:
        return None if when is None else when.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M:%S")

    def parse_param_time(self, text: str, gmt: bool) -> datetime:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        return parsed.replace(tzinfo=UTC if gmt else self.zone).astimezone(UTC)

    def _id(self, kind: str) -> int:
        self._next[kind] += 1
        return self._next[kind]

    # --- orders -------------------------------------------------------------------------------------
    def add_order(self, *, status: str = "processing", lines: Iterable[tuple[str, str, str, int]] | None = None,
                  **overrides: Any) -> dict[str, Any]:  # fmt: skip
        """A new order (``lines``: (sku, name, unit price, quantity)); fires ``order.created``."""
        with self.lock:
            now = self.now()
            oid = self._id("order")
            picked = list(lines) if lines is not None else [
                (sku, name, price, self.random.randint(1, 3))
                for sku, name, price in self.random.sample(CATALOG, self.random.randint(1, 3))
            ]  # fmt: skip
            items: list[dict[str, Any]] = []
            for sku, name, price, qty in picked:
                total = Decimal(price) * qty
                items.append({
                    "id": self._id("line"), "name": name, "product_id": 10 + len(items), "variation_id": 0,
                    "quantity": qty, "tax_class": "", "subtotal": f"{total:.2f}", "subtotal_tax": "0.00",
                    "total": f"{total:.2f}", "total_tax": "0.00", "taxes": [], "meta_data": [], "sku": sku,
                    "price": float(Decimal(price)),
                })  # fmt: skip
            shipping = Decimal("4.90")
            total = sum((Decimal(str(i["total"])) for i in items), Decimal(0)) + shipping
            address = {"first_name": "Ada", "last_name": f"Buyer {oid}", "company": "", "address_1": "1 Rue de la Paix",
                       "address_2": "", "city": "Paris", "state": "", "postcode": "75002", "country": "FR"}  # fmt: skip
            order: dict[str, Any] = {
                "id": oid, "parent_id": 0, "number": str(oid), "order_key": f"wc_order_{secrets.token_hex(6)}",
                "created_via": "checkout", "version": "9.4.0", "status": status, "currency": "EUR",
                "date_created": now, "date_modified": now, "discount_total": "0.00", "discount_tax": "0.00",
                "shipping_total": f"{shipping:.2f}", "shipping_tax": "0.00", "cart_tax": "0.00",
                "total": f"{total:.2f}", "total_tax": "0.00", "prices_include_tax": False, "customer_id": 0,
                "customer_ip_address": "", "customer_user_agent": "", "customer_note": "",
                "billing": {**address, "email": f"buyer{oid}@example.com", "phone": "+33100000000"},
                "shipping": {**address, "phone": ""}, "payment_method": "stripe",
                "payment_method_title": "Credit card", "transaction_id": f"ch_{oid}",
                "date_paid": now if status in ("processing", "completed") else None,
                "date_completed": now if status == "completed" else None, "cart_hash": "",
                "meta_data": [], "line_items": items, "tax_lines": [],
                "shipping_lines": [{"id": self._id("line"), "method_title": "Flat rate", "method_id": "flat_rate",
                                    "instance_id": "1", "total": f"{shipping:.2f}", "total_tax": "0.00",
                                    "taxes": [], "meta_data": []}],
                "fee_lines": [], "coupon_lines": [], "refunds": [], "set_paid": False,
            }  # fmt: skip
            if status == "refunded":  # a refunded order carries its refund, as WooCommerce's does
                order["refunds"] = [{"id": self._id("note"), "reason": "", "total": f"-{total:.2f}"}]
            for key, value in overrides.items():
                order[key] = value
            self.orders[oid] = order
            self.notes[oid] = []
            self.record("order_created", str(oid), status=status)
            self._fire("order.created", oid)
            return self.view(oid)

    def update_order(self, oid: int, **changes: Any) -> dict[str, Any]:
        """An edit made in the shop (``status`` included); fires ``order.updated``."""
        with self.lock:
            order = self._order(oid)
            status = changes.pop("status", None)
            for key, value in changes.items():
                order[key] = value
            if status is not None and status != order["status"]:
                self._move(order, status, by="shop")
            order["date_modified"] = self.now()
            self._fire("order.updated", oid)
            return self.view(oid)

    def trash(self, oid: int) -> None:
        with self.lock:
            order = self._order(oid)
            self._move(order, "trash", by="shop")
            order["date_modified"] = self.now()
            self._fire("order.deleted", oid)

    def _order(self, oid: int) -> dict[str, Any]:
        order = self.orders.get(oid)
        if order is None:
            raise Refused(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    def _move(self, order: dict[str, Any], status: str, *, by: str) -> None:
        old = order["status"]
        now = self.now()
        if status == "completed" and not order.get("date_completed"):
            order["date_completed"] = now
        if status in ("processing", "completed") and not order.get("date_paid"):
            order["date_paid"] = now
        order["status"] = status
        self._note(order["id"], f"Order status changed from {TITLES[old]} to {TITLES[status]}.", False, "system")
        self.record("status_changed", str(order["id"]), source=old, target=status, by=by)

    def _note(self, oid: int, text: str, customer: bool, author: str) -> dict[str, Any]:
        now = self.now()
        note = {"id": self._id("note"), "author": author, "date_created": self.local(now),
                "date_created_gmt": self.gmt(now), "note": text, "customer_note": customer,
                "added_by_user": author != "system"}  # fmt: skip
        self.notes[oid].append(note)
        return note

    def view(self, oid: int, fields: Iterable[str] | None = None) -> dict[str, Any]:
        """The order as the v3 API shows it (dates in both forms, strings)."""
        with self.lock:
            order = self._order(oid)
            out: dict[str, Any] = {}
            for key, value in order.items():
                if isinstance(value, datetime):
                    out[key] = self.local(value)
                    out[f"{key}_gmt"] = self.gmt(value)
                elif key in ("date_paid", "date_completed") and value is None:
                    out[key] = out[f"{key}_gmt"] = None
                else:
                    out[key] = value
            if fields:
                wanted = set(fields)
                out = {k: v for k, v in out.items() if k in wanted}
            return out

    # --- the API's writes ---------------------------------------------------------------------------
    def api_update(self, oid: int, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Refused(400, "rest_invalid_json", "Invalid JSON body passed.")
        with self.lock:
            order = self._order(oid)
            status = body.get("status")
            if status is not None:
                if status not in STATUSES or status == "trash":
                    raise Refused(400, "rest_invalid_param", "Invalid parameter(s): status",
                                  params={"status": f"status is not one of {', '.join(STATUSES[:-2])}."})  # fmt: skip
                if status != order["status"]:
                    allowed = STRICT_MOVES.get(order["status"], frozenset())
                    if self.status_rules == "strict" and status not in allowed:
                        raise Refused(400, "woocommerce_rest_invalid_status",
                                      f"Sandbox (strict): {order['status']} cannot become {status}.")  # fmt: skip
                    self._move(order, status, by="api")
            for key in ("customer_note", "meta_data", "billing", "shipping", "transaction_id"):
                if key in body:
                    order[key] = body[key]
            order["date_modified"] = self.now()
            self._fire("order.updated", oid)
            return self.view(oid)

    def api_note(self, oid: int, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("note"), str) or not body["note"]:
            raise Refused(400, "rest_missing_callback_param", "Missing parameter(s): note", params=["note"])
        with self.lock:
            self._order(oid)
            note = self._note(oid, body["note"], bool(body.get("customer_note")), "WooCommerce")
            self.record("note_created", str(oid), note_id=note["id"], note=body["note"],
                        customer_note=note["customer_note"])  # fmt: skip
            return dict(note)

    # --- listing --------------------------------------------------------------------------------------
    def list_orders(self, q: dict[str, list[str]]) -> tuple[list[dict[str, Any]], int, int, int]:
        """``(page of views, total, total pages, page)`` for a ``GET /orders`` query."""

        def one(name: str) -> str | None:
            values = q.get(name) or q.get(f"{name}[]")
            return values[-1] if values else None

        def many(name: str) -> list[str]:
            out: list[str] = []
            for v in (q.get(name) or []) + (q.get(f"{name}[]") or []):
                out.extend(p for p in v.split(",") if p)
            return out

        def integer(name: str, default: int, low: int, high: int | None = None) -> int:
            text = one(name)
            try:
                value = default if text is None else int(text)
            except ValueError:
                raise _bad(name, f"{name} is not of type integer.") from None
            if value < low or (high is not None and value > high):
                raise _bad(name, f"{name} must be between {low} (inclusive) and {high} (inclusive)")
            return value

        page, per_page = integer("page", 1, 1), integer("per_page", 10, 1, 100)
        offset = one("offset")
        orderby, order = one("orderby") or "date", one("order") or "desc"
        if orderby not in ("date", "id", "include", "title", "slug"):
            raise _bad("orderby", "orderby is not one of date, id, include, title, and slug.")
        if order not in ("asc", "desc"):
            raise _bad("order", "order is not one of asc and desc.")
        gmt = (one("dates_are_gmt") or "false").lower() in ("1", "true")
        bounds: dict[str, datetime] = {}
        for name in ("after", "before", "modified_after", "modified_before"):
            text = one(name)
            if text:
                try:
                    bounds[name] = self.parse_param_time(text, gmt)
                except ValueError:
                    raise _bad(name, f"Invalid date.") from None  # noqa: F541
        statuses = many("status") or ["any"]
        if any(s != "any" and s not in STATUSES for s in statuses):
            raise _bad("status", "status is not one of any, " + ", ".join(STATUSES) + ".")
        wanted = set(STATUSES) - {"trash"} if "any" in statuses else set(statuses)
        include = {int(x) for x in many("include") if x.isdigit()}
        exclude = {int(x) for x in many("exclude") if x.isdigit()}
        search = (one("search") or "").lower()
        with self.lock:
            found = []
            for oid, o in self.orders.items():
                if o["status"] not in wanted or (include and oid not in include) or oid in exclude:
                    continue
                if "after" in bounds and not o["date_created"] > bounds["after"]:
                    continue
                if "before" in bounds and not o["date_created"] < bounds["before"]:
                    continue
                if "modified_after" in bounds and not o["date_modified"] > bounds["modified_after"]:
                    continue
                if "modified_before" in bounds and not o["date_modified"] < bounds["modified_before"]:
                    continue
                if search and search not in (o["number"] + " " + o["billing"].get("email", "")).lower():
                    continue
                found.append(o)
            keys: dict[str, Callable[[dict[str, Any]], Any]] = {
                "date": lambda o: (o["date_created"], o["id"]), "id": lambda o: o["id"],
                "include": lambda o: o["id"], "title": lambda o: o["number"], "slug": lambda o: o["number"],
            }  # fmt: skip
            found.sort(key=keys[orderby], reverse=order == "desc")
            total = len(found)
            start = int(offset) if offset and offset.isdigit() else (page - 1) * per_page
            fields = many("_fields") or None
            views = [self.view(o["id"], fields) for o in found[start : start + per_page]]
            pages = (total + per_page - 1) // per_page
            return views, total, pages, page

    # --- webhooks -----------------------------------------------------------------------------------
    def create_webhook(self, body: Any) -> Webhook:
        if not isinstance(body, dict):
            raise Refused(400, "rest_invalid_json", "Invalid JSON body passed.")
        topic, url = body.get("topic"), body.get("delivery_url")
        if not isinstance(topic, str) or not isinstance(url, str) or not url:
            raise Refused(400, "rest_missing_callback_param", "Missing parameter(s): topic, delivery_url")
        resource, _, event = topic.partition(".")
        if resource not in RESOURCES or event not in EVENTS:
            raise Refused(400, "woocommerce_rest_webhook_invalid_topic", "Webhook topic must be valid.")
        status = str(body.get("status") or "active")
        if status not in ("active", "paused", "disabled"):
            raise _bad("status", "status is not one of active, paused, and disabled.")
        with self.lock:
            now = self.now()
            hook = Webhook(self._id("hook"), str(body.get("name") or topic), topic, url,
                           str(body.get("secret") or secrets.token_urlsafe(24)), status, now, now)  # fmt: skip
            self.webhooks[hook.id] = hook
            self.record("webhook_created", str(hook.id), topic=topic, delivery_url=url, status=status)
            if status == "active":
                self._ping(hook)
            return hook

    def update_webhook(self, hook_id: int, body: Any) -> Webhook:
        if not isinstance(body, dict):
            raise Refused(400, "rest_invalid_json", "Invalid JSON body passed.")
        with self.lock:
            hook = self.webhooks.get(hook_id)
            if hook is None:
                raise Refused(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
            status = body.get("status")
            if status is not None:
                if status not in ("active", "paused", "disabled"):
                    raise _bad("status", "status is not one of active, paused, and disabled.")
                if status == "active" and hook.status != "active":
                    hook.failures = 0
                    hook.status = "active"
                    self._ping(hook)
                hook.status = status
            for key in ("name", "delivery_url", "secret"):
                if isinstance(body.get(key), str):
                    setattr(hook, key, body[key])
            hook.modified = self.now()
            self.record("webhook_updated", str(hook.id), status=hook.status)
            return hook

    def delete_webhook(self, hook_id: int) -> Webhook:
        with self.lock:
            hook = self.webhooks.pop(hook_id, None)
            if hook is None:
                raise Refused(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
            self.record("webhook_deleted", str(hook_id))
            return hook

    def disable_webhooks(self) -> None:
        """What 5 failed deliveries do, at once (for tests)."""
        with self.lock:
            for hook in self.webhooks.values():
                hook.status = "disabled"

    def _ping(self, hook: Webhook) -> None:
        self._enqueue(_Job(hook.id, "ping", f"webhook_id={hook.id}".encode(), form=True))

    def _fire(self, topic: str, oid: int) -> None:
        """Queue ``topic`` for every active webhook on it (called with the lock held)."""
        hooks = [h for h in self.webhooks.values() if h.topic == topic and h.status == "active"]
        if not hooks:
            return
        import json

        body = json.dumps({"id": oid} if topic == "order.deleted" else self.view(oid), separators=(",", ":")).encode()
        for hook in hooks:
            self._enqueue(_Job(hook.id, topic, body))

    def _enqueue(self, job: _Job) -> None:
        with self.lock:
            self._busy += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="woo-webhooks", daemon=True)
                self._worker.start()
        self._jobs.put(job)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until every queued delivery was attempted (tests)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _run(self) -> None:
        with httpx.Client(timeout=self.delivery_timeout) as http:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                try:
                    self._deliver(http, job)
                finally:
                    with self._idle:
                        self._busy -= 1
                        self._idle.notify_all()

    def _deliver(self, http: httpx.Client, job: _Job) -> None:
        with self.lock:
            hook = self.webhooks.get(job.hook_id)
            if hook is None or (hook.status != "active" and not job.form):
                self.record("webhook_not_sent", str(job.hook_id), topic=job.topic,
                            why="deleted" if hook is None else hook.status)  # fmt: skip
                return
            url, secret, hook_id = hook.delivery_url, hook.secret, hook.id
            delivery_id = hashlib.md5(f"{hook_id}{int(self.clock().timestamp())}".encode()).hexdigest()
        headers = {"User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)"}
        if job.form:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            resource, _, event = job.topic.partition(".")
            headers.update({
                "Content-Type": "application/json", "X-WC-Webhook-Source": f"{self.site_url.rstrip('/')}/",
                "X-WC-Webhook-Topic": job.topic, "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event,
                "X-WC-Webhook-Signature": sign(secret, job.body), "X-WC-Webhook-ID": str(hook_id),
                "X-WC-Webhook-Delivery-ID": delivery_id,
            })  # fmt: skip
        status: int | None = None
        error = ""
        try:
            status = http.post(url, content=job.body, headers=headers).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        with self.lock:
            kind = "webhook_ping" if job.form else "webhook_delivery"
            self.record(kind, str(hook_id), topic=job.topic, status=status, ok=ok, error=error,
                        delivery_id=delivery_id, order=_order_of(job.body) if not job.form else None)  # fmt: skip
            if job.form:
                return  # a failed ping is reported to whoever created the webhook, not counted
            if ok:
                hook.failures = 0
                return
            hook.failures += 1
            if hook.failures >= self.max_failures and hook.status == "active":
                hook.status = "disabled"
                hook.modified = self.now()
                self.record("webhook_disabled", str(hook_id), failures=hook.failures)

    def control_extra(self) -> dict[str, Any]:
        with self.lock:
            return {
                "orders": len(self.orders),
                "webhooks": [
                    {"id": h.id, "topic": h.topic, "status": h.status, "failures": h.failures}
                    for h in self.webhooks.values()
                ],
            }

    # --- OAuth nonces ---------------------------------------------------------------------------------
    def use_nonce(self, key: str, nonce: str, timestamp: int, window: int) -> bool:
        """Remember ``nonce``; False when it was used before (within the window it is kept)."""
        with self.lock:
            seen = self.nonces.setdefault(key, {})
            now = int(self.clock().timestamp())
            for old in [n for n, ts in seen.items() if ts < now - window]:
                del seen[old]
            if nonce in seen:
                return False
            seen[nonce] = timestamp
            return True

    def generate(self, count: int) -> None:
        """``count`` orders with a spread of statuses and modification times (oldest first)."""
        mix = ["processing"] * 6 + ["completed", "on-hold", "pending", "cancelled"]
        start = self.now() - timedelta(days=3)
        step = timedelta(days=3) / max(count, 1)  # spread over the last three days, never in the future
        for i in range(count):
            order = self.add_order(status=self.random.choice(mix))
            when = (start + step * i).replace(microsecond=0)
            with self.lock:
                self.orders[order["id"]]["date_created"] = when
                self.orders[order["id"]]["date_modified"] = min(
                    when + timedelta(seconds=self.random.randint(0, 400)), self.now() - timedelta(seconds=1)
                )


def _bad(name: str, message: str) -> Refused:
    return Refused(400, "rest_invalid_param", f"Invalid parameter(s): {name}", params={name: message})


def _order_of(body: bytes) -> int | None:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("id") if isinstance(data, dict) else None
