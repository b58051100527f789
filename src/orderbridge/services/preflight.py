"""Pre-flight for POS destinations (``Capability.PREFLIGHT``, issue #17): every trap of seed 001
checked before anything is posted, each failure a typed hold with its fix, released by itself.

Generic over any destination declaring ``PREFLIGHT``; what is checked is the connector's
(:class:`~orderbridge.connectors.base.PreflightDestination`), what happens to the orders is here:

- **Connection-level checks** (the acting employee, the helper items, the location / station) are
  read **once per post run** — lazily, on the run's first need, then kept in :class:`PreflightRun`
  for the rest of it (never once per order) — and on "test connection" (CLI, API, portal). A failed
  one holds *every* order the run would send, each with the same reason whose value names the
  destination and the cause (``"pos: employee 'Online orders'"``, decision 210): one group on the
  dashboard, and one fix (the member reactivated, the helper items created) releases them all at the
  next run. Nothing is posted to the destination while it fails.
- **Order-level checks** (required custom fields, SKUs resolving to POS items, the total the POS
  will compute) run for each order just before it is reserved for sending — outside any database
  transaction, since they are remote reads.
- **Re-check.** Every post run first re-checks the orders held by this destination's checks: the
  whole pipeline again (so a hold of another cause stays) plus this destination's checks; an order
  whose causes are gone goes back to ``ready`` and is posted in the same run. Holds made by another
  POS destination's checks are kept as they are (that destination re-checks them).
- **Inventory honesty.** After each post, the POS document is read back (``document_state``); a
  sale the POS could not complete (``pending``, or ``open`` with no stock moved) holds the order
  ``pos_order_incomplete`` — "inventory is not yet adjusted there" — and every later run reads it
  again, releasing the order (back to ``posted``) once the POS completed it. A document the POS
  shows ``voided`` is not completed: the order stays held, its reason saying the sale was voided
  there (decision 243). Each state read that differs from the last one told is a ``pos_document``
  timeline event: the order page's POS document, its state and whether stock moved (decision 212).
- **A refused post.** A POS connector's own hold on a rejected post names the destination as the
  checks' do (``reasons.pos_addressed``, in :mod:`~orderbridge.services.posting`); when the re-check
  releases such an order, its rejected post is reopened and sent again under the same idempotency
  key. An order held ``pos_order_incomplete`` with a rejected post (the POS took it but refused the
  payment) is finished by a retry, which pays that same document (decision 242).

Why not the pure pipeline: the checks read the POS (is this member active *now*, does that SKU
exist *there*), which the domain never does; their results enter the ledger through the same writer
as the pipeline's (:func:`~orderbridge.services.ledger.apply_decisions`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Connection, select

from orderbridge.connectors.base import (
    Capability,
    OutgoingOrder,
    PosDocument,
    PosDocumentState,
    PreflightCheck,
    PreflightDestination,
    Role,
    SettingScope,
)
from orderbridge.domain import reasons as R
from orderbridge.domain.canonical import order_from_json
from orderbridge.domain.events import EventKind
from orderbridge.domain.mappings import DestinationPolicy
from orderbridge.domain.pipeline import NONE_WAIVED, Decision, evaluate, problems, resolve
from orderbridge.domain.reasons import HoldCode, Reason
from orderbridge.domain.states import OrderState, PostingState
from orderbridge.errors import InvalidInput, OrderBridgeError
from orderbridge.services.audit_trail import record_action
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ledger import (
    Outcome,
    add_events,
    apply_decisions,
    destination_policy,
    download_rules,
    idempotency_key,
)
from orderbridge.services.ledger import event_row as make_event
from orderbridge.services.principals import Actor
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import events as event_repo
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo
from orderbridge.storage.tables import events, order_reasons, orders, postings

log = structlog.get_logger("orderbridge.preflight")

#: the POS document states in which the sale is not complete: inventory not adjusted there (decision 212)
INCOMPLETE = frozenset({PosDocumentState.PENDING})


def is_incomplete(doc: PosDocument) -> bool:
    """A sale the POS has not completed: ``pending``, or ``open`` without stock having moved."""
    return doc.state in INCOMPLETE or (doc.state is PosDocumentState.OPEN and not doc.stock_moved)


def is_voided(doc: PosDocument) -> bool:
    """A document voided (cancelled) in the POS: no sale there, inventory not adjusted — never a
    reason to call the order posted (decision 243)."""
    return doc.state is PosDocumentState.VOIDED


def holds_order(doc: PosDocument | None) -> bool:
    """Whether the order stays held for this document: gone, not completed, or voided."""
    return doc is None or is_incomplete(doc) or is_voided(doc)


def preflight_of(scope: Scope, row: ConnectionRow) -> PreflightDestination | None:
    """The destination's pre-flight interface, or None when its kind declares no ``PREFLIGHT``."""
    if row.role is not Role.DESTINATION or not row.can(Capability.PREFLIGHT):
        return None
    return cast(PreflightDestination, scope.destination(row))


