"""Order updates: a later version of an order some destination already holds (issue #15).

**Where an update comes from.** Ingest (a poll, a webhook, an audit, a person's *refresh*) writes a
new version of an order; when the posting ledger says a destination holds a document for the order,
ingest hands the version to :func:`note_version` instead of the pipeline. It diffs the new version
against the one before (``domain.changes.diff_canonical``), folds in an update still open for the
order (superseded: one open update per order, from the version the destinations hold), decides by
the tenant's policies (``domain/update_policy.py``) and writes one ``order_updates`` row:

- **apply** → status ``applying``; the order goes back to ``ready`` and the destination's next
  posting run performs the plan (:func:`amend`);
- **review** → status ``review``; the order is held with ``update_needs_review`` (its message names
  the classes, its fix what accepting will do) until a person accepts, ignores or cancels it
  (:func:`decide`);
- **ignore** → status ``ignored``; only the timeline says so, nothing goes downstream.

A policy of *apply* whose plan cannot be performed somewhere (a destination declares ``NOTHING``
for a class) is held for review instead: nothing a person has not seen is left half done.

**The plan** (``domain/update_plan.py``) is made from the update's classes, each destination's
declared amendments and the document the posting ledger says it holds *before* the update's version
(:func:`held_documents`: the fold of its posted postings — post, update, void, adjust). Computing it
from the postings older than the update's version makes it the same plan on every run, so a run
interrupted anywhere resumes it.

**Performing it** (:func:`amend`, called by ``post_ready`` under the destination's lease). Each
action of a destination's step is a posting keyed ``<order>:<destination>:v<version>:<action>``,
linked to the posting it amends (``amends_id``), reserved ``pending`` in a committed transaction
before anything is sent, recorded ``posted`` (or ``rejected``: the order is held with the
destination's words) in another after. A repeat finds the same row; a row already ``posted`` is
skipped. A posting reserved before (a run that died, or an answer lost) is settled by reading the
destination first (``find_document``) for a void or a re-post, the two actions a blind resend could
duplicate; updates and adjustments carry their idempotency key to a destination that promises to
answer a repeat with the first result (``AmendableDestination``). A destination without
``AMEND_DOCUMENTS`` updates in place by a re-post through ``post_orders`` (ShipStation's
``orderKey`` upsert). So no path — refresh, reset, accept, retry, a crash between any two steps —
can make a second document for one order version (``docs/updates.md``).

The poster never sends a first post to a destination that already holds a document of the order
(``services/posting.py``): after the first post, only this module speaks to it about the order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import structlog
from sqlalchemy import Connection

from orderbridge.connectors.base import (
    Adjustment,
    AmendableDestination,
    Capability,
    DestinationConnector,
    OutgoingOrder,
    PostedDocument,
    PostResult,
    RemoteDocument,
    Role,
)
from orderbridge.domain import reasons as R
from orderbridge.domain.canonical import order_from_json
from orderbridge.domain.changes import ChangeClass, FieldChange, diff_canonical
from orderbridge.domain.events import EventKind
from orderbridge.domain.money import Money
from orderbridge.domain.pipeline import NONE_WAIVED, Decision, problems, resolve
from orderbridge.domain.reasons import HoldCode
from orderbridge.domain.roles import Role as UserRole
from orderbridge.domain.states import OrderState, PostingState
from orderbridge.domain.update_plan import Action, Destination, HeldDocument, Plan, Step, StepKind, Way, plan
from orderbridge.domain.update_policy import (
    REFUND_CLASSES,
    SETTINGS_KEY,
    Policies,
    UpdateFacts,
    UpdatePolicy,
    parse_class,
    parse_policy,
)
from orderbridge.errors import Conflict, Forbidden, InvalidInput, NotFound, OutcomeUnknown
from orderbridge.seams import crashpoint
from orderbridge.services.audit_trail import record_action
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ledger import Outcome, add_events, apply_decisions, destination_policy, event_row
from orderbridge.services.principals import Actor
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import connections as connection_repo
from orderbridge.storage.repos import events as event_repo
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.repos import order_updates as update_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo
from orderbridge.storage.repos import tenant_settings as settings_repo

log = structlog.get_logger("orderbridge.updates")

#: the connection setting a destination kind may declare to name its documents ("invoice",
#: "SalesReceipt"); without it a posted document is called a "document"
NOUN_SETTING = "document_type"
#: the classes an update is taken to have when the ledger cannot say (an order that changed before
#: updates were recorded, reset by a person): the strictest amendment a destination declares for them
UNKNOWN_CLASSES = frozenset({ChangeClass.LINES, ChangeClass.TOTALS})
#: order states an update awaiting review holds (a shipped, closed or cancelled order is not held:
#: its update waits on the screen alone)
_HOLDABLE = frozenset({OrderState.POSTED, OrderState.READY, OrderState.HELD})


# --- policies -------------------------------------------------------------------------------------


def policies(conn: Connection, tenant_id: int) -> Policies:
    row = settings_repo.get(conn, tenant_id, SETTINGS_KEY)
    return Policies.from_data(None if row is None else row.value)


def set_policies(actor: Actor, changes: Mapping[str, str | None]) -> Policies:
    """Set the tenant's policy of each class in ``changes`` (``None`` or ``"default"``: back to the
    default); admin. Recorded on the audit trail."""
    _require(actor, UserRole.ADMIN, "change the update policies")
    scope = actor.scope
    with scope.transaction() as conn:
        current = policies(conn, scope.tenant_id)
        new = current
        for key, value in changes.items():
            try:
                change = parse_class(key)
                policy = None if value in (None, "", "default") else parse_policy(str(value))
            except ValueError as exc:
                raise InvalidInput(str(exc), hint="Give a change class and apply, review, ignore or default.") from exc
            new = new.with_policy(change, policy)
        if new.as_data() == current.as_data():
            return current
        settings_repo.put(conn, scope.tenant_id, SETTINGS_KEY, new.as_data(), scope.now(), actor.principal.name)
        record_action(
            actor,
            "updates.policies",
            "tenant",
            scope.tenant_id,
            "update policies changed: " + (", ".join(f"{k}={v}" for k, v in new.as_data().items()) or "all default"),
            {"before": current.as_data(), "after": new.as_data()},
            conn=conn,
        )
    return new


def policy_table(conn: Connection, tenant_id: int) -> list[dict[str, Any]]:
    """Every class with the tenant's policy (or ``default`` and the defaults before/after posting)."""
    own = policies(conn, tenant_id)
    before, after = UpdateFacts(posted=False), UpdateFacts(posted=True)
    return [
        {
            "change": c.value,
            "policy": own.overrides[c].value if c in own.overrides else "default",
            "default_before_posting": Policies().for_class(c, before).policy.value,
            "default_after_posting": Policies().for_class(c, after).policy.value,
            "why": Policies().for_class(c, after).why,
        }
        for c in ChangeClass
    ]


