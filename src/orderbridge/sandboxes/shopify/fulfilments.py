"""Fulfilments: ``fulfillmentCreate`` and ``fulfillmentTrackingInfoUpdate`` over the store's orders,
and ``orderCancel`` (issue #16).

A fulfilment takes quantities of an order's lines against their remaining (``fulfillable_quantity``)
amounts, refuses what Shopify refuses (another order's lines, more than remains, a cancelled order)
with the userErrors it documents, records ``fulfillment`` in the ledger and fires
``orders/fulfilled`` or ``orders/partially_fulfilled`` then ``orders/updated``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from orderbridge.sandboxes.shopify.generator import OrderSeed, expand
from orderbridge.sandboxes.shopify.generator import iso_local as local_iso


class Fulfilments:
    """Mixed into :class:`~.state.ShopifyState` (which provides the store and its writes)."""

    lock: threading.RLock
    orders: dict[int, OrderSeed]
    _next_fulfillment: int

    if TYPE_CHECKING:  # provided by ShopifyState

        def entries(self, kind: str | None = None) -> Any: ...
        def record(self, kind: str, key: str, **data: Any) -> None: ...
        def order(self, order_id: int) -> dict[str, Any] | None: ...
        def now_epoch(self) -> int: ...
        def _sync(self, s: OrderSeed, old_created: int, old_updated: int) -> None: ...
        def _emit(self, topic: str, order_id: int) -> None: ...

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

    def cancel_order(self, order_id: int | None, reason: str, staff_note: str | None = None) -> list[dict[str, Any]]:
        """Shopify's ``orderCancel``: returns its ``orderCancelUserErrors``. As api-facts records,
        an order with (live) fulfilments is refused, and so is one already cancelled; a cancelled
        order is restocked (its open quantities drop to 0) and fires ``orders/cancelled`` then
        ``orders/updated``. Recorded ``order_cancel`` in the ledger."""
        with self.lock:
            s = self.orders.get(order_id) if order_id is not None else None
            if s is None:
                return [_cancel_error("NOT_FOUND", "Order does not exist.")]
            order = expand(s)
            if order.get("cancelled_at"):
                return [_cancel_error("INVALID", "Order has already been cancelled.")]
            if any(str(f.get("status", "success")) != "cancelled" for f in order.get("fulfillments") or []):
                return [
                    _cancel_error("INVALID", "Cannot cancel an order with fulfillments. Cancel the fulfillments first.")
                ]
            old_created, old_updated = s.created, s.updated
            if s.overlay is None:
                s.overlay = order
            order = s.overlay
            now = local_iso(max(self.now_epoch(), s.updated))
            order["cancelled_at"] = now
            order["cancel_reason"] = reason.lower()
            order["updated_at"] = now
            if staff_note:
                order["note"] = staff_note
            for li in order.get("line_items", []):
                li["fulfillable_quantity"] = 0
            self._sync(s, old_created, old_updated)
            self.record("order_cancel", str(order_id), reason=reason.lower())
            self._emit("orders/cancelled", s.id)
            self._emit("orders/updated", s.id)
            return []


def _cancel_error(code: str, message: str) -> dict[str, Any]:
    return {"field": ["orderId"], "message": message, "code": code}


_FULFILMENT_TOPICS = {"fulfilled": "orders/fulfilled", "partial": "orders/partially_fulfilled"}


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
