"""Channel deadlines (issue #16): orders approaching an acceptance or shipping deadline, and the alerts.

An order's deadlines are on the order (``Order.deadlines``: ``acceptance``, ``shipping``, as the
channel gives them); what each means is the channel's declared :class:`~orderbridge.domain.channel_rules.Deadline`:
the states in which it runs and how long before it the hub warns (``warn_before_s``). An order is
*approaching* a deadline while its ``channel_state`` is one of the deadline's states and the due
time is at most ``warn_before_s`` away (or already past: shown as missed until the channel moves it).

:func:`approaching` is what the dashboard and ``GET /api/v1/deadlines`` list; :func:`sync_channel_alerts`
(the worker's housekeeping, with the hold alerts) raises one alert per (order, deadline) — its key
never reused, so it fires once. Held channel requests (cancel, refund, accept, refuse) alert with the
hold alerts (``services/notify/holds.py``: ``hold:request:<code>:<channel>``, with the reason's fix);
an ``intent_held`` alert an earlier version raised here is resolved on the next pass.

Read from the orders' canonical JSON of the channels whose kind declares deadlines, in live states
only: no index exists on deadlines (a column would be the next step at marketplace volumes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from orderbridge.connectors import registry
from orderbridge.domain.channel_rules import Deadline
from orderbridge.errors import InvalidInput
from orderbridge.fixes import Fix, FixAction
from orderbridge.services.notify.outbox import OPEN, raise_alert, resolve_alert
from orderbridge.services.scope import Scope
from orderbridge.storage.tables import alerts, connections, orders

DEADLINE_ALERT = "deadline_near"
#: the kind earlier versions raised here for held requests (now hold alerts: services/notify/holds.py)
INTENT_HOLD_ALERT = "intent_held"
#: the order states in which a channel deadline still matters to the hub
_LIVE = ("received", "held", "ready", "posted")


@dataclass(frozen=True)
class Approaching:
    order_id: int
    number: str
    connection: str
    deadline: str
    due: datetime
    channel_state: str
    #: negative once missed
    seconds_left: float
    missed: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "number": self.number,
            "connection": self.connection,
            "deadline": self.deadline,
            "due": self.due.isoformat(),
            "channel_state": self.channel_state,
            "seconds_left": round(self.seconds_left),
            "when_missed": self.missed,
        }


def _declared(kind: str) -> tuple[Deadline, ...]:
    try:
        rules = registry.declaration(kind).channel_rules
    except InvalidInput:  # an unknown kind (a plugin gone): nothing declared
        return ()
    return rules.deadlines if rules is not None else ()


def approaching(scope: Scope, *, limit: int = 500) -> list[Approaching]:
    """Orders within their channel's warning window of a deadline (or past it), the soonest first."""
    now = scope.now()
    with scope.db.read() as conn:
        channels = [
            (int(c.id), c.name, _declared(c.kind))
            for c in conn.execute(
                select(connections.c.id, connections.c.name, connections.c.kind).where(
                    connections.c.tenant_id == scope.tenant_id, connections.c.role == "channel"
                )
            )
        ]
        found: list[Approaching] = []
        for connection_id, name, declared in channels:
            if not declared:
                continue
            by_name = {d.name: d for d in declared}
            for r in conn.execute(
                select(orders.c.id, orders.c.number, orders.c.canonical).where(
                    orders.c.tenant_id == scope.tenant_id,
                    orders.c.connection_id == connection_id,
                    orders.c.state.in_(_LIVE),
                )
            ):
                canonical = r.canonical if isinstance(r.canonical, dict) else {}
                state = str(canonical.get("channel_state") or "")
                for deadline_name, due_text in (canonical.get("deadlines") or {}).items():
                    d = by_name.get(deadline_name)
                    if d is None or state not in d.states:
                        continue
                    try:
                        due = datetime.fromisoformat(str(due_text))
                    except ValueError:
                        continue
                    if due.tzinfo is None:
                        continue
                    left = (due - now).total_seconds()
                    if left <= d.warn_before_s:
                        found.append(Approaching(int(r.id), r.number, name, d.name, due, state, left, d.missed))
    found.sort(key=lambda a: (a.due, a.order_id))
    return found[:limit]


def sync_channel_alerts(scope: Scope) -> tuple[int, int]:
    """Raise the deadline alerts (once per order and deadline). Returns (raised, resolved)."""
    raised = resolved = 0
    near = approaching(scope)
    now = scope.now()
    with scope.db.transaction() as conn:
        for a in near:
            key = f"deadline:{a.order_id}:{a.deadline}"
            exists = conn.execute(
                select(alerts.c.id).where(alerts.c.tenant_id == scope.tenant_id, alerts.c.key == key)
            ).first()
            if exists is not None:  # once per order and deadline, whatever happened to that alert
                continue
            when = "was due" if a.seconds_left < 0 else "is due"
            if raise_alert(
                conn,
                scope.tenant_id,
                key=key,
                kind=DEADLINE_ALERT,
                subject=f"Order {a.number}: {a.deadline} deadline at {a.connection} {when} {a.due:%Y-%m-%d %H:%M} UTC",
                body=(
                    f"Order {a.number} from {a.connection} is {a.channel_state}; its {a.deadline} deadline {when} "
                    f"{a.due.isoformat()} — when it is missed, {a.missed}."
                ),
                now=now,
                fixes=(Fix.of(FixAction.SHOW_HOLDS, "Look at the order and what holds it; act before the deadline."),),
                data={"order_id": a.order_id, "deadline": a.deadline, "due": a.due.isoformat()},
            ):
                raised += 1
        # intent_held alerts were raised here before the hold alerts covered held requests: resolved
        for key in conn.execute(
            select(alerts.c.key).where(
                alerts.c.tenant_id == scope.tenant_id, alerts.c.kind == INTENT_HOLD_ALERT, alerts.c.state == OPEN
            )
        ).scalars():
            if resolve_alert(conn, scope.tenant_id, key, now):
                resolved += 1
    return raised, resolved
