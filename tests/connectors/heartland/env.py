"""Fixtures for the Heartland Retail connector tests: the sandbox served on a real local port.

The connector is built as the hub builds it (base URL, credentials, settings). Its sleeps are
recorded and cut short (at most ``nap`` seconds), except where a test needs time to pass. The
env remembers, per order key, the ``public_id`` each posted order is filed under in Heartland, so
``received(order_key)`` reads the sandbox's own documents for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from orderbridge.connectors.base import OutgoingOrder, PostResult
from orderbridge.connectors.heartland import HeartlandDestination
from orderbridge.connectors.heartland import mapper as hmapper
from orderbridge.domain.mappings import DestinationPolicy
from orderbridge.sandboxes.base import Fault, run_in_thread
from orderbridge.sandboxes.heartland import HELPER_ITEMS, HeartlandState, create_sandbox
from tests.builders import replace
from tests.connectors.contract_destination import POLICY, make_order, outgoing

TOKEN = "hl_sandbox_token"
#: the SKU mapping the Heartland tests post with: TEE-RED-M → Item # WH-TEE-001, the others as they are
HL_POLICY = DestinationPolicy(
    name="pos", sku_map=dict(POLICY.sku_map), sku_mapping_required=False, shipping_mapping_required=False
)


def hl_outgoing(n: int, **kw: Any) -> OutgoingOrder:
    return outgoing(make_order(n, **kw), policy=HL_POLICY)


class RecordingHeartland(HeartlandDestination):
    """The connector, remembering which public_id each order key was posted under (tests only)."""

    public_ids: dict[str, set[str]]

    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        for o in orders:
            fmt = str(self.settings["public_id_format"])
            self.public_ids.setdefault(o.order_key, set()).add(hmapper.public_id(o.resolved.order, fmt))
        return super().post_orders(orders)


@dataclass
class HeartlandEnv:
    state: HeartlandState
    base_url: str
    http: httpx.Client
    settings: dict[str, Any]
    connector: RecordingHeartland = field(init=False)
    sleeps: list[float] = field(default_factory=list)
    public_ids: dict[str, set[str]] = field(default_factory=dict)
    nap: float = 0.05

    def build(self, **settings: Any) -> RecordingHeartland:
        connector = RecordingHeartland(
            self.base_url, {"api_token": TOKEN}, {**self.settings, **settings}, http=self.http, sleep=self._sleep
        )
        connector.public_ids = self.public_ids
        return connector

    @property
    def station_id(self) -> int:
        return next(iter(self.state.stations))

    def sales(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [*self.state.orders.values(), *self.state.tickets.values()]

    def received(self, order_key: str) -> list[Mapping[str, Any]]:
        wanted = self.public_ids.get(order_key, set())
        return [s for s in self.sales() if s["public_id"] in wanted]

    def orders_for(self, public_id: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [o for o in self.state.orders.values() if o["public_id"] == public_id]

    def ship_all(self) -> None:  # a POS ships nothing
        pass

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, path=kw.pop("path", "/api/"), **kw))

    def refused_order(self, n: int) -> OutgoingOrder:
        # an Item # Heartland does not have: the sale cannot be made
        good = hl_outgoing(n)
        order = good.resolved.order
        lines = (replace(order.lines[0], sku="NOT-IN-HEARTLAND"), *order.lines[1:])
        return outgoing(replace(order, lines=lines), policy=HL_POLICY)

    # --- the POS contract's switches (tests/connectors/contract_pos.py) -------------------------------
    def archive_employee(self) -> None:
        self.state.set_user_active(str(self.connector.settings["acting_user"]), False)

    def remove_helper_items(self) -> list[str]:
        removed = []
        for sku, _ in HELPER_ITEMS:
            item = self.state.item_by_public_id(sku)
            if item is not None:
                del self.state.items[item["id"]]
                removed.append(sku)
        return removed

    def leave_sales_pending(self) -> None:
        """The merchant switches a field to required (leaving sales pending) once OrderBridge has checked
        the order and before its sale arrives — Heartland then takes the sale and leaves it pending."""

        def switch_on(method: str, path: str) -> None:
            sale = method == "POST" and path in ("/api/sales/orders", "/api/sales/tickets")
            if sale and not any(f["key"] == "pickup_date" for f in self.state.custom_fields.values()):
                self.state.add_custom_field("pickup_date", "sales.transaction", required=True, on_missing="pending")

        self.state.before_call = switch_on

    def sane_order(self, n: int) -> OutgoingOrder:
        return hl_outgoing(n)

    def order_with_unknown_sku(self, n: int, sku: str) -> OutgoingOrder:
        order = make_order(n)
        return outgoing(replace(order, lines=(replace(order.lines[0], sku=sku), *order.lines[1:])), policy=HL_POLICY)

    def writes(self) -> list[str]:
        """The API writes the sandbox received (``POST /api/…``), in order, from its own ledger."""
        return [e.key for e in self.state.entries("call") if not e.key.startswith("GET ") and e.data["status"] < 300]

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(min(seconds, self.nap))


def open_env(
    *, settings: Mapping[str, Any] | None = None, timeout: float = 1.0, **sandbox: Any
) -> Iterator[HeartlandEnv]:
    state, app = create_sandbox(**sandbox)
    with run_in_thread(app) as running, httpx.Client(timeout=timeout) as http:
        station = next(iter(state.stations))
        merged = {"station_id": station, "timeout_settle_s": 0.2, **(settings or {})}
        env = HeartlandEnv(state, running.base_url, http, merged)
        env.connector = env.build()
        try:
            yield env
        finally:
            env.connector.close()


@pytest.fixture
def heartland_env() -> Iterator[HeartlandEnv]:
    yield from open_env()


@pytest.fixture
def ticket_env() -> Iterator[HeartlandEnv]:
    yield from open_env(settings={"posting_mode": "ticket"})
