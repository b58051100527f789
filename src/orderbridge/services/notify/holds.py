"""Hold alerts: one alert per root cause of held orders, and how a cause is named in alerts."""

from __future__ import annotations

from sqlalchemy import select

from orderbridge.fixes import show_holds
from orderbridge.services.notify.outbox import OPEN, raise_alert, resolve_alert
from orderbridge.services.queries import holds
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


def cause_text(code: str, value: str) -> str:
    """A hold cause in words: ``SKU ABC-1``, ``shipping method Express`` …"""
    cause = _CAUSES.get(code, code.replace("_", " ") + (" {value}" if value else ""))
    return cause.format(value=value)


HOLD_ALERT = "new_hold_reason"


def hold_key(code: str, value: str) -> str:
    return f"hold:{code}:{value}"[:300]


def sync_hold_alerts(scope: Scope) -> tuple[int, int]:
    """One alert per root cause of held orders (code + value) while orders are held for it.

    Runs from the worker's housekeeping (every few seconds), not inside ingest: the cause is looked
    at once per pass however many orders it blocks, and the alert goes out when the cause first
    appears — "37 orders blocked by SKU ABC-1" is one message, not 37. When no order is held for the
    cause any more (a mapping was added, the orders were retried), the alert is resolved, so the
    cause coming back later alerts again. Returns (raised, resolved).
    """
    groups = holds(scope)
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
            key = hold_key(g.code, g.value)
            live.add(key)
            if key in open_keys:
                continue
            noun = "order" if g.orders == 1 else "orders"
            if raise_alert(
                conn,
                scope.tenant_id,
                key=key,
                kind=HOLD_ALERT,
                subject=f"Orders held: {cause_text(g.code, g.value)}",
                body=(
                    f"{g.orders} {noun} held — {g.message}\n\nExamples: {', '.join(g.examples)}\n\nOrders held "
                    "for the same cause later are not sent again; the daily digest counts them. Fixing the cause "
                    "releases every one of them."
                ),
                # the reason's fix, and the page of its holds (where the portal offers it as a form)
                fixes=(
                    g.fix,
                    show_holds(g.code, g.value, text=f"See the {noun} held for {cause_text(g.code, g.value)}."),
                ),
                now=now,
                data={"code": g.code, "value": g.value, "orders": g.orders},
            ):
                raised += 1
        for key in open_keys - live:
            if resolve_alert(conn, scope.tenant_id, key, now):
                resolved += 1
    return raised, resolved
