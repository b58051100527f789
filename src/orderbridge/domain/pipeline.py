"""The pipeline: download rules → input limits → mappings → required fields → ``ready``, ``held``
or ``skipped``.

Pure functions over the canonical order. ``evaluate`` collects *every* reason (all unmapped SKUs,
not only the first) so one fix screen shows the whole problem. ``resolve`` produces what a
destination connector sends, and refuses (``ValueError``) to resolve an order that evaluate would
hold — a line is never dropped to make an order fit.

Only what is left to fulfil goes (:attr:`OrderLine.open_quantity`): a line the channel has already
fulfilled is not sent and not checked (its SKU needs no mapping), a line partly fulfilled is sent
with its remainder, and an order with nothing left is ``skipped`` (``nothing_to_fulfil``) — never
posted for the warehouse to ship a second time. :func:`left_out` says what was left out, for the
order's timeline.

The input limits (:func:`orderbridge.domain.validation.check`) come after the download rules, so an
order the rules exclude is skipped whatever is wrong with it.

**Released holds** (decision 107). An admin may release one hold reason of one order version
(``waived``: its ``(code, value)`` keys): the pipeline and :func:`resolve` then go on as if that
reason were resolved, for that reason only — an unmapped SKU is sent as the channel's SKU, an
unmapped shipping method as none (the destination's default), a missing required field as absent,
a value over a soft limit as it is. Only the codes in :data:`RELEASABLE` can be released: the
others describe an order that cannot be sent at all (unreadable, no lines, a line without a SKU,
a quantity of 0). A new version is judged afresh: a release is for the version it was made on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orderbridge.domain import limits, reasons, validation
from orderbridge.domain.mappings import DestinationPolicy, ServiceRef
from orderbridge.domain.order import Order, OrderLine
from orderbridge.domain.reasons import HoldCode, Reason
from orderbridge.domain.rules import DownloadRules
from orderbridge.domain.states import OrderState

#: ``(code, value)`` keys of the hold reasons released on an order version (see the module docstring)
Waived = frozenset[tuple[str, str]]
NONE_WAIVED: Waived = frozenset()

#: hold codes an admin may release: the order can still be sent, as it is, without what they ask for.
#: ``destination_rejected`` is released by asking the destination again (the services' business).
RELEASABLE: frozenset[str] = frozenset(
    {
        HoldCode.SKU_UNMAPPED,
        HoldCode.SHIPPING_METHOD_UNMAPPED,
        HoldCode.SHIPPING_METHOD_MISSING,
        HoldCode.REQUIRED_FIELD_MISSING,
        HoldCode.DESTINATION_REJECTED,
        HoldCode.TOTALS_INCONSISTENT,
        HoldCode.UNKNOWN_STATUS,
    }
)


@dataclass(frozen=True, slots=True)
class Decision:
    state: OrderState
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class ResolvedLine:
    line_key: str
    channel_sku: str
    destination_sku: str


@dataclass(frozen=True, slots=True)
class ResolvedOrder:
    order: Order
    lines: tuple[ResolvedLine, ...]
    service: ServiceRef | None


def open_lines(order: Order) -> tuple[OrderLine, ...]:
    """The lines with something left to fulfil: what a destination is sent."""
    return tuple([line for line in order.lines if line.open_quantity > 0])


def left_out(order: Order) -> list[str]:
    """What the channel had fulfilled already, line by line, as the timeline says it (empty: nothing)."""
    out: list[str] = []
    for line in order.lines:
        name = f"{line.title!r}" + (f" (SKU {line.sku})" if line.sku else "") + f" line {line.external_id}"
        if line.open_quantity <= 0:
            out.append(f"{name}: all {line.quantity} already fulfilled in the channel, not sent")
        elif line.open_quantity < line.quantity:
            out.append(
                f"{name}: {line.quantity - line.open_quantity} of {line.quantity} already fulfilled in the channel, "
                f"{line.open_quantity} sent"
            )
    return out


def hold_reasons_for(order: Order, policy: DestinationPolicy) -> list[Reason]:
    found: list[Reason] = []
    seen_skus: set[str] = set()
    for line in open_lines(order):
        if not line.sku:
            found.append(reasons.sku_missing(line.title, line.external_id))
        elif validation.over_key_limit(line.sku, limits.SKU):
            continue  # no mapping can be keyed by it: held by validation.check (value_too_long)
        elif line.sku not in seen_skus:
            seen_skus.add(line.sku)
            if policy.destination_sku(line.sku) is None:
                found.append(reasons.sku_unmapped(line.sku, policy.name))
    method = order.shipping_method
    if (
        policy.shipping_mapping_required
        and not validation.over_key_limit(method, limits.SHIPPING_METHOD)
        and policy.service_for(method) is None
    ):
        found.append(
            reasons.shipping_method_unmapped(method, policy.name)
            if method
            else reasons.shipping_method_missing(policy.name)
        )
    for name in policy.required_fields:
        if not _field_value(order, name):
            found.append(reasons.required_field_missing(name, policy.name))
    return found


def evaluate(
    order: Order, rules: DownloadRules, destinations: Sequence[DestinationPolicy], waived: Waived = NONE_WAIVED
) -> Decision:
    skips = rules.skip_reasons(order)
    # nothing left: every line is a real one (a quantity of 0 is the validation's, held) and fulfilled
    if order.lines and not open_lines(order) and all(li.quantity >= limits.MIN_QUANTITY for li in order.lines):
        skips.append(reasons.nothing_to_fulfil())
    if skips:
        return Decision(OrderState.SKIPPED, tuple(skips))
    holds: list[Reason] = validation.check(order)
    if not order.lines:
        holds.append(reasons.invalid_order("the order has no lines"))
    for policy in destinations:
        for reason in hold_reasons_for(order, policy):
            if reason not in holds:
                holds.append(reason)
    if waived:
        holds = [r for r in holds if r.key not in waived]
    if holds:
        return Decision(OrderState.HELD, tuple(holds))
    return Decision(OrderState.READY)


def problems(order: Order, policy: DestinationPolicy, waived: Waived = NONE_WAIVED) -> list[Reason]:
    """What keeps ``order`` from going to this destination now (its input limits and the
    destination's needs), leaving out the reasons released on it."""
    found = validation.check(order) + hold_reasons_for(order, policy)
    return [r for r in found if r.key not in waived] if waived else found


def resolve(order: Order, policy: DestinationPolicy, waived: Waived = NONE_WAIVED) -> ResolvedOrder:
    found = problems(order, policy, waived)
    if found:
        raise ValueError("; ".join(r.message for r in found))
    lines = []
    for line in open_lines(order):
        assert line.sku is not None  # guaranteed by hold_reasons_for
        dest = policy.destination_sku(line.sku)
        if dest is None and (HoldCode.SKU_UNMAPPED, line.sku) in waived:
            dest = line.sku  # released: the channel's SKU goes as it is
        assert dest is not None
        lines.append(ResolvedLine(line.external_id, line.sku, dest))
    return ResolvedOrder(order, tuple(lines), policy.service_for(order.shipping_method))


def _field_value(order: Order, dotted: str) -> object:
    value: object = order
    for part in dotted.split("."):
        if value is None:
            return None
        value = getattr(value, part, None)
    return value