# --- the posting ledger, folded -----------------------------------------------------------------


def held_documents(conn: Connection, order_id: int, *, before_version: int | None = None) -> dict[int, HeldDocument]:
    """What each destination holds for the order, by destination id: the fold of its posted
    postings (of versions before ``before_version`` when given) — a post makes a document, an
    update carries a new version in it, a void leaves nothing live, an adjustment leaves it."""
    held: dict[int, HeldDocument | None] = {}
    for p in posting_repo.posted_of(conn, order_id):
        if before_version is not None and int(p.order_version) >= before_version:
            continue
        did, action = int(p.destination_id), str(p.action)
        current = held.get(did)
        if action == Action.POST:
            held[did] = HeldDocument(
                int(p.id), str(p.document_id), int(p.order_version), str(p.order_key), str(p.idempotency_key)
            )
        elif action == Action.UPDATE and current is not None:
            held[did] = HeldDocument(
                int(p.id), current.document_id, int(p.order_version), current.order_key, str(p.idempotency_key)
            )
        elif action == Action.VOID:
            held[did] = None
    return {d: h for d, h in held.items() if h is not None}


def _destinations(conn: Connection, tenant_id: int) -> list[ConnectionRow]:
    return [ConnectionRow.from_row(r) for r in connection_repo.of_tenant(conn, tenant_id, Role.DESTINATION.value)]


def noun(row: ConnectionRow) -> str:
    declared = row.declaration.setting(NOUN_SETTING)
    if declared is None:
        return "document"
    return str(row.settings.get(NOUN_SETTING) or declared.default or "document")


def _plan_destination(row: ConnectionRow, held: HeldDocument | None) -> Destination:
    decl = row.declaration
    return Destination(row.id, row.name, noun(row), {c: Way(decl.amendment(c).value) for c in ChangeClass}, held)


def _refund(changes: Sequence[Mapping[str, Any]]) -> Money | None:
    """The amount newly refunded, from the update's ``refunded`` change ("12.50 EUR" before/after)."""
    found = [c for c in changes if c.get("path") == "refunded"]
    if not found:
        return None
    before, after = _money(found[0].get("before")), _money(found[-1].get("after"))
    if after is None:
        return None
    if before is None:
        return after
    return after - before if after.currency == before.currency else None


