"""Update policies: the issue's defaults, a tenant's overrides, the strictest class wins."""

from __future__ import annotations

import pytest

from orderbridge.domain.changes import ChangeClass as C
from orderbridge.domain.update_policy import Policies, UpdateFacts, UpdatePolicy

POSTED = UpdateFacts(posted=True)
P = UpdatePolicy


@pytest.mark.parametrize(
    ("change", "facts", "expected"),
    [
        (C.PAYMENT_CAPTURED, POSTED, P.APPLY),
        (C.SHIPPING_ADDRESS, POSTED, P.APPLY),
        (C.SHIPPING_ADDRESS, UpdateFacts(posted=True, shipped=True), P.REVIEW),
        (C.LINES, POSTED, P.REVIEW),
        (C.TOTALS, POSTED, P.REVIEW),
        (C.LINES, UpdateFacts(posted=False), P.APPLY),
        (C.CANCELLED, UpdateFacts(posted=False), P.APPLY),
        (C.CANCELLED, POSTED, P.REVIEW),
        (C.PARTIALLY_REFUNDED, UpdateFacts(posted=True, adjustable=True), P.APPLY),
        (C.REFUNDED, POSTED, P.REVIEW),
        (C.NOTES, POSTED, P.IGNORE),
        (C.FULFILMENT, POSTED, P.IGNORE),
    ],
)
def test_the_defaults_keep_the_issue_s_promise(change: C, facts: UpdateFacts, expected: UpdatePolicy) -> None:
    assert Policies().for_class(change, facts).policy is expected


def test_an_update_takes_the_strictest_policy_of_its_classes_and_keeps_each_one() -> None:
    decision = Policies().decide({C.NOTES, C.SHIPPING_ADDRESS, C.LINES}, POSTED)
    assert decision.policy is P.REVIEW
    assert [c.change for c in decision.classes] == [C.LINES, C.SHIPPING_ADDRESS, C.NOTES]
    assert decision.acted_on == {C.LINES, C.SHIPPING_ADDRESS}
    assert Policies().decide({C.NOTES}, POSTED).policy is P.IGNORE
    assert Policies().decide(set(), POSTED).policy is P.IGNORE


def test_a_tenant_override_wins_over_the_default_and_round_trips_as_data() -> None:
    own = Policies().with_policy(C.LINES, P.APPLY).with_policy(C.TOTALS, P.APPLY)
    assert own.decide({C.LINES, C.TOTALS}, POSTED).policy is P.APPLY
    assert own.for_class(C.LINES, POSTED).overridden
    again = Policies.from_data(own.as_data())
    assert again.as_data() == {"lines": "apply", "totals": "apply"}
    assert again.with_policy(C.LINES, None).as_data() == {"totals": "apply"}


def test_unreadable_policies_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="not a change class"):
        Policies.from_data({"colour": "apply"})
    with pytest.raises(ValueError, match="not a policy"):
        Policies.from_data({"lines": "sometimes"})