def as_preflight(row: ConnectionRow, connector: object) -> PreflightDestination | None:
    """``connector`` (built for ``row``) as a POS destination, or None when its kind is not one."""
    if row.role is not Role.DESTINATION or not row.can(Capability.PREFLIGHT):
        return None
    return cast(PreflightDestination, connector)


def addressed(check: PreflightCheck, destination: str) -> PreflightCheck:
    if check.reason is None:
        return check
    return PreflightCheck(check.name, check.detail, R.pos_addressed(check.reason, destination), check.action)


@dataclass
class PreflightRun:
    """One post run's pre-flight of one destination: the connection checks, read on first need
    and kept for the run (decision 211)."""

    destination: str
    connector: PreflightDestination
    _checks: list[PreflightCheck] | None = None
    #: how many times the connection checks were read (1 per run at most: the tests hold it to that)
    reads: int = 0
    order_checks: int = 0

    @property
    def checks(self) -> list[PreflightCheck]:
        if self._checks is None:
            self.reads += 1
            self._checks = [addressed(c, self.destination) for c in self.connector.preflight_connection()]
        return self._checks

    @property
    def connection_reasons(self) -> list[Reason]:
        return [c.reason for c in self.checks if c.reason is not None]

    def order_reasons(self, outgoing: OutgoingOrder) -> list[Reason]:
        """The connection's failed checks (when any, the order's own are not read: nothing can be
        posted anyway) or else the order's own."""
        failed = self.connection_reasons
        if failed:
            return failed
        self.order_checks += 1
        return [
            R.pos_addressed(c.reason, self.destination)
            for c in self.connector.preflight_order(outgoing)
            if c.reason is not None
        ]


@dataclass
class PreflightReport:
    """What the pre-flight did in one post run (added to the post report)."""

    rechecked: int = 0
    released: int = 0
    held: int = 0
    incomplete: int = 0
    completed: int = 0
    checks: list[PreflightCheck] = field(default_factory=list)
    #: whether the destination has pre-flight at all (a POS): only then does the post report show it
    touched: bool = False
    #: how many times the connection checks were read in the run (at most once)
    connection_reads: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rechecked": self.rechecked,
            "released": self.released,
            "held": self.held,
            "incomplete": self.incomplete,
            "completed": self.completed,
            "failed_checks": [c.name for c in self.checks if not c.ok],
            "connection_reads": self.connection_reads,
        }


# --- before sending: the order-level checks of the next candidates --------------------------------


def check_candidates(
    scope: Scope,
    row: ConnectionRow,
    run: PreflightRun,
    policy: DestinationPolicy,
    candidates: Sequence[Any],
    report: PreflightReport,
) -> list[int]:
    """Run the checks for ready candidates (rows with ``id, version, canonical, connection_id,
    external_id``): hold those that fail, return the ids that may be reserved. An order with a
    pipeline problem for this destination is returned as it is (the poster holds it as before)."""
    if not candidates:
        return []
    with scope.db.read() as conn:
        waived_by = event_repo.released_holds(conn, [c.id for c in candidates])
    passed: list[int] = []
    holds: list[Outcome] = []
    for c in candidates:
        order = order_from_json(c.canonical)
        waived = waived_by.get(c.id, NONE_WAIVED)
        if problems(order, policy, waived):
            passed.append(c.id)
            continue
        outgoing = OutgoingOrder(
            idempotency_key(c.id, row.id, c.version),
            row.declaration.order_key(c.connection_id, c.external_id),
            resolve(order, policy, waived),
        )
        found = [r for r in run.order_reasons(outgoing) if r.key not in waived]
        if found:
            holds.append(Outcome(c.id, OrderState.READY, Decision(OrderState.HELD, tuple(_unique(found)))))
        else:
            passed.append(c.id)
    if holds:
        with scope.db.transaction() as conn:
            apply_decisions(conn, scope.tenant_id, holds, scope.now())
        report.held += len(holds)
    return passed


