"""The alerts outbox: raising and resolving alerts, inside the caller's transaction.

An **alert** is a cause with a stable ``key`` (``connection_failing:12``, ``reconcile:40``,
``digest:2026-11-01T00:00:00+00:00``). The ``alerts`` table is an outbox with a unique
``(tenant_id, key)``: :func:`raise_alert` runs inside the caller's transaction, so an alert exists
exactly when the fact that caused it was committed. While the alert is open a repeat only counts
(``occurrences``, ``last_at``); a new key, or a key whose alert was resolved, opens an
**episode**: ``generation`` + 1 and ``dispatched_at`` NULL. Each step is one conditional
statement (bump the open row / reopen the resolved row / insert, ``ON CONFLICT DO NOTHING``), so
two workers raising the same cause at once still produce one episode.

An alert says what happened in plain words (``body``) and what to do as data (``fixes``, each a
:class:`~orderbridge.fixes.Fix`, the first the one its e-mail links to); the transports render
the fixes when they send (:mod:`.render`), so nothing here spells a command or builds a URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, update

from orderbridge.errors import InvalidInput
from orderbridge.fixes import Fix
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.tables import alerts

log = structlog.get_logger("orderbridge.notify")

OPEN, RESOLVED = "open", "resolved"
_KEY_MAX, _SUBJECT_MAX = 300, 300


# --- raising and resolving (inside the caller's transaction) -------------------------------------


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def raise_alert(
    conn: Connection,
    tenant_id: int,
    *,
    key: str,
    kind: str,
    subject: str,
    body: str,
    now: datetime,
    fixes: Sequence[Fix] = (),
    connection_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Record a cause inside the caller's transaction. One alert per key while open: a repeat only bumps
    occurrences/last_at (returns False); a new key, or a key whose alert was resolved, (re)opens it with
    generation+1 and dispatched_at NULL so it is sent once (returns True)."""
    if not key or len(key) > _KEY_MAX:
        raise InvalidInput(f"alert key {key[:40]!r}… must be 1–{_KEY_MAX} characters")
    where = (alerts.c.tenant_id == tenant_id, alerts.c.key == key)
    episode = {
        "kind": kind,
        "connection_id": connection_id,
        "subject": _clip(" ".join(subject.split()), _SUBJECT_MAX),  # one line: it becomes a mail header
        "body": body,
        "fixes": tuple(fixes),
        "data": data,
        "state": OPEN,
        "occurrences": 1,
        "first_at": now,
        "last_at": now,
        "resolved_at": None,
        "dispatched_at": None,
        # a new episode is nobody's yet: an acknowledgement is of one episode (decision 121)
        "acknowledged_at": None,
        "acknowledged_by": None,
    }
    # Three conditional statements, each atomic; a concurrent insert of the same key makes the third
    # do nothing, and the next round's first statement then counts this occurrence on that row.
    for _ in range(3):
        bumped = conn.execute(
            update(alerts)
            .where(*where, alerts.c.state == OPEN)
            .values(occurrences=alerts.c.occurrences + 1, last_at=now)
        ).rowcount
        if bumped:
            log.debug("alert.repeated", tenant_id=tenant_id, key=key)
            return False
        reopened = conn.execute(
            update(alerts)
            .where(*where, alerts.c.state == RESOLVED)
            .values(generation=alerts.c.generation + 1, **episode)
        ).rowcount
        if reopened:
            log.info("alert.reopened", tenant_id=tenant_id, key=key, kind=kind)
            return True
        inserted = conn.execute(
            dialect_insert(conn)(alerts)
            .values(tenant_id=tenant_id, key=key, generation=1, **episode)
            .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        ).rowcount
        if inserted:
            log.info("alert.raised", tenant_id=tenant_id, key=key, kind=kind)
            return True
    raise RuntimeError(f"alert {key!r} changed state three times while being raised")  # pragma: no cover


def resolve_alert(conn: Connection, tenant_id: int, key: str, now: datetime) -> bool:
    """Close the open alert for ``key`` (its cause is fixed), so the next occurrence is a new episode.
    Returns False when no alert for ``key`` was open."""
    done = conn.execute(
        update(alerts)
        .where(alerts.c.tenant_id == tenant_id, alerts.c.key == key, alerts.c.state == OPEN)
        .values(state=RESOLVED, resolved_at=now)
    ).rowcount
    if done:
        log.info("alert.resolved", tenant_id=tenant_id, key=key)
    return bool(done)