def _money(text: object) -> Money | None:
    if not isinstance(text, str) or " " not in text:
        return None
    amount, currency = text.rsplit(" ", 1)
    try:
        return Money(Decimal(amount), currency)
    except (InvalidOperation, ValueError):
        return None


def _classes(u: Any) -> frozenset[ChangeClass]:
    return frozenset(ChangeClass(c) for c in (u.classes or []))


def _acted_on(u: Any) -> frozenset[ChangeClass]:
    """The update's classes a policy does not ignore (all of them once a person accepted it)."""
    ignored = {p["change"] for p in (u.policies or []) if p.get("policy") == UpdatePolicy.IGNORE}
    acted = frozenset(c for c in _classes(u) if c.value not in ignored)
    return acted or _classes(u)


def plan_of(conn: Connection, tenant_id: int, u: Any) -> Plan:
    """The downstream plan of update ``u`` (a row of ``order_updates``)."""
    held = held_documents(conn, int(u.order_id), before_version=int(u.to_version))
    rows = _destinations(conn, tenant_id)
    return plan(
        _acted_on(u),
        [_plan_destination(r, held.get(r.id)) for r in rows],
        refund=_refund(u.changes or []),
        cancel=bool(u.cancel),
    )


# --- ingest's hand-off ----------------------------------------------------------------------------


def note_version(
    conn: Connection,
    tenant_id: int,
    order_id: int,
    state: OrderState,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    version: int,
    now: datetime,
) -> bool:
    """Record version ``version`` of an order as an update when a destination holds a document for it
    (False: none does; the caller runs the pipeline as for any order not posted)."""
    held = held_documents(conn, order_id)
    if not held:
        return False
    found = diff_canonical(before, after)
    superseded = update_repo.supersede_open(conn, order_id, now)
    changes = _merged([*(c for u in superseded for c in (u.changes or []))], found.changes)
    classes = frozenset(found.classes) | frozenset(c for u in superseded for c in _classes(u))
    from_version = min(h.version for h in held.values())
    rows = _destinations(conn, tenant_id)
    holding = [r for r in rows if r.id in held]
    facts = UpdateFacts(
        posted=True,
        shipped=state in (OrderState.FULFILLED, OrderState.CLOSED) or after.get("fulfilment_status") == "fulfilled",
        adjustable=all(r.declaration.amendment(c).value == Way.ADJUST for r in holding for c in REFUND_CLASSES),
    )
    decision = policies(conn, tenant_id).decide(classes, facts)
    # An order the hub has cancelled (a person's cancel, or the channel's) is only ever cancelled
    # downstream: every later version's update carries the cancellation, so no re-post of it says
    # anything else. A cancellation decided but not yet performed (its update superseded by this
    # newer version before the destinations' run) stays decided: this update performs it (decision 240).
    pending_cancel = next((u for u in superseded if u.cancel and u.status == update_repo.APPLYING), None)
    cancel = state is OrderState.CANCELLED or any(bool(u.cancel) for u in superseded)
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "order_id": order_id,
        "from_version": from_version,
        "to_version": version,
        "classes": [c.value for c in ChangeClass if c in classes],
        "changes": changes,
        "policy": decision.policy.value,
        "policies": [
            {"change": c.change.value, "policy": c.policy.value, "overridden": c.overridden, "why": c.why}
            for c in decision.classes
        ],
        "cancel": cancel,
        "created_at": now,
        "decided_at": now,
        "decided_by": "policy",
    }
    policy = decision.policy
    the_plan = plan(
        decision.acted_on,
        [_plan_destination(r, held.get(r.id)) for r in rows],
        refund=_refund(changes),
        cancel=cancel,
    )
    if pending_cancel is not None:
        policy = UpdatePolicy.APPLY  # the person's cancel stands: performed as they decided it
    elif policy is UpdatePolicy.APPLY and the_plan.blocked:
        policy = UpdatePolicy.REVIEW  # a destination cannot do it: a person decides
    status = {
        UpdatePolicy.APPLY: update_repo.APPLYING,
        UpdatePolicy.REVIEW: update_repo.REVIEW,
        UpdatePolicy.IGNORE: update_repo.IGNORED,
    }[policy]
    values["status"] = status
    if pending_cancel is not None:
        values["decided_at"], values["decided_by"] = pending_cancel.decided_at, pending_cancel.decided_by
    elif status == update_repo.REVIEW:
        values["decided_at"], values["decided_by"] = None, None
    update_id = update_repo.insert(conn, values)
    if update_id is None:
        return True  # this version's update is recorded already (a repeated ingest)
    label = _label(classes)
    said = {
        UpdatePolicy.APPLY: (
            f"still cancelled as {pending_cancel.decided_by} decided: "
            if pending_cancel is not None
            else "applied by policy: "
        )
        + "; ".join(the_plan.sentences),
        UpdatePolicy.REVIEW: "held for review: accepting will " + _accepting(the_plan),
        UpdatePolicy.IGNORE: "ignored by policy: nothing is sent to the destinations",
    }[policy]
    add_events(
        conn,
        [
            event_row(
                tenant_id,
                order_id,
                EventKind.ORDER_UPDATE,
                now,
                f"update to version {version} ({label}) {said}",
                update_id=update_id,
                version=version,
                classes=values["classes"],
                policy=policy.value,
                status=status,
            )
        ],
    )
    _settle_state(conn, tenant_id, order_id, state, policy, update_id, label, the_plan, now)
    return True


