"""The Shopify channel: declaration and :class:`ShopifyChannel` (list, fetch, push fulfilments).

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
- Orders with more lines than ``lines_per_order_hint`` have their remaining lines paged in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx
import orjson

from orderbridge.connectors.base import (
    Capability,
    ChannelBatch,
    ChannelRecord,
    CredentialField,
    Declaration,
    FulfilmentRequest,
    Role,
)
from orderbridge.connectors.shopify.client import ShopifyClient, estimate_cost
from orderbridge.connectors.shopify.mapper import legacy_id, order_from_graphql, parse_time
from orderbridge.errors import HoldOrder, NotFound, RemoteUnavailable, SettingsError

DEFAULT_SETTINGS: dict[str, Any] = {
    "api_version": "2025-01",
    "bulk_backfill": True,
    "bulk_batch_size": 250,
    "bulk_poll_interval": 1.0,
    "max_query_cost": 1000,
    "lines_per_order_hint": 5,
    "max_page_size": 250,
}

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
        }
    ),
    credentials=(
        CredentialField("access_token", "Admin API access token of a custom app (shpat_…)"),
        CredentialField(
            "api_secret",
            "API secret key (client secret) of the app: verifies webhook signatures; webhooks are refused without it",
            required=False,
        ),
    ),
    default_settings=DEFAULT_SETTINGS,
    cursor_field="updated_at",
)

ORDER_FIELDS = """
  id legacyResourceId name email createdAt updatedAt processedAt cancelledAt closedAt test
  displayFinancialStatus displayFulfillmentStatus currencyCode
  subtotalPriceSet { shopMoney { amount currencyCode } }
  totalPriceSet { shopMoney { amount currencyCode } }
  totalTaxSet { shopMoney { amount currencyCode } }
  totalDiscountsSet { shopMoney { amount currencyCode } }
  tags note discountCodes
  customAttributes { key value }
  shippingAddress { name company address1 address2 city zip provinceCode countryCodeV2 phone }
  billingAddress { name company address1 address2 city zip provinceCode countryCodeV2 phone }
  customer { id email firstName lastName }
  taxLines { title rate priceSet { shopMoney { amount } } }
