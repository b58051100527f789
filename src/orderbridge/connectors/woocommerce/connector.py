"""The WooCommerce channel: declaration, channel rules and :class:`WooCommerceChannel`.

- ``list_changed(since)``: ``GET /orders?modified_after=…&dates_are_gmt=true&per_page=…``. REST v3
  cannot sort by modification time (``orderby`` takes ``date, id, include, title, slug``), and a
  cursor taken from pages sorted by anything else would be unsafe: a batch committed early could
  carry a newer time than an order still unread on a later page. So the connector reads a whole
  **window** of modification times (``modified_after`` … ``modified_before``, paged by ``id`` ascending,
  ``X-WP-TotalPages`` and the ``Link`` header's ``next``), then yields it sorted by
  ``date_modified_gmt`` in batches whose ``cursor_after`` is the newest time in each batch — every
  order of the window with an older time was in an earlier batch. A window holding more than
  ``window_max_orders`` (read from ``X-WP-Total`` with a one-order probe) is halved, so memory stays
  bounded on a first sync of a large store. The window ends one second after *now*, exclusive: an
  order changed while the window is read is listed again by the next sync (WooCommerce dates have
  second precision and ``modified_after`` is exclusive, so the lower bound is ``since`` minus one
  second — the boundary second is listed again, the hub deduplicates).
- ``fetch_order``: ``GET /orders/{id}``. Audits (``list_order_stamps``): the same window listing with
  ``_fields=id,number,date_modified_gmt``, page by page.
- Pushes go through the planner (``PUSH_FULFILMENT`` with :data:`RULES`): :meth:`remote_state`
  reads the order and its notes; :meth:`perform` makes one planned call — SHIP and CANCEL are
  ``PUT /orders/{id}`` with the status, TRACKING is ``POST /orders/{id}/notes``. None of them has an
  idempotency key, so a lost answer is ``OutcomeUnknown`` and the hub plans again from a fresh
  :meth:`remote_state` (a note already posted shows as a shipment and is never posted twice).
  :meth:`perform_many` sends many status moves as ``POST /orders/batch`` (at most 100 per request),
  for a caller that pushes many orders at once (decision 208).
- Webhooks: ``/webhooks`` (list, create with the connection's ``webhook_secret``, ``PUT status:
  active`` to re-enable one WooCommerce disabled, delete). :meth:`list_webhooks` reports a disabled
  or paused webhook with ``active=False``, which the hub's subscription check treats as missing:
  it re-enables it (:meth:`register_webhooks`) and raises one alert; the next audit recovers what
  WooCommerce never redelivers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from orderbridge.connectors.base import (
    Capability,
    ChannelBatch,
    ChannelRecord,
    CredentialField,
    Declaration,
    Role,
    Setting,
    SettingScope,
    StampBatch,
    UnreadableOrder,
    WebhookSubscription,
)
from orderbridge.connectors.woocommerce.client import SIGNATURE_METHODS, WooClient, WooResponse, trusted_client
from orderbridge.connectors.woocommerce.mapper import (
    STATUSES,
    format_gmt,
    order_from_json,
    order_id,
    parse_gmt,
    remote_state,
    stamp,
    tracking_note,
)
from orderbridge.connectors.woocommerce.webhooks import ADAPTER
from orderbridge.domain.channel_rules import (
    ActionSpec,
    ChannelAction,
    ChannelRules,
    Outcome,
    RemoteOrderState,
    TrackingField,
    Transition,
)
from orderbridge.domain.push_plan import PlannedCall
from orderbridge.errors import (
    FixConfiguration,
    HoldOrder,
    NotFound,
    OrderBridgeError,
    OutcomeUnknown,
    SettingsError,
)
from orderbridge.fixes import update_credentials

A = ChannelAction
S = frozenset
BACK_OFFICE = "the WooCommerce admin (WooCommerce › Orders › the order)"

#: WooCommerce's order life (issue #16). The store moves most of it itself (payments, the
#: unpaid-order timeout, refunds made in the admin); the hub moves an order only to ``completed``
#: (whole orders: WooCommerce has no partial shipment) and ``cancelled``, and gives tracking as a note.
RULES = ChannelRules(
    states=STATUSES,
    # a person can reopen a cancelled order (or restore one from the trash) in the admin; the hub never
    # waits for that — a push is held, and planned again from the order's state once it moves
    terminal=S({"cancelled", "refunded", "trash"}),
    transitions=(
        Transition("checkout-draft", "pending", None, "the customer places the order"),
        Transition("checkout-draft", "processing", None, "the customer places and pays the order"),
        Transition("pending", "processing", None, "the payment is received"),
        Transition("pending", "on-hold", None, "an offline payment (bank transfer, cheque) is awaited"),
        Transition("pending", "failed", None, "the payment is declined"),
        Transition("pending", "cancelled", A.CANCEL),
        Transition("pending", "cancelled", None, "the unpaid-order timeout (Hold stock) expires"),
        Transition("failed", "processing", None, "the customer pays again"),
        Transition("failed", "cancelled", None, "the shop cancels it in the admin"),
        Transition("on-hold", "processing", None, "the shop confirms the payment"),
        Transition("on-hold", "cancelled", A.CANCEL),
        Transition("processing", "completed", A.SHIP),
        Transition("processing", "cancelled", A.CANCEL),
        Transition("processing", "refunded", None, "a full refund in the admin"),
        Transition("completed", "refunded", None, "a full refund in the admin"),
    ),
    actions={
        A.SHIP: ActionSpec(
            A.SHIP, "PUT /orders/{id} status=completed", S({"processing"}), "completed",
            requires=(TrackingField.NUMBER,),
            note="the whole order only (WooCommerce keeps no shipped quantities); the tracking goes in a note first",
        ),
        A.TRACKING: ActionSpec(
            A.TRACKING, "POST /orders/{id}/notes", S({"processing", "on-hold", "completed"}), None,
            requires=(TrackingField.NUMBER,),
            note="a customer note 'Shipped with <carrier>: tracking number <n> (<url>)'; read back as the order's "
            "shipments; a reshipment adds a new note naming the tracking it replaces",
        ),
        A.CANCEL: ActionSpec(
            A.CANCEL, "PUT /orders/{id} status=cancelled", S({"pending", "processing", "on-hold"}), "cancelled",
        ),
    },
    reached={
        Outcome.SHIPPED: S({"completed"}),
        Outcome.ACCEPTED: S({"pending", "processing", "on-hold", "completed"}),
        Outcome.CANCELLED: S({"cancelled", "trash"}),
        Outcome.REFUNDED: S({"refunded"}),
    },
    idempotent=False,
    back_office=BACK_OFFICE,
    note=(
        "WooCommerce has no acceptance step (a placed order is taken) and no partial shipment: a partial "
        "shipment is held until the rest ships. Refunds are made in the admin (the REST refunds endpoint is "
        "not used: a refund there moves money through the payment gateway). Payments move orders on by "
        "themselves: a shipped order still pending or on-hold waits until it is processing."
    ),
)  # fmt: skip

DEFAULT_SETTINGS: dict[str, Any] = {
    "per_page": 100,
    "signature_method": "HMAC-SHA256",
    "ca_file": "",
    "customer_note": True,
    "window_max_orders": 5000,
}
SETTING_HELP: dict[str, str] = {
    "per_page": "orders per page (WooCommerce allows 1–100) and per batch handed to the hub",
    "signature_method": "OAuth 1.0a signature over plain HTTP: HMAC-SHA256 or HMAC-SHA1",
    "ca_file": "a PEM file of the store's certificate or CA to trust (a self-signed HTTPS store); empty: the "
    "system's trust store",
    "customer_note": "tracking notes are customer notes (WooCommerce e-mails them to the customer)",
    "window_max_orders": "the most orders one listing window may hold before it is halved (bounds memory)",
}
#: the kind's default download rule: orders in status processing (paid, not yet shipped)
DEFAULT_DOWNLOAD_RULES: dict[str, Any] = {"channel_states": ["processing"]}
BATCH_LIMIT = 100

DECLARATION = Declaration(
    kind="woocommerce",
    role=Role.CHANNEL,
    title="WooCommerce",
    capabilities=frozenset(
        {
            Capability.LIST_CHANGED,
            Capability.FETCH_ORDER,
            Capability.LIST_ORDER_STAMPS,
            Capability.WEBHOOKS,
            Capability.PUSH_FULFILMENT,
        }
    ),
    credentials=(
        CredentialField(
            "consumer_key", "REST API consumer key (WooCommerce › Settings › Advanced › REST API)", example="ck_…"
        ),
        CredentialField("consumer_secret", "REST API consumer secret of that key (read/write)", example="cs_…"),
        CredentialField(
            "webhook_secret",
            "the secret the hub's webhooks are created with and signed by; webhooks are refused without it",
            required=False,
            example="<a long random string>",
        ),
    ),
    settings=(
        *(Setting(name, SETTING_HELP[name], default) for name, default in DEFAULT_SETTINGS.items()),
        Setting(
            "download_rules",
            "which orders are taken; WooCommerce's default is status processing (paid, not shipped)",
            DEFAULT_DOWNLOAD_RULES,
            SettingScope.HUB,
        ),
    ),
    webhooks=ADAPTER,
    channel_rules=RULES,
    docs="docs/connectors/woocommerce.md",
)

#: one second: WooCommerce's date precision, and the overlap that makes exclusive bounds inclusive
SECOND = timedelta(seconds=1)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _floor(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(microsecond=0)


class WooCommerceChannel:
    """A WooCommerce store as an order channel (listing, audits, webhooks, planned pushes)."""

    declaration = DECLARATION
    webhook_topics: tuple[str, ...] = ADAPTER.topics

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key, secret = credentials.get("consumer_key"), credentials.get("consumer_secret")
        if not key or not secret:
            raise SettingsError(
                "the WooCommerce connection needs consumer_key and consumer_secret",
                hint="Create a REST API key with read/write access (WooCommerce › Settings › Advanced › REST API).",
                fix=update_credentials("Set the connection's WooCommerce consumer key and secret."),
            )
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise SettingsError(
                f"unknown WooCommerce setting(s): {', '.join(sorted(unknown))}",
                hint=f"Known settings: {', '.join(DEFAULT_SETTINGS)}",
            )
        self.settings = {**DEFAULT_SETTINGS, **settings}
        per_page = int(self.settings["per_page"])
        if not 1 <= per_page <= 100:
            raise SettingsError(f"per_page {per_page} is outside 1–100", hint="WooCommerce serves 1 to 100 per page.")
        if self.settings["signature_method"] not in SIGNATURE_METHODS:
            raise SettingsError(
                f"unknown signature_method {self.settings['signature_method']!r}",
                hint=f"Use one of {', '.join(SIGNATURE_METHODS)}.",
            )
        self.per_page = per_page
        self.window_max = max(per_page, int(self.settings["window_max_orders"]))
        self.webhook_secret = credentials.get("webhook_secret", "")
        self._own_http: httpx.Client | None = None
        if self.settings["ca_file"]:
            timeout = http.timeout if http is not None else httpx.Timeout(30.0)
            self._own_http = trusted_client(str(self.settings["ca_file"]), timeout.read or 30.0)
        elif http is None:
            self._own_http = httpx.Client(timeout=30.0)
        client = self._own_http or http
        assert client is not None
        self.client = WooClient(
            base_url, key, secret, http=client, sleep=sleep, signature_method=str(self.settings["signature_method"])
        )
        #: wall clock for the window's upper bound (aware UTC)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # --- Connector ------------------------------------------------------------------------------
    def check(self) -> str:
        found = self._get("/orders", {"per_page": 1, "_fields": "id"})
        total = found.headers.get("x-wp-total", "?")
        return f"WooCommerce store {self.client.site} ({total} orders, {self.client.auth_scheme} auth)"

    def close(self) -> None:
        if self._own_http is not None:
            self._own_http.close()

    def api_cost_spent(self) -> int:
        return self.client.requests

    # --- reading ----------------------------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> WooResponse:
        response = self.client.get(path, params)
        error = response.error
        if error is None:
            return response
        if error.status == 404:
            raise NotFound(f"WooCommerce: {error.describe()}", hint="Check the order id in the WooCommerce admin.")
        raise FixConfiguration(
            f"WooCommerce refused GET {path}: {error.describe()}",
            code="woocommerce_request_refused",
            hint="WooCommerce names what it refused; if it is a parameter, this version of the store may be "
            "older than REST API v3 expects.",
        )

    def _windows(self, since: datetime | None, until: datetime | None, fields: str | None) -> Iterator[dict[str, Any]]:
        """The listing parameters of each window of modification times in ``[since, until)`` (whole
        seconds), oldest first; a window holding over ``window_max_orders`` is halved first."""
        upper = _floor(until) if until is not None else _floor(self.clock()) + SECOND
        lower = _floor(since) if since is not None else self._oldest()
        pending = [(lower, upper)]
        while pending:
            low, high = pending.pop(0)
            params: dict[str, Any] = {
                "modified_after": format_gmt(low - SECOND),
                "modified_before": format_gmt(high),
                "dates_are_gmt": "true",
                "orderby": "id",
                "order": "asc",
            }
            if fields:
                params["_fields"] = fields
            if high - low > 2 * SECOND:
                probe = self._get("/orders", {**params, "per_page": 1, "_fields": "id"})
                if int(probe.headers.get("x-wp-total") or 0) > self.window_max:
                    middle = _floor(low + (high - low) / 2)
                    pending[:0] = [(low, middle), (middle, high)]
                    continue
            yield params

    def _oldest(self) -> datetime:
        """Where a first listing starts: the oldest order's creation (no order changed before it)."""
        found = self._get("/orders", {"orderby": "date", "order": "asc", "per_page": 1, "_fields": "date_created_gmt"})
        first = found.body[0] if isinstance(found.body, list) and found.body else None
        if not isinstance(first, dict):
            return EPOCH
        try:
            return _floor(parse_gmt(first.get("date_created_gmt"), "date_created_gmt"))
        except ValueError:
            return EPOCH

    def _pages(self, params: dict[str, Any]) -> Iterator[list[Any]]:
        page = 1
        while True:
            response = self._get("/orders", {**params, "page": page, "per_page": self.per_page})
            body = response.body if isinstance(response.body, list) else []
            yield body
            pages = int(response.headers.get("x-wp-totalpages") or 0)
            has_next = 'rel="next"' in response.headers.get("link", "")
            if not body or (page >= pages and not has_next):
                return
            page += 1

    def list_changed(self, since: datetime | None, until: datetime | None = None) -> Iterator[ChannelBatch]:
        upper = _floor(until) + SECOND if until is not None else None
        for params in self._windows(since, upper, None):
            yield from self._sorted_window(params)

    def _sorted_window(self, params: dict[str, Any]) -> Iterator[ChannelBatch]:
        """One window read whole, then handed over oldest change first (only one window is held)."""
        records: dict[str, ChannelRecord] = {}
        no_id: list[ChannelRecord] = []  # refused by the hub and reported: never keyed, never merged
        requests = 0
        for page in self._pages(params):
            requests += 1
            for data in page:
                record = _record(data)
                if record is None:
                    continue
                if record.external_id:
                    records[record.external_id] = record  # listed twice (a page shifted): the later read
                else:
                    no_id.append(record)
        ordered = no_id + sorted(records.values(), key=lambda r: (r.updated_at or EPOCH, int(r.external_id)))
        for start in range(0, len(ordered), self.per_page):
            batch = ordered[start : start + self.per_page]
            newest = max((r.updated_at for r in batch if r.updated_at is not None), default=None)
            yield ChannelBatch(batch, cursor_after=newest, cost=requests if start == 0 else 0)

    def fetch_order(self, external_id: str) -> ChannelRecord:
        response = self._get(f"/orders/{order_id(external_id)}")
        return order_from_json(response.body)

    def list_order_stamps(self, since: datetime, until: datetime) -> Iterator[StampBatch]:
        """Every order modified in ``[since, until]`` (widened to whole seconds), one batch per page."""
        for params in self._windows(since, _floor(until) + 2 * SECOND, "id,number,date_modified_gmt"):
            for page in self._pages(params):
                yield StampBatch([s for data in page if isinstance(data, dict) and (s := stamp(data)) is not None])

    # --- pushes (through the planner) -------------------------------------------------------------------
    def admin_url(self, external_id: str) -> str:
        return f"{self.client.site}/wp-admin/post.php?post={external_id}&action=edit"

    def remote_state(self, external_id: str) -> RemoteOrderState:
        oid = order_id(external_id)
        try:
            order = self._get(f"/orders/{oid}").body
        except NotFound as exc:
            raise HoldOrder(
                f"WooCommerce no longer has order {oid}",
                code="channel_rejected",
                hint="The order was deleted in WooCommerce; nothing can be pushed to it.",
            ) from exc
        notes = self._get(f"/orders/{oid}/notes").body
        return remote_state(order, notes if isinstance(notes, list) else [], self.admin_url(oid))

    def perform(self, external_id: str, call: PlannedCall) -> str:
        oid = order_id(external_id)
        if call.action is A.TRACKING:
            if call.tracking is None:
                raise HoldOrder("a tracking note needs the tracking", code="shipping_data_missing")
            replaces = None
            if call.shipment_id:
                replaces = self._replaced_number(oid, call.shipment_id)
            body = {
                "note": tracking_note(call.tracking, replaces),
                "customer_note": bool(self.settings["customer_note"]),
            }
            response = self.client.write("POST", f"/orders/{oid}/notes", body)
            self._refused(response, call)
            return str(response.body["id"])
        status = _STATUS_OF.get(call.action)
        if status is None:
            raise HoldOrder(
                f"WooCommerce's API does not offer {call.action.value}",
                code="action_not_supported",
                hint=f"Do it by hand in {BACK_OFFICE}.",
            )
        response = self.client.write("PUT", f"/orders/{oid}", {"status": status})
        self._refused(response, call)
        return oid

    def perform_many(self, calls: Sequence[tuple[str, PlannedCall]]) -> list[str | OrderBridgeError]:
        """Status moves (SHIP, CANCEL) of many orders in ``POST /orders/batch`` requests of at most
        100; any other call is made one by one. One result per call, in order: the order id, or the
        error for that order alone (a lost answer: ``OutcomeUnknown`` for every order of the request)."""
        results: list[str | OrderBridgeError | None] = [None] * len(calls)
        moves = [(i, order_id(eid), c) for i, (eid, c) in enumerate(calls) if c.action in _STATUS_OF]
        for i, (eid, c) in enumerate(calls):
            if c.action not in _STATUS_OF:
                try:
                    results[i] = self.perform(eid, c)
                except OrderBridgeError as exc:
                    results[i] = exc
        for start in range(0, len(moves), BATCH_LIMIT):
            chunk = moves[start : start + BATCH_LIMIT]
            body = {"update": [{"id": int(oid), "status": _STATUS_OF[c.action]} for _, oid, c in chunk]}
            try:
                response = self.client.write("POST", "/orders/batch", body)
            except OrderBridgeError as exc:
                for i, _oid, _c in chunk:
                    results[i] = exc
                continue
            error = response.error
            updated = response.body.get("update", []) if isinstance(response.body, dict) else []
            answers: list[Any] = [*updated[: len(chunk)], *[None] * (len(chunk) - len(updated))]
            for (i, oid, c), item in zip(chunk, answers, strict=True):
                if error is not None or not isinstance(item, dict):
                    results[i] = _rejected(c, error.describe() if error else "no answer for this order in the batch")
                elif isinstance(item.get("error"), dict):
                    e = item["error"]
                    results[i] = _rejected(c, f"{e.get('message')} ({e.get('code')})")
                else:
                    results[i] = oid
        return [r if r is not None else OutcomeUnknown("no answer") for r in results]

    def _replaced_number(self, oid: str, note_id: str) -> str | None:
        state = self.remote_state(oid)
        return next((s.tracking_number for s in state.shipments if s.id == note_id), None)

    @staticmethod
    def _refused(response: WooResponse, call: PlannedCall) -> None:
        error = response.error
        if error is not None:
            raise _rejected(call, error.describe())

    # --- webhooks -----------------------------------------------------------------------------------
    def _hooks(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self._get("/webhooks", {"per_page": 100, "page": page})
            body = response.body if isinstance(response.body, list) else []
            found.extend(h for h in body if isinstance(h, dict))
            if page >= int(response.headers.get("x-wp-totalpages") or 1) or not body:
                return found
            page += 1

    def list_webhooks(self) -> list[WebhookSubscription]:
        """The store's webhooks on order topics (disabled and paused ones with ``active=False``)."""
        return [_subscription(h) for h in self._hooks() if h.get("topic") in self.webhook_topics]

    def register_webhooks(self, address: str) -> list[WebhookSubscription]:
        """One active webhook per topic to ``address``: creates the missing ones (with the connection's
        webhook secret) and re-enables the ones WooCommerce disabled."""
        if not self.webhook_secret:
            raise SettingsError(
                "the WooCommerce connection has no webhook_secret: its webhooks could not be verified",
                hint="Set the connection's webhook_secret credential (any long random string).",
            )
        have = {h["topic"]: h for h in self._hooks() if h.get("delivery_url") == address}
        out: list[WebhookSubscription] = []
        for topic in self.webhook_topics:
            hook = have.get(topic)
            if hook is None:
                body = {"name": f"OrderBridge {topic}", "topic": topic, "delivery_url": address,
                        "secret": self.webhook_secret, "status": "active"}  # fmt: skip
                response = self.client.write("POST", "/webhooks", body)
            elif hook.get("status") != "active":
                response = self.client.write("PUT", f"/webhooks/{hook['id']}", {"status": "active"})
            else:
                out.append(_subscription(hook))
                continue
            if response.error is not None:
                raise FixConfiguration(
                    f"WooCommerce refused the {topic} webhook for {address}: {response.error.describe()}",
                    code="woocommerce_webhook_rejected",
                    hint="Check that the REST API key has read/write access and that the store can reach the "
                    "hub's public_url.",
                )
            out.append(_subscription(response.body))
        return out

    def remove_webhooks(self, address: str | None = None) -> int:
        removed = 0
        for hook in self._hooks():
            if hook.get("topic") not in self.webhook_topics:
                continue
            if address is not None and hook.get("delivery_url") != address:
                continue
            response = self.client.write("DELETE", f"/webhooks/{hook['id']}?force=true", None)
            if response.error is None:
                removed += 1
        return removed


_STATUS_OF = {A.SHIP: "completed", A.CANCEL: "cancelled"}


def _rejected(call: PlannedCall, message: str) -> HoldOrder:
    return HoldOrder(
        f"WooCommerce refused {call.call}: {message}",
        code="channel_rejected",
        hint="Correct what WooCommerce names in its admin; the push is planned again from the order's state there.",
    )


def _record(data: Any) -> ChannelRecord | None:
    if not isinstance(data, dict):
        return None
    try:
        return order_from_json(data)
    except OrderBridgeError as exc:  # no usable id: the hub could not store it under one
        return UnreadableOrder("", str(data.get("number") or ""), None, str(exc), dict(data))


def _subscription(hook: Mapping[str, Any]) -> WebhookSubscription:
    return WebhookSubscription(
        id=str(hook.get("id")),
        topic=str(hook.get("topic")),
        address=str(hook.get("delivery_url")),
        active=hook.get("status") == "active",
    )