def _merged(earlier: Sequence[Mapping[str, Any]], later: Iterable[FieldChange]) -> list[dict[str, Any]]:
    """Field changes of superseded updates and the new diff, by path: the first ``before``, the last
    ``after``; a field back to its first value drops out."""
    by_path: dict[str, dict[str, Any]] = {}
    for c in earlier:
        by_path.setdefault(str(c["path"]), dict(c)).update(after=c.get("after"), change=c.get("change"))
    for f in later:
        entry = by_path.setdefault(f.path, {"path": f.path, "before": f.before})
        entry.update(after=f.after, change=f.change.value)
    return [c for c in by_path.values() if c.get("before") != c.get("after")]


def _label(classes: Iterable[ChangeClass]) -> str:
    wanted = set(classes)
    return ", ".join(c.value.replace("_", " ") for c in ChangeClass if c in wanted) or "no field"


def _accepting(p: Plan) -> str:
    return "; ".join(p.sentences) or "nothing at the destinations"


def _settle_state(
    conn: Connection,
    tenant_id: int,
    order_id: int,
    state: OrderState,
    policy: UpdatePolicy,
    update_id: int,
    label: str,
    the_plan: Plan,
    now: datetime,
) -> None:
    """The order's state after ingest noted an update: held for review, back to ready to be amended,
    or — ignored — where it was (a hold of an update it supersedes released)."""
    if state not in _HOLDABLE:
        return
    if policy is UpdatePolicy.REVIEW:
        reason = R.update_needs_review(update_id, label, _accepting(the_plan))
        apply_decisions(conn, tenant_id, [Outcome(order_id, state, Decision(OrderState.HELD, (reason,)))], now)
    elif policy is UpdatePolicy.APPLY:
        if state is not OrderState.READY:
            apply_decisions(conn, tenant_id, [Outcome(order_id, state, Decision(OrderState.READY, ()))], now)
    elif state is OrderState.HELD and _review_hold_open(conn, order_id):
        reason_repo.release_code(conn, order_id, HoldCode.UPDATE_NEEDS_REVIEW.value, now)
        order_repo.transition(conn, [order_repo.Move(order_id, state, OrderState.POSTED)], now)


def _review_hold_open(conn: Connection, order_id: int) -> bool:
    return any(
        code == HoldCode.UPDATE_NEEDS_REVIEW
        for code, _ in reason_repo.open_for_orders(conn, [order_id]).get(order_id, {})
    )


# --- a person's decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateResult:
    update_id: int
    order_id: int
    number: str
    action: str
    changed: bool
    status: str
    message: str


@dataclass
class UpdateView:
    """One update as the screen and the API show it."""

    id: int
    order_id: int
    number: str
    status: str
    policy: str
    from_version: int
    to_version: int
    classes: list[str]
    changes: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    created_at: datetime
    steps: list[dict[str, Any]] = field(default_factory=list)
    decided_by: str | None = None


def _view(conn: Connection, tenant_id: int, u: Any, number: str) -> UpdateView:
    p = plan_of(conn, tenant_id, u)
    return UpdateView(
        id=int(u.id),
        order_id=int(u.order_id),
        number=number,
        status=str(u.status),
        policy=str(u.policy),
        from_version=int(u.from_version),
        to_version=int(u.to_version),
        classes=list(u.classes or []),
        changes=list(u.changes or []),
        policies=list(u.policies or []),
        created_at=u.created_at,
        steps=[step_data(s) for s in p.steps],
        decided_by=u.decided_by,
    )