def _unique(found: Sequence[Reason]) -> list[Reason]:
    seen: dict[tuple[str, str], Reason] = {}
    for r in found:
        seen.setdefault(r.key, r)
    return list(seen.values())


# --- every run: the orders this destination's checks hold, checked again -------------------------


def _mine(code: str, value: str, fix: Any, destination: str) -> bool:
    if R.of_destination(code, value, destination):
        return True
    if code in (HoldCode.SKU_UNMAPPED, HoldCode.REQUIRED_FIELD_MISSING) and fix is not None:
        return destination in (fix.param("destination"), fix.param("connection"))
    return False


#: per (hub, destination): when its held orders were last checked again, and what the connection
#: checks and settings were then (decision 211)
_RECHECKED: dict[tuple[int, int], tuple[datetime, str]] = {}


def _due(scope: Scope, row: ConnectionRow, run: PreflightRun) -> bool:
    """Whether the held orders are to be checked again now: the connection checks' outcome or the
    connection's settings changed since the last re-check, or ``preflight_recheck_s`` has passed."""
    now = scope.now()
    failed = sorted(f"{r.code}={r.value}" for r in run.connection_reasons)
    print_ = json.dumps({"failed": failed, "settings": row.settings}, sort_keys=True, default=str)
    key = (id(scope.hub), row.id)
    last = _RECHECKED.get(key)
    window = timedelta(seconds=scope.settings.preflight_recheck_s)
    if last is not None and last[1] == print_ and now - last[0] < window:
        return False
    _RECHECKED[key] = (now, print_)
    return True


def recheck(
    scope: Scope, row: ConnectionRow, run: PreflightRun, report: PreflightReport, *, force: bool = False
) -> None:
    """Check again the held orders this destination's checks hold (see the module); at most every
    ``preflight_recheck_s`` unless something it depends on changed, or ``force``."""
    with scope.db.read() as conn:
        ids = sorted(_held_by(conn, scope, row.name))
    if not ids or not (force or _due(scope, row, run)):
        return
    with scope.db.read() as conn:
        rows = _evaluable(conn, scope, ids)
        open_reasons = _open_reasons(conn, [r.id for r in rows])
        waived_by = event_repo.released_holds(conn, [r.id for r in rows])
        policies = [destination_policy(conn, d) for d in scope.connections(conn, Role.DESTINATION)]
        policy = next(p for p in policies if p.name == row.name)
        rules = {c.id: download_rules(c) for c in scope.connections(conn, Role.CHANNEL)}
        posted_here = _posted_at(conn, row.id, [r.id for r in rows])
    outcomes: list[Outcome] = []
    for r in rows:
        current = open_reasons.get(r.id, [])
        if r.id in posted_here or any(
            reason.code in (HoldCode.UPDATE_NEEDS_REVIEW, HoldCode.POS_ORDER_INCOMPLETE) for reason in current
        ):
            continue  # what these hold is ended by another decision (a review, the POS completing it)
        report.rechecked += 1
        order = order_from_json(r.canonical)
        waived = waived_by.get(r.id, NONE_WAIVED)
        pure = evaluate(order, rules[r.connection_id], policies, waived)
        if pure.state is OrderState.SKIPPED:
            outcomes.append(Outcome(r.id, OrderState.HELD, pure))
            continue
        # another POS destination's holds stay as they are: that destination checks them again
        foreign = [
            reason
            for reason in current
            if reason.code in R.POS_CONNECTION_CODES | {HoldCode.POS_TOTAL_MISMATCH}
            and not R.of_destination(reason.code, reason.value, row.name)
        ]
        own: list[Reason] = []
        if not problems(order, policy, waived):
            outgoing = OutgoingOrder(
                idempotency_key(r.id, row.id, r.version),
                row.declaration.order_key(r.connection_id, r.external_id),
                resolve(order, policy, waived),
            )
            own = [x for x in run.order_reasons(outgoing) if x.key not in waived]
        found = _unique([*pure.reasons, *foreign, *own])
        decision = Decision(OrderState.HELD, tuple(found)) if found else Decision(OrderState.READY, ())
        outcomes.append(Outcome(r.id, OrderState.HELD, decision))
    if outcomes:
        versions = {r.id: int(r.version) for r in rows}
        with scope.db.transaction() as conn:
            apply_decisions(conn, scope.tenant_id, outcomes, scope.now())
            # held by a cause this connector returned on a refused post (decision 242): the cause is
            # gone, so that post goes again (the same key: the same POS document, never a second)
            posting_repo.reopen_first_posts(
                conn,
                row.id,
                [(o.order_id, versions[o.order_id]) for o in outcomes if o.decision.state is OrderState.READY],
            )
    report.released += sum(1 for o in outcomes if o.decision.state is OrderState.READY)


