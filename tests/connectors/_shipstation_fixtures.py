"""Fixtures for ShipStation connector tests: a sandbox under a real httpx client, with fake time.

Kept out of ``conftest.py`` (which belongs to the Shopify tests); test modules import the
fixtures they use. Time is a :class:`FakeClock` shared by the sandbox (rate windows, warehouse)
and the connector's injected ``sleep``, so a connector that waits for a rate window really moves
the sandbox into the next window — without the test waiting.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from orderbridge.connectors.base import OutgoingOrder
from orderbridge.connectors.shipstation import ShipStationDestination
from orderbridge.sandboxes.base import ASGIApp, Fault, in_process_client
from orderbridge.sandboxes.shipstation import ShipStationState, create_sandbox
from tests.builders import replace
from tests.connectors.contract_destination import BASE_TIME, make_order, outgoing

CREDENTIALS = {"api_key": "ss_key", "api_secret": "ss_secret"}


class FakeClock:
    def __init__(self, start: datetime = BASE_TIME) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class ShipStationEnv:
    state: ShipStationState
    connector: ShipStationDestination
    clock: FakeClock
    app: ASGIApp
    sleeps: list[float] = field(default_factory=list)

    def received(self, order_key: str) -> list[Mapping[str, Any]]:
        order = self.state.order_by_key(order_key)
        return [order] if order is not None else []

    def ship_all(self) -> None:
        self.clock.advance(1)
        self.state.ship_all_now()
        self.clock.advance(1)

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, **kw))

    def refused_order(self, n: int) -> OutgoingOrder:
        # ShipStation requires an order number; the hub would normally hold this, the remote refuses it
        good = outgoing(make_order(n))
        return replace(good, resolved=replace(good.resolved, order=replace(good.resolved.order, number="")))


def build_env(**sandbox: Any) -> tuple[ShipStationEnv, Any]:
    clock = FakeClock()
    options: dict[str, Any] = {"clock": clock, **sandbox}
    state, app = create_sandbox(**options)
    http = in_process_client(app, timeout=0.5)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    connector = ShipStationDestination("http://sandbox.local", CREDENTIALS, {}, http=http, sleep=sleep)
    return ShipStationEnv(state, connector, clock, app, sleeps), http


@pytest.fixture
def shipstation_env() -> Iterator[ShipStationEnv]:
    env, http = build_env()
    try:
        yield env
    finally:
        env.connector.close()
        http.close()
