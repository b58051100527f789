"""A channel connection's download switches (issue #17, seed 001): read, set, and what they skipped.

The switches are a plain-words view over the connection's download rules
(:mod:`orderbridge.domain.switches`); setting one writes only the rule keys it changes over the
connection's own ``download_rules`` (a key it leaves out keeps the kind's default). Turning a
switch on re-evaluates every order of the channel the rules had skipped — they are in the ledger
already (every order is downloaded and kept; the rules decide, the reason says why) — so what it
excluded goes on to the destinations at once; turning one off touches no order already taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from orderbridge.connectors.base import Role
from orderbridge.domain import switches as S
from orderbridge.domain.states import OrderState
from orderbridge.errors import InvalidInput
from orderbridge.services.audit_trail import record_action
from orderbridge.services.connections import update_connection
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ledger import download_rules
from orderbridge.services.principals import Actor
from orderbridge.services.reevaluate import reevaluate_orders
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.tables import order_reasons, orders


@dataclass(frozen=True)
class SwitchState:
    switch: S.Switch
    on: bool
    #: what it does, in the seed's words
    words: str
    #: the channel's orders skipped now for a reason this switch decides
    skipped: int


@dataclass(frozen=True)
class SwitchesSet:
    switches: list[SwitchState]
    changed: list[str]
    #: skipped orders the change sent on (re-evaluated to ready or held)
    released: int


def _channel(scope: Scope, connection_id: int) -> ConnectionRow:
    row = scope.load(connection_id)
    if row.role is not Role.CHANNEL:
        raise InvalidInput(
            f"{row.name!r} is a destination: download switches are a channel's",
            hint="Set the switches on the channel connection the orders come from.",
        )
    return row


def switches(scope: Scope, connection_id: int) -> list[SwitchState]:
    """Each switch of the channel: on or off, what it does, how many orders it skips now."""
    row = _channel(scope, connection_id)
    positions = S.read(download_rules(row))
    counts: dict[S.Switch, int] = dict.fromkeys(S.Switch, 0)
    with scope.read() as conn:
        for code, value, _order in conn.execute(
            select(order_reasons.c.code, order_reasons.c.value, orders.c.id)
            .join(orders, orders.c.id == order_reasons.c.order_id)
            .where(
                orders.c.tenant_id == scope.tenant_id,
                orders.c.connection_id == row.id,
                orders.c.state == OrderState.SKIPPED.value,
                order_reasons.c.released_at.is_(None),
                order_reasons.c.kind == reason_repo.SKIP,
            )
        ):
            switch = S.for_skip(str(code), str(value))
            if switch is not None:
                counts[switch] += 1
    return [SwitchState(s, positions[s], S.WORDS[s], counts[s]) for s in S.Switch]


def set_switches(scope: Scope, connection_id: int, changes: Mapping[str, bool], *, by: Actor) -> SwitchesSet:
    """Set some switches (refused by name when unknown); re-evaluate what the rules had skipped."""
    row = _channel(scope, connection_id)
    try:
        wanted = {S.parse(name): bool(on) for name, on in changes.items()}
    except ValueError as exc:
        raise InvalidInput(str(exc), code="unknown_switch") from exc
    before = download_rules(row)
    after = S.apply(before, wanted)
    was, now = S.read(before), S.read(after)
    changed = [s.value for s in S.Switch if was[s] != now[s]]
    if changed:
        stored: dict[str, Any] = dict(row.settings.get("download_rules") or {})
        old, new = before.to_settings(), after.to_settings()
        stored.update({k: v for k, v in new.items() if old[k] != v})
        update_connection(scope, row.id, settings={"download_rules": stored})
        record_action(
            by,
            "connection.download_switches",
            "connection",
            row.id,
            f"download switches of {row.name}: "
            + ", ".join(f"{name} {'on' if now[S.Switch(name)] else 'off'}" for name in changed),
            {"switches": {name: now[S.Switch(name)] for name in changed}},
        )
    released = 0
    if any(now[s] and not was[s] for s in S.Switch):
        with scope.db.transaction() as conn:
            skipped = [
                int(i)
                for (i,) in conn.execute(
                    select(orders.c.id).where(
                        orders.c.tenant_id == scope.tenant_id,
                        orders.c.connection_id == row.id,
                        orders.c.state == OrderState.SKIPPED.value,
                    )
                )
            ]
            to_ready, _still = reevaluate_orders(conn, scope, skipped)
            released = to_ready
    return SwitchesSet(switches(scope, row.id), changed, released)
