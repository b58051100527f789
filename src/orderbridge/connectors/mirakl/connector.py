"""The Mirakl marketplace channel: declaration (with its order state machine) and :class:`MiraklChannel`.

Reads — OR11 ``GET /api/orders`` sorted by ``dateUpdated`` ascending, between
``start_update_date`` (the cursor, inclusive: the hub deduplicates the boundary) and an
``end_update_date`` fixed when the listing starts, ``max`` ≤ 100 per page. Offset paging over a
window that changes while it is read can skip an order (one updated mid-listing leaves its place
and the rest shift left), so each next page restarts from the newest update time seen
(``start_update_date`` = it) with ``offset`` = how many orders of exactly that time were already
read; ``total_count`` ends the listing. A page's orders already yielded (same id and update time)
are not yielded twice. ``fetch_order`` and ``remote_state`` are OR11 with ``order_ids=``.
Audits (``list_order_stamps``) are the same listing reduced to ids and update times (Mirakl has no
lighter call); their cost is counted in requests.

Pushes — through the planner (issue #16): the declaration's :data:`RULES` say what OR21 (accept or
refuse lines), OR23 (tracking), OR24 (ship, whole order, only from ``SHIPPING``), OR29 (cancel, only
while ``can_cancel``) and OR28 (refund, from ``SHIPPED`` or ``RECEIVED``) may do, and which moves
are Mirakl's own (the operator's debit, the acceptance deadline). :meth:`remote_state` reads the
order fresh; :meth:`perform` makes exactly the one call it is given: Mirakl has no idempotency key,
so a lost answer is :class:`OutcomeUnknown` (the hub reads the order again before anything else)
and a Mirakl error is :class:`HoldOrder` carrying Mirakl's words as data.

Carriers: OR23 takes a registered carrier by ``carrier_code``; any other needs ``carrier_name``
and the full ``carrier_url``. Which carriers the marketplace registered is the connection's
``known_carriers`` setting: the connector sends a code only for those, and
:attr:`MiraklChannel.channel_rules` carries them to the planner (the declaration's rules hold
the defaults).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import httpx

from orderbridge.connectors.base import (
    Capability,
    ChannelBatch,
    ChannelRecord,
    CredentialField,
    Declaration,
    OrderStamp,
    Role,
    Setting,
    SettingScope,
    StampBatch,
)
from orderbridge.connectors.mirakl import mapper
from orderbridge.connectors.mirakl.client import SYSTEM, MiraklClient
from orderbridge.domain.channel_rules import (
    ActionSpec,
    ChannelAction,
    ChannelRules,
    Deadline,
    Outcome,
    RemoteOrderState,
    TrackingField,
    Transition,
)
from orderbridge.domain.push_plan import PlannedCall
from orderbridge.errors import HoldOrder, RemoteUnavailable, SettingsError
from orderbridge.fixes import update_credentials

A = ChannelAction
S = frozenset
DEFAULT_KNOWN_CARRIERS = ("ups", "dhl", "dpd", "gls", "fedex", "colissimo", "chronopost")
PAGE_MAX = 100

RULES = ChannelRules(
    states=(
        "STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED",
        "TO_COLLECT", "RECEIVED", "CLOSED", "REFUSED", "CANCELED",
    ),
    terminal=S({"REFUSED", "CANCELED", "CLOSED"}),
    transitions=(
        Transition("STAGING", "WAITING_ACCEPTANCE", None, "the marketplace's fraud check passes"),
        Transition("WAITING_ACCEPTANCE", "WAITING_DEBIT", A.ACCEPT, "at least one line accepted"),
        Transition("WAITING_ACCEPTANCE", "REFUSED", A.REFUSE, "every line refused"),
        Transition("WAITING_ACCEPTANCE", "REFUSED", None, "the acceptance deadline passes: refused automatically"),
        Transition("WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", None, "the operator asks for the customer's payment"),
        Transition("WAITING_DEBIT", "SHIPPING", None, "the operator debits the customer"),
        Transition("WAITING_DEBIT_PAYMENT", "SHIPPING", None, "the customer's payment is taken"),
        Transition("WAITING_DEBIT", "CANCELED", None, "the debit fails"),
        Transition("WAITING_DEBIT_PAYMENT", "CANCELED", None, "the payment fails"),
        Transition("SHIPPING", "SHIPPED", A.SHIP),
        Transition("SHIPPING", "TO_COLLECT", None, "a click-and-collect order reaches its pick-up point"),
        Transition("SHIPPING", "CANCELED", A.CANCEL),
        Transition("SHIPPED", "RECEIVED", None, "the customer confirms receipt"),
        Transition("TO_COLLECT", "RECEIVED", None, "the customer collects it"),
        Transition("RECEIVED", "CLOSED", None, "the marketplace closes the order"),
    ),
    actions=MappingProxyType(
        {
            A.ACCEPT: ActionSpec(
                A.ACCEPT, "OR21 PUT /api/orders/{id}/accept", S({"WAITING_ACCEPTANCE"}), "WAITING_DEBIT",
                lines=True, note="accepts every line (each line must still be WAITING_ACCEPTANCE)",
            ),
            A.REFUSE: ActionSpec(
                A.REFUSE, "OR21 PUT /api/orders/{id}/accept (accepted=false)", S({"WAITING_ACCEPTANCE"}),
                "REFUSED", lines=True, note="refuses every line; the order is refused",
            ),
            A.TRACKING: ActionSpec(
                A.TRACKING, "OR23 PUT /api/orders/{id}/tracking", S({"SHIPPING", "SHIPPED"}), None,
                requires=(TrackingField.NUMBER, TrackingField.CARRIER), url_unless_known_carrier=True,
                note="carrier_code for a registered carrier, else carrier_name and the full carrier_url",
            ),
            A.SHIP: ActionSpec(
                A.SHIP, "OR24 PUT /api/orders/{id}/ship", S({"SHIPPING"}), "SHIPPED",
                note="the whole order; no tracking in the call (OR23 gives it first)",
            ),
            A.CANCEL: ActionSpec(
                A.CANCEL, "OR29 PUT /api/orders/{id}/cancel", S({"SHIPPING"}), "CANCELED", needs_flag="can_cancel",
                note="only while the marketplace reports can_cancel for the order",
            ),
            A.REFUND: ActionSpec(
                A.REFUND, "OR28 PUT /api/orders/refund", S({"SHIPPED", "RECEIVED"}), None, lines=True,
                note="refunds amounts of lines; never once the order is CLOSED",
            ),
        }
    ),
    reached=MappingProxyType(
        {
            Outcome.SHIPPED: S({"SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}),
            Outcome.ACCEPTED: S(
                {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
            ),
            Outcome.REFUSED: S({"REFUSED"}),
            Outcome.CANCELLED: S({"CANCELED", "REFUSED"}),
        }
    ),
    known_carriers=S(DEFAULT_KNOWN_CARRIERS),
    deadlines=(
        Deadline("acceptance", S({"WAITING_ACCEPTANCE"}), "the order is refused automatically"),
        Deadline("shipping", S({"SHIPPING"}), "the marketplace counts the order late (and may cancel it)"),
    ),
    idempotent=False,
    back_office="the Mirakl back office (Orders › the order), where a person accepts, cancels or refunds by hand",
    note=(
        "Mirakl moves orders itself after acceptance (the operator's debit: WAITING_DEBIT → SHIPPING) and refuses "
        "orders not accepted by their deadline. It keeps one tracking per order and ships whole orders only; it "
        "offers cancellation only while the order's can_cancel is true, and no idempotency key: every push reads "
        "the order first."
    ),
)  # fmt: skip

DECLARATION = Declaration(
    kind="mirakl",
    role=Role.CHANNEL,
    title="Mirakl marketplace",
    capabilities=frozenset(
        {Capability.LIST_CHANGED, Capability.FETCH_ORDER, Capability.PUSH_FULFILMENT, Capability.LIST_ORDER_STAMPS}
    ),
    credentials=(
        CredentialField(
            "shop_key", "the shop's API key (My user settings › API key), sent as the Authorization header",
            example="<shop api key>",
        ),
    ),
    settings=(
        Setting("page_size", "orders per OR11 page (Mirakl caps max at 100)", PAGE_MAX),
        Setting(
            "known_carriers",
            "carrier codes the marketplace has registered (OR23 sends carrier_code for these; any other carrier "
            "needs its full tracking URL)",
            list(DEFAULT_KNOWN_CARRIERS),
        ),
        Setting(
            "back_office_url",
            "the order's page in the Mirakl back office; {order_id} is replaced (default: the base URL's "
            "/mmp/shop/order/{order_id})",
            "",
        ),
        Setting(
            "auto_accept",
            "accept orders automatically when every line's SKU is mapped at the destination (else hold the "
            "acceptance with the reason), and accept before shipping; false: a person accepts in the back office",
            True,
            SettingScope.HUB,
        ),
        Setting(
            "poll_interval_s",
            "seconds between two syncs; Mirakl asks for no more than one OR11 poll a minute (5 minutes recommended)",
            300,
            SettingScope.HUB,
        ),
        Setting(
            "download_rules",
            "which orders are taken; Mirakl's default: every open order, waiting for acceptance or paid, not shipped",
            {"financial_statuses": ["pending", "paid"], "fulfillment_statuses": ["unfulfilled", "partial"]},
            SettingScope.HUB,
        ),
    ),
    channel_rules=RULES,
    docs="docs/connectors/mirakl.md",
)  # fmt: skip


class MiraklChannel:
    declaration = DECLARATION

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = (credentials.get("shop_key") or "").strip()
        if not key:
            raise SettingsError(
                "Mirakl shop key missing",
                hint="Set the connection's shop_key credential (the shop's API key in the Mirakl back office).",
                fix=update_credentials("Set the connection's Mirakl shop key.", credential="shop_key"),
            )
        if not base_url:
            raise SettingsError(
                "Mirakl has no default address: every marketplace runs its own instance",
                hint="Set the connection's base URL to the marketplace's Mirakl address (its operator gives it).",
            )
        merged = {**self.declaration.default_settings, **settings}
        try:
            self.page_size = int(merged["page_size"])
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"page_size {merged['page_size']!r} is not a number") from exc
        if not 1 <= self.page_size <= PAGE_MAX:
            raise SettingsError(
                f"page_size {self.page_size} is outside 1–{PAGE_MAX}", hint="Mirakl's OR11 takes max up to 100."
            )
        carriers = merged["known_carriers"]
        if isinstance(carriers, str):
            carriers = [c for c in carriers.split(",")]
        self.known_carriers = frozenset(str(c).strip().lower() for c in carriers if str(c).strip())
        #: the rules the planner reads for this connection (its own registered carriers)
        self.channel_rules: ChannelRules = replace(RULES, known_carriers=self.known_carriers)
        self.client = MiraklClient(base_url, key, http=http, sleep=sleep)
        template = str(merged.get("back_office_url") or "")
        self.back_office_template = template or f"{self.client.base_url}/mmp/shop/order/{{order_id}}"

    # --- Connector -----------------------------------------------------------------------------
    def check(self) -> str:
        status, body = self.client.get("/api/account")
        self._raise_unexpected(status, body, "/api/account")
        name = body.get("shop_name") if isinstance(body, Mapping) else None
        return f"Mirakl shop {name or '(unnamed)'} reachable"

    def close(self) -> None:
        self.client.close()

    def api_cost_spent(self) -> int:
        return self.client.requests

    # --- reads ---------------------------------------------------------------------------------
    def _pages(self, since: datetime | None, until: datetime | None) -> Iterator[tuple[list[Any], int]]:
        """OR11 pages of raw orders between ``since`` and ``until`` by update time, each order once."""
        end = until or datetime.now(UTC) + timedelta(seconds=1)
        start = since
        offset = 0
        seen: set[tuple[str, str]] = set()
        while True:
            params = {
                "sort": "dateUpdated",
                "order": "asc",
                "max": str(self.page_size),
                "offset": str(offset),
                "end_update_date": _fmt(end),
            }
            if start is not None:
                params["start_update_date"] = _fmt(start)
            status, body = self.client.get("/api/orders", params)
            self._raise_unexpected(status, body, "/api/orders")
            orders = body.get("orders") if isinstance(body, Mapping) else None
            total = body.get("total_count") if isinstance(body, Mapping) else None
            if not isinstance(orders, list) or not isinstance(total, int):
                raise RemoteUnavailable(f"{SYSTEM} answered OR11 without orders and total_count")
            fresh = []
            for raw in orders:
                key = (str(raw.get("order_id")) if isinstance(raw, Mapping) else "", _stamp(raw))
                if key not in seen:
                    seen.add(key)
                    fresh.append(raw)
            yield fresh, 1
            if len(orders) < self.page_size or offset + len(orders) >= total:
                return
            times = [t for t in (mapper.updated_at(r) for r in orders if isinstance(r, Mapping)) if t is not None]
            newest = max(times) if times else None
            if newest is None or (start is not None and newest <= start):
                offset += len(orders)  # a whole page of one update time: page on within it
            else:
                start = newest
                offset = sum(1 for t in times if t == newest)

    def list_changed(self, since: datetime | None, until: datetime | None = None) -> Iterator[ChannelBatch]:
        cursor = since
        for raws, requests in self._pages(since, until):
            records = [mapper.order_from_json(r) if isinstance(r, Mapping) else _not_object(r) for r in raws]
            times = [r.updated_at for r in records if r.updated_at is not None]
            if times and (cursor is None or max(times) > cursor):
                cursor = max(times)
            if records:
                yield ChannelBatch(records, cursor, cost=requests)

    def list_order_stamps(self, since: datetime, until: datetime) -> Iterator[StampBatch]:
        for raws, requests in self._pages(since, until):
            stamps = []
            for raw in raws:
                when = mapper.updated_at(raw) if isinstance(raw, Mapping) else None
                external_id = raw.get("order_id") if isinstance(raw, Mapping) else None
                if when is not None and isinstance(external_id, str) and external_id:
                    stamps.append(OrderStamp(external_id, when, str(raw.get("commercial_id") or "")))
            yield StampBatch(stamps, requests=requests, cost=requests)

    def _raw(self, external_id: str) -> Mapping[str, Any]:
        status, body = self.client.get("/api/orders", {"order_ids": external_id, "max": "1"})
        self._raise_unexpected(status, body, "/api/orders")
        orders = body.get("orders") if isinstance(body, Mapping) else None
        if not isinstance(orders, list):
            raise RemoteUnavailable(f"{SYSTEM} answered OR11 without an orders list")
        found = [o for o in orders if isinstance(o, Mapping) and o.get("order_id") == external_id]
        if not found:
            raise HoldOrder(
                f"{SYSTEM} has no order {external_id!r}",
                code="channel_rejected",
                hint="The order may have been deleted or belong to another shop; check it in the Mirakl back office.",
            )
        return found[0]

    def fetch_order(self, external_id: str) -> ChannelRecord:
        return mapper.order_from_json(self._raw(external_id))

    # --- pushes (the planner's) ----------------------------------------------------------------
    def order_url(self, external_id: str) -> str:
        return self.back_office_template.replace("{order_id}", external_id)

    def remote_state(self, external_id: str) -> RemoteOrderState:
        return mapper.remote_state(self._raw(external_id), self.order_url(external_id))

    def perform(self, external_id: str, call: PlannedCall) -> str:
        base = f"/api/orders/{external_id}"
        if call.action in (A.ACCEPT, A.REFUSE):
            if not call.lines:
                raise HoldOrder(f"{SYSTEM} OR21 needs the order's lines; none were planned", code="channel_rejected")
            accepted = call.action is A.ACCEPT
            body = {"order_lines": [{"id": line, "accepted": accepted} for line, _ in call.lines]}
            self._write(call, base + "/accept", body)
            return external_id
        if call.action is A.TRACKING:
            tracking = call.tracking
            if tracking is None:
                raise HoldOrder(f"{SYSTEM} OR23 needs a tracking; none was planned", code="channel_rejected")
            carrier = tracking.carrier.strip()
            payload: dict[str, Any] = {"tracking_number": tracking.number.strip()}
            if carrier.lower() in self.known_carriers:
                payload["carrier_code"] = carrier.lower()
            else:
                payload["carrier_name"] = carrier
            if tracking.url:
                payload["carrier_url"] = tracking.url.strip()
            self._write(call, base + "/tracking", payload)
            return external_id
        if call.action is A.SHIP:
            self._write(call, base + "/ship", None)
            return external_id
        if call.action is A.CANCEL:
            self._write(call, base + "/cancel", None)
            return external_id
        if call.action is A.REFUND:
            return self._refund(external_id, call)
        raise HoldOrder(
            f"{SYSTEM} does not offer {call.action.value} through its API",
            code="action_not_supported",
            hint="Do it in the Mirakl back office.",
        )

    def _refund(self, external_id: str, call: PlannedCall) -> str:
        amount = call.amount if call.amount is not None else Decimal(0)
        if amount <= 0:
            raise HoldOrder(f"{SYSTEM} OR28 needs a positive amount; {amount} was planned", code="channel_rejected")
        raw = self._raw(external_id)
        wanted = {line for line, _ in call.lines}
        left = amount
        refunds = []
        for line_id, refundable in mapper.refundable(raw):
            if (wanted and line_id not in wanted) or refundable <= 0 or left <= 0:
                continue
            part = min(left, refundable)
            refunds.append(
                {
                    "order_line_id": line_id,
                    "amount": part,
                    "currency_iso_code": raw.get("currency_iso_code"),
                    "reason_code": "REFUND",
                    "quantity": 0,
                }
            )
            left -= part
        if left > 0:
            raise HoldOrder(
                f"{SYSTEM} can refund at most {amount - left} more of order {external_id}; {amount} was asked",
                code="channel_rejected",
                hint="Check the refunds already made in the Mirakl back office.",
            )
        body = self._write(call, "/api/orders/refund", {"refunds": refunds})
        made = body.get("refunds") if isinstance(body, Mapping) else None
        ids = [str(r.get("refund_id")) for r in made or () if isinstance(r, Mapping) and r.get("refund_id")]
        return ",".join(ids) or external_id

    def _write(self, call: PlannedCall, path: str, body: Any) -> Any:
        status, answer = self.client.put(path, body)
        if 200 <= status < 300:
            return answer
        message = _message(answer, status)
        if status in (400, 404, 409, 422):
            raise HoldOrder(
                f"{SYSTEM} refused {call.call}: {message}",
                code="channel_rejected",
                hint="Read Mirakl's words above and check the order in the Mirakl back office; the push is planned "
                "again from what Mirakl then shows.",
            )
        self._raise_unexpected(status, answer, path)
        return answer

    def _raise_unexpected(self, status: int, body: Any, path: str) -> None:
        if 200 <= status < 300:
            return
        message = _message(body, status)
        if status in (404, 405):
            raise SettingsError(
                f"{SYSTEM} has no {path} at {self.client.base_url} (HTTP {status}): {message}",
                hint="Check the connection's base URL: the marketplace's Mirakl address, without /api.",
            )
        raise RemoteUnavailable(f"{SYSTEM} answered {path} with HTTP {status}: {message}")


def _message(body: Any, status: int) -> str:
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    text = str(body).strip() if body is not None else ""
    return text[:300] or f"HTTP {status}"


def _fmt(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"refusing naive datetime {when.isoformat()}: pass an aware UTC value")
    value = when.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _stamp(raw: Any) -> str:
    return str(raw.get("last_updated_date")) if isinstance(raw, Mapping) else ""


def _not_object(raw: Any) -> ChannelRecord:
    return mapper.order_from_json({"value": raw})