def step_data(s: Step) -> dict[str, Any]:
    return {
        "destination_id": s.destination_id,
        "destination": s.destination,
        "kind": s.kind.value,
        "actions": [a.value for a in s.actions],
        "sentence": s.sentence,
        "reason": s.reason,
        "document_id": s.amends.document_id if s.amends else None,
        "amount": None if s.amount is None else str(s.amount),
    }


def pending_reviews(scope: Scope, *, statuses: Sequence[str] = (update_repo.REVIEW,)) -> list[UpdateView]:
    """The tenant's updates awaiting review (or of ``statuses``), oldest first, with their plans."""
    with scope.read() as conn:
        rows = update_repo.of_status(conn, scope.tenant_id, statuses)
        numbers = order_repo.numbers_of(conn, [int(r.order_id) for r in rows]) if rows else {}
        return [_view(conn, scope.tenant_id, r, numbers.get(int(r.order_id), "")) for r in rows]


def update_view(scope: Scope, update_id: int) -> UpdateView:
    with scope.read() as conn:
        u = _get(conn, scope, update_id)
        number = order_repo.numbers_of(conn, [int(u.order_id)]).get(int(u.order_id), "")
        return _view(conn, scope.tenant_id, u, number)


def updates_of_order(scope: Scope, order_id: int) -> list[UpdateView]:
    with scope.read() as conn:
        rows = [r for r in update_repo.of_order(conn, order_id) if int(r.tenant_id) == scope.tenant_id]
        number = order_repo.numbers_of(conn, [order_id]).get(order_id, "")
        return [_view(conn, scope.tenant_id, r, number) for r in rows]


DECISIONS = ("accept", "ignore", "cancel")


def decide(actor: Actor, update_ids: Sequence[int], action: str) -> list[UpdateResult]:
    """Accept, ignore or cancel each update (operator); one result per id, in order. Each is its
    own transaction with its audit row; an update already decided answers ``changed=False``."""
    _require(actor, UserRole.OPERATOR, f"{action} order updates")
    if action not in DECISIONS:
        raise InvalidInput(f"{action[:40]!r} is not a decision; one of: accept, ignore, cancel")
    return [_decide_one(actor, int(uid), action) for uid in dict.fromkeys(update_ids)]


def _decide_one(actor: Actor, update_id: int, action: str) -> UpdateResult:
    scope = actor.scope
    now = scope.now()
    who = actor.principal.name
    with scope.transaction() as conn:
        u = _get(conn, scope, update_id)
        o = _order(conn, scope, int(u.order_id), lock=True)
        number = str(o.number)
        if u.status != update_repo.REVIEW:
            return UpdateResult(
                update_id, int(u.order_id), number, action, False, str(u.status), f"update {update_id} is {u.status}"
            )
        state = OrderState(o.state)
        target = {"accept": update_repo.APPLYING, "ignore": update_repo.IGNORED, "cancel": update_repo.APPLYING}[action]
        if not update_repo.move(conn, update_id, target, now, by=who, cancel=action == "cancel"):
            return UpdateResult(update_id, int(u.order_id), number, action, False, "moved", "decided meanwhile")
        u = _get(conn, scope, update_id)
        p = plan_of(conn, scope.tenant_id, u)
        if action == "ignore":
            message = f"update to version {u.to_version} ignored by {who}: the destinations keep what they hold"
            if state is OrderState.HELD:
                reason_repo.release_code(conn, o.id, HoldCode.UPDATE_NEEDS_REVIEW.value, now)
                order_repo.transition(conn, [order_repo.Move(o.id, state, OrderState.POSTED)], now)
        elif action == "cancel":
            # cancelled in the hub at once (nothing more is posted anywhere); the destinations that
            # hold a document are amended by their next run (the update is applying)
            message = f"order cancelled by {who} (update to version {u.to_version}): " + _accepting(p)
            if state in _HOLDABLE:
                reason_repo.release_code(conn, o.id, HoldCode.UPDATE_NEEDS_REVIEW.value, now)
                order_repo.transition(conn, [order_repo.Move(o.id, state, OrderState.CANCELLED)], now)
        else:
            message = f"update to version {u.to_version} accepted by {who}: " + _accepting(p)
            if state is OrderState.HELD or state is OrderState.POSTED:
                apply_decisions(conn, scope.tenant_id, [Outcome(o.id, state, Decision(OrderState.READY, ()))], now)
        add_events(
            conn,
            [
                event_row(
                    scope.tenant_id,
                    o.id,
                    EventKind.ORDER_UPDATE,
                    now,
                    message,
                    action=f"update.{action}",
                    by=who,
                    address=actor.address,
                    update_id=update_id,
                    version=int(u.to_version),
                )
            ],
        )
        record_action(
            actor,
            f"update.{action}",
            "order_update",
            update_id,
            f"order {number}: {message}",
            {"order_id": int(o.id), "steps": [step_data(s) for s in p.steps]},
            conn=conn,
        )
        status = str(_get(conn, scope, update_id).status)
    return UpdateResult(update_id, int(o.id), number, action, True, status, message)


