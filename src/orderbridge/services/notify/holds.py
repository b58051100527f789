"""Hold alerts: one alert per root cause of held orders, of held fulfilment pushes and of held
requests to channels (cancel, refund, accept, refuse — issue #16), and how a cause is named in
alerts."""

from __future__ import annotations

from sqlalchemy import select

from orderbridge.fixes import show_holds
from orderbridge.services.channel_intents import held_by_cause
from orderbridge.services.notify.outbox import OPEN, raise_alert, resolve_alert
from orderbridge.services.queries import HoldGroup, holds
from orderbridge.services.scope import Scope
from orderbridge.storage.tables import alerts

_CAUSES: dict[str, str] = {
    "sku_unmapped": "SKU {value}",
    "sku_missing": "a line without a SKU",
    "shipping_method_unmapped": "shipping method {value}",
    "shipping_method_missing": "no shipping method",
    "required_field_missing": "the empty required field {value}",
    "destination_rejected": "rejections from {value}",
    "invalid_order": "unreadable order data",
    "tracking_number_missing": "a missing tracking number",
    "carrier_missing": "a missing carrier",
    "channel_rejected": "rejections from channel {value}",
}


#: causes of held fulfilment pushes (their group's value is the channel)
_PUSH_CAUSES: dict[str, str] = {
    "tracking_number_missing": "shipments without a tracking number",
    "carrier_missing": "shipments without a carrier",
    "shipment_line_unmatched": "shipment lines that match no line of their order",
    "shipment_without_lines": "shipments that list no items",
    "invalid_text": "unusable tracking text",
    "channel_rejected": "rejections from channel {value}",
    "shipping_data_missing": "shipments missing shipping data the channel requires",
    "transition_not_allowed": "shipments the channel's order state does not allow yet",
    "action_not_supported": "shipments the channel's API cannot take",
}

#: causes of held requests to channels (their group's value is the channel)
_REQUEST_CAUSES: dict[str, str] = {
    "action_not_supported": "requests channel {value}'s API does not offer",
    "transition_not_allowed": "requests channel {value}'s order state does not allow",
    "acceptance_held": "acceptances held at channel {value}",
    "channel_rejected": "requests refused by channel {value}",
}

#: the ``kind`` of a held fulfilment pushes' group (``services.queries.holds``)
PUSH = "push"
#: the ``kind`` of a held requests' group (``services.channel_intents.held_by_cause``)
REQUEST = "request"


def cause_text(code: str, value: str, kind: str = "hold") -> str:
    """A hold cause in words: ``SKU ABC-1``, ``shipping method Express``, ``shipments without a
    carrier (channel shop)`` …"""
    if kind == REQUEST:
        cause = _REQUEST_CAUSES.get(code, code.replace("_", " ") + " (channel {value})")
        return cause.format(value=value)
    if kind == PUSH:
        cause = _PUSH_CAUSES.get(code, code.replace("_", " "))
        return cause.format(value=value) if "{value}" in cause else f"{cause} (channel {value})"
    cause = _CAUSES.get(code, code.replace("_", " ") + (" {value}" if value else ""))
    return cause.format(value=value)


def held_count(group: HoldGroup) -> str:
    """``3 orders``, or for held pushes ``2 fulfilment pushes of 2 orders``."""
    orders = f"{group.orders} {'order' if group.orders == 1 else 'orders'}"
    if group.kind != PUSH:
        return orders
    return f"{group.pushes} fulfilment {'push' if group.pushes == 1 else 'pushes'} of {orders}"


HOLD_ALERT = "new_hold_reason"


def hold_key(code: str, value: str, kind: str = "hold") -> str:
    return (f"hold:{kind}:{code}:{value}" if kind in (PUSH, REQUEST) else f"hold:{code}:{value}")[:300]


def sync_hold_alerts(scope: Scope) -> tuple[int, int]:
    """One alert per root cause of held orders (code + value) while orders are held for it, and one
    per cause of held fulfilment pushes (code + channel) while pushes are held for it.

    Runs from the worker's housekeeping (every few seconds), not inside ingest: the cause is looked
    at once per pass however many orders it blocks, and the alert goes out when the cause first
    appears — "37 orders blocked by SKU ABC-1" is one message, not 37. When no order is held for the
    cause any more (a mapping was added, the orders were retried), the alert is resolved, so the
    cause coming back later alerts again. Held requests to channels (a cancel the API does not
    offer, an acceptance held for an unmapped SKU …) alert the same way, one per cause and channel;
    their fix is the reason's own (the back office link, the mapping to add). Returns (raised, resolved).
    """
    groups = holds(scope)
    requests = held_by_cause(scope)
    now = scope.now()
    raised = resolved = 0
    with scope.db.transaction() as conn:
        open_keys = set(
            conn.execute(
                select(alerts.c.key).where(
                    alerts.c.tenant_id == scope.tenant_id, alerts.c.kind == HOLD_ALERT, alerts.c.state == OPEN
                )
            ).scalars()
        )
        live = set()
        for g in groups:
            key = hold_key(g.code, g.value, g.kind)
            live.add(key)
            if key in open_keys:
                continue
            pushes = g.kind == PUSH
            what = "Fulfilment pushes" if pushes else "Orders"
            noun = (
                ("fulfilment push" if g.pushes == 1 else "fulfilment pushes")
                if pushes
                else ("order" if g.orders == 1 else "orders")
            )
            data = {"code": g.code, "value": g.value, "orders": g.orders}
            if pushes:
                data.update(kind=PUSH, pushes=g.pushes)
            if raise_alert(
                conn,
                scope.tenant_id,
                key=key,
                kind=HOLD_ALERT,
                subject=f"{what} held: {cause_text(g.code, g.value, g.kind)}",
                body=(
                    f"{held_count(g)} held — {g.message}\n\nExamples: {', '.join(g.examples)}\n\n{what} held "
                    "for the same cause later are not sent again; the daily digest counts them. Fixing the cause "
                    "releases every one of them."
                ),
                # the reason's fix, and the page of its holds (where the portal offers it as a form)
                fixes=(
                    g.fix,
                    show_holds(g.code, g.value, text=f"See the {noun} held for {cause_text(g.code, g.value, g.kind)}."),
                ),
                now=now,
                data=data,
            ):
                raised += 1
        for h in requests:
            key = hold_key(h.code, h.channel, REQUEST)
            live.add(key)
            if key in open_keys:
                continue
            cause = cause_text(h.code, h.channel, REQUEST)
            numbers = ", ".join(number for _, number in h.examples)
            if raise_alert(
                conn,
                scope.tenant_id,
                key=key,
                kind=HOLD_ALERT,
                subject=f"Requests held: {cause}",
                body=(
                    f"{h.count} {'request' if h.count == 1 else 'requests'} held — {h.message}\n\n"
                    f"Orders: {numbers}\n\nEach is planned again from a fresh read of the channel on every "
                    "push run: it is sent, or marked done, as soon as the channel allows it."
                ),
                fixes=(h.fix, show_holds(text="See the requests to channels held.")),
                now=now,
                data={"code": h.code, "value": h.channel, "kind": REQUEST, "requests": h.count},
            ):
                raised += 1
        for key in open_keys - live:
            if resolve_alert(conn, scope.tenant_id, key, now):
                resolved += 1
    return raised, resolved
