"""Acknowledging an alert: an operator says "I am on it" for the alert's current episode.

An acknowledgement tells the rest of the team that someone took the cause in hand (decision 121).
It changes nothing else: the alert stays open until its cause is fixed (only the hub resolves
alerts, from the facts), its e-mail and webhooks were or will be sent as usual, and repeats are
still counted. When a resolved cause comes back, the new episode is nobody's again
(:func:`.outbox.raise_alert` clears it). Acknowledging an episode twice changes nothing; a
resolved alert cannot be acknowledged (there is nothing left to take in hand), and a request that
names the episode it saw is refused once a newer one has begun — the person was looking at an
older one. Recorded in the audit trail on the alert.
"""

from __future__ import annotations

from sqlalchemy import update

from orderbridge.errors import Conflict, NotFound
from orderbridge.services.audit_trail import record_action
from orderbridge.services.notify.listing import OBJECT, AlertInfo, get_alert
from orderbridge.services.notify.outbox import OPEN
from orderbridge.services.principals import Actor
from orderbridge.storage.tables import alerts


def acknowledge_alert(actor: Actor, alert_id: int, *, generation: int | None = None) -> AlertInfo:
    """Mark the open alert ``alert_id`` of the actor's tenant as taken in hand by the actor."""
    scope = actor.scope
    now = scope.now()
    with scope.transaction() as conn:
        row = conn.execute(
            alerts.select().where(alerts.c.id == alert_id, alerts.c.tenant_id == scope.tenant_id).with_for_update()
        ).one_or_none()
        if row is None:
            raise NotFound(f"no alert {alert_id}", hint="The alerts page lists every alert of this account.")
        if generation is not None and generation != row.generation:
            raise Conflict(
                f"alert {alert_id} came back as episode {row.generation} since you looked at episode {generation}",
                hint="Read the alert again, then acknowledge the current episode.",
            )
        if row.state != OPEN:
            raise Conflict(
                f"alert {alert_id} is resolved: its cause went away at {row.resolved_at:%Y-%m-%d %H:%M} UTC",
                hint="Nothing to take in hand. If the cause comes back, the alert opens again as a new episode.",
            )
        if row.acknowledged_at is None:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == row.id, alerts.c.generation == row.generation, alerts.c.acknowledged_at.is_(None))
                .values(acknowledged_at=now, acknowledged_by=actor.principal.name[:300])
            )
            record_action(
                actor,
                "alert.acknowledge",
                OBJECT,
                row.id,
                f"Acknowledged episode {row.generation} of “{row.subject}”.",
                detail={"key": row.key, "generation": row.generation},
                conn=conn,
            )
    return get_alert(scope, alert_id).alert