def _evaluable(conn: Connection, scope: Scope, ids: Sequence[int]) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(ids), 500):
        out.extend(
            conn.execute(
                select(
                    orders.c.id,
                    orders.c.version,
                    orders.c.canonical,
                    orders.c.connection_id,
                    orders.c.external_id,
                ).where(
                    orders.c.tenant_id == scope.tenant_id,
                    orders.c.id.in_(ids[i : i + 500]),
                    orders.c.state == OrderState.HELD.value,
                    orders.c.canonical.is_not(None),
                )
            ).all()
        )
    return out


def _open_reasons(conn: Connection, ids: Sequence[int]) -> dict[int, list[Reason]]:
    found: dict[int, list[Reason]] = {}
    for i in range(0, len(ids), 500):
        for oid, code, value, message, fix in conn.execute(
            select(
                order_reasons.c.order_id,
                order_reasons.c.code,
                order_reasons.c.value,
                order_reasons.c.message,
                order_reasons.c.fix,
            ).where(
                order_reasons.c.order_id.in_(ids[i : i + 500]),
                order_reasons.c.released_at.is_(None),
                order_reasons.c.push_id.is_(None),
            )
        ):
            found.setdefault(int(oid), []).append(Reason(code, value, message, fix))
    return found


def _posted_at(conn: Connection, destination_id: int, ids: Sequence[int]) -> set[int]:
    """The orders whose current version the destination holds (posted: not a pre-flight's to hold)."""
    found: set[int] = set()
    for i in range(0, len(ids), 500):
        found.update(
            int(oid)
            for (oid,) in conn.execute(
                select(postings.c.order_id)
                .join(orders, orders.c.id == postings.c.order_id)
                .where(
                    postings.c.destination_id == destination_id,
                    postings.c.order_id.in_(ids[i : i + 500]),
                    postings.c.order_version == orders.c.version,
                    postings.c.status == PostingState.POSTED.value,
                )
            )
        )
    return found


# --- after sending: the POS document, read back -------------------------------------------------


