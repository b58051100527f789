"""The downstream plan: what accepting (or applying) an order update does at each destination.

Pure — no I/O, no clock. Given the classes of an update, each destination's declared amendment per
class and the document the posting ledger says it holds for the order, :func:`plan` gives one
:class:`Step` per destination:

- **update in place** — ``ShipStation: update order 98765`` (ShipStation's ``orderKey`` upsert, a
  re-post; QuickBooks' sparse update);
- **void and re-post** — ``QuickBooks: void SalesReceipt 1043 and post a new one``;
- **adjust** — ``QuickBooks: post a refund of 12.50 EUR against SalesReceipt 1043``;
- **void** — a cancelled order's document is voided and nothing is posted again;
- **nothing to do** — the destination holds no document yet: the new version simply posts;
- **cannot** — the destination declares ``NOTHING`` for a class: the update is held for a person,
  with the reason.

A step's :attr:`Step.actions` are the postings it makes, in order — each one a row of the posting
ledger keyed ``<order>:<destination>:v<version>:<action>``, linked to the posting it amends — so a
step interrupted anywhere resumes at its first action not yet recorded ``posted``.

The sentences are data a screen renders (English, plain; no command, no address): the portal shows
them as they are and the API returns them beside the step's kind and actions.

Why the amendment is named again here (:class:`Way`, the values of ``connectors.base.Amendment``):
the domain imports no layer above it, and the connector contract lives above it; the services
translate a declaration's ``Amendment`` into a ``Way`` by value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from orderbridge.domain.changes import ChangeClass
from orderbridge.domain.money import Money
from orderbridge.domain.update_policy import REFUND_CLASSES

_C = ChangeClass


class Way(StrEnum):
    """What a destination declares it does with a class of change (``connectors.base.Amendment``)."""

    UPDATE_IN_PLACE = "update_in_place"
    VOID_AND_REPOST = "void_and_repost"
    ADJUST = "adjust"
    NOTHING = "nothing"


class StepKind(StrEnum):
    UPDATE_IN_PLACE = "update_in_place"
    VOID_AND_REPOST = "void_and_repost"
    ADJUST = "adjust"
    VOID = "void"
    NOTHING_TO_DO = "nothing_to_do"
    CANNOT = "cannot"


class Action(StrEnum):
    """What one posting does (``postings.action``): the first post, or an amendment of a posted one."""

    POST = "post"
    UPDATE = "update"
    VOID = "void"
    ADJUST = "adjust"


@dataclass(frozen=True, slots=True)
class HeldDocument:
    """A document the posting ledger says a destination holds for the order (a posted posting)."""

    posting_id: int
    document_id: str
    version: int
    order_key: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Destination:
    """One destination as the plan needs it."""

    id: int
    name: str
    #: how the destination's own documents are called ("order", "invoice", "SalesReceipt")
    noun: str
    #: its declared amendment per class (a class left out: NOTHING)
    ways: Mapping[ChangeClass, Way] = field(default_factory=lambda: MappingProxyType({}))
    #: the document it holds for the order (None: nothing posted there yet)
    held: HeldDocument | None = None

    def way(self, change: ChangeClass) -> Way:
        return self.ways.get(change, Way.NOTHING)


@dataclass(frozen=True, slots=True)
class Step:
    destination_id: int
    destination: str
    kind: StepKind
    #: the postings the step makes, in order (empty: nothing to send, or it cannot)
    actions: tuple[Action, ...]
    #: one sentence: what accepting does there ("ShipStation: update order 98765")
    sentence: str
    #: for ``cannot``: why, naming the classes
    reason: str = ""
    #: the document amended
    amends: HeldDocument | None = None
    #: for an adjustment: the amount it carries
    amount: Money | None = None
    #: for ``cannot``: what the destination can still do with the other classes once a person
    #: accepts (the lines of an order whose refund a 3PL cannot take), or None
    partial: Step | None = None

    @property
    def blocked(self) -> bool:
        return self.kind is StepKind.CANNOT


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...]

    @property
    def blocked(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.blocked)

    @property
    def sentences(self) -> tuple[str, ...]:
        return tuple(s.sentence for s in self.steps)

    def step(self, destination_id: int) -> Step | None:
        return next((s for s in self.steps if s.destination_id == destination_id), None)


def plan(
    classes: frozenset[ChangeClass],
    destinations: Sequence[Destination],
    *,
    refund: Money | None = None,
    cancel: bool = False,
) -> Plan:
    """The plan for an update with ``classes`` (those not ignored) at every destination.

    ``refund`` is the amount newly refunded (the adjustment of a refund class); ``cancel`` plans a
    cancellation (the order cancelled in the channel, or by a person on the updates screen)."""
    if cancel:
        classes = classes | {_C.CANCELLED}
    return Plan(tuple(_step(classes, d, refund) for d in destinations))


def _label(changes: frozenset[ChangeClass]) -> str:
    return ", ".join(c.value.replace("_", " ") for c in ChangeClass if c in changes)


def _step(classes: frozenset[ChangeClass], d: Destination, refund: Money | None) -> Step:
    held = d.held
    if held is None:
        return Step(
            d.id,
            d.name,
            StepKind.NOTHING_TO_DO,
            (),
            f"{d.name}: nothing posted yet — the new version is posted as it is",
        )
    doc = f"{d.noun} {held.document_id}"
    if _C.CANCELLED in classes:
        way = d.way(_C.CANCELLED)
        if way is Way.UPDATE_IN_PLACE:
            return Step(
                d.id, d.name, StepKind.UPDATE_IN_PLACE, (Action.UPDATE,), f"{d.name}: mark {doc} cancelled", amends=held
            )
        if way is Way.VOID_AND_REPOST:
            return Step(
                d.id,
                d.name,
                StepKind.VOID,
                (Action.VOID,),
                f"{d.name}: void {doc} (the order is cancelled: nothing is posted again)",
                amends=held,
            )
        return _cannot(d, frozenset({_C.CANCELLED}), doc)
    if not classes:
        return Step(d.id, d.name, StepKind.NOTHING_TO_DO, (), f"{d.name}: nothing changes at {doc}")
    cannot = frozenset(c for c in classes if d.way(c) is Way.NOTHING)
    if cannot:
        rest = _step(classes - cannot, d, refund) if classes - cannot else None
        partial = rest if rest is not None and rest.actions and not rest.blocked else None
        return _cannot(d, cannot, doc, partial)
    refunds = classes & REFUND_CLASSES
    adjust = any(d.way(c) is Way.ADJUST for c in refunds)
    others = frozenset(c for c in classes if not (c in refunds and d.way(c) is Way.ADJUST))
    repost = any(d.way(c) is Way.VOID_AND_REPOST for c in others)
    update = bool(others) and not repost
    if adjust and (refund is None or refund.amount <= 0):
        return Step(
            d.id,
            d.name,
            StepKind.CANNOT,
            (),
            f"{d.name}: cannot post a refund against {doc} — the refunded amount is not known",
            reason="the channel's order does not say how much was refunded",
            amends=held,
        )
    tail = f"; post a refund of {refund} against it" if adjust and refund is not None else ""
    if repost:
        actions = (Action.VOID, Action.POST) + ((Action.ADJUST,) if adjust else ())
        return Step(
            d.id,
            d.name,
            StepKind.VOID_AND_REPOST,
            actions,
            f"{d.name}: void {doc} and post a new one{tail.replace('against it', 'against the new one')}",
            amends=held,
            amount=refund if adjust else None,
        )
    if update:
        actions = (Action.UPDATE,) + ((Action.ADJUST,) if adjust else ())
        return Step(
            d.id,
            d.name,
            StepKind.UPDATE_IN_PLACE,
            actions,
            f"{d.name}: update {doc}{tail}",
            amends=held,
            amount=refund if adjust else None,
        )
    return Step(
        d.id,
        d.name,
        StepKind.ADJUST,
        (Action.ADJUST,),
        f"{d.name}: post a refund of {refund} against {doc}",
        amends=held,
        amount=refund,
    )


def _cannot(d: Destination, classes: frozenset[ChangeClass], doc: str, partial: Step | None = None) -> Step:
    what = _label(classes)
    rest = f"; accepting still does the rest ({partial.sentence.split(': ', 1)[-1]})" if partial else ""
    return Step(
        d.id,
        d.name,
        StepKind.CANNOT,
        (),
        f"{d.name}: cannot change {doc} for {what} — held for a person{rest}",
        reason=f"{d.name} cannot amend a posted {d.noun} for {what}: change it there by hand, then accept or ignore",
        amends=held_or_none(d),
        partial=partial,
    )


def held_or_none(d: Destination) -> HeldDocument | None:
    return d.held
