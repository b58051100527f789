"""The digest: held orders and held fulfilment pushes by root cause, with counts and the fix, once
per period.

The digest (:func:`send_digest_if_due`) is an ordinary alert of kind ``digest`` whose key names
its period. Periods are aligned to multiples of ``DIGEST_EVERY_S`` since the Unix epoch (daily:
UTC midnight), so every process computes the same key and the unique constraint makes "one digest
per period" a database fact, not a look-up. The first digest comes in the first period that starts
after the tenant was created.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update

from orderbridge.fixes import Fix, show_holds
from orderbridge.services.channel_intents import held_by_cause
from orderbridge.services.notify.holds import PUSH, REQUEST, cause_text
from orderbridge.services.notify.outbox import OPEN, RESOLVED, raise_alert
from orderbridge.services.notify.render import Renderer
from orderbridge.services.queries import accounting, holds
from orderbridge.services.scope import Scope
from orderbridge.storage.tables import alerts, tenants

log = structlog.get_logger("orderbridge.notify")

DIGEST = "digest"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def digest_period_start(now: datetime, every_s: float) -> datetime:
    """Start of the digest period containing ``now``: periods are multiples of ``every_s`` since the epoch."""
    elapsed = (now - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=math.floor(elapsed / every_s) * every_s)


def _ledger_line(totals: dict[str, Any]) -> str:
    return (
        f"Ledger: {totals['ledger_orders']} orders — {totals['posted']} posted, {totals['ready']} ready, "
        f"{totals['held']} held, {totals['skipped']} skipped (by download rules), {totals['cancelled']} cancelled."
    )


def _cause_line(cause: dict[str, Any], render: Renderer | None) -> str:
    fix = Fix.from_dict(cause["fix"])
    said = render.said(fix) if render else fix.text
    said = said[:1].lower() + said[1:]
    orders = int(cause["orders"])
    kind = str(cause.get("kind") or "hold")
    counted = f"{orders} {'order' if orders == 1 else 'orders'}"
    held = orders
    if kind == PUSH:  # held fulfilment pushes: "2 fulfilment pushes of 2 orders"
        held = int(cause.get("pushes") or 0)
        counted = f"{held} fulfilment {'push' if held == 1 else 'pushes'} of {counted}"
    examples = ", ".join(cause["examples"])
    more = ", …" if held > len(cause["examples"]) else ""
    group = render.link(show_holds(cause["code"], cause["value"])) if render else None
    return (
        f"{counted} blocked by {cause_text(cause['code'], cause['value'], kind)} — {said}\n"
        f"    e.g. {examples}{more}" + (f" · {group}" if group else "")
    )


def _request_line(held: dict[str, Any], render: Renderer | None) -> str:
    fix = Fix.from_dict(held["fix"])
    said = render.said(fix) if render else fix.text
    count = int(held["requests"])
    return (
        f"{count} {'request' if count == 1 else 'requests'}: {cause_text(held['code'], held['channel'], REQUEST)}"
        f" — {said}\n    e.g. {', '.join(held['examples'])}{', …' if count > len(held['examples']) else ''}"
    )


def _requests_part(data: dict[str, Any], render: Renderer | None) -> str:
    held = data.get("requests") or []
    if not held:
        return ""
    return "\n\nRequests to channels held (cancel, refund, accept, refuse):\n\n" + "\n\n".join(
        _request_line(h, render) for h in held
    )


def digest_text(data: dict[str, Any] | None, render: Renderer | None = None) -> str | None:
    """The digest's text from its data: plain words (``render`` None: the stored body), or with each
    cause's command and the link to its group (the e-mail). None for data this version did not write."""
    if not data or not isinstance(data.get("ledger"), dict) or "at" not in data:
        return None
    at = datetime.fromisoformat(str(data["at"]))
    ledger = _ledger_line(data["ledger"])
    causes = data.get("causes") or []
    requests = _requests_part(data, render)
    if not causes and requests:
        return f"Nothing is held at the destinations, {at:%Y-%m-%d %H:%M} UTC.{requests}\n\n{ledger}"
    if not causes:
        return (
            f"Nothing is held, {at:%Y-%m-%d %H:%M} UTC: every order received is posted, on its way, or "
            f"skipped by a download rule.\n\n{ledger}\n\nThis digest is sent every period even when all is "
            "well, so its absence is itself a warning."
        )
    if any(c.get("kind") == PUSH for c in causes):
        intro = (
            f"Held orders and fulfilment pushes by root cause, {at:%Y-%m-%d %H:%M} UTC. Fixing a cause "
            "releases every order or push it holds; they are then posted (or pushed) by the next run."
        )
    else:
        intro = (
            f"Held orders by root cause, {at:%Y-%m-%d %H:%M} UTC. Fixing a cause releases every order it "
            "holds; they are then posted by the next run."
        )
    return intro + "\n\n" + "\n\n".join(_cause_line(c, render) for c in causes) + f"{requests}\n\n{ledger}"