def read_documents(
    scope: Scope,
    row: ConnectionRow,
    connector: PreflightDestination,
    posted: Sequence[tuple[int, str]],
    report: PreflightReport,
) -> None:
    """Read the documents just posted (``(order id, document id)``) and record their state; hold
    those the POS could not complete (``pos_order_incomplete``)."""
    if not posted:
        return
    docs = [(oid, doc_id, _read(connector, row, doc_id)) for oid, doc_id in posted]
    now = scope.now()
    with scope.db.transaction() as conn:
        last = _last_told(conn, row.name, [oid for oid, _d, _s in docs])
        add_events(
            conn, [e for oid, doc_id, doc in docs if (e := _told(scope, row, oid, doc_id, doc, last)) is not None]
        )
        # a document the POS does not show right after it was created is not one to call complete
        incomplete = [(oid, doc_id, doc) for oid, doc_id, doc in docs if holds_order(doc)]
        if not incomplete:
            return
        states = dict(
            conn.execute(
                select(orders.c.id, orders.c.state).where(orders.c.id.in_([oid for oid, _d, _s in incomplete]))
            ).all()
        )
        rows: list[dict[str, Any]] = []
        moves: list[order_repo.Move] = []
        system = row.declaration.title
        for oid, doc_id, doc in incomplete:
            state = OrderState(states[oid])
            if state not in (OrderState.POSTED, OrderState.READY, OrderState.HELD):
                continue
            reason = _incomplete_reason(system, row.name, doc_id, doc)
            if reason.key in reason_repo.open_for_orders(conn, [oid]).get(oid, {}):
                continue
            rows.append(reason_repo.reason_row(scope.tenant_id, oid, reason_repo.HOLD, reason, now))
            told = make_event(scope.tenant_id, oid, EventKind.HELD, now, "held: " + reason.message, codes=[reason.code])
            moves.append(order_repo.Move(oid, state, OrderState.HELD, (told,)))
            report.incomplete += 1
        reason_repo.add(conn, rows)
        order_repo.transition(conn, moves, now)


def _incomplete_reason(system: str, destination: str, doc_id: str, doc: PosDocument | None) -> Reason:
    """Why the order stays held for its POS document (``pos_order_incomplete``, naming the destination)."""
    if doc is not None and is_voided(doc):
        return R.pos_addressed(R.pos_order_voided(system, doc.number or doc_id, destination), destination)
    shown = doc_id if doc is None else doc.number or doc_id
    reason = R.pos_order_incomplete(system, shown, "not found" if doc is None else doc.state.value, destination)
    return R.pos_addressed(reason, destination)


def reread_incomplete(
    scope: Scope, row: ConnectionRow, connector: PreflightDestination, report: PreflightReport
) -> None:
    """Read again the documents of the orders held ``pos_order_incomplete`` here; release those the
    POS has completed since (back to ``posted`` where every destination has the version). A document
    voided in the POS is not completed (decision 243): the order stays held, its reason saying so —
    unless the hub cancelled the order itself, whose void that is (the hold is then released)."""
    key = (HoldCode.POS_ORDER_INCOMPLETE.value, row.name)
    with scope.db.read() as conn:
        found = conn.execute(
            select(
                order_reasons.c.id,
                order_reasons.c.order_id,
                order_reasons.c.message,
                postings.c.document_id,
                orders.c.state,
            )
            .join(orders, orders.c.id == order_reasons.c.order_id)
            .join(
                postings,
                (postings.c.order_id == order_reasons.c.order_id)
                & (postings.c.destination_id == row.id)
                & (postings.c.status == PostingState.POSTED.value),
            )
            .where(
                orders.c.tenant_id == scope.tenant_id,
                order_reasons.c.code == key[0],
                order_reasons.c.value == key[1],
                order_reasons.c.released_at.is_(None),
                order_reasons.c.push_id.is_(None),
            )
            .order_by(order_reasons.c.order_id, postings.c.id.desc())
        ).all()
    newest: dict[int, Any] = {}
    for f in found:
        newest.setdefault(int(f.order_id), f)  # the newest posting's document
    if not newest:
        return
    docs = {oid: _read(connector, row, str(f.document_id)) for oid, f in newest.items()}
    now = scope.now()
    with scope.db.transaction() as conn:
        last = _last_told(conn, row.name, list(newest))
        add_events(
            conn,
            [
                e
                for oid, f in newest.items()
                if (e := _told(scope, row, oid, str(f.document_id), docs[oid], last)) is not None
            ],
        )
        _tell_voided(scope, conn, row, newest, docs)
        done = [oid for oid, doc in docs.items() if not holds_order(doc)]
        if not done:
            return
        reason_repo.release(conn, [newest[oid].id for oid in done], now)
        report.completed += len(done)
        open_now = reason_repo.open_for_orders(conn, done)
        freed = [oid for oid in done if not open_now.get(oid) and newest[oid].state == OrderState.HELD.value]
        released = make_event(
            scope.tenant_id, None, EventKind.RELEASED, now, f"released: {row.name} completed the sale"
        )
        order_repo.transition(
            conn,
            [
                order_repo.Move(oid, OrderState.HELD, OrderState.READY, ({**released, "order_id": oid},))
                for oid in freed
            ],
            now,
            leave_others=True,
        )
        order_repo.transition(
            conn,
            [order_repo.Move(oid, OrderState.READY, OrderState.POSTED) for oid in freed],
            now,
            guard="posted_everywhere",
            params={"n": len(scope.connections(conn, Role.DESTINATION))},
        )


