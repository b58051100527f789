"""Update policies: what the hub does with a change to an order some destination already holds.

Pure — no I/O, no clock. Per tenant and :class:`~orderbridge.domain.changes.ChangeClass` a
policy is ``apply`` (perform the downstream plan now), ``review`` (hold the order with
``update_needs_review`` until a person accepts, ignores or cancels) or ``ignore`` (record it on the
timeline; nothing goes downstream). A tenant sets a class to one of the three, or leaves it to the
default, which depends on where the order is (issue #15):

=====================  ==========================================================================
class                  default
=====================  ==========================================================================
payment_captured       apply
payment (other moves)  review (a voided or expired payment on a posted order needs a person)
shipping_address       apply before shipment (the 3PL order is updated), review once shipped
lines, lines_cancelled review once posted (an accounting document would change)
totals                 review once posted
cancelled              apply before any posting, review after
refunded, partially_   apply when every destination holding a document posts the refund itself
refunded               (it declares ``Amendment.ADJUST``), else review
customer               apply
fulfilment             ignore (the channel's fulfilment status is mostly the hub's own back-sync)
notes                  ignore (notes, tags and custom fields rarely change a posted document)
=====================  ==========================================================================

An update with several classes takes the strictest of their policies: review over apply over
ignore — one class needing a person holds the whole version, since a destination cannot be sent
half a version. The decision keeps each class's policy and why, for the screen.

Why not one fixed table: two of the issue's defaults depend on facts of the order (shipped or not,
posted or not) and one on the destinations (can they post a refund), so a default is a rule over
:class:`UpdateFacts`; a tenant's override is a plain value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from orderbridge.domain.changes import ChangeClass

_C = ChangeClass

#: the ``tenant_settings`` key the policies are stored under
SETTINGS_KEY = "update_policies"


class UpdatePolicy(StrEnum):
    APPLY = "apply"
    REVIEW = "review"
    IGNORE = "ignore"


#: strictness: review over apply over ignore
_RANK = {UpdatePolicy.IGNORE: 0, UpdatePolicy.APPLY: 1, UpdatePolicy.REVIEW: 2}

#: the refund classes (an adjustment document where the destination posts one)
REFUND_CLASSES = frozenset({_C.REFUNDED, _C.PARTIALLY_REFUNDED})


@dataclass(frozen=True, slots=True)
class UpdateFacts:
    """What a default policy depends on."""

    #: some destination holds a posted document of an earlier version
    posted: bool
    #: the order has shipped (fulfilled in the hub, or the channel says fulfilled)
    shipped: bool = False
    #: every destination holding a document declares ``ADJUST`` for refunds
    adjustable: bool = False


@dataclass(frozen=True, slots=True)
class ClassPolicy:
    """One class's policy in a decision: the policy, whether it is the tenant's own, and why."""

    change: ChangeClass
    policy: UpdatePolicy
    overridden: bool
    why: str


def default_policy(change: ChangeClass, facts: UpdateFacts) -> tuple[UpdatePolicy, str]:
    """The default for one class, and the sentence saying why."""
    if change is _C.PAYMENT_CAPTURED:
        return UpdatePolicy.APPLY, "a captured payment is applied"
    if change is _C.PAYMENT:
        return UpdatePolicy.REVIEW, "a payment that moved other than to paid needs a person"
    if change is _C.SHIPPING_ADDRESS:
        if facts.shipped:
            return UpdatePolicy.REVIEW, "the address changed after the order shipped"
        return UpdatePolicy.APPLY, "an address changed before shipment is sent to the 3PL"
    if change in (_C.LINES, _C.LINES_CANCELLED, _C.TOTALS):
        if facts.posted:
            return UpdatePolicy.REVIEW, "lines or totals changed after the order was posted"
        return UpdatePolicy.APPLY, "lines or totals changed before any posting"
    if change is _C.CANCELLED:
        if facts.posted:
            return UpdatePolicy.REVIEW, "the order was cancelled after it was posted"
        return UpdatePolicy.APPLY, "the order was cancelled before any posting"
    if change in REFUND_CLASSES:
        if facts.adjustable:
            return UpdatePolicy.APPLY, "every destination holding the order posts the refund document"
        return UpdatePolicy.REVIEW, "a destination holding the order cannot post a refund document"
    if change is _C.CUSTOMER:
        return UpdatePolicy.APPLY, "customer details are updated"
    return UpdatePolicy.IGNORE, f"{change.value} changes are only recorded"


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy for one update: the strictest of its classes' policies."""

    policy: UpdatePolicy
    classes: tuple[ClassPolicy, ...]

    def of(self, policy: UpdatePolicy) -> tuple[ChangeClass, ...]:
        return tuple(c.change for c in self.classes if c.policy is policy)

    @property
    def acted_on(self) -> frozenset[ChangeClass]:
        """The classes that are not ignored: what a plan is made from."""
        return frozenset(c.change for c in self.classes if c.policy is not UpdatePolicy.IGNORE)


@dataclass(frozen=True, slots=True)
class Policies:
    """A tenant's policies: its overrides by class; a class it did not set takes the default."""

    overrides: Mapping[ChangeClass, UpdatePolicy] = field(default_factory=lambda: MappingProxyType({}))

    def for_class(self, change: ChangeClass, facts: UpdateFacts) -> ClassPolicy:
        own = self.overrides.get(change)
        if own is not None:
            return ClassPolicy(change, own, True, f"the tenant's policy for {change.value} is {own.value}")
        policy, why = default_policy(change, facts)
        return ClassPolicy(change, policy, False, why)

    def decide(self, classes: Iterable[ChangeClass], facts: UpdateFacts) -> Decision:
        """The decision for an update with ``classes`` (in :class:`ChangeClass` order); an update
        without classes is ignored."""
        ordered = [c for c in ChangeClass if c in set(classes)]
        each = tuple(self.for_class(c, facts) for c in ordered)
        policy = max((c.policy for c in each), key=_RANK.__getitem__, default=UpdatePolicy.IGNORE)
        return Decision(policy, each)

    def with_policy(self, change: ChangeClass, policy: UpdatePolicy | None) -> Policies:
        """A copy with ``change`` set to ``policy`` (None: back to the default)."""
        new = dict(self.overrides)
        if policy is None:
            new.pop(change, None)
        else:
            new[change] = policy
        return Policies(MappingProxyType(new))

    def as_data(self) -> dict[str, str]:
        return {c.value: p.value for c, p in sorted(self.overrides.items())}

    @classmethod
    def from_data(cls, data: object) -> Policies:
        """Read stored policies (``{"lines": "apply", …}``); ``ValueError`` names what cannot be read."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("update policies are an object of change class → apply | review | ignore")
        out: dict[ChangeClass, UpdatePolicy] = {}
        for key, value in data.items():
            out[parse_class(str(key))] = parse_policy(str(value))
        return cls(MappingProxyType(out))


def parse_class(text: str) -> ChangeClass:
    try:
        return ChangeClass(text)
    except ValueError:
        known = ", ".join(c.value for c in ChangeClass)
        raise ValueError(f"{text[:60]!r} is not a change class; one of: {known}") from None


def parse_policy(text: str) -> UpdatePolicy:
    try:
        return UpdatePolicy(text)
    except ValueError:
        raise ValueError(f"{text[:60]!r} is not a policy; one of: apply, review, ignore") from None
