"""The downstream plan: one step per destination, from its declared amendments and what it holds."""

from __future__ import annotations

from orderbridge.domain.changes import ChangeClass as C
from orderbridge.domain.money import Money
from orderbridge.domain.update_plan import Action, Destination, HeldDocument, StepKind, Way, plan

DOC = HeldDocument(7, "1043", 1, "ob-1-A", "1:2:v1")
QBO = Destination(
    2,
    "QuickBooks",
    "SalesReceipt",
    {
        C.LINES: Way.VOID_AND_REPOST,
        C.TOTALS: Way.VOID_AND_REPOST,
        C.SHIPPING_ADDRESS: Way.UPDATE_IN_PLACE,
        C.PARTIALLY_REFUNDED: Way.ADJUST,
        C.CANCELLED: Way.VOID_AND_REPOST,
    },
    DOC,
)
SS = Destination(
    3,
    "ShipStation",
    "order",
    {
        C.SHIPPING_ADDRESS: Way.UPDATE_IN_PLACE,
        C.LINES: Way.UPDATE_IN_PLACE,
        C.TOTALS: Way.UPDATE_IN_PLACE,
        C.CANCELLED: Way.UPDATE_IN_PLACE,
    },
    HeldDocument(8, "98765", 1, "ob-1-A", "1:3:v1"),
)


def test_each_destination_gets_the_issue_s_sentence() -> None:
    p = plan(frozenset({C.LINES, C.TOTALS}), [QBO, SS])
    assert p.sentences == (
        "QuickBooks: void SalesReceipt 1043 and post a new one",
        "ShipStation: update order 98765",
    )
    assert p.step(2).actions == (Action.VOID, Action.POST)  # type: ignore[union-attr]
    assert p.step(3).actions == (Action.UPDATE,)  # type: ignore[union-attr]


def test_a_refund_is_an_adjustment_where_declared_and_a_person_s_job_where_not() -> None:
    p = plan(frozenset({C.PARTIALLY_REFUNDED}), [QBO, SS], refund=Money.parse("12.50", "EUR"))
    qbo, ss = p.steps
    assert (
        qbo.kind is StepKind.ADJUST
        and qbo.sentence == "QuickBooks: post a refund of 12.50 EUR against SalesReceipt 1043"
    )
    assert ss.kind is StepKind.CANNOT and "partially refunded" in ss.reason
    assert p.blocked == (ss,)
    unknown = plan(frozenset({C.PARTIALLY_REFUNDED}), [QBO])
    assert unknown.steps[0].kind is StepKind.CANNOT and "not known" in unknown.steps[0].sentence


def test_nothing_posted_yet_means_the_new_version_simply_posts() -> None:
    fresh = Destination(4, "Files", "file", {}, None)
    [step] = plan(frozenset({C.LINES}), [fresh]).steps
    assert step.kind is StepKind.NOTHING_TO_DO and step.actions == () and "posted as it is" in step.sentence


def test_a_cancellation_voids_the_accounting_document_and_marks_the_3pl_order_cancelled() -> None:
    qbo, ss = plan(frozenset(), [QBO, SS], cancel=True).steps
    assert qbo.kind is StepKind.VOID and qbo.actions == (Action.VOID,)
    assert ss.sentence == "ShipStation: mark order 98765 cancelled"


def test_plan_sentences_name_no_command_and_no_address() -> None:
    for step in plan(frozenset({C.LINES, C.NOTES}), [QBO, SS]).steps:
        assert "orderbridge " not in step.sentence and "http" not in step.sentence


def test_a_step_a_destination_cannot_do_still_does_what_it_can_once_accepted() -> None:
    p = plan(frozenset({C.LINES, C.PARTIALLY_REFUNDED}), [SS], refund=Money.parse("5.00", "EUR"))
    [step] = p.steps
    assert step.kind is StepKind.CANNOT and step.partial is not None
    assert step.partial.actions == (Action.UPDATE,)
    assert step.sentence.endswith("accepting still does the rest (update order 98765)")
    [alone] = plan(frozenset({C.PARTIALLY_REFUNDED}), [SS], refund=Money.parse("5.00", "EUR")).steps
    assert alone.kind is StepKind.CANNOT and alone.partial is None