def accept_current(conn: Connection, scope: Scope, order: Any, by: str) -> int | None:
    """Make the order's current version go to the destinations that hold an earlier one (a reset):
    its open update accepted, an ignored one taken up again, or — none recorded — a new one whose
    classes are unknown. Returns the update's id (None: no destination holds an earlier version)."""
    now = scope.now()
    version = int(order.version)
    held = held_documents(conn, int(order.id))
    if not any(h.version < version for h in held.values()):
        return None
    found_id = _take_up(conn, scope, order, held, by, now)
    reason_repo.release_code(conn, int(order.id), HoldCode.UPDATE_NEEDS_REVIEW.value, now)  # decided now
    u = update_repo.get(conn, scope.tenant_id, found_id) if found_id is not None else None
    blocked = plan_of(conn, scope.tenant_id, u).blocked if u is not None else ()
    if blocked:
        # a reset never claims a change made by hand: a person accepts that on the updates screen
        raise Conflict(
            "; ".join(s.reason for s in blocked),
            hint="Change it there by hand, then accept the order's update on the Order updates screen.",
            code="update_cannot_be_sent",
        )
    return found_id


def _take_up(
    conn: Connection, scope: Scope, order: Any, held: Mapping[int, HeldDocument], by: str, now: datetime
) -> int | None:
    version = int(order.version)
    for u in reversed(update_repo.of_order(conn, int(order.id))):
        if int(u.to_version) != version:
            continue
        if u.status == update_repo.REVIEW:
            update_repo.move(conn, int(u.id), update_repo.APPLYING, now, by=by)
            return int(u.id)
        if u.status in (update_repo.APPLYING, update_repo.APPLIED):
            return int(u.id)
        break
    update_repo.supersede_open(conn, int(order.id), now)
    values = {
        "tenant_id": scope.tenant_id,
        "order_id": int(order.id),
        "from_version": min(h.version for h in held.values()),
        "to_version": version,
        "classes": [c.value for c in ChangeClass if c in UNKNOWN_CLASSES],
        "changes": [],
        "policy": UpdatePolicy.APPLY.value,
        "policies": [],
        "status": update_repo.APPLYING,
        "cancel": False,
        "created_at": now,
        "decided_at": now,
        "decided_by": by,
    }
    found = update_repo.insert(conn, values)
    if found is None:  # an ignored (or cancelled) update of this version: a reset takes it up again
        for u in update_repo.of_order(conn, int(order.id)):
            if int(u.to_version) == version:
                update_repo.reopen(conn, int(u.id), now, by=by)
                return int(u.id)
    return found


# --- performing a plan at one destination --------------------------------------------------------


@dataclass
class AmendReport:
    destination: str
    amended: int = 0
    rejected: int = 0
    held: int = 0
    applied: int = 0
    errors: list[str] = field(default_factory=list)


def amend(scope: Scope, row: ConnectionRow, connector: DestinationConnector) -> AmendReport:
    """Perform, at destination ``row``, the step of every update being applied (the caller holds the
    destination's posting lease). A transient error stops the run (raised: the poster records it
    on the connection's health); the postings stay ``pending`` and are settled next run."""
    report = AmendReport(row.name)
    with scope.read() as conn:
        updates = update_repo.of_status(conn, scope.tenant_id, (update_repo.APPLYING,))
    for u in updates:
        _amend_one(scope, row, connector, int(u.id), report)
        _finish(scope, int(u.id), report)
    return report


