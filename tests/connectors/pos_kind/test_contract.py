"""The shared destination and POS contracts, run against the TinyPOS test kind over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge.connectors import registry
from orderbridge.connectors.base import OutgoingOrder
from orderbridge.domain.mappings import DestinationPolicy
from orderbridge.domain.money import Money
from orderbridge.domain.order import OrderLine
from orderbridge.sandboxes.base import Fault, run_in_thread
from tests.connectors.contract_destination import DestinationContract, make_order, outgoing
from tests.connectors.contract_pos import PosContract
from tests.connectors.pos_kind.sandbox import HELPERS, POS_TOKEN, TinyPosState, pos_app

IDENTITY = DestinationPolicy(name="pos", sku_mapping_required=False, shipping_mapping_required=False)


def _order(state: TinyPosState, n: int, skus: tuple[str, ...] = ("MUG-1",)) -> OutgoingOrder:
    """A contract order priced as TinyPOS computes it (its tax rate on the lines)."""
    base = make_order(n, lines=1)
    lines = tuple(
        OrderLine(external_id=f"{n}-L{i}", sku=sku, title=sku, quantity=1, unit_price=Money(Decimal("10.00"), "USD"))
        for i, sku in enumerate(skus)
    )
    items = Decimal("10.00") * len(lines)
    tax = (items * state.rate / 100).quantize(Decimal("0.01"))
    ship = sum((s.price.amount for s in base.shipping_lines), Decimal("0"))
    order = type(base)(
        **{
            **{f: getattr(base, f) for f in base.__struct_fields__},
            "lines": lines,
            "subtotal": Money(items, "USD"),
            "total_tax": Money(tax, "USD"),
            "total": Money(items + tax + ship, "USD"),
        }
    )
    return outgoing(order, policy=IDENTITY)


@dataclass
class PosEnv:
    state: TinyPosState
    connector: Any

    # --- DestinationEnv ----------------------------------------------------------------------
    def received(self, order_key: str) -> list[Mapping[str, Any]]:
        return [s for s in self.state.sales.values() if s["public_id"] == order_key]

    def ship_all(self) -> None:  # TinyPOS ships nothing (no LIST_SHIPMENTS)
        return None

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, path="/v1/sales", method="POST", retry_after=0.01, **kw))

    def refused_order(self, n: int) -> OutgoingOrder:
        return _order(self.state, n, ("NOT-IN-POS",))

    # --- the POS contract's switches -----------------------------------------------------------
    def archive_employee(self) -> None:
        self.state.employees["E1"]["active"] = False

    def remove_helper_items(self) -> list[str]:
        for sku in HELPERS:
            self.state.remove_item(sku)
        return list(HELPERS)

    def leave_sales_pending(self) -> None:
        self.state.pending_sales = True

    def sane_order(self, n: int) -> OutgoingOrder:
        return _order(self.state, n)

    def order_with_unknown_sku(self, n: int, sku: str) -> OutgoingOrder:
        return _order(self.state, n, ("MUG-1", sku))


@pytest.fixture
def pos_env() -> Iterator[PosEnv]:
    state = TinyPosState()
    for sku in ("WH-TEE-001", "SKU-1"):
        state.add_item(sku)
    with run_in_thread(pos_app(state)) as running:
        http = httpx.Client(timeout=0.5)
        connector = registry.build(
            "tinypos", running.base_url, {"token": POS_TOKEN}, {}, http=http, sleep=lambda _s: None
        )
        yield PosEnv(state, connector)
        connector.close()


class TestTinyPosContract(PosContract):
    pass


class TestTinyPosDestinationContract(DestinationContract):
    @pytest.fixture
    def destination_env(self, pos_env: PosEnv) -> PosEnv:
        return pos_env
