"""The Shopify channel: declaration and :class:`ShopifyChannel` (list, fetch, push, webhooks, audit).

Reads use the GraphQL Admin API only (REST is legacy for new apps since 2024-10):

- ``list_changed(since)``: ``orders(sortKey: UPDATED_AT, query: "updated_at:>='…'")`` pages,
  oldest update first; each page is one :class:`ChannelBatch` whose ``cursor_after`` is the newest
  ``updatedAt`` in it. The ``>=`` bound makes consecutive runs overlap on the boundary second,
  which is deliberate: the hub deduplicates, and a strict ``>`` could skip an order updated in the
  same second as the cursor. The page size is computed from the query's cost so that every request
  fits ``max_query_cost``.
- ``list_changed(None)`` with ``bulk_backfill``: a bulk operation (no cost limit, one request for
  the whole store), polled until done, then the JSONL is streamed and children reassembled via
  ``__parentId``. The export is not sorted by update time, so only the last batch carries a cursor:
  the bulk operation's creation time (everything updated later is picked up incrementally).
  Shopify runs one bulk query per app and shop and keeps one whose requester died, so the slot is
  read (``currentBulkOperation``) before a start and after any start that is refused or whose
  answer is lost: this connector's own export (running, or completed within the hour) is adopted,
  another query's is cancelled and waited for, and the start itself is never re-sent blindly;
  what cannot be settled in bounded time is :class:`BulkOperationBusy` (decision 52).
- Orders with more lines than ``lines_per_order_hint`` have their remaining lines paged in.
- Webhooks (``WebhookChannel``): ``webhookSubscriptionCreate``/``Delete`` and
  ``webhookSubscriptions``. ``register_webhooks`` lists first and creates only the missing topics,
  so calling it at every start is safe; Shopify's "already been taken" (a concurrent register won
  the race) counts as success. Subscription ids are kept as GIDs (what ``Delete`` takes).
- Fulfilments: ``push_fulfilment`` reads the order's fulfilments and fulfilment orders, returns an
  existing fulfilment with the same tracking number, lines and quantities, else spreads the lines
  over the open fulfilment order lines and calls ``fulfillmentCreate`` — which has no idempotency
  key, so it is sent ``idempotent=False``: a lost answer is settled by reading the fulfilments again
  (``find_fulfilment``), never by sending it again; still unsettled, it is ``OutcomeUnknown`` for
  the hub to settle later (decision 50). A request without lines is refused, never widened to the
  whole order (decision 49).
- Audits (``AuditableChannel``): ``list_order_stamps`` asks ``orders`` for ``id legacyResourceId
  name updatedAt`` only — cost 1 per order, so a page holds 250 (Shopify's maximum) under any
  ``max_query_cost`` ≥ 252, and 100,000 orders take 400 requests. The window bounds are widened to
  whole seconds (GraphQL search has second precision): an order at the edge is listed rather than
  missed, and listing it costs an audit nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import httpx
import structlog
from graphql import GraphQLError, parse, print_ast

from orderbridge.connectors.base import (
    ApiVersionNotice,
    Capability,
    ChannelBatch,
    ChannelRecord,
    CredentialField,
    Declaration,
    FulfilmentLine,
    FulfilmentRequest,
    OrderStamp,
    Role,
    Setting,
    SettingScope,
    StampBatch,
    WebhookSubscription,
)
from orderbridge.connectors.shopify.client import API_VERSION, ShopifyClient, estimate_cost
from orderbridge.connectors.shopify.mapper import (
    ORDER_GID,
    BulkExportError,
    is_bulk_child,
    legacy_id,
    order_from_bulk,
    order_from_graphql,
    order_id,
    parse_time,
)
from orderbridge.connectors.shopify.webhooks import ADAPTER, ENUM_TO_TOPIC, TOPIC_TO_ENUM
from orderbridge.domain.channel_rules import (
    ActionSpec,
    ChannelAction,
    ChannelRules,
    Outcome,
    RemoteLine,
    RemoteOrderState,
    RemoteShipment,
    TrackingField,
    Transition,
)
from orderbridge.domain.push_plan import PlannedCall
from orderbridge.errors import (
    FixConfiguration,
    HoldOrder,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    RemoteUnavailable,
    RetryLater,
    SettingsError,
    UnusableId,
)
from orderbridge.fixes import update_credentials
from orderbridge.seams import crashpoint

log = structlog.get_logger("orderbridge.shopify")

DEFAULT_SETTINGS: dict[str, Any] = {
    "api_version": API_VERSION,
    "bulk_backfill": True,
    "bulk_batch_size": 250,
    "bulk_poll_interval": 1.0,
    "max_query_cost": 1000,
    "lines_per_order_hint": 5,
    "max_page_size": 250,
}

#: what each of :data:`DEFAULT_SETTINGS` does (``connections kinds``, docs/connectors/shopify.md)
SETTING_HELP: dict[str, str] = {
    "api_version": "the Admin API version every request names (…/admin/api/<version>/graphql.json)",
    "bulk_backfill": "a first sync (no cursor) reads the whole store with one bulk operation",
    "bulk_batch_size": "orders per batch (one transaction) while a bulk export is read",
    "bulk_poll_interval": "the longest wait in seconds between polls of a running bulk operation",
    "max_query_cost": "the query cost a GraphQL page must fit (the plan's bucket size)",
    "lines_per_order_hint": "lines read with each order in a page; an order with more pages in the rest",
    "max_page_size": "the most orders a GraphQL page asks for",
}

#: seed 000: a 3PL takes Shopify orders that are paid, unfulfilled or partially fulfilled, open and
#: not test orders (each a setting of the connection; an order they exclude is skipped with a reason)
DEFAULT_DOWNLOAD_RULES: dict[str, Any] = {
    "financial_statuses": ["paid"],
    "fulfillment_statuses": ["unfulfilled", "partial"],
    "include_closed": False,
    "include_test": False,
}

_A = ChannelAction
_OPEN = frozenset({"UNFULFILLED", "PARTIALLY_FULFILLED"})
#: Shopify's order as the push planner sees it (issue #16): the order's ``displayFulfillmentStatus``
#: (``CANCELLED`` when ``cancelledAt`` is set). Shopify has no acceptance: an order is accepted when
#: it is placed. A fulfilment (``fulfillmentCreate``) carries its tracking and names its lines, so
#: partial shipments are native; a reshipment replaces the tracking of the fulfilment it replaces.
#: ``orderCancel`` refuses an order with fulfilments (api-facts), so only an unfulfilled order is
#: cancelled through the API. Refunds (``refundCreate``) are not modelled by the sandbox and not
#: declared: a refund intent is held ``action_not_supported``, naming Shopify admin.
CHANNEL_RULES = ChannelRules(
    states=("UNFULFILLED", "PARTIALLY_FULFILLED", "FULFILLED", "CANCELLED"),
    terminal=frozenset({"CANCELLED"}),
    transitions=(
        Transition("UNFULFILLED", "PARTIALLY_FULFILLED", _A.SHIP, "a fulfilment of some of the lines"),
        Transition("UNFULFILLED", "FULFILLED", _A.SHIP),
        Transition("PARTIALLY_FULFILLED", "FULFILLED", _A.SHIP, "the fulfilment of the last open lines"),
        Transition("UNFULFILLED", "CANCELLED", _A.CANCEL),
    ),
    actions={
        _A.SHIP: ActionSpec(
            _A.SHIP,
            "fulfillmentCreate",
            _OPEN,
            "FULFILLED",
            # Shopify takes a fulfilment without tracking; OrderBridge never sends one (the customer
            # would be told nothing), and the hub checks the 3PL's shipment for both first
            requires=(TrackingField.NUMBER, TrackingField.CARRIER),
            lines=True,
            with_tracking=True,
            note="creates a fulfilment of the shipped lines and quantities with its tracking "
            "(number, company, URL); no idempotency key: the order's fulfilments are read first",
        ),
        _A.TRACKING: ActionSpec(
            _A.TRACKING,
            "fulfillmentTrackingInfoUpdate",
            frozenset({"PARTIALLY_FULFILLED", "FULFILLED"}),
            requires=(TrackingField.NUMBER, TrackingField.CARRIER),
            note="replaces the tracking of an existing fulfilment (a reshipment after a voided label)",
        ),
        _A.CANCEL: ActionSpec(
            _A.CANCEL,
            "orderCancel",
            frozenset({"UNFULFILLED"}),
            "CANCELLED",
            note="cancels the whole order (restocked, not refunded); refused once the order has a fulfilment",
        ),
    },
    reached={
        Outcome.SHIPPED: frozenset({"FULFILLED"}),
        Outcome.ACCEPTED: frozenset({"UNFULFILLED", "PARTIALLY_FULFILLED", "FULFILLED"}),
        Outcome.CANCELLED: frozenset({"CANCELLED"}),
    },
    back_office="Shopify admin, Orders › the order (More actions › Cancel order; Refund)",
    note="Shopify has no acceptance step and no deadlines. Cancelling an order with fulfilments, "
    "cancelling some lines (an order edit) and refunds are done in Shopify admin.",
)

DECLARATION = Declaration(
    kind="shopify",
    role=Role.CHANNEL,
    title="Shopify",
    capabilities=frozenset(
        {
            Capability.LIST_CHANGED,
            Capability.FETCH_ORDER,
            Capability.BULK_BACKFILL,
            Capability.PUSH_FULFILMENT,
            Capability.WEBHOOKS,
            Capability.LIST_ORDER_STAMPS,
        }
    ),
    credentials=(
        CredentialField("access_token", "Admin API access token of a custom app (shpat_…)", example="shpat_…"),
        CredentialField(
            "api_secret",
            "API secret key (client secret) of the app: verifies webhook signatures; webhooks are refused without it",
            required=False,
            example="<the app's API secret key>",
        ),
    ),
    settings=(
        *(Setting(name, SETTING_HELP.get(name, ""), default) for name, default in DEFAULT_SETTINGS.items()),
        Setting(
            "download_rules",
            "which orders are taken; Shopify's default is seed 000's: paid, unfulfilled or partial, open, not test",
            DEFAULT_DOWNLOAD_RULES,
            SettingScope.HUB,
        ),
        Setting(
            "shop_domain",
            "the shop's *.myshopify.com host, which a webhook's X-Shopify-Shop-Domain must name "
            "(default: the base URL's host when it is one)",
            "",
            SettingScope.HUB,
        ),
    ),
    webhooks=ADAPTER,
    channel_rules=CHANNEL_RULES,
    docs="docs/connectors/shopify.md",
)

ORDER_FIELDS = """
  id legacyResourceId name email createdAt updatedAt processedAt cancelledAt closedAt test
  displayFinancialStatus displayFulfillmentStatus currencyCode
  subtotalPriceSet { shopMoney { amount currencyCode } }
  totalPriceSet { shopMoney { amount currencyCode } }
  totalTaxSet { shopMoney { amount currencyCode } }
  totalDiscountsSet { shopMoney { amount currencyCode } }
  totalRefundedSet { shopMoney { amount currencyCode } }
  tags note discountCodes
  customAttributes { key value }
  shippingAddress { name company address1 address2 city zip provinceCode countryCodeV2 phone }
  billingAddress { name company address1 address2 city zip provinceCode countryCodeV2 phone }
  customer { id email firstName lastName }
  taxLines { title rate priceSet { shopMoney { amount } } }