def _amend_one(
    scope: Scope, row: ConnectionRow, connector: DestinationConnector, update_id: int, report: AmendReport
) -> None:
    with scope.read() as conn:
        u = update_repo.get(conn, scope.tenant_id, update_id)
        if u is None or u.status != update_repo.APPLYING:
            return
        o = order_repo.row_of(conn, scope.tenant_id, int(u.order_id))
        if o is None or int(o.version) != int(u.to_version):
            return  # a newer version supersedes it at its ingest
        step = plan_of(conn, scope.tenant_id, u).step(row.id)
        policy = destination_policy(conn, row)
        waived = event_repo.released_holds(conn, [int(o.id)]).get(int(o.id), NONE_WAIVED)
    if step is not None and step.kind is StepKind.CANNOT:
        step = step.partial  # accepted by a person: what the destination can do is still done
    if step is None or not step.actions:
        return  # nothing to send (a step a person did by hand is recorded by _finish)
    held = step.amends
    assert held is not None
    order = order_from_json(o.canonical)
    if u.cancel or ChangeClass.CANCELLED in _classes(u):
        order = msgspec.structs.replace(order, cancelled_at=order.cancelled_at or scope.now())
    found = problems(order, policy, waived) if not u.cancel else []
    if found:
        with scope.transaction() as conn:
            state = order_repo.state_of(conn, int(o.id))
            apply_decisions(
                conn, scope.tenant_id, [Outcome(int(o.id), state, Decision(OrderState.HELD, tuple(found)))], scope.now()
            )
        report.held += 1
        return
    resolved = resolve(order, policy, waived)
    for action in step.actions:
        key = f"{o.id}:{row.id}:v{u.to_version}:{action.value}"
        with scope.transaction() as conn:
            pid, status, tried = posting_repo.reserve_amendment(
                conn,
                scope.tenant_id,
                int(o.id),
                row.id,
                int(u.to_version),
                key,
                held.order_key,
                action.value,
                held.posting_id,
                scope.now(),
            )
        if status is PostingState.POSTED:
            continue
        if status is not PostingState.PENDING:
            return  # rejected (the order is held with the destination's words) or superseded
        crashpoint("amend.after_reserve")
        outgoing = OutgoingOrder(key, held.order_key, resolved)
        result = _settled(connector, action, held, tried)
        if result is None:
            result = _send(connector, row, action, held, outgoing, step, update_id)
        crashpoint("amend.after_send")
        if not _record(scope, row, int(o.id), pid, action, held, result, step):
            report.rejected += 1
            return
        report.amended += 1


def _settled(connector: DestinationConnector, action: Action, held: HeldDocument, tried: int) -> PostResult | None:
    """A void or re-post reserved before (its answer may be lost) settled by what the destination
    holds now, or None: send it."""
    if tried == 0 or not isinstance(connector, AmendableDestination) or action not in (Action.VOID, Action.POST):
        return None
    remote: RemoteDocument | None = connector.find_document(held.order_key)
    if remote is None:
        return None
    if action is Action.VOID and remote.document_id == held.document_id and remote.state == "voided":
        return PostResult(held.order_key, remote.document_id)
    if action is Action.POST and remote.state == "live" and remote.document_id != held.document_id:
        return PostResult(held.order_key, remote.document_id)
    return None


def _send(
    connector: DestinationConnector,
    row: ConnectionRow,
    action: Action,
    held: HeldDocument,
    outgoing: OutgoingOrder,
    step: Step,
    update_id: int,
) -> PostResult:
    document = PostedDocument(held.order_key, held.document_id, held.idempotency_key, held.version)
    amendable = isinstance(connector, AmendableDestination) and row.can(Capability.AMEND_DOCUMENTS)
    if action is Action.POST or (action is Action.UPDATE and not amendable):
        return connector.post_orders([outgoing])[0]  # a re-post; without AMEND_DOCUMENTS the key upserts
    if not isinstance(connector, AmendableDestination):
        raise OutcomeUnknown(f"{row.name} cannot {action.value} a document", hint="Its kind declares no amendments.")
    if action is Action.UPDATE:
        return connector.update_document(document, outgoing)
    if action is Action.VOID:
        return connector.void_document(document, outgoing.idempotency_key)
    assert step.amount is not None
    adjustment = Adjustment(
        outgoing.idempotency_key,
        "refund",
        step.amount,
        f"refund of order {outgoing.resolved.order.number} (update {update_id})",
        outgoing.resolved,
    )
    return connector.post_adjustment(document, adjustment)


