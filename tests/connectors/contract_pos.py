"""The POS destination contract (issue #17): what every destination declaring ``PREFLIGHT`` must do,
proven against its sandbox — the hub's pre-flight (``services/preflight.py``) relies on each point.

A connector's test module subclasses :class:`PosContract` and provides a ``pos_env`` fixture
yielding an object shaped like :class:`PosEnv` (the sandbox's switches for seed 001's traps). The
suite checks: the connection checks have the stable names and pass on a sane POS; an archived
acting employee and missing helper items fail with their typed reasons and fixes (the helper
items' check naming the action the hub can ask for); ``create_helper_items`` creates what is
missing, only that, and nothing on a second call; a sane order passes its checks and an unknown SKU
fails with ``sku_unmapped`` naming the channel SKU; ``document_state`` reads a posted sale back, says
whether stock moved, and answers None for a document the POS does not have.

Separate from ``contract_destination.py`` (which a POS connector passes too): these tests need the
POS's own switches, which a 3PL's sandbox does not have.
"""

from __future__ import annotations

from typing import Protocol

import pytest

from orderbridge.connectors.base import (
    Capability,
    OutgoingOrder,
    PosDocumentState,
    PreflightCheck,
    PreflightDestination,
)
from orderbridge.domain.reasons import HoldCode
from orderbridge.fixes import FixAction
from tests.connectors.capabilities import gate, requires

#: the names a connection-level check may have (PreflightCheck's docstring)
CONNECTION_CHECKS = frozenset({"employee", "helper_items", "location"})
ORDER_CHECKS = frozenset({"required_fields", "skus", "totals"})


class PosEnv(Protocol):
    connector: PreflightDestination

    def archive_employee(self) -> None:
        """Archive (deactivate) the employee / team member the connection acts as."""
        ...

    def remove_helper_items(self) -> list[str]:
        """Remove (or archive) the helper items; the SKUs removed."""
        ...

    def leave_sales_pending(self) -> None:
        """From now on, sales are created but not completed (no stock moves)."""
        ...

    def sane_order(self, n: int) -> OutgoingOrder:
        """An order the POS takes as it is: its SKUs exist, its total is the POS's."""
        ...

    def order_with_unknown_sku(self, n: int, sku: str) -> OutgoingOrder:
        """An otherwise sane order with one line whose SKU the POS does not have."""
        ...


def failing(checks: list[PreflightCheck], name: str) -> PreflightCheck:
    found = [c for c in checks if c.name == name and not c.ok]
    assert found, f"no failing {name!r} check in {[(c.name, c.ok) for c in checks]}"
    return found[0]


class PosContract:
    """Subclass and provide a ``pos_env`` fixture."""

    @pytest.fixture(autouse=True)
    def _declared(self, request: pytest.FixtureRequest, pos_env: PosEnv) -> None:
        gate(request, pos_env.connector.declaration)

    @requires(Capability.PREFLIGHT)
    def test_a_sane_pos_passes_every_connection_check_under_its_stable_name(self, pos_env: PosEnv) -> None:
        checks = pos_env.connector.preflight_connection()
        assert checks and {c.name for c in checks} <= CONNECTION_CHECKS
        assert all(c.ok and c.detail for c in checks), [(c.name, c.detail) for c in checks if not c.ok]

    @requires(Capability.PREFLIGHT)
    def test_an_archived_employee_fails_with_its_reason_and_a_setting_fix(self, pos_env: PosEnv) -> None:
        pos_env.archive_employee()
        check = failing(pos_env.connector.preflight_connection(), "employee")
        assert check.reason is not None and check.reason.code == HoldCode.POS_EMPLOYEE_INACTIVE
        assert check.reason.fix.action is FixAction.SET_SETTING and check.reason.fix.param("setting")

    @requires(Capability.PREFLIGHT)
    def test_missing_helper_items_fail_and_are_created_once_on_request(self, pos_env: PosEnv) -> None:
        removed = pos_env.remove_helper_items()
        check = failing(pos_env.connector.preflight_connection(), "helper_items")
        assert check.reason is not None and check.reason.code == HoldCode.POS_REQUIRED_PRODUCT_MISSING
        assert check.action == "create_helper_items"
        assert check.reason.fix.action is FixAction.CREATE_HELPER_ITEMS
        assert all(sku in check.reason.message for sku in removed)
        assert sorted(pos_env.connector.create_helper_items()) == sorted(removed)
        assert pos_env.connector.create_helper_items() == []  # idempotent
        assert all(c.ok for c in pos_env.connector.preflight_connection())

    @requires(Capability.PREFLIGHT)
    def test_a_sane_order_passes_and_an_unknown_sku_fails_naming_the_channel_sku(self, pos_env: PosEnv) -> None:
        checks = pos_env.connector.preflight_order(pos_env.sane_order(1))
        assert {c.name for c in checks} <= ORDER_CHECKS and all(c.ok for c in checks)
        check = failing(pos_env.connector.preflight_order(pos_env.order_with_unknown_sku(2, "NOPE-404")), "skus")
        assert check.reason is not None and check.reason.key == (HoldCode.SKU_UNMAPPED, "NOPE-404")

    @requires(Capability.PREFLIGHT)
    def test_a_posted_sale_is_read_back_with_its_state_and_stock(self, pos_env: PosEnv) -> None:
        (done,) = pos_env.connector.post_orders([pos_env.sane_order(3)])
        assert done.ok and done.document_id
        doc = pos_env.connector.document_state(done.document_id)
        assert doc is not None and doc.document_id == done.document_id
        assert doc.state in (PosDocumentState.COMPLETED, PosDocumentState.INVOICED) and doc.stock_moved

    @requires(Capability.PREFLIGHT)
    def test_a_sale_left_pending_says_so_and_that_stock_did_not_move(self, pos_env: PosEnv) -> None:
        pos_env.leave_sales_pending()
        (done,) = pos_env.connector.post_orders([pos_env.sane_order(4)])
        assert done.ok and done.document_id
        doc = pos_env.connector.document_state(done.document_id)
        assert doc is not None and doc.state is PosDocumentState.PENDING and doc.stock_moved is False

    @requires(Capability.PREFLIGHT)
    def test_a_document_the_pos_does_not_have_reads_as_none(self, pos_env: PosEnv) -> None:
        assert pos_env.connector.document_state(self.unknown_document_id()) is None

    def unknown_document_id(self) -> str:
        """A document id of the POS's own shape that it does not have (override when it matters)."""
        return "999999999"