def _tell_voided(
    scope: Scope, conn: Connection, row: ConnectionRow, newest: dict[int, Any], docs: dict[int, PosDocument | None]
) -> None:
    """The held orders whose document the POS now shows voided: their hold says so (once), and the
    fix is a person's. An order the hub cancelled (the void is its own amendment) is released."""
    now = scope.now()
    voided = {oid: doc for oid, doc in docs.items() if doc is not None and is_voided(doc)}
    if not voided:
        return
    cancelled = [oid for oid in voided if newest[oid].state == OrderState.CANCELLED.value]
    reason_repo.release(conn, [newest[oid].id for oid in cancelled], now)
    rows: list[dict[str, Any]] = []
    told: list[dict[str, Any]] = []
    for oid, doc in voided.items():
        if oid in cancelled:
            continue
        reason = _incomplete_reason(row.declaration.title, row.name, str(newest[oid].document_id), doc)
        if newest[oid].message == reason.message:
            continue  # told already
        reason_repo.release(conn, [newest[oid].id], now)
        rows.append(reason_repo.reason_row(scope.tenant_id, oid, reason_repo.HOLD, reason, now))
        told.append(
            make_event(scope.tenant_id, oid, EventKind.HELD, now, "held: " + reason.message, codes=[reason.code])
        )
    reason_repo.add(conn, rows)
    add_events(conn, told)


def _read(connector: PreflightDestination, row: ConnectionRow, doc_id: str) -> PosDocument | None:
    try:
        return connector.document_state(doc_id)
    except OrderBridgeError as exc:
        log.warning("preflight.document_unread", connection=row.name, document=doc_id, code=exc.code, error=str(exc))
        return PosDocument(doc_id, PosDocumentState.PENDING, False, number=f"{doc_id} (not read back: {exc.code})")


