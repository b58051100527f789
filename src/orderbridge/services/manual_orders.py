"""Manual orders: the tenant's manual channel, and drafts submitted into the ledger through it.

Every manual order — placed in the portal, posted to the API, placed from the CLI or imported from
a file — is written by :func:`submit`, which builds the canonical record of each draft
(:func:`orderbridge.domain.manual.build_record`) and hands the batch to
:func:`~orderbridge.services.ingest.writer.ingest_records`, exactly as a channel sync does. So a
manual order gets every guarantee a channel order gets (decision 126): the database's unique
``(connection, external_id)`` binder, the version rule (the same number with other content is an
update; with the same content, nothing), the download rules, mappings and required fields, the
hold reasons with their fixes, posting with the same idempotency keys, the inbox and the audits'
counts.

- The tenant has **one** manual channel, a connection of kind ``manual`` named ``manual``, created
  on first use by :func:`ensure_manual_channel` (an insert that does nothing on a conflict, then a
  read: two first orders placed at once make one channel).
- A draft's identity is its number's key (:func:`orderbridge.domain.manual.order_key`); a draft
  without a number is given the next ``M-<n>`` of the tenant's counter, skipping any number an
  order already has (decision 129).
- A draft without ``placed_at`` keeps the placing time the ledger has for its number, so submitting
  the same draft again is *unchanged*, not an update that only moved the date.
- Each new or changed order gets a ``submitted`` event naming its :class:`Source` ("placed by
  user X", "imported from file F row N") on its timeline.
- :func:`place` is the one-order door of the portal, the API and the CLI: validation first (an
  invalid draft claims nothing), then the idempotency key claimed in the same transaction as the
  order (decision 131): the same key with the same draft is answered as the first time, with
  another draft refused (:class:`IdempotencyKeyReused`).
- :func:`preview` says what :func:`submit` would do to each draft — new, unchanged, updated, and
  the state the pipeline would give it (held because SKU X is unmapped …) — writing nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from orderbridge.connectors.base import Role
from orderbridge.crypto import SecretBox
from orderbridge.domain import limits, manual
from orderbridge.domain.canonical import canonical_hash, order_to_json
from orderbridge.domain.events import EventKind
from orderbridge.domain.manual import Draft, InvalidDraft, Problem, Source
from orderbridge.domain.reasons import Reason
from orderbridge.domain.states import OrderState
from orderbridge.errors import Conflict, InvalidInput
from orderbridge.services.audit_trail import record_action
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ingest.context import ChannelContext, decide
from orderbridge.services.ingest.writer import ingest_records
from orderbridge.services.ledger import add_events, destination_policy, download_rules, event_row
from orderbridge.services.principals import Actor
from orderbridge.services.scope import Scope
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.repos import connections as connection_repo
from orderbridge.storage.repos import idempotency_keys, manual_numbers
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import connections, mappings, order_reasons, order_skus, orders

KIND = "manual"
#: the name of the tenant's manual channel (created on first use)
CONNECTION_NAME = "manual"
#: the connection's base URL: there is nothing to dial
BASE_URL = "manual:"
#: the idempotency scope of placing one order
PLACE_SCOPE = "place_order"
#: how long an idempotency key may be (the header's value, the form's token)
MAX_KEY = 200

NEW = "new"
UPDATED = "updated"
UNCHANGED = "unchanged"
INVALID = "invalid"


# --- the channel -------------------------------------------------------------------------------------
def find_manual_channel(conn: Connection, tenant_id: int) -> ConnectionRow | None:
    """The tenant's manual channel, when it has one (its oldest, should there be several)."""
    for row in connection_repo.of_tenant(conn, tenant_id, Role.CHANNEL.value):
        if row.kind == KIND:
            return ConnectionRow.from_row(row)
    return None