def send_digest_if_due(scope: Scope) -> bool:
    """When digest_every_s has elapsed since the last digest (alerts of kind 'digest'), raise a digest alert
    (key 'digest:<ISO period start>') whose body groups held orders by root cause with counts and the fix,
    e.g. "37 orders blocked by SKU ABC-1 — map SKU 'ABC-1' to a SKU of destination 'wh'" (the e-mail adds the
    command and the link to the group, :mod:`.render`); then the normal dispatch sends it. Nothing held → a
    short 'nothing held' digest is still sent (proof of life).

    "Elapsed" is counted in aligned periods (see the module docstring): one digest per period, the first in
    the first period that starts after the tenant was created (so a fresh install, or a test, does not get a
    digest the moment it starts). Returns True when a digest was raised."""
    now = scope.now()
    start = digest_period_start(now, scope.settings.digest_every_s)
    key = f"digest:{start.isoformat(timespec='seconds')}"
    with scope.db.read() as conn:
        created = conn.execute(select(tenants.c.created_at).where(tenants.c.id == scope.tenant_id)).scalar_one()
        exists = conn.execute(
            select(alerts.c.id).where(alerts.c.tenant_id == scope.tenant_id, alerts.c.key == key)
        ).first()
    if start < created or exists is not None:
        return False
    groups = holds(scope)
    totals = accounting(scope)
    held_orders = int(totals["held"])
    data: dict[str, Any] = {
        "period_start": start.isoformat(),
        "at": now.isoformat(),
        "held": held_orders,
        "ledger": {k: int(totals[k]) for k in ("ledger_orders", "posted", "ready", "held", "skipped", "cancelled")},
        "causes": [
            {
                "kind": g.kind,
                "code": g.code,
                "value": g.value,
                "orders": g.orders,
                "pushes": g.pushes,
                "fix": g.fix.as_dict(),
                "examples": list(g.examples),
            }
            for g in groups
        ],
    }
    held_pushes = sum(g.pushes for g in groups if g.kind == PUSH)
    data["held_pushes"] = held_pushes
    data["requests"] = [
        {
            "code": h.code,
            "channel": h.channel,
            "requests": h.count,
            "fix": h.fix.as_dict(),
            "examples": [number for _, number in h.examples],
        }
        for h in held_by_cause(scope)
    ]
    held_requests = sum(int(h["requests"]) for h in data["requests"])
    pushes = f"{held_pushes} held fulfilment push(es), " if held_pushes else ""
    asked = f"{held_requests} held request(s) to channels, " if held_requests else ""
    causes = len(groups) + len(data["requests"])
    subject = (
        f"Digest: {held_orders} held order(s), {pushes}{asked}{causes} cause(s) to fix"
        if causes
        else "Digest: nothing held"
    )
    body = digest_text(data) or ""
    with scope.db.transaction() as conn:
        raised = raise_alert(
            conn,
            scope.tenant_id,
            key=key,
            kind=DIGEST,
            subject=subject,
            body=body,
            fixes=(show_holds(),) if causes else (),
            now=now,
            data=data,
        )
        if raised:  # only the newest digest stays open: it is the current summary
            conn.execute(
                update(alerts)
                .where(
                    alerts.c.tenant_id == scope.tenant_id,
                    alerts.c.kind == DIGEST,
                    alerts.c.key != key,
                    alerts.c.state == OPEN,
                )
                .values(state=RESOLVED, resolved_at=now)
            )
    if raised:
        log.info("digest.raised", tenant_id=scope.tenant_id, key=key, held=held_orders, causes=len(groups))
    return raised