def _record(
    scope: Scope,
    row: ConnectionRow,
    order_id: int,
    pid: int,
    action: Action,
    held: HeldDocument,
    result: PostResult,
    step: Step,
) -> bool:
    now = scope.now()
    with scope.transaction() as conn:
        sent = None if result.sent is None else dict(result.sent)
        if result.ok:
            verb = {
                Action.POST: f"posted a new document {result.document_id} to {row.name}",
                Action.UPDATE: f"updated {held.document_id} at {row.name}",
                Action.VOID: f"voided {held.document_id} at {row.name}",
                Action.ADJUST: f"posted adjustment {result.document_id} against {held.document_id} at {row.name}",
            }[action]
            posting_repo.record(
                conn, scope.tenant_id, [(pid, result.document_id)], [], [(pid, "posted", verb, sent)], now
            )
            add_events(
                conn,
                [
                    event_row(
                        scope.tenant_id,
                        order_id,
                        EventKind.AMENDED,
                        now,
                        verb,
                        destination=row.name,
                        action=action.value,
                        document_id=result.document_id,
                        amends=held.document_id,
                        step=step.kind.value,
                    )
                ],
            )
            return True
        message = str(result.error) if result.error else "no document id returned"
        posting_repo.record(conn, scope.tenant_id, [], [(pid, message)], [(pid, "rejected", message, sent)], now)
        reason = result.hold or R.destination_rejected(row.name, result.error.message if result.error else message)
        state = order_repo.state_of(conn, order_id)
        if state is OrderState.CANCELLED:
            return False
        apply_decisions(conn, scope.tenant_id, [Outcome(order_id, state, Decision(OrderState.HELD, (reason,)))], now)
    return False


def _finish(scope: Scope, update_id: int, report: AmendReport) -> None:
    """An update whose every destination step is recorded is applied; the order is posted once every
    destination has its current version."""
    with scope.transaction() as conn:
        u = update_repo.get(conn, scope.tenant_id, update_id)
        if u is None or u.status != update_repo.APPLYING:
            return
        o = order_repo.row_of(conn, scope.tenant_id, int(u.order_id))
        if o is None or int(o.version) != int(u.to_version):
            return
        p = plan_of(conn, scope.tenant_id, u)
        now = scope.now()
        for step in p.steps:
            s = step.partial if step.kind is StepKind.CANNOT and step.partial is not None else step
            if s.kind is StepKind.CANNOT:
                # accepted by a person: the destination was changed by hand (the ledger says so)
                key = f"{o.id}:{s.destination_id}:v{u.to_version}:update"
                assert s.amends is not None
                pid, status, _ = posting_repo.reserve_amendment(
                    conn,
                    scope.tenant_id,
                    int(o.id),
                    s.destination_id,
                    int(u.to_version),
                    key,
                    s.amends.order_key,
                    Action.UPDATE.value,
                    s.amends.posting_id,
                    now,
                )
                if status is PostingState.PENDING:
                    note = f"changed by hand at {s.destination}; accepted by {u.decided_by}"
                    posting_repo.record(
                        conn, scope.tenant_id, [(pid, s.amends.document_id)], [], [(pid, "posted", note, None)], now
                    )
                continue
            for a in s.actions:
                done = posting_repo.by_key(conn, f"{o.id}:{s.destination_id}:v{u.to_version}:{a.value}")
                if done is None or done.status != PostingState.POSTED.value:
                    return
        update_repo.move(conn, update_id, update_repo.APPLIED, now)
        report.applied += 1
        state = OrderState(o.state)
        if state is OrderState.READY:
            n = len(_destinations(conn, scope.tenant_id))
            order_repo.transition(
                conn,
                [order_repo.Move(int(o.id), state, OrderState.POSTED)],
                now,
                guard="posted_everywhere",
                params={"n": n},
            )


# --- helpers ---------------------------------------------------------------------------------------


def _get(conn: Connection, scope: Scope, update_id: int) -> Any:
    u = update_repo.get(conn, scope.tenant_id, update_id)
    if u is None:
        raise NotFound(f"no order update {update_id}", hint="Open the order updates screen again.")
    return u


def _order(conn: Connection, scope: Scope, order_id: int, *, lock: bool = False) -> Any:
    o = order_repo.row_of(conn, scope.tenant_id, order_id, lock=lock)
    if o is None:
        raise NotFound(f"no order {order_id}", hint="Find the order in the orders list, by its number.")
    return o


def _require(actor: Actor, role: UserRole, what: str) -> None:
    if not actor.principal.allows(role):
        raise Forbidden(
            f"{actor.principal.name} ({actor.principal.role}) cannot {what}",
            hint=f"Ask someone with the {role} role.",
        )


__all__ = [
    "DECISIONS",
    "AmendReport",
    "UpdateResult",
    "UpdateView",
    "accept_current",
    "amend",
    "decide",
    "held_documents",
    "note_version",
    "pending_reviews",
    "plan_of",
    "policies",
    "policy_table",
    "set_policies",
    "update_view",
    "updates_of_order",
]