def ensure_manual_channel(conn: Connection, tenant_id: int, *, box: SecretBox, now: datetime) -> ConnectionRow:
    """The tenant's manual channel, created on first use (no credentials: an empty sealed set)."""
    found = find_manual_channel(conn, tenant_id)
    if found is not None:
        return found
    conn.execute(
        dialect_insert(conn)(connections)
        .values(
            tenant_id=tenant_id,
            name=CONNECTION_NAME,
            kind=KIND,
            role=Role.CHANNEL.value,
            base_url=BASE_URL,
            credentials=box.seal({}),
            settings={},
            enabled=True,
            health="healthy",
            health_message="orders placed by hand or imported from files",
            consecutive_failures=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
    )
    found = find_manual_channel(conn, tenant_id)
    if found is None:
        raise InvalidInput(
            f"the tenant already has a connection named {CONNECTION_NAME!r} that is not its manual channel",
            hint=f"Rename that connection: manual orders need a channel called {CONNECTION_NAME!r}.",
        )
    return found


def _unsaved_channel(tenant_id: int) -> ConnectionRow:
    """What the manual channel will be, for a preview made before it exists (never stored)."""
    return ConnectionRow(0, tenant_id, CONNECTION_NAME, KIND, Role.CHANNEL, BASE_URL, "", {}, "unknown", "")


def channel_context(conn: Connection, tenant_id: int, row: ConnectionRow) -> ChannelContext:
    """The manual channel's download rules and the tenant's destinations' policies (mappings …)."""
    policies = [
        destination_policy(conn, ConnectionRow.from_row(d))
        for d in connection_repo.of_tenant(conn, tenant_id, Role.DESTINATION.value)
    ]
    return ChannelContext(row, download_rules(row), policies)


# --- outcomes ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Submission:
    draft: Draft
    source: Source


@dataclass(frozen=True, slots=True)
class Submitted:
    """What became of one draft: ``outcome`` is ``new``, ``updated``, ``unchanged`` or ``invalid``
    (nothing written: see ``problems``); ``state`` and ``reasons`` are the order's after the write
    (``held`` with why and the fix, ``skipped`` …)."""

    index: int
    number: str
    outcome: str
    order_id: int | None = None
    state: str | None = None
    reasons: tuple[Reason, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def held(self) -> bool:
        return self.state == OrderState.HELD.value

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "outcome": self.outcome,
            "order_id": self.order_id,
            "state": self.state,
            "reasons": [{"code": r.code, "value": r.value, "message": r.message} for r in self.reasons],
            "problems": [p.as_dict() for p in self.problems],
        }


def _duplicate(index: int, number: str, first: int) -> Problem:
    return Problem(
        "number",
        number,
        "duplicate_number",
        f"Order number {number!r} is given twice in this submission (first as order {first + 1}).",
        "Give each order its own number, or merge the two into one order.",
    )


def _next_free_number(conn: Connection, tenant_id: int, channel_id: int | None) -> str:
    while True:
        number = manual.auto_number(manual_numbers.next_number(conn, tenant_id))
        if channel_id is None or order_repo.id_by_external(conn, channel_id, manual.order_key(number)) is None:
            return number


def _created_at(conn: Connection, channel_id: int, keys: Sequence[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for i in range(0, len(keys), 500):
        for ext, at in conn.execute(
            select(orders.c.external_id, orders.c.channel_created_at).where(
                orders.c.connection_id == channel_id, orders.c.external_id.in_(list(keys[i : i + 500]))
            )
        ):
            if at is not None:
                found[ext] = at
    return found


def _open_reasons(conn: Connection, order_ids: Sequence[int]) -> dict[int, list[Reason]]:
    found: dict[int, list[Reason]] = {}
    for i in range(0, len(order_ids), 500):
        for oid, code, value, message, fix in conn.execute(
            select(
                order_reasons.c.order_id,
                order_reasons.c.code,
                order_reasons.c.value,
                order_reasons.c.message,
                order_reasons.c.fix,
            )
            .where(
                order_reasons.c.order_id.in_(list(order_ids[i : i + 500])),
                order_reasons.c.released_at.is_(None),
                order_reasons.c.push_id.is_(None),
            )
            .order_by(order_reasons.c.id)
        ):
            found.setdefault(int(oid), []).append(Reason(code, value, message, fix))
    return found


def _checked(
    conn: Connection | None,
    tenant_id: int,
    items: Sequence[Submission],
    channel_id: int | None,
    *,
    number_required: bool,
    numbering: bool,
) -> tuple[list[Submitted | None], list[Submission]]:
    """Each item validated; ``None`` where it may go on (with its number, given one when ``numbering``)."""
    verdicts: list[Submitted | None] = []
    ready: list[Submission] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        problems = manual.validate(item.draft, number_required=number_required)
        draft = item.draft
        if not problems and not draft.number.strip() and numbering and conn is not None:
            draft = replace(draft, number=_next_free_number(conn, tenant_id, channel_id))
        if not problems and draft.number.strip():
            key = manual.order_key(draft.number)
            if key in seen:
                problems = [_duplicate(i, draft.number, seen[key])]
            else:
                seen[key] = i
        if problems:
            verdicts.append(Submitted(i, manual.normalise_number(draft.number), INVALID, problems=tuple(problems)))
        else:
            verdicts.append(None)
            ready.append(Submission(draft, item.source))
    return verdicts, ready


# --- writing -------------------------------------------------------------------------------------------
def submit(
    conn: Connection,
    tenant_id: int,
    items: Sequence[Submission],
    now: datetime,
    *,
    box: SecretBox,
    number_required: bool = False,
) -> list[Submitted]:
    """Write the valid drafts of ``items`` into the tenant's manual channel, in the caller's transaction.

    One :class:`Submitted` per item, in order. An invalid draft (or a second draft with a number
    already in this submission) writes nothing and says why; the others are ingested as one batch —
    one bad draft never stops the rest. A draft without a number is numbered ``M-<n>`` unless
    ``number_required`` (then it is invalid)."""
    channel = ensure_manual_channel(conn, tenant_id, box=box, now=now)
    verdicts, ready = _checked(conn, tenant_id, items, channel.id, number_required=number_required, numbering=True)
    if not ready:
        return [v for v in verdicts if v is not None]
    keys = [manual.order_key(s.draft.number) for s in ready]
    before = order_repo.existing(conn, channel.id, keys)
    placed = _created_at(conn, channel.id, keys)
    records = [
        manual.build_record(s.draft, s.source, now, created_at=placed.get(key))
        for s, key in zip(ready, keys, strict=True)
    ]
    ingest_records(conn, tenant_id, channel_context(conn, tenant_id, channel), records, now)
    after = order_repo.existing(conn, channel.id, keys)
    reasons = _open_reasons(conn, [int(r["id"]) for r in after.values()])
    events: list[dict[str, Any]] = []
    done: list[Submitted] = []
    for s, key, record in zip(ready, keys, records, strict=True):
        row = after[key]
        old = before.get(key)
        if old is None:
            outcome = NEW
        elif int(row["version"]) > int(old["version"]):
            outcome = UPDATED
        else:
            outcome = UNCHANGED
        oid = int(row["id"])
        if outcome != UNCHANGED:
            events.append(
                event_row(
                    tenant_id,
                    oid,
                    EventKind.SUBMITTED,
                    now,
                    s.source.describe(),
                    connection_id=channel.id,
                    version=int(row["version"]),
                    **s.source.as_dict(),
                )
            )
        done.append(Submitted(0, record.number, outcome, oid, str(row["state"]), tuple(reasons.get(oid, ()))))
    add_events(conn, events)
    out: list[Submitted] = []
    written = iter(done)
    for i, v in enumerate(verdicts):
        out.append(v if v is not None else replace(next(written), index=i))
    return out


# --- preview -------------------------------------------------------------------------------------------
def preview(conn: Connection, tenant_id: int, items: Sequence[Submission], now: datetime) -> list[Submitted]:
    """What :func:`submit` would do with each item, writing nothing: its outcome (``new``,
    ``updated``, ``unchanged``, ``invalid`` with the problems) and the state the pipeline would give
    it with the reasons (held because a SKU is unmapped …). A draft without a number is shown as
    new (its number is given when it is placed)."""
    channel = find_manual_channel(conn, tenant_id)
    row = channel or _unsaved_channel(tenant_id)
    verdicts, ready = _checked(None, tenant_id, items, None, number_required=False, numbering=False)
    ctx = channel_context(conn, tenant_id, row)
    numbered = [s for s in ready if s.draft.number.strip()]
    keys = [manual.order_key(s.draft.number) for s in numbered]
    before = order_repo.existing(conn, channel.id, keys) if channel is not None else {}
    placed = _created_at(conn, channel.id, keys) if channel is not None else {}
    planned: list[Submitted] = []
    for s in ready:
        number = s.draft.number.strip() or manual.auto_number(0)
        key = manual.order_key(number)
        record = manual.build_record(replace(s.draft, number=number), s.source, now, created_at=placed.get(key))
        old = before.get(key) if s.draft.number.strip() else None
        if old is None:
            outcome = NEW
        elif str(old["content_hash"]) == canonical_hash(order_to_json(record)):
            outcome = UNCHANGED
        else:
            outcome = UPDATED
        decision = decide(record, ctx)
        shown = manual.normalise_number(s.draft.number)
        planned.append(
            Submitted(0, shown, outcome, int(old["id"]) if old else None, decision.state.value, decision.reasons)
        )
    out: list[Submitted] = []
    it = iter(planned)
    for i, v in enumerate(verdicts):
        out.append(v if v is not None else replace(next(it), index=i))
    return out


# --- one order, with an idempotency key ----------------------------------------------------------------
class IdempotencyKeyReused(Conflict):
    """The key was used before with another draft: refused, so a retry never places a different order."""

    code = "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class Placed:
    """One placed order: the answer :func:`place` gives, and gives again for a repeated key."""

    order_id: int
    number: str
    state: str
    outcome: str
    reasons: tuple[dict[str, str], ...] = ()
    #: True when this is the stored answer to an earlier request with the same key
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "number": self.number,
            "state": self.state,
            "outcome": self.outcome,
            "reasons": [dict(r) for r in self.reasons],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, replayed: bool) -> Placed:
        return cls(
            int(data["order_id"]),
            str(data["number"]),
            str(data["state"]),
            str(data["outcome"]),
            tuple(dict(r) for r in data.get("reasons", ())),
            replayed,
        )


def request_hash(draft: Draft) -> str:
    """What an idempotency key's request is compared by: the draft as given."""
    text = json.dumps(manual.draft_as_json(draft), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    value = key.strip()
    if not value or len(value) > MAX_KEY or not value.isascii() or not value.isprintable():
        raise InvalidInput(
            f"the idempotency key must be 1 to {MAX_KEY} printable ASCII characters (got {len(key)} characters)",
            hint="Send a fresh random value (a UUID) per order, and the same value when you retry it.",
        )
    return value


def place(actor: Actor, draft: Draft, *, via: str, idempotency_key: str | None = None) -> Placed:
    """Place one order by hand (portal, API, CLI): validated, numbered, written, on the audit trail.

    :class:`~orderbridge.domain.manual.InvalidDraft` lists every problem (nothing is written, no key
    is claimed); with ``idempotency_key``, a repeat with the same draft is answered with the first
    answer (``replayed``) and a repeat with another draft is :class:`IdempotencyKeyReused`."""
    key = check_key(idempotency_key)
    problems = manual.validate(draft)
    if problems:
        raise InvalidDraft(problems)
    scope: Scope = actor.scope
    source = Source.placed_by(actor.principal.name, via=via)
    digest = request_hash(draft)
    now = scope.now()
    with scope.db.transaction() as conn:
        if key is not None:
            prior = idempotency_keys.claim(conn, scope.tenant_id, PLACE_SCOPE, key, digest, now)
            if prior is not None:
                if prior.request_hash == digest and prior.response is None:  # claimed, never settled
                    raise Conflict(
                        f"the request with idempotency key {key!r} is still being answered",
                        hint="Retry in a moment with the same key: it is answered once, as the first time.",
                    )
                if prior.request_hash != digest:
                    raise IdempotencyKeyReused(
                        f"the idempotency key {key!r} was used before for another order",
                        hint="Send a new key for a new order; repeat a key only to retry the very same order.",
                    )
                return Placed.from_dict(dict(prior.response), replayed=True)
        [done] = submit(conn, scope.tenant_id, [Submission(draft, source)], now, box=scope.box)
        if done.outcome == INVALID:  # a number given twice cannot happen with one draft; be exact anyway
            raise InvalidDraft(list(done.problems))
        assert done.order_id is not None and done.state is not None
        placed = Placed(
            done.order_id,
            done.number,
            done.state,
            done.outcome,
            tuple({"code": r.code, "value": r.value, "message": r.message} for r in done.reasons),
        )
        if key is not None:
            idempotency_keys.settle(conn, scope.tenant_id, PLACE_SCOPE, key, 201, placed.as_dict(), done.order_id)
        record_action(
            actor,
            "order.place",
            "order",
            done.order_id,
            f"placed order {done.number} by hand ({done.outcome}, {done.state})",
            {"number": done.number, "via": via, "outcome": done.outcome},
            conn=conn,
        )
    return placed


# --- suggestions -------------------------------------------------------------------------------------
#: what the suggestions can be for
SUGGESTION_KINDS = ("sku", "shipping")
MAX_SUGGESTIONS = 50
#: recent orders whose shipping methods are read for suggestions (their canonical JSON is parsed)
_RECENT_ORDERS = 500


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A value the tenant's mappings or past orders know: ``mapped`` names what a destination maps
    it to (``wh: W-1``), empty when no mapping has it yet (an order with it would be held)."""

    value: str
    mapped: tuple[str, ...] = ()


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def suggest(scope: Scope, kind: str, prefix: str = "", limit: int = 20) -> list[Suggestion]:
    """Values for the SKU or shipping-method field that start with ``prefix`` (any case): those
    the tenant's mappings map (with where to), then those its past orders carried."""
    if kind not in SUGGESTION_KINDS:
        raise InvalidInput(f"no suggestions for {kind!r}", hint=f"Ask for one of: {', '.join(SUGGESTION_KINDS)}.")
    if "\x00" in prefix or len(prefix) > limits.SKU.max_chars:
        raise InvalidInput("the prefix is not a value a SKU or method can start with", hint="Type fewer characters.")
    limit = max(1, min(limit, MAX_SUGGESTIONS))
    pattern = _like_prefix(prefix.lower())
    found: dict[str, list[str]] = {}
    with scope.read() as conn:
        for value, target, destination in conn.execute(
            select(mappings.c.source_value, mappings.c.target_value, connections.c.name)
            .join(connections, connections.c.id == mappings.c.destination_id)
            .where(
                mappings.c.tenant_id == scope.tenant_id,
                mappings.c.kind == kind,
                func.lower(mappings.c.source_value).like(pattern, escape="\\"),
            )
            .order_by(mappings.c.source_value)
            .limit(limit * 4)
        ):
            found.setdefault(str(value), []).append(f"{destination}: {target}")
        if kind == "sku":
            past = conn.execute(
                select(order_skus.c.sku)
                .where(
                    order_skus.c.tenant_id == scope.tenant_id, func.lower(order_skus.c.sku).like(pattern, escape="\\")
                )
                .distinct()
                .order_by(order_skus.c.sku)
                .limit(limit)
            ).scalars()
            seen = [str(v) for v in past]
        else:
            seen = []
            recent = conn.execute(
                select(orders.c.canonical)
                .where(orders.c.tenant_id == scope.tenant_id, orders.c.canonical.is_not(None))
                .order_by(orders.c.id.desc())
                .limit(_RECENT_ORDERS)
            ).scalars()
            for canonical in recent:
                for line in (canonical or {}).get("shipping_lines") or ():
                    method = str(line.get("code") or line.get("title") or "")
                    if method and method.lower().startswith(prefix.lower()) and method not in seen:
                        seen.append(method)
    for value in sorted(seen):
        found.setdefault(value, [])
    return [Suggestion(v, tuple(m)) for v, m in sorted(found.items(), key=lambda kv: (not kv[1], kv[0].lower()))][
        :limit
    ]
