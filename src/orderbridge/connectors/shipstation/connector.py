"""ShipStation V1 as a destination: post orders (idempotent by ``orderKey``), list shipments.

Posting. Orders go in chunks of :attr:`ShipStationDestination.max_batch` (100, ShipStation's
``createorders`` limit) — one ``createorders`` call per chunk, ``createorder`` for a lone order.
Results come back one per input, in input order: success carries ShipStation's ``orderId`` as the
document id, a per-order refusal carries :class:`DestinationRejected` with ShipStation's own
``errorMessage`` (the hub holds that order; the others still go). Because every body carries the
stable ``orderKey``, a retry after a timeout or a truncated answer, or a repost of a new version,
updates the order in ShipStation instead of creating a duplicate.

Decision — a *whole-batch* 400 (ShipStation rejected the request, not one order) is split: each
order of the chunk is posted alone with ``createorder``, so the one bad order is isolated and
held with its own message while the rest are created. This costs up to 100 extra requests only
in that rare case, and is safe because of the ``orderKey`` upsert.

Field limits. Each body is held to ShipStation's field lengths first (:func:`mapper.fit`,
decision 47): descriptive text is shortened and optional fields left out — the result's ``notes``
say what, for the order's timeline — while an order whose SKU, order number, ship-to address or
other meaningful field is too long is not sent at all: its result carries the
``destination_field_too_long`` hold. So ShipStation never receives an over-long field, and one
such order never costs its chunk a whole-batch 400.

Failures that are not about an order raise, per the interface: 401 → :class:`AuthFailed`,
403 → :class:`PermissionDenied`, 429/5xx/timeouts/truncated bodies → :class:`RetryLater`
subclasses after bounded retries,
404/405 → :class:`SettingsError` (wrong base URL), any other status → :class:`DestinationRejected`.

Shipments. ``GET /shipments`` sorted by ``createDate`` ascending, filtered with
``createDateStart = since`` (inclusive: a shipment created at exactly the cursor is listed again;
the hub dedupes by shipment id), 500 per page. Each page becomes a :class:`ShipmentBatch` whose
``cursor_after`` is the newest ``createDate`` seen so far (never earlier than ``since``); new
shipments are appended at the end of the ordering, so page offsets stay stable while paging.

Real-world caveats (documented, handled):

- ShipStation's date parameters and timestamps are *naive US Pacific time*, not UTC. The
  ``timezone`` setting (default ``America/Los_Angeles``) converts both ways; the sandbox speaks
  the same convention. Ambiguous DST hours are read as the earlier instant (cursor only earlier).
- Voiding a label changes ``voided`` on the old shipment but not its ``createDate``, so a
  listing by creation date does not see a void that happens after the label was listed. The
  replacement label arrives as a new shipment with a new tracking number, which is what the hub
  pushes to the channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from orderbridge.connectors.base import (
    Amendment,
    Capability,
    CredentialField,
    Declaration,
    OutgoingOrder,
    PostResult,
    Role,
    Setting,
    SettingScope,
    ShipmentBatch,
)
from orderbridge.connectors.shipstation import mapper
from orderbridge.connectors.shipstation.client import SYSTEM, ShipStationClient
from orderbridge.domain import reasons as R
from orderbridge.domain.changes import ChangeClass
from orderbridge.domain.mappings import MappingKind
from orderbridge.errors import DestinationRejected, RemoteUnavailable, SettingsError
from orderbridge.fixes import update_credentials

DEFAULT_BASE_URL = "https://ssapi.shipstation.com"
SHIPMENT_PAGE_SIZE = 500


class ShipStationDestination:
    declaration = Declaration(
        kind="shipstation",
        role=Role.DESTINATION,
        title="ShipStation",
        capabilities=frozenset({Capability.POST_ORDERS, Capability.LIST_SHIPMENTS}),
        credentials=(
            CredentialField(
                "api_key", "ShipStation API key (Settings → Account → API Settings)", secret=False, example="<api key>"
            ),
            CredentialField("api_secret", "ShipStation API secret", example="<api secret>"),
        ),
        settings=(
            Setting("document_type", "what ShipStation calls a posted document (shown in update plans)", "order"),
            Setting(
                "timezone",
                "the zone of ShipStation V1's naive timestamps and date parameters (US Pacific for every account)",
                "America/Los_Angeles",
            ),
            Setting("store_id", "the ShipStation store id new orders are filed under (advancedOptions.storeId)"),
            Setting(
                "required_fields",
                "order fields without which ShipStation cannot create a shippable order",
                [
                    "shipping_address.name",
                    "shipping_address.address1",
                    "shipping_address.city",
                    "shipping_address.country_code",
                ],
                SettingScope.HUB,
            ),
        ),
        # a 3PL ships only SKUs it stocks, by the services it has
        mapping_kinds=frozenset({MappingKind.SKU, MappingKind.SHIPPING}),
        # orderKey: ShipStation upserts by it, so a re-post updates the same order
        document_key="ob-{channel_id}-{external_id}",
        # issue #15: a posted order is changed by a re-post under its orderKey (createorder updates
        # the order it names); a cancellation is a re-post with orderStatus "cancelled" (a valid
        # createorder status). Payments and refunds are not ShipStation's business: nothing
        # (the update waits for a person where a policy applies it — the 3PL ships what it holds).
        amendments=MappingProxyType(
            {
                ChangeClass.SHIPPING_ADDRESS: Amendment.UPDATE_IN_PLACE,
                ChangeClass.LINES: Amendment.UPDATE_IN_PLACE,
                ChangeClass.LINES_CANCELLED: Amendment.UPDATE_IN_PLACE,
                ChangeClass.TOTALS: Amendment.UPDATE_IN_PLACE,
                ChangeClass.NOTES: Amendment.UPDATE_IN_PLACE,
                ChangeClass.CUSTOMER: Amendment.UPDATE_IN_PLACE,
                ChangeClass.CANCELLED: Amendment.UPDATE_IN_PLACE,
                ChangeClass.PAYMENT_CAPTURED: Amendment.UPDATE_IN_PLACE,
            }
        ),
        docs="docs/connectors/shipstation.md",
    )
    max_batch = 100

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        missing = [f.name for f in self.declaration.credentials if not credentials.get(f.name)]
        if missing:
            raise SettingsError(
                f"ShipStation credentials missing: {', '.join(missing)}",
                hint="Set the connection's api_key and api_secret credentials (ShipStation's API key and secret).",
                fix=update_credentials(
                    "Set the connection's ShipStation API key and secret.", credential=",".join(missing)
                ),
            )
        merged = {**self.declaration.default_settings, **settings}
        try:
            self.tz = ZoneInfo(str(merged["timezone"]))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                f"unknown timezone {merged['timezone']!r} for ShipStation",
                hint="Use an IANA name; ShipStation V1 speaks America/Los_Angeles.",
            ) from exc
        store = merged.get("store_id")
        self.store_id = int(store) if store not in (None, "") else None
        self.client = ShipStationClient(
            base_url or DEFAULT_BASE_URL,
            credentials["api_key"],
            credentials["api_secret"],
            http=http,
            sleep=sleep,
        )

    # --- Connector -----------------------------------------------------------------------------
    def check(self) -> str:
        status, body = self.client.get("/orders", {"pageSize": "1"})
        self._raise_unexpected(status, body, "/orders")
        total = body.get("total") if isinstance(body, Mapping) else None
        return f"ShipStation account reachable ({total if total is not None else '?'} orders)"

    def close(self) -> None:
        self.client.close()

    # --- posting -------------------------------------------------------------------------------
    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        results: dict[int, PostResult] = {}
        sendable: list[tuple[int, OutgoingOrder, mapper.Fitted]] = []
        for i, outgoing in enumerate(orders):
            fitted = mapper.fit(mapper.order_body(outgoing, tz=self.tz, store_id=self.store_id))
            if fitted.too_long:
                results[i] = self._too_long(outgoing, fitted)
            else:
                sendable.append((i, outgoing, fitted))
        for start in range(0, len(sendable), self.max_batch):
            chunk = sendable[start : start + self.max_batch]
            pairs = [(o, f.body) for _, o, f in chunk]
            sent = [self._post_one(*pairs[0])] if len(chunk) == 1 else self._post_chunk(pairs)
            for (i, _, fitted), result in zip(chunk, sent, strict=True):
                notes = fitted.notes() if result.ok else ()
                results[i] = replace(result, notes=notes or result.notes, sent=fitted.body)
        return [results[i] for i in range(len(orders))]

    def _too_long(self, outgoing: OutgoingOrder, fitted: mapper.Fitted) -> PostResult:
        """Not sent: a field ShipStation limits cannot be cut without changing what it means."""
        first = fitted.too_long[0]
        fields = ", ".join(f"{o.where} ({o.length} > {o.limit.limit})" for o in fitted.too_long)
        return PostResult(
            outgoing.order_key,
            None,
            DestinationRejected(
                f"{SYSTEM} limits the length of {fields}; order {outgoing.resolved.order.number} was not sent"
            ),
            hold=R.destination_field_too_long(SYSTEM, first.limit.field, first.length, first.limit.limit, first.value),
        )

    def _post_chunk(self, chunk: Sequence[tuple[OutgoingOrder, dict[str, Any]]]) -> list[PostResult]:
        status, body = self.client.post("/orders/createorders", [b for _, b in chunk])
        if status == 400:
            # the request as a whole was refused: isolate the offending order(s) one by one
            return [self._post_one(o, b) for o, b in chunk]
        self._raise_unexpected(status, body, "/orders/createorders")
        entries = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(entries, list) or len(entries) != len(chunk):
            raise RemoteUnavailable(
                f"{SYSTEM} answered createorders with {len(entries) if isinstance(entries, list) else 'no'} "
                f"results for {len(chunk)} orders"
            )
        by_key = {e.get("orderKey"): e for e in entries if isinstance(e, Mapping) and e.get("orderKey")}
        results = []
        for (outgoing, _), positional in zip(chunk, entries, strict=True):
            entry = by_key.get(outgoing.order_key, positional)
            results.append(self._result(outgoing, entry))
        return results

    def _result(self, outgoing: OutgoingOrder, entry: Any) -> PostResult:
        if isinstance(entry, Mapping) and entry.get("success") and entry.get("orderId"):
            return PostResult(outgoing.order_key, str(entry["orderId"]))
        message = entry.get("errorMessage") if isinstance(entry, Mapping) else None
        return PostResult(
            outgoing.order_key,
            None,
            DestinationRejected(f"{SYSTEM} refused order {outgoing.resolved.order.number}: {message or 'no reason'}"),
        )

    def _post_one(self, outgoing: OutgoingOrder, order_body: dict[str, Any]) -> PostResult:
        status, body = self.client.post("/orders/createorder", order_body)
        if status == 400:
            message = mapper.error_message(body, "HTTP 400")
            return PostResult(
                outgoing.order_key,
                None,
                DestinationRejected(f"{SYSTEM} refused order {outgoing.resolved.order.number}: {message}", status=400),
            )
        self._raise_unexpected(status, body, "/orders/createorder")
        order_id = body.get("orderId") if isinstance(body, Mapping) else None
        if not order_id:
            raise RemoteUnavailable(f"{SYSTEM} answered createorder without an orderId")
        return PostResult(outgoing.order_key, str(order_id))

    # --- shipments -----------------------------------------------------------------------------
    def list_shipments(self, since: datetime | None) -> Iterator[ShipmentBatch]:
        params = {
            "includeShipmentItems": "true",
            "pageSize": str(SHIPMENT_PAGE_SIZE),
            "sortBy": "CreateDate",
            "sortDir": "ASC",
        }
        if since is not None:
            params["createDateStart"] = mapper.to_remote_time(since, self.tz)
        cursor = since
        page = 1
        while True:
            status, body = self.client.get("/shipments", {**params, "page": str(page)})
            self._raise_unexpected(status, body, "/shipments")
            docs = body.get("shipments") if isinstance(body, Mapping) else None
            if not isinstance(docs, list):
                raise RemoteUnavailable(f"{SYSTEM} answered /shipments without a shipments list")
            shipments = []
            for doc in docs:
                shipments.append(mapper.shipment_from(doc, self.tz))
                created = mapper.shipment_created(doc, self.tz)
                if cursor is None or created > cursor:
                    cursor = created
            yield ShipmentBatch(shipments, cursor)
            pages = body.get("pages") if isinstance(body, Mapping) else None
            if not docs or not isinstance(pages, int) or page >= pages:
                return
            page += 1

    # -------------------------------------------------------------------------------------------
    def _raise_unexpected(self, status: int, body: Any, path: str) -> None:
        if 200 <= status < 300:
            return
        message = mapper.error_message(body, f"HTTP {status}")
        if status in (404, 405):
            raise SettingsError(
                f"{SYSTEM} has no {path} at {self.client.base_url} (HTTP {status}): {message}",
                hint=f"Check the connection's base URL ({DEFAULT_BASE_URL}).",
            )
        raise DestinationRejected(f"{SYSTEM} refused {path} (HTTP {status}): {message}", status=status)
