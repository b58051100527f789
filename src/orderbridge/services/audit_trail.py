"""The audit trail: every user action — who (a user, an API token, the CLI), what, when, on which
object, from which address — as append-only rows of ``user_actions``.

A service that changes something on a person's behalf records it with :func:`record_action`,
inside its own transaction when it passes ``conn`` (so the change and its record commit or roll
back together), else in one of its own. Objects are named by ``object_type`` (``order``,
``connection``, ``mapping``, ``user``, ``token``, ``alert`` …) and their id as text, so any kind of
object can have a trail; the pages that show an object read it with :func:`actions_on`, the
tenant's log pages with :func:`recent_actions` (newest first, keyset pages by id).

The actor's name is copied into the row: renaming or disabling a user later does not rewrite who
did what.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from orderbridge.errors import InvalidInput
from orderbridge.services.principals import Actor, Principal
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import user_actions as action_repo

#: sizes of the columns (``user_actions``, migration 0009)
_ACTION_CHARS, _TYPE_CHARS, _ID_CHARS, _ADDRESS_CHARS, _NAME_CHARS = 60, 40, 100, 100, 300


@dataclass(frozen=True)
class ActionInfo:
    id: int
    at: datetime
    #: the actor's name as it was then: ``Ana Lima``, a token's label ``ci``, ``cli:deploy`` (see actor_kind)
    who: str
    actor_kind: str
    actor_id: int | None
    action: str
    object_type: str
    object_id: str | None
    summary: str
    address: str | None
    detail: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> ActionInfo:
        return cls(
            int(row.id),
            row.at,
            str(row.actor_name),
            str(row.actor_kind),
            None if row.actor_id is None else int(row.actor_id),
            str(row.action),
            str(row.object_type),
            row.object_id,
            str(row.summary),
            row.address,
            row.detail,
        )


def record_action(
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str | int | None,
    summary: str,
    detail: dict[str, Any] | None = None,
    conn: Connection | None = None,
) -> None:
    """Record that ``actor`` did ``action`` (``order.retry``, ``token.revoke`` …) to an object of
    its tenant. Pass the service's ``conn`` to commit the record with the change itself."""
    if actor.principal.tenant_id != actor.scope.tenant_id:
        raise InvalidInput(f"an actor of tenant {actor.principal.tenant_id} cannot act in {actor.scope.slug!r}")
    if not action or len(action) > _ACTION_CHARS or not object_type or len(object_type) > _TYPE_CHARS:
        raise InvalidInput(f"action {action[:80]!r} on {object_type[:80]!r}: 1-60 and 1-40 characters")
    oid = None if object_id is None else str(object_id)
    if oid is not None and len(oid) > _ID_CHARS:
        raise InvalidInput(f"object id {oid[:40]!r}… is longer than {_ID_CHARS} characters")
    values: dict[str, Any] = {
        "tenant_id": actor.scope.tenant_id,
        "at": actor.scope.now(),
        "actor_kind": actor.principal.kind,
        "actor_id": actor.principal.id,
        "actor_name": actor.principal.name[:_NAME_CHARS],
        "address": None if actor.address is None else actor.address[:_ADDRESS_CHARS],
        "action": action,
        "object_type": object_type,
        "object_id": oid,
        "summary": summary,
        "detail": detail,
    }
    if conn is not None:
        action_repo.add(conn, **values)
        return
    with actor.scope.transaction() as own:
        action_repo.add(own, **values)


def actions_on(scope: Scope, object_type: str, object_id: str | int | None, limit: int = 50) -> list[ActionInfo]:
    """What was done to one object of the tenant, newest first."""
    oid = None if object_id is None else str(object_id)
    with scope.read() as conn:
        rows = action_repo.on_object(conn, scope.tenant_id, object_type, oid, _bounded(limit))
    return [ActionInfo.from_row(r) for r in rows]


def recent_actions(scope: Scope, limit: int = 100, before_id: int | None = None) -> list[ActionInfo]:
    """The tenant's latest actions, newest first; the next page starts ``before_id`` = the last id shown."""
    with scope.read() as conn:
        rows = action_repo.recent(conn, scope.tenant_id, _bounded(limit), before_id)
    return [ActionInfo.from_row(r) for r in rows]


def actions_by(scope: Scope, principal: Principal, limit: int = 50) -> list[ActionInfo]:
    """What one user (or token) did in the tenant, newest first (their account page)."""
    with scope.read() as conn:
        rows = action_repo.by_actor(conn, scope.tenant_id, principal.kind, principal.id, _bounded(limit))
    return [ActionInfo.from_row(r) for r in rows]


def _bounded(limit: int) -> int:
    if limit < 1 or limit > 1000:
        raise InvalidInput(f"limit {limit} is not between 1 and 1000")
    return limit