"""
LINE_FIELDS = """
  id sku name quantity unfulfilledQuantity currentQuantity variant { id } product { id }
  originalUnitPriceSet { shopMoney { amount currencyCode } } customAttributes { key value }
"""
SHIPPING_FIELDS = "id title code source originalPriceSet { shopMoney { amount currencyCode } }"


def _order_selection(lines: int) -> str:
    return (
        f"{ORDER_FIELDS} shippingLines(first: 5) {{ nodes {{ {SHIPPING_FIELDS} }} }}"
        f" lineItems(first: {lines}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE_FIELDS} }} }}"
    )


def list_query(lines: int) -> str:
    return (
        "query Orders($first: Int!, $after: String, $query: String) {"
        " orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {"
        f" pageInfo {{ hasNextPage endCursor }} nodes {{ {_order_selection(lines)} }} }} }}"
    )


ORDER_QUERY = f"query Order($id: ID!) {{ order(id: $id) {{ {_order_selection(50)} }} }}"
MORE_LINES_QUERY = (
    "query MoreLines($id: ID!, $after: String) { order(id: $id) {"
    f" lineItems(first: 100, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE_FIELDS} }} }} }} }}"
)
#: children of a bulk export are flattened into lines of their own: ``__typename`` says which
#: connection each belongs to (an id may be null — ``ShippingLine.id`` is nullable)
BULK_QUERY = (
    "{ orders { edges { node { "
    f"{ORDER_FIELDS} shippingLines {{ edges {{ node {{ __typename {SHIPPING_FIELDS} }} }} }}"
    f" lineItems {{ edges {{ node {{ __typename {LINE_FIELDS} }} }} }} }} }} }} }}"
)
BULK_RUN = (
    "mutation Bulk($query: String!) { bulkOperationRunQuery(query: $query) {"
    " bulkOperation { id status errorCode objectCount url createdAt completedAt query }"
    " userErrors { field message code } } }"
)
BULK_POLL = "{ currentBulkOperation { id status errorCode objectCount url createdAt completedAt query } }"
BULK_CANCEL = (
    "mutation CancelBulk($id: ID!) { bulkOperationCancel(id: $id) {"
    " bulkOperation { id status } userErrors { field message } } }"
)
#: statuses in which a bulk query holds the shop's one slot for this app
BULK_BUSY = frozenset({"CREATED", "RUNNING", "CANCELING"})
#: a COMPLETED export of BULK_QUERY younger than this is adopted rather than run again
BULK_ADOPT_COMPLETED_WITHIN = timedelta(hours=1)
#: look at the slot, decide, act — at most this many times in one sync
BULK_SETTLE_ROUNDS = 3
#: how long (seconds) one sync waits for a cancelled export to let go of the slot
BULK_CANCEL_WAIT_S = 60.0
FULFILLMENT_ORDERS_QUERY = (
    "query FOs($id: ID!) { order(id: $id) { id fulfillments(first: 20) { id status trackingInfo(first: 5) { number }"
    " fulfillmentLineItems(first: 50) { nodes { quantity lineItem { id } } } }"
    " fulfillmentOrders(first: 5) { nodes { id status"
    " lineItems(first: 50) { nodes { id remainingQuantity lineItem { id } } } } } } }"
)
FULFILLMENT_CREATE = (
    "mutation Fulfil($fulfillment: FulfillmentInput!) { fulfillmentCreate(fulfillment: $fulfillment) {"
    " fulfillment { id status trackingInfo { number company url } } userErrors { field message } } }"
)
TRACKING_UPDATE = (
    "mutation Track($id: ID!, $tracking: FulfillmentTrackingInput!, $notify: Boolean) {"
    " fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $tracking, notifyCustomer: $notify) {"
    " fulfillment { id status trackingInfo { number company url } } userErrors { field message } } }"
)
REMOTE_STATE_QUERY = (
    "query State($id: ID!) { order(id: $id) { id legacyResourceId cancelledAt displayFulfillmentStatus"
    " currencyCode totalRefundedSet { shopMoney { amount currencyCode } }"
    " lineItems(first: 250) { nodes { id quantity unfulfilledQuantity } }"
    " fulfillments(first: 250) { id status trackingInfo(first: 5) { number company }"
    " fulfillmentLineItems(first: 250) { nodes { quantity lineItem { id } } } } } }"
)
ORDER_CANCEL = (
    "mutation Cancel($id: ID!, $reason: OrderCancelReason!, $note: String) {"
    " orderCancel(orderId: $id, reason: $reason, restock: true, notifyCustomer: false, staffNote: $note) {"
    " job { id done } orderCancelUserErrors { field message code } } }"
)
SHOP_QUERY = "{ shop { name } currentAppInstallation { accessScopes { handle } } }"
#: the access scopes the hub's use of a shop needs: orders read (sync, audits, webhooks), and one of
#: the fulfilment-order scopes ``fulfillmentCreate`` accepts (pushes); (any of these, what it is for)
NEEDED_SCOPES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("read_orders",), "reading orders"),
    (
        (
            "write_merchant_managed_fulfillment_orders",
            "write_assigned_fulfillment_orders",
            "write_third_party_fulfillment_orders",
        ),
        "pushing fulfilments",
    ),
)
STAMPS_QUERY = (
    "query Stamps($first: Int!, $after: String, $query: String) {"
    " orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {"
    " pageInfo { hasNextPage endCursor } nodes { id legacyResourceId name updatedAt } } }"
)
WEBHOOK_PAGE = 100
WEBHOOKS_QUERY = (
    "query Hooks($first: Int!, $after: String) { webhookSubscriptions(first: $first, after: $after) {"
    " pageInfo { hasNextPage endCursor }"
    " nodes { id topic endpoint { ... on WebhookHttpEndpoint { callbackUrl } } } } }"
)
WEBHOOK_CREATE = (
    "mutation Hook($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {"
    " webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {"
    " webhookSubscription { id topic endpoint { ... on WebhookHttpEndpoint { callbackUrl } } }"
    " userErrors { field message } } }"
)
WEBHOOK_DELETE = (
    "mutation Unhook($id: ID!) { webhookSubscriptionDelete(id: $id) {"
    " deletedWebhookSubscriptionId userErrors { field message } } }"
)
TAKEN = "already been taken"


class BulkOperationBusy(RetryLater):
    """Shopify's one bulk slot is held by an export this sync could neither adopt nor clear."""

    code = "shopify_bulk_busy"

    def __init__(self, operation_id: str | None, status: str | None, detail: str) -> None:
        super().__init__(
            f"Shopify's bulk export slot is busy: operation {operation_id or '(none)'} is "
            f"{status or 'unknown'} ({detail})",
            hint="The next sync looks again; if it stays busy, find what else uses this app's token "
            "(one bulk query per app and shop runs at a time).",
            retry_after=60.0,
        )
        self.operation_id = operation_id
        self.status = status