def _last_told(conn: Connection, destination: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        for oid, data in conn.execute(
            select(events.c.order_id, events.c.data)
            .where(events.c.order_id.in_(ids[i : i + 500]), events.c.kind == EventKind.POS_DOCUMENT.value)
            .order_by(events.c.id)
        ):
            if isinstance(data, dict) and data.get("destination") == destination:
                found[int(oid)] = data
    return found


def _told(
    scope: Scope,
    row: ConnectionRow,
    oid: int,
    doc_id: str,
    doc: PosDocument | None,
    last: dict[int, dict[str, Any]],
) -> dict[str, Any] | None:
    """The ``pos_document`` event for a state read, or None when it says what the last one said."""
    data = document_data(row.name, doc_id, doc)
    before = last.get(oid)
    if before is not None and all(before.get(k) == v for k, v in data.items()):
        return None
    if doc is None:
        text = f"{row.name} has no document {doc_id} any more"
    else:
        moved = "stock moved" if doc.stock_moved else "inventory not yet adjusted"
        text = f"{row.name} document {doc.number or doc_id}: {doc.state.value} ({moved})"
    return make_event(scope.tenant_id, oid, EventKind.POS_DOCUMENT, scope.now(), text, **data)


def document_data(destination: str, doc_id: str, doc: PosDocument | None) -> dict[str, Any]:
    """A POS document as the timeline (and the order page) keeps it."""
    return {
        "destination": destination,
        "document_id": doc_id,
        "state": None if doc is None else doc.state.value,
        "stock_moved": None if doc is None else doc.stock_moved,
        "number": None if doc is None else doc.number,
        "total": None if doc is None or doc.total is None else str(doc.total.amount),
        "currency": None if doc is None or doc.total is None else doc.total.currency,
    }


def pos_documents(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    """The newest state read of each POS document of an order (the order page's POS section)."""
    newest: dict[str, dict[str, Any]] = {}
    for at, data in conn.execute(
        select(events.c.at, events.c.data)
        .where(events.c.order_id == order_id, events.c.kind == EventKind.POS_DOCUMENT.value)
        .order_by(events.c.id)
    ):
        if isinstance(data, dict) and data.get("destination"):
            newest[str(data["destination"])] = {**data, "read_at": at}
    return list(newest.values())


# --- test connection, and the "create helper items" action --------------------------------------


def check_connection(scope: Scope, connection_id: int) -> list[PreflightCheck]:
    """The destination's connection-level checks, read now (``test connection``); [] for a kind
    without ``PREFLIGHT``."""
    row = scope.load(connection_id)
    connector = preflight_of(scope, row)
    if connector is None:
        return []
    return [addressed(c, row.name) for c in connector.preflight_connection()]


@dataclass(frozen=True)
class HelperItemsResult:
    created: list[str]
    checks: list[PreflightCheck]
    released: int


def create_helper_items(scope: Scope, connection_id: int, *, by: Actor) -> HelperItemsResult:
    """Create the helper items the POS lacks (the connector does it idempotently), check the
    connection again and release the orders whose only cause that was (``create_helper_items``)."""
    row = scope.load(connection_id)
    connector = preflight_of(scope, row)
    if connector is None:
        raise InvalidInput(
            f"{row.name!r} ({row.kind}) is not a POS destination: it has no helper items to create",
            code="not_a_pos_destination",
        )
    created = connector.create_helper_items()
    record_action(
        by,
        "connection.helper_items",
        "connection",
        row.id,
        f"created the helper items of {row.name}: {', '.join(created) if created else 'none was missing'}",
        {"created": created},
    )
    run = PreflightRun(row.name, connector)
    report = PreflightReport()
    recheck(scope, row, run, report, force=True)
    return HelperItemsResult(created, run.checks, report.released)


# --- the POS connection screen ------------------------------------------------------------------


@dataclass(frozen=True)
class PosScreen:
    """What the portal's POS connection screen shows: each connection check with its fix (read now),
    the connector's settings the fixes name, and how many orders this destination's checks hold."""

    checks: list[PreflightCheck]
    #: the POS could not be read (its error's message): the checks are then unknown, not passed
    error: str
    #: ``(name, description, current value as JSON)`` of each connector setting of the kind
    settings: list[tuple[str, str, str]]
    held: int


def pos_screen(scope: Scope, connection_id: int) -> PosScreen | None:
    """The POS screen of a ``PREFLIGHT`` destination (None for any other connection)."""
    row = scope.load(connection_id)
    if preflight_of(scope, row) is None:
        return None
    checks: list[PreflightCheck] = []
    error = ""
    try:
        checks = check_connection(scope, connection_id)
    except OrderBridgeError as exc:
        error = exc.message
    values = {**row.declaration.default_settings, **row.settings}
    settings = [
        (s.name, s.description, json.dumps(values.get(s.name), ensure_ascii=False))
        for s in row.declaration.settings
        if s.scope is SettingScope.CONNECTOR
    ]
    with scope.read() as conn:
        held = len(_held_by(conn, scope, row.name))
    return PosScreen(checks, error, settings, held)


def _held_by(conn: Connection, scope: Scope, destination: str) -> set[int]:
    """The held orders with an open reason this destination's checks made."""
    rows = conn.execute(
        select(order_reasons.c.order_id, order_reasons.c.code, order_reasons.c.value, order_reasons.c.fix)
        .join(orders, orders.c.id == order_reasons.c.order_id)
        .where(
            orders.c.tenant_id == scope.tenant_id,
            orders.c.state == OrderState.HELD.value,
            order_reasons.c.released_at.is_(None),
            order_reasons.c.push_id.is_(None),
            order_reasons.c.code.in_(sorted(R.PREFLIGHT_CODES | {HoldCode.POS_ORDER_INCOMPLETE})),
        )
    ).all()
    return {int(r.order_id) for r in rows if _mine(r.code, r.value, r.fix, destination)}
