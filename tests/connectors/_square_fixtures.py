"""Fixtures for Square connector tests: the Square sandbox under a real httpx client.

Kept out of ``conftest.py``; test modules import what they use. The connector's ``sleep`` records
instead of waiting, so backoffs after injected 429/5xx cost no time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge.connectors.base import OutgoingOrder
from orderbridge.connectors.square import SquareDestination
from orderbridge.domain.money import Money
from orderbridge.domain.order import Order, OrderLine, TaxLine
from orderbridge.sandboxes.base import ASGIApp, Fault, in_process_client
from orderbridge.sandboxes.square import SquareState, create_sandbox
from orderbridge.sandboxes.square.app import ACCESS_TOKEN, LOCATION_ID, TEAM_MEMBER_ID
from tests.builders import replace
from tests.connectors.contract_destination import make_order, outgoing

CREDENTIALS = {"access_token": ACCESS_TOKEN}
SETTINGS = {"location_id": LOCATION_ID, "team_member_id": TEAM_MEMBER_ID}


@dataclass
class SquareEnv:
    state: SquareState
    connector: SquareDestination
    app: ASGIApp
    http: httpx.Client
    sleeps: list[float] = field(default_factory=list)

    def received(self, order_key: str) -> list[Mapping[str, Any]]:
        with self.state.lock:
            return [o for o in self.state.orders.values() if (o.get("metadata") or {}).get("ob_order_key") == order_key]

    def payments_for(self, order_key: str) -> list[Mapping[str, Any]]:
        ids = {o["id"] for o in self.received(order_key)}
        with self.state.lock:
            return [p for p in self.state.payments.values() if p["order_id"] in ids]

    def ship_all(self) -> None:  # Square is a POS: it reports no shipments (no LIST_SHIPMENTS)
        return None

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, **kw))

    def refused_order(self, n: int) -> OutgoingOrder:
        # the location sells in USD: Square refuses an order in another currency, on its content
        good = make_order(n)
        eur = _in_currency(good, "EUR")
        return outgoing(eur)

    def connector_with(self, **settings: Any) -> SquareDestination:
        sleeps = self.sleeps
        return SquareDestination(
            "http://sandbox.local", CREDENTIALS, {**SETTINGS, **settings}, http=self.http, sleep=sleeps.append
        )


def _in_currency(order: Order, currency: str) -> Order:
    def m(value: Money) -> Money:
        return Money(value.amount, currency)

    lines = tuple(replace(line, unit_price=m(line.unit_price)) for line in order.lines)
    ships = tuple(replace(s, price=m(s.price)) for s in order.shipping_lines)
    return replace(
        order,
        currency=currency,
        lines=lines,
        shipping_lines=ships,
        subtotal=m(order.subtotal),
        total_tax=m(order.total_tax),
        total=m(order.total),
    )


def build_env(*, timeout: float = 0.5, settings: Mapping[str, Any] | None = None, **sandbox: Any) -> SquareEnv:
    state, app = create_sandbox(**sandbox)
    http = in_process_client(app, timeout=timeout)
    sleeps: list[float] = []
    connector = SquareDestination(
        "http://sandbox.local", CREDENTIALS, {**SETTINGS, **(settings or {})}, http=http, sleep=sleeps.append
    )
    return SquareEnv(state, connector, app, http, sleeps)


@pytest.fixture
def square_env() -> Iterator[SquareEnv]:
    env = build_env()
    try:
        yield env
    finally:
        env.connector.close()
        env.http.close()


def taxed_order(
    n: int,
    prices: list[str],
    *,
    rate: str | None,
    channel_tax: str,
    shipping: str = "0.00",
    skus: list[str] | None = None,
) -> Order:
    """An order of one unit per price, with the channel's tax amount ``channel_tax`` and (when
    ``rate``) one tax line of that rate — the channel's own arithmetic, whatever Square would do."""
    base = make_order(n, lines=1)
    usd = base.currency
    lines = tuple(
        OrderLine(
            external_id=f"{n}-L{i}",
            sku=(skus[i] if skus else ["WH-TEE-001", "SKU-1", "SKU-2", "SKU-3"][i % 4]),
            title=f"Item {i}",
            quantity=1,
            unit_price=Money(Decimal(p), usd),
        )
        for i, p in enumerate(prices)
    )
    subtotal = sum((Decimal(p) for p in prices), Decimal(0))
    tax = Money(Decimal(channel_tax), usd)
    ship = replace(base.shipping_lines[0], price=Money(Decimal(shipping), usd))
    return replace(
        base,
        lines=lines,
        subtotal=Money(subtotal, usd),
        total_tax=tax,
        total=Money(subtotal + tax.amount + ship.price.amount, usd),
        shipping_lines=(ship,),
        taxes=(TaxLine("State tax", Decimal(rate), tax),) if rate else (),
    )