@lru_cache(maxsize=16)
def _canonical(query: str) -> str | None:
    """A GraphQL document printed canonically (whitespace, commas, layout do not count); None if
    it does not parse."""
    try:
        return print_ast(parse(query))
    except GraphQLError:
        return None


def _same_query(a: str | None, b: str) -> bool:
    return a is not None and (a == b or (_canonical(a) is not None and _canonical(a) == _canonical(b)))


def _rejected(message: str) -> HoldOrder:
    return HoldOrder(
        f"Shopify rejected the fulfilment: {message}",
        code="channel_rejected",
        hint="Correct what Shopify names (quantities, line ids, order state); the push is tried again "
        "when the shipment changes in the 3PL.",
    )


def _wanted(request: FulfilmentRequest) -> dict[str, int]:
    """The request's quantities by line (a line named twice is one line, summed)."""
    wanted: dict[str, int] = {}
    for line in request.lines:
        wanted[line.line_external_id] = wanted.get(line.line_external_id, 0) + line.quantity
    return wanted


def _existing_fulfilment(order: Mapping[str, Any], request: FulfilmentRequest) -> str | None:
    """The order's live fulfilment that is this request: the same tracking number *and* the same lines
    and quantities (a fulfilment with the tracking number but other lines is another shipment's)."""
    wanted = _wanted(request)
    for existing in order.get("fulfillments") or []:
        if existing.get("status") == "CANCELLED":
            continue
        if not any(t.get("number") == request.tracking_number for t in existing.get("trackingInfo") or []):
            continue
        lines: dict[str, int] = {}
        for item in _items(existing.get("fulfillmentLineItems")):
            key = legacy_id(item["lineItem"]["id"])
            lines[key] = lines.get(key, 0) + int(item.get("quantity") or 0)
        if lines == wanted:
            return legacy_id(existing["id"])
    return None