"""
LINE_FIELDS = """
  id sku name quantity variant { id } product { id }
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
BULK_QUERY = (
    "{ orders { edges { node { "
    f"{ORDER_FIELDS} shippingLines {{ edges {{ node {{ {SHIPPING_FIELDS} }} }} }}"
    f" lineItems {{ edges {{ node {{ {LINE_FIELDS} }} }} }} }} }} }} }}"
)
BULK_RUN = (
    "mutation Bulk($query: String!) { bulkOperationRunQuery(query: $query) {"
    " bulkOperation { id status } userErrors { field message } } }"
)
BULK_POLL = "{ currentBulkOperation { id status errorCode objectCount url createdAt completedAt } }"
FULFILLMENT_ORDERS_QUERY = (
    "query FOs($id: ID!) { order(id: $id) { id fulfillments(first: 20) { id status trackingInfo(first: 5) { number } }"
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
SHOP_QUERY = "{ shop { name } }"

_CHILD_KEYS = {"LineItem": "lineItems", "ShippingLine": "shippingLines"}


def _rejected(message: str) -> HoldOrder:
    return HoldOrder(
        f"Shopify rejected the fulfilment: {message}",
        code="channel_rejected",
        hint="Correct what Shopify names (quantities, line ids, order state); the push is tried again "
        "when the shipment changes in the 3PL.",
    )


class ShopifyChannel:
    """A Shopify store as an order channel (implements ``ChannelConnector``)."""

    declaration = DECLARATION

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
                hint="Set it: orderbridge connections update <name> --credential access_token=shpat_…",
            )
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise SettingsError(
                f"unknown Shopify setting(s): {', '.join(sorted(unknown))}",
                hint=f"Known settings: {', '.join(DEFAULT_SETTINGS)}",
            )
        self.settings = {**DEFAULT_SETTINGS, **settings}
        self.sleep = sleep
        self.client = ShopifyClient(
            base_url, token, api_version=str(self.settings["api_version"]), http=http, sleep=sleep
        )
        self.lines_hint = max(1, int(self.settings["lines_per_order_hint"]))
        self.list_query = list_query(self.lines_hint)
        self.page_size = self._page_size()

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

    # --- Connector ------------------------------------------------------------------------------
    def check(self) -> str:
        data = self.client.execute(SHOP_QUERY).data
        return f"Shopify shop {data['shop']['name']!r}"

    def close(self) -> None:
        self.client.close()

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
                newest = max(parse_time(node["updatedAt"], "updatedAt") for node in orders["nodes"])
                yield ChannelBatch(records, cursor_after=newest, cost=result.requested_cost)
            if not orders["pageInfo"]["hasNextPage"]:
                return
            after = orders["pageInfo"]["endCursor"]

    def _complete(self, node: dict[str, Any]) -> ChannelRecord:
        """Page in the remaining lines of an order with more than the hint, then map it."""
        lines = node.get("lineItems")
        if isinstance(lines, dict) and lines.get("pageInfo", {}).get("hasNextPage"):
            nodes = list(lines.get("nodes", []))
            after = lines["pageInfo"]["endCursor"]
            while after:
                more = self.client.execute(MORE_LINES_QUERY, {"id": node["id"], "after": after}).data
                page = (more.get("order") or {}).get("lineItems") or {"nodes": [], "pageInfo": {}}
                nodes.extend(page["nodes"])
                after = page["pageInfo"].get("endCursor") if page["pageInfo"].get("hasNextPage") else None
            node = {**node, "lineItems": {"nodes": nodes, "pageInfo": {"hasNextPage": False}}}
        return order_from_graphql(node)

    def fetch_order(self, external_id: str) -> ChannelRecord:
        data = self.client.execute(ORDER_QUERY, {"id": f"gid://shopify/Order/{external_id}"}).data
        node = data.get("order")
        if node is None:
            raise NotFound(f"Shopify has no order {external_id}", hint="Check the order id in the Shopify admin.")
        return self._complete(node)

    def _bulk_backfill(self) -> Iterator[ChannelBatch]:
        run = self.client.execute(BULK_RUN, {"query": BULK_QUERY}).data["bulkOperationRunQuery"]
        if run["userErrors"]:
            raise RemoteUnavailable(
                "Shopify could not start the bulk export: " + "; ".join(e["message"] for e in run["userErrors"]),
                retry_after=60.0,
            )
        op_id = run["bulkOperation"]["id"]
        interval = float(self.settings["bulk_poll_interval"])
        wait = min(0.05, interval)  # small exports finish in moments: poll soon, then back off
        while True:
            op = self.client.execute(BULK_POLL).data["currentBulkOperation"]
            if op is None or op["id"] != op_id:
                raise RemoteUnavailable("Shopify lost track of the bulk export (another one replaced it)")
            if op["status"] == "COMPLETED":
                break
            if op["status"] in ("FAILED", "CANCELED", "CANCELING", "EXPIRED"):
                raise RemoteUnavailable(f"Shopify bulk export ended {op['status']} ({op.get('errorCode')})")
            self.sleep(wait)
            wait = min(interval, wait * 2)
            # an empty batch lets the hub renew its sync lease while a long export runs
            yield ChannelBatch([], cursor_after=None)
        cursor = parse_time(op["createdAt"], "createdAt")
        if not op.get("url"):
            yield ChannelBatch([], cursor_after=cursor)
            return
        batch: list[ChannelRecord] = []
        size = int(self.settings["bulk_batch_size"])
        current: dict[str, Any] | None = None
        for raw in self.client.stream_lines(op["url"]):
            try:
                row = orjson.loads(raw)
            except ValueError as exc:
                raise RemoteUnavailable("Shopify bulk result has a line that is not JSON (truncated?)") from exc
            parent = row.pop("__parentId", None)
            if parent is None:
                if current is not None:
                    batch.append(order_from_graphql(current))
                    if len(batch) >= size:
                        yield ChannelBatch(batch, cursor_after=None)
                        batch = []
                current = {**row, "lineItems": [], "shippingLines": []}
                continue
            if current is None or current.get("id") != parent:
                raise RemoteUnavailable(f"Shopify bulk result has a child of {parent} outside its parent's block")
            kind = str(row.get("id", "")).split("/")[-2] if "/" in str(row.get("id", "")) else ""
            current.setdefault(_CHILD_KEYS.get(kind, "lineItems"), []).append(row)
        if current is not None:
            batch.append(order_from_graphql(current))
        yield ChannelBatch(batch, cursor_after=cursor)

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
        order = self.client.execute(
            FULFILLMENT_ORDERS_QUERY, {"id": f"gid://shopify/Order/{request.order_external_id}"}
        ).data.get("order")
        if order is None:
            raise _rejected(f"order {request.order_external_id} does not exist")
        # fulfillmentCreate has no idempotency key: a push resent after a crash (sent, not yet
        # recorded) must find the fulfilment it already created, by its tracking number.
        for existing in order.get("fulfillments") or []:
            if existing.get("status") != "CANCELLED" and any(
                t.get("number") == request.tracking_number for t in existing.get("trackingInfo") or []
            ):
                return legacy_id(existing["id"])
        groups: dict[str, list[dict[str, Any]]] = {}
        open_lines: list[tuple[str, dict[str, Any]]] = [
            (fo["id"], line)
            for fo in order["fulfillmentOrders"]["nodes"]
            if fo["status"] not in ("CLOSED", "CANCELLED")
            for line in fo["lineItems"]["nodes"]
        ]
        for wanted in request.lines:
            left = wanted.quantity
            for fo_id, line in open_lines:
                if left == 0:
                    break
                if legacy_id(line["lineItem"]["id"]) != wanted.line_external_id or line["remainingQuantity"] <= 0:
                    continue
                take = min(left, int(line["remainingQuantity"]))
                line["remainingQuantity"] -= take
                left -= take
                groups.setdefault(fo_id, []).append({"id": line["id"], "quantity": take})
            if left:
                raise _rejected(
                    f"line {wanted.line_external_id} has {wanted.quantity - left} of {wanted.quantity} "
                    "left to fulfil in Shopify"
                )
        if not request.lines:
            groups = {fo_id: [] for fo_id, line in open_lines if line["remainingQuantity"] > 0}
            if not groups:
                raise _rejected(f"order {request.order_external_id} has nothing left to fulfil")
        fulfillment = {
            "lineItemsByFulfillmentOrder": [
                {"fulfillmentOrderId": fo_id, **({"fulfillmentOrderLineItems": items} if items else {})}
                for fo_id, items in groups.items()
            ],
            "trackingInfo": tracking,
            "notifyCustomer": request.notify_customer,
        }
        payload = self.client.execute(FULFILLMENT_CREATE, {"fulfillment": fulfillment}).data["fulfillmentCreate"]
        if payload["userErrors"]:
            raise _rejected("; ".join(e["message"] for e in payload["userErrors"]))
        return legacy_id(payload["fulfillment"]["id"])
