from datetime import UTC, datetime

import pytest

from orderbridge.domain.order import FulfilmentStatus, PaymentStatus
from orderbridge.domain.reasons import SkipCode
from orderbridge.domain.rules import DownloadRules
from tests.builders import SEED_000_RULES, T0, order, replace


def test_seed_000_rules_take_paid_unfulfilled_open_live_orders() -> None:
    assert SEED_000_RULES.skip_reasons(order()) == []


def test_the_engine_alone_takes_every_status_but_leaves_out_test_and_closed_orders() -> None:
    """The engine knows no channel: which statuses a channel's connections take by default is
    declared by its connector (Shopify's is seed 000's, tests/connectors)."""
    pending = order(payment_status=PaymentStatus.PENDING, fulfilment_status=FulfilmentStatus.FULFILLED)
    assert DownloadRules().skip_reasons(pending) == []
    codes = {r.code for r in DownloadRules().skip_reasons(order(test=True, closed_at=T0))}
    assert codes == {SkipCode.TEST_ORDER, SkipCode.CLOSED_ORDER}


def test_pending_payment_is_skipped_naming_the_status_and_the_fix() -> None:
    (reason,) = SEED_000_RULES.skip_reasons(order(payment_status=PaymentStatus.PENDING))
    assert reason.code == SkipCode.FINANCIAL_STATUS_NOT_DOWNLOADED
    assert "'pending'" in reason.message
    assert "download rules" in reason.fix.text


def test_fulfilled_test_and_closed_orders_get_every_reason_not_just_the_first() -> None:
    o = order(fulfilment_status=FulfilmentStatus.FULFILLED, test=True, closed_at=T0)
    codes = {r.code for r in SEED_000_RULES.skip_reasons(o)}
    assert codes == {SkipCode.FULFILMENT_STATUS_NOT_DOWNLOADED, SkipCode.TEST_ORDER, SkipCode.CLOSED_ORDER}


def test_each_rule_is_configurable() -> None:
    rules = DownloadRules.from_settings(
        {
            "financial_statuses": ["paid", "pending"],
            "include_test": True,
            "include_closed": True,
            "fulfillment_statuses": ["any"],
        }
    )
    o = order(
        payment_status=PaymentStatus.PENDING, test=True, closed_at=T0, fulfilment_status=FulfilmentStatus.FULFILLED
    )
    assert rules.skip_reasons(o) == []


def test_earliest_date_skips_older_orders() -> None:
    rules = DownloadRules(earliest=datetime(2026, 11, 2, tzinfo=UTC))
    (reason,) = rules.skip_reasons(order())
    assert reason.code == SkipCode.BEFORE_EARLIEST_DATE


def test_unknown_rule_names_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"financial_status\b"):
        DownloadRules.from_settings({"financial_status": ["paid"]})


def test_rules_round_trip_through_settings() -> None:
    rules = DownloadRules(include_test=True, earliest=datetime(2026, 1, 1, tzinfo=UTC))
    assert DownloadRules.from_settings(rules.to_settings()) == rules


def test_cancelled_orders_are_skipped() -> None:
    (reason,) = SEED_000_RULES.skip_reasons(replace(order(), cancelled_at=T0))
    assert reason.code == SkipCode.CANCELLED_ORDER