def _items(connection: Any) -> list[dict[str, Any]]:
    if not connection:
        return []
    if isinstance(connection, list):
        return connection
    return list(connection.get("nodes") or [edge["node"] for edge in connection.get("edges", [])])


def _subscription(node: Mapping[str, Any]) -> WebhookSubscription | None:
    """A GraphQL ``WebhookSubscription`` → ours; None for topics or endpoints we do not model."""
    topic = ENUM_TO_TOPIC.get(str(node.get("topic")))
    address = (node.get("endpoint") or {}).get("callbackUrl")
    if topic is None or not address:
        return None
    return WebhookSubscription(id=str(node["id"]), topic=topic, address=str(address))


def _stamp(node: Mapping[str, Any]) -> OrderStamp | None:
    """An audit stamp; None (logged) for an order with no usable id or update time — the hub could
    not have stored it under an id either (a sync refuses it and reports it), so there is nothing to
    compare, and one such order must not fail the audit of every other."""
    try:
        return OrderStamp(
            external_id=order_id(node.get("legacyResourceId") or node.get("id")),
            updated_at=parse_time(node.get("updatedAt"), "updatedAt"),
            number=str(node.get("name") or ""),
        )
    except (UnusableId, ValueError) as exc:
        log.warning("shopify.stamp_unusable", number=str(node.get("name") or ""), problem=str(exc))
        return None


