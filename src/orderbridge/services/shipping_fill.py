"""Fill in the shipping data of a held push and send it again (issue #16, seed 004's "re-send them
to the marketplace by filling shipping data directly from the order pane").

A push held because the channel needs a tracking number, carrier or tracking URL the 3PL did not
give (``shipping_data_missing``, ``tracking_number_missing``, ``carrier_missing``) is completed by a
person from the order page (portal, REST API) or the CLI: the values given are written on the
shipment (only the fields given; the 3PL's own values are never blanked), the push moves to
``recheck`` and is planned again by the next push run — or at once, when ``send_now``. The user
action is on the order's timeline with who made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from orderbridge.domain import limits
from orderbridge.domain.events import EventKind
from orderbridge.errors import InvalidInput, NotFound
from orderbridge.services.ledger import add_events, event_row
from orderbridge.services.scope import Scope
from orderbridge.storage.leases import LeaseBusy
from orderbridge.storage.repos import fulfilment_pushes as push_repo
from orderbridge.storage.repos import shipments as shipment_repo
from orderbridge.storage.tables import fulfilment_pushes, orders, shipments

#: the hold codes a filled-in value can fix
FILLABLE = ("shipping_data_missing", "tracking_number_missing", "carrier_missing")
FIELDS = ("tracking_number", "carrier", "tracking_url")


@dataclass(frozen=True)
class Filled:
    order_id: int
    shipment: str
    fields: tuple[str, ...]
    channel_id: int
    #: the push run's report when sent at once
    report: Any = None


def held_pushes(scope: Scope, order_id: int) -> list[Any]:
    """The order's held pushes (with their shipment) whose shipping data a person can fill in."""
    with scope.db.read() as conn:
        return list(
            conn.execute(
                select(
                    fulfilment_pushes.c.id,
                    fulfilment_pushes.c.reason_code,
                    fulfilment_pushes.c.channel_id,
                    shipments.c.id.label("shipment_id"),
                    shipments.c.external_id,
                    shipments.c.tracking_number,
                    shipments.c.carrier,
                    shipments.c.tracking_url,
                )
                .join(shipments, shipments.c.id == fulfilment_pushes.c.shipment_id)
                .where(
                    fulfilment_pushes.c.order_id == order_id,
                    fulfilment_pushes.c.tenant_id == scope.tenant_id,
                    fulfilment_pushes.c.status == "held",
                    fulfilment_pushes.c.reason_code.in_(FILLABLE),
                )
                .order_by(fulfilment_pushes.c.id)
            ).all()
        )


def fill_shipping_data(
    scope: Scope,
    order_id: int,
    *,
    by: str,
    tracking_number: str | None = None,
    carrier: str | None = None,
    tracking_url: str | None = None,
    shipment: str | None = None,
    send_now: bool = True,
) -> Filled:
    """Write the given shipping data on the order's held push's shipment (``shipment``: its id at the
    3PL, when the order has more than one held) and send the push again."""
    with scope.db.read() as conn:
        number = conn.execute(
            select(orders.c.number).where(orders.c.id == order_id, orders.c.tenant_id == scope.tenant_id)
        ).scalar_one_or_none()
    if number is None:  # another tenant's order is not found, whatever else is given
        raise NotFound(f"order {order_id} does not exist", hint="Check the order id (the orders list shows it).")
    given = {
        k: v.strip()
        for k, v in (("tracking_number", tracking_number), ("carrier", carrier), ("tracking_url", tracking_url))
        if v is not None and v.strip()
    }
    if not given:
        raise InvalidInput(
            "no shipping data given", hint="Give the tracking number, the carrier or the tracking URL (or several)."
        )
    for k, v in given.items():
        if len(v) > limits.QUOTE_CHARS * 4 or any(ord(c) < 32 for c in v):
            raise InvalidInput(f"the {k.replace('_', ' ')} is not usable as given", hint="Give it on one line.")
    url = given.get("tracking_url")
    if url is not None and (urlsplit(url).scheme.lower() not in ("http", "https") or not urlsplit(url).netloc):
        raise InvalidInput(
            "the tracking URL is not a web address (it needs the http or https scheme and a host)",
            hint="Give the carrier's full tracking link, as the carrier's site shows it.",
        )
    pushes = held_pushes(scope, order_id)
    if shipment is not None:
        pushes = [p for p in pushes if p.external_id == shipment]
    if not pushes:
        raise InvalidInput(
            f"order {number} has no push held for missing shipping data"
            + (f" for shipment {shipment!r}" if shipment else ""),
            hint="The order page lists its pushes and why each is held.",
        )
    if len(pushes) > 1:
        raise InvalidInput(
            f"order {number} has {len(pushes)} held pushes: say which shipment",
            hint="Give the shipment: " + ", ".join(p.external_id for p in pushes),
        )
    (push,) = pushes
    now = scope.now()
    with scope.db.transaction() as conn:
        current = conn.execute(select(shipments).where(shipments.c.id == push.shipment_id)).one()
        shipment_repo.update_changed(conn, current, given, now)
        push_repo.recheck_held(conn, push.shipment_id, now)
        add_events(
            conn,
            [
                event_row(
                    scope.tenant_id,
                    order_id,
                    EventKind.USER_ACTION,
                    now,
                    f"shipping data of shipment {push.external_id} filled in by {by}: "
                    + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in given.items())
                    + "; sent again",
                    action="fill_shipping_data",
                    by=by,
                    shipment=push.external_id,
                    fields=sorted(given),
                )
            ],
        )
    report = None
    if send_now:
        from orderbridge.services.backsync import push_fulfilments  # the push run (imports this module's callers)

        try:
            report = push_fulfilments(scope, int(push.channel_id))
        except LeaseBusy:  # a push run of the channel is going on: the next one sends it (it is `recheck`)
            report = None
    return Filled(order_id, push.external_id, tuple(sorted(given)), int(push.channel_id), report)


def fill(actor: Any, order_id: int, **values: Any) -> Filled:
    """:func:`fill_shipping_data` by ``actor``, recorded in the audit trail."""
    from orderbridge.services.audit_trail import record_action

    filled = fill_shipping_data(actor.scope, order_id, by=actor.principal.name, **values)
    record_action(
        actor,
        "order.fill_shipping_data",
        "order",
        order_id,
        f"filled in {', '.join(filled.fields)} of shipment {filled.shipment} and sent it again",
        {"shipment": filled.shipment, "fields": list(filled.fields)},
    )
    return filled