def _search_time(when: datetime, *, round_up: bool) -> str:
    """A search bound at whole-second precision, widened outwards (UTC, ISO 8601)."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()}: pass an aware UTC time")
    when = when.astimezone(UTC)
    if when.microsecond:
        when = when.replace(microsecond=0) + (timedelta(seconds=1) if round_up else timedelta(0))
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class ShopifyChannel:
    """A Shopify store as an order channel (``ChannelConnector``, ``WebhookChannel``, ``AuditableChannel``)."""

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
        token = credentials.get("access_token")
        if not token:
            raise SettingsError(
                "the Shopify connection has no access_token",
                hint="Set the connection's access_token credential (the Admin API token, shpat_…).",
                fix=update_credentials(
                    "Set the connection's Admin API access token.", credential="access_token", example="shpat_…"
                ),
            )
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise SettingsError(
                f"unknown Shopify setting(s): {', '.join(sorted(unknown))}",
                hint=f"Known settings: {', '.join(DEFAULT_SETTINGS)}",
            )
        self.settings = {**DEFAULT_SETTINGS, **settings}
        self.base_url = base_url.rstrip("/")
        self.sleep = sleep
        #: wall clock for judging how recent a completed bulk export is (aware UTC)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.client = ShopifyClient(
            base_url, token, api_version=str(self.settings["api_version"]), http=http, sleep=sleep
        )
        self.lines_hint = max(1, int(self.settings["lines_per_order_hint"]))
        self.list_query = list_query(self.lines_hint)
        self.page_size = self._page_size()
        self.stamp_page_size = self._stamp_page_size()

    def _page_size(self) -> int:
        cap = int(self.settings["max_query_cost"])
        per_order = estimate_cost(self.list_query, {"first": 1}) - 2
        size = min(int(self.settings["max_page_size"]), (cap - 2) // max(per_order, 1))
        if size < 1:
            raise SettingsError(
                f"max_query_cost {cap} cannot fit one order (cost {per_order + 2})",
                hint="Raise max_query_cost or lower lines_per_order_hint.",
            )
        return size

    def _stamp_page_size(self) -> int:
        cap = int(self.settings["max_query_cost"])
        per_order = estimate_cost(STAMPS_QUERY, {"first": 1}) - 2
        size = min(250, int(self.settings["max_page_size"]), (cap - 2) // max(per_order, 1))
        if size < 1:
            raise SettingsError(
                f"max_query_cost {cap} cannot fit one order stamp (cost {per_order + 2})",
                hint="Raise max_query_cost.",
            )
        return size

    # --- Connector ------------------------------------------------------------------------------
    def check(self) -> str:
        """The shop answers this token, and the token holds the scopes the hub uses (a token that
        reads the shop but not its orders would pass a plain call and fail every sync)."""
        data = self.client.execute(SHOP_QUERY).data
        install = data.get("currentAppInstallation") or {}
        held = {str(s.get("handle")) for s in install.get("accessScopes") or [] if isinstance(s, Mapping)}
        lacking = [(any_of, why) for any_of, why in NEEDED_SCOPES if not held & set(any_of)]
        if lacking:
            wanted = "; ".join(f"{' or '.join(any_of)} (for {why})" for any_of, why in lacking)
            raise PermissionDenied(
                f"Shopify accepted the access token, but it lacks the scope(s) {wanted}; "
                f"it has: {', '.join(sorted(held)) or 'none'}",
                hint="Grant the missing scopes to the app in the Shopify admin (Apps → Develop apps → "
                "Configuration), reinstall it, then use its new access token.",
                fix=update_credentials("Renew the Shopify access token once the app has the scopes."),
            )
        return f"Shopify shop {data['shop']['name']!r}"

    def close(self) -> None:
        self.client.close()

    def api_version_notice(self) -> ApiVersionNotice | None:
        """``VersionedApi``: the deprecation the last Shopify response announced, if any."""
        found = self.client.deprecation
        if found is None:
            return None
        return ApiVersionNotice(
            setting="api_version",
            current=found.requested,
            recommended=API_VERSION,
            served=found.served,
            ends=found.ends,
            message=found.message(),
        )

    # --- ChannelConnector -----------------------------------------------------------------------
    def list_changed(self, since: datetime | None, until: datetime | None = None) -> Iterator[ChannelBatch]:
        if since is None and self.settings["bulk_backfill"]:
            yield from self._bulk_backfill()
            return
        terms = []
        if since is not None:
            terms.append(f"updated_at:>='{since.isoformat()}'")
        if until is not None:
            terms.append(f"updated_at:<='{until.isoformat()}'")
        after: str | None = None
        while True:
            variables = {"first": self.page_size, "after": after, "query": " ".join(terms) or None}
            result = self.client.execute(self.list_query, variables)
            orders = result.data["orders"]
            records = [self._complete(node) for node in orders["nodes"]]
            if records:
                # from the mapped records: a node whose updatedAt is unreadable is an UnreadableOrder
                # (held), never the end of the sync; a page of only such nodes does not move the cursor
                newest = max((r.updated_at for r in records if r.updated_at is not None), default=None)
                yield ChannelBatch(records, cursor_after=newest, cost=result.requested_cost)
            if not orders["pageInfo"]["hasNextPage"]:
                return
            after = orders["pageInfo"]["endCursor"]

    def _complete(self, node: dict[str, Any]) -> ChannelRecord:
        """Page in the remaining lines of an order with more than the hint, then map it."""
        lines = node.get("lineItems")
        # (an order without an id cannot be asked for its other lines: the mapper refuses it anyway)
        if isinstance(lines, dict) and lines.get("pageInfo", {}).get("hasNextPage") and node.get("id"):
            nodes = list(lines.get("nodes", []))
            after = lines["pageInfo"]["endCursor"]
            while after:
                more = self.client.execute(MORE_LINES_QUERY, {"id": node["id"], "after": after}).data
                page = (more.get("order") or {}).get("lineItems") or {"nodes": [], "pageInfo": {}}
                nodes.extend(page["nodes"])
                after = page["pageInfo"].get("endCursor") if page["pageInfo"].get("hasNextPage") else None
            node = {**node, "lineItems": {"nodes": nodes, "pageInfo": {"hasNextPage": False}}}
        return order_from_graphql(node)

    def api_cost_spent(self) -> int:
        return self.client.cost_spent

    def fetch_order(self, external_id: str) -> ChannelRecord:
        """The order's current version; ``external_id`` in either form (number or gid)."""
        data = self.client.execute(ORDER_QUERY, {"id": f"{ORDER_GID}{order_id(external_id)}"}).data
        node = data.get("order")
        if node is None:
            raise NotFound(f"Shopify has no order {external_id}", hint="Check the order id in the Shopify admin.")
        return self._complete(node)

    def _bulk_backfill(self) -> Iterator[ChannelBatch]:
        op = yield from self._bulk_export()
        op = yield from self._await_bulk(op)
        cursor = parse_time(op["createdAt"], "createdAt")
        if not op.get("url"):
            yield ChannelBatch([], cursor_after=cursor)
            return
        yield from self._read_bulk(op["url"], cursor)

    # Shopify runs one bulk query per app and shop, and keeps running one whose requester died or
    # lost the answer. So the slot is looked at before anything is started, and again whenever a
    # start is refused (OPERATION_IN_PROGRESS) or its answer is lost: a start is never re-sent
    # blindly. Empty batches while waiting let the hub renew its sync lease.
    def _bulk_export(self) -> Generator[ChannelBatch, None, dict[str, Any]]:
        """An export of BULK_QUERY to wait for: this hub's own adopted, or a fresh one."""
        lost: RemoteUnavailable | None = None
        for _ in range(BULK_SETTLE_ROUNDS):
            current = self._current_bulk()
            if self._adoptable(current):
                assert current is not None
                log.info("shopify.bulk.adopted", operation=current["id"], status=current["status"])
                return current
            if current is not None and current["status"] in BULK_BUSY:
                yield from self._clear_bulk(current)
            try:
                started = self._start_bulk()
            except RemoteUnavailable as exc:  # the answer is lost, not the outcome: look, then decide
                log.warning("shopify.bulk.start_unknown", error=str(exc))
                lost = exc
                continue
            if started is not None:
                return started
        current = self._current_bulk()
        if self._adoptable(current):
            assert current is not None
            return current
        if lost is not None and (current is None or current["status"] not in BULK_BUSY):
            raise lost  # the start never took: Shopify is failing, not busy
        raise BulkOperationBusy(
            None if current is None else str(current["id"]),
            None if current is None else str(current["status"]),
            f"{BULK_SETTLE_ROUNDS} attempts to start one",
        )

    def _current_bulk(self) -> dict[str, Any] | None:
        op: dict[str, Any] | None = self.client.execute(BULK_POLL).data.get("currentBulkOperation")
        return op

    def _adoptable(self, op: dict[str, Any] | None) -> bool:
        """This hub's export, running or completed recently enough that using it is cheaper than a new one."""
        if op is None or not _same_query(op.get("query"), BULK_QUERY):
            return False
        if op["status"] in ("CREATED", "RUNNING"):
            return True
        if op["status"] != "COMPLETED" or not op.get("completedAt"):
            return False
        return self.clock() - parse_time(op["completedAt"], "completedAt") <= BULK_ADOPT_COMPLETED_WITHIN

    def _start_bulk(self) -> dict[str, Any] | None:
        """Ask for a new export; None when Shopify says one is in progress (someone else's, or ours
        whose earlier answer was lost)."""
        run = self.client.execute(BULK_RUN, {"query": BULK_QUERY}, idempotent=False).data["bulkOperationRunQuery"]
        errors = run.get("userErrors") or []
        if any(e.get("code") == "OPERATION_IN_PROGRESS" or "in progress" in str(e.get("message")) for e in errors):
            log.info("shopify.bulk.in_progress", error="; ".join(str(e.get("message")) for e in errors))
            return None
        if errors or not run.get("bulkOperation"):
            raise RemoteUnavailable(
                "Shopify could not start the bulk export: " + "; ".join(str(e.get("message")) for e in errors),
                retry_after=60.0,
            )
        op: dict[str, Any] = run["bulkOperation"]
        log.info("shopify.bulk.started", operation=op["id"])
        crashpoint("bulk.after_start")
        return op

    def _clear_bulk(self, op: dict[str, Any]) -> Iterator[ChannelBatch]:
        """Cancel an export that is not this hub's (CREATED/RUNNING), then wait until the slot is
        free; an export already CANCELING is only waited for. Bounded: BulkOperationBusy."""
        refusal = ""
        if op["status"] != "CANCELING":
            payload = self.client.execute(BULK_CANCEL, {"id": op["id"]}).data["bulkOperationCancel"]
            # a refusal (it completed or was cancelled meanwhile) is settled by the next look
            refusal = "; ".join(str(e.get("message")) for e in payload.get("userErrors") or [])
            log.warning(
                "shopify.bulk.cancelled_foreign",
                operation=op["id"],
                status=op["status"],
                query=str(op.get("query"))[:200],
                refusal=refusal or None,
            )
        waited, wait = 0.0, min(0.05, float(self.settings["bulk_poll_interval"]))
        while True:
            current = self._current_bulk()
            if current is None or current["id"] != op["id"] or current["status"] not in BULK_BUSY:
                return
            if waited >= BULK_CANCEL_WAIT_S:
                detail = f"cancelled {waited:.0f} s ago" + (f"; Shopify said: {refusal}" if refusal else "")
                raise BulkOperationBusy(current["id"], current["status"], detail)
            self.sleep(wait)
            waited += wait
            wait = min(float(self.settings["bulk_poll_interval"]), wait * 2)
            yield ChannelBatch([], cursor_after=None)

    def _await_bulk(self, op: dict[str, Any]) -> Generator[ChannelBatch, None, dict[str, Any]]:
        """Poll until this export COMPLETED (an export that ends otherwise fails the sync)."""
        op_id = op["id"]
        interval = float(self.settings["bulk_poll_interval"])
        wait = min(0.05, interval)  # small exports finish in moments: poll soon, then back off
        while op["status"] != "COMPLETED":
            if op["status"] in ("FAILED", "CANCELED", "CANCELING", "EXPIRED"):
                raise RemoteUnavailable(f"Shopify bulk export ended {op['status']} ({op.get('errorCode')})")
            self.sleep(wait)
            wait = min(interval, wait * 2)
            # an empty batch lets the hub renew its sync lease while a long export runs
            yield ChannelBatch([], cursor_after=None)
            current = self._current_bulk()
            if current is None or current["id"] != op_id:
                raise RemoteUnavailable("Shopify lost track of the bulk export (another one replaced it)")
            op = current
        return op

    def _read_bulk(self, url: str, cursor: datetime) -> Iterator[ChannelBatch]:
        """Stream a bulk result: each order line with the child lines that follow it, in batches;
        only the last batch carries the cursor. A broken file fails the sync (nothing is committed
        from a batch that is not whole; the next sync starts a new export)."""
        batch: list[ChannelRecord] = []
        size = int(self.settings["bulk_batch_size"])
        order_line: bytes | None = None
        children: list[bytes] = []
        try:
            for line in self.client.stream_lines(url):
                if is_bulk_child(line):
                    if order_line is None:
                        raise BulkExportError("the bulk result starts with a child line")
                    children.append(line)
                    continue
                if order_line is not None:
                    batch.append(order_from_bulk(order_line, children))
                    if len(batch) >= size:
                        yield ChannelBatch(batch, cursor_after=None)
                        batch = []
                order_line, children = line, []
            if order_line is not None:
                batch.append(order_from_bulk(order_line, children))
        except BulkExportError as exc:
            raise RemoteUnavailable(f"Shopify bulk result is unusable: {exc}", retry_after=60.0) from exc
        yield ChannelBatch(batch, cursor_after=cursor)

    def _fulfilment_state(self, order_external_id: str) -> dict[str, Any]:
        order = self.client.execute(
            FULFILLMENT_ORDERS_QUERY, {"id": f"{ORDER_GID}{order_id(order_external_id)}"}
        ).data.get("order")
        if order is None:
            raise _rejected(f"order {order_external_id} does not exist")
        return dict(order)

    def find_fulfilment(self, request: FulfilmentRequest) -> str | None:
        """The fulfilment Shopify already holds for ``request`` (same tracking number, lines and
        quantities), or None. Read only: what a push whose outcome is unknown is settled with."""
        if request.replaces_fulfilment_id:
            return None  # a tracking update is idempotent: sending it again is the way to settle it
        return _existing_fulfilment(self._fulfilment_state(request.order_external_id), request)

    def push_fulfilment(self, request: FulfilmentRequest) -> str:
        tracking = {"number": request.tracking_number, "company": request.carrier}
        if request.tracking_url:
            tracking["url"] = request.tracking_url
        if request.replaces_fulfilment_id:
            fid = request.replaces_fulfilment_id
            gid = fid if fid.startswith("gid://") else f"gid://shopify/Fulfillment/{fid}"
            payload = self.client.execute(
                TRACKING_UPDATE, {"id": gid, "tracking": tracking, "notify": request.notify_customer}
            ).data["fulfillmentTrackingInfoUpdate"]
            if payload["userErrors"]:
                raise _rejected("; ".join(e["message"] for e in payload["userErrors"]))
            return legacy_id(payload["fulfillment"]["id"])
        if not request.lines:
            # never widened to "everything still open": a fulfilment says which lines shipped
            raise HoldOrder(
                f"the fulfilment for order {request.order_external_id} names no lines",
                code="shipment_without_lines",
                hint="Name the shipped lines; OrderBridge never fulfils a whole order for a shipment without items.",
            )
        order = self._fulfilment_state(request.order_external_id)
        # fulfillmentCreate has no idempotency key: a push resent after a crash (sent, not yet
        # recorded) must find the fulfilment it already created (tracking number, lines, quantities).
        found = _existing_fulfilment(order, request)
        if found is not None:
            return found
        groups: dict[str, list[dict[str, Any]]] = {}
        open_lines: list[tuple[str, dict[str, Any]]] = [
            (fo["id"], line)
            for fo in order["fulfillmentOrders"]["nodes"]
            if fo["status"] not in ("CLOSED", "CANCELLED")
            for line in fo["lineItems"]["nodes"]
        ]
        for line_id, quantity in _wanted(request).items():
            left = quantity
            for fo_id, line in open_lines:
                if left == 0:
                    break
                if legacy_id(line["lineItem"]["id"]) != line_id or line["remainingQuantity"] <= 0:
                    continue
                take = min(left, int(line["remainingQuantity"]))
                line["remainingQuantity"] -= take
                left -= take
                groups.setdefault(fo_id, []).append({"id": line["id"], "quantity": take})
            if left:
                raise _rejected(f"line {line_id} has {quantity - left} of {quantity} left to fulfil in Shopify")
        fulfillment = {
            "lineItemsByFulfillmentOrder": [
                {"fulfillmentOrderId": fo_id, "fulfillmentOrderLineItems": items} for fo_id, items in groups.items()
            ],
            "trackingInfo": tracking,
            "notifyCustomer": request.notify_customer,
        }
        try:
            result = self.client.execute(FULFILLMENT_CREATE, {"fulfillment": fulfillment}, idempotent=False)
        except OutcomeUnknown as lost:
            return self._settle(request, lost)
        payload = result.data["fulfillmentCreate"]
        if payload["userErrors"]:
            raise _rejected("; ".join(e["message"] for e in payload["userErrors"]))
        return legacy_id(payload["fulfillment"]["id"])

    def _settle(self, request: FulfilmentRequest, lost: OutcomeUnknown) -> str:
        """A ``fulfillmentCreate`` whose answer was lost: read the order's fulfilments, and the one that
        carries this request is the answer. Not found (yet): still unknown — a request may still be
        running at Shopify, so the caller waits before it sends anything again."""
        try:
            found = self.find_fulfilment(request)
        except RetryLater as exc:
            raise OutcomeUnknown(
                f"{lost.message}; reading the order's fulfilments to settle it failed too: {exc.message}",
                hint=lost.hint,
            ) from lost
        if found is None:
            raise OutcomeUnknown(
                f"{lost.message}; Shopify shows no fulfilment with tracking {request.tracking_number} "
                f"for order {request.order_external_id} yet",
                hint=lost.hint,
            ) from lost
        return found

    # --- PlannedChannel (issue #16) -------------------------------------------------------------
    def remote_state(self, external_id: str) -> RemoteOrderState:
        """What Shopify holds for the order now: its fulfilment status (``CANCELLED`` once cancelled),
        each line's shipped and removed units, its live fulfilments with their tracking and lines."""
        order = self.client.execute(REMOTE_STATE_QUERY, {"id": f"{ORDER_GID}{order_id(external_id)}"}).data.get("order")
        if order is None:
            raise HoldOrder(
                f"order {external_id} does not exist in Shopify",
                code="channel_rejected",
                hint="The order was deleted in Shopify: nothing can be pushed to it.",
            )
        shipments = []
        for f in order.get("fulfillments") or []:
            if f.get("status") == "CANCELLED":
                continue
            tracking = (f.get("trackingInfo") or [{}])[0] or {}
            covered: dict[str, int] = {}
            for item in _items(f.get("fulfillmentLineItems")):
                key = legacy_id(item["lineItem"]["id"])
                covered[key] = covered.get(key, 0) + int(item.get("quantity") or 0)
            shipments.append(
                RemoteShipment(
                    legacy_id(f["id"]),
                    str(tracking.get("number") or ""),
                    str(tracking.get("company") or ""),
                    tuple(sorted(covered.items())),
                )
            )
        # shipped: what live fulfilments cover; the rest of a line is open, or cancelled (removed from
        # the order, or the whole order cancelled)
        shipped: dict[str, int] = {}
        for shipment in shipments:
            for key, qty in shipment.lines:
                shipped[key] = shipped.get(key, 0) + qty
        lines = []
        for li in _items(order.get("lineItems")):
            key = legacy_id(li["id"])
            quantity = int(li.get("quantity") or 0)
            done = min(shipped.get(key, 0), quantity)
            if order.get("cancelledAt"):
                cancelled = quantity - done
            else:
                cancelled = max(quantity - done - int(li.get("unfulfilledQuantity") or 0), 0)
            lines.append(RemoteLine(key, quantity, shipped=done, cancelled=cancelled))
        refunded = ((order.get("totalRefundedSet") or {}).get("shopMoney") or {}).get("amount") or "0"
        legacy = str(order.get("legacyResourceId") or order_id(external_id))
        return RemoteOrderState(
            external_id,
            "CANCELLED" if order.get("cancelledAt") else str(order.get("displayFulfillmentStatus") or "UNFULFILLED"),
            tuple(lines),
            tuple(shipments),
            refunded=Decimal(str(refunded)),
            currency=str(order.get("currencyCode") or ""),
            url=f"{self.base_url}/admin/orders/{legacy}",
        )

    def perform(self, external_id: str, call: PlannedCall) -> str:
        """Make one planned call; returns the id of what it made (the fulfilment, the cancel job)."""
        tracking = call.tracking
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
        if call.action is ChannelAction.TRACKING and tracking is not None and call.shipment_id:
            return self.push_fulfilment(
                FulfilmentRequest(
                    external_id,
                    tuple(FulfilmentLine(line, qty) for line, qty in call.lines),
                    tracking.number,
                    tracking.carrier,
                    tracking_url=tracking.url,
                    replaces_fulfilment_id=call.shipment_id,
                )
            )
        if call.action is ChannelAction.CANCEL:
            # no idempotency key: a lost answer is OutcomeUnknown, settled by reading the order again
            payload = self.client.execute(
                ORDER_CANCEL,
                {"id": f"{ORDER_GID}{order_id(external_id)}", "reason": "OTHER", "note": call.reason or None},
                idempotent=False,
            ).data["orderCancel"]
            errors = payload.get("orderCancelUserErrors") or []
            if errors:
                raise HoldOrder(
                    "Shopify refused to cancel the order: " + "; ".join(str(e.get("message")) for e in errors),
                    code="channel_rejected",
                    hint="Cancel it in Shopify admin (More actions › Cancel order); OrderBridge marks it done "
                    "once Shopify shows it cancelled.",
                )
            job = payload.get("job") or {}
            return str(job.get("id") or external_id)
        raise HoldOrder(
            f"Shopify has no {call.action} call OrderBridge makes ({call.call})",
            code="action_not_supported",
            hint="Do it in Shopify admin.",
        )

    # --- AuditableChannel -----------------------------------------------------------------------
    def list_order_stamps(self, since: datetime, until: datetime) -> Iterator[StampBatch]:
        """Every order updated in ``[since, until]`` (widened to whole seconds), one batch per page.

        Sorted by update time, like Shopify; an order updated while the listing runs moves to the
        end and may appear twice (callers key by id). Every page is yielded, even an empty one, so
        the caller's request count is the true one.
        """
        search = (
            f"updated_at:>='{_search_time(since, round_up=False)}' updated_at:<='{_search_time(until, round_up=True)}'"
        )
        first = self.stamp_page_size
        cost = estimate_cost(STAMPS_QUERY, {"first": first})
        after: str | None = None
        while True:
            result = self.client.execute(STAMPS_QUERY, {"first": first, "after": after, "query": search}, cost=cost)
            orders = result.data["orders"]
            stamps = [stamp for node in orders["nodes"] if (stamp := _stamp(node)) is not None]
            yield StampBatch(stamps, requests=1, cost=result.requested_cost)
            if not orders["pageInfo"]["hasNextPage"]:
                return
            after = orders["pageInfo"]["endCursor"]

    # --- WebhookChannel -------------------------------------------------------------------------
    def list_webhooks(self) -> list[WebhookSubscription]:
        """The app's subscriptions on order topics to HTTP endpoints (others are not ours to manage)."""
        found: list[WebhookSubscription] = []
        after: str | None = None
        while True:
            page = self.client.execute(WEBHOOKS_QUERY, {"first": WEBHOOK_PAGE, "after": after}).data[
                "webhookSubscriptions"
            ]
            found.extend(sub for node in page["nodes"] if (sub := _subscription(node)) is not None)
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]

    def register_webhooks(self, address: str) -> list[WebhookSubscription]:
        """Subscribe ``address`` to every topic in :attr:`webhook_topics`; creates only what is missing."""
        have = {s.topic: s for s in self.list_webhooks() if s.address == address}
        raced = False
        for topic in self.webhook_topics:
            if topic in have:
                continue
            payload = self.client.execute(
                WEBHOOK_CREATE, {"topic": TOPIC_TO_ENUM[topic], "sub": {"callbackUrl": address, "format": "JSON"}}
            ).data["webhookSubscriptionCreate"]
            errors = payload.get("userErrors") or []
            if any(TAKEN in str(e.get("message")) for e in errors):
                raced = True  # another register created it between our list and create
                continue
            if errors or not payload.get("webhookSubscription"):
                raise FixConfiguration(
                    f"Shopify refused the {topic} webhook for {address}: "
                    + "; ".join(str(e.get("message")) for e in errors),
                    code="shopify_webhook_rejected",
                    hint="Check the hub's public_url (Shopify needs a reachable HTTPS address) and that the app "
                    "has the read_orders scope.",
                )
            sub = _subscription(payload["webhookSubscription"])
            if sub is not None:
                have[topic] = sub
        if raced:
            have = {s.topic: s for s in self.list_webhooks() if s.address == address}
        return [have[t] for t in self.webhook_topics if t in have]

    def remove_webhooks(self, address: str | None = None) -> int:
        """Delete the order-topic subscriptions to ``address`` (every one when None); how many went."""
        removed = 0
        for sub in self.list_webhooks():
            if address is not None and sub.address != address:
                continue
            payload = self.client.execute(WEBHOOK_DELETE, {"id": sub.id}).data["webhookSubscriptionDelete"]
            if payload.get("deletedWebhookSubscriptionId"):
                removed += 1
        return removed
