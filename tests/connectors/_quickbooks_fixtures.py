"""Fixtures for QuickBooks Online connector tests: the QBO sandbox served on a real local port.

The connector is built as the hub builds it (base URL, decrypted credentials, settings) with the
sandbox's token endpoint as ``token_url`` and the refresh token the sandbox issued when "the app
was connected". Sleeps really sleep (capped at a second) and are recorded, so a 429's wait is
visible to the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from orderbridge.connectors.base import OutgoingOrder
from orderbridge.connectors.quickbooks import QuickBooksDestination
from orderbridge.connectors.quickbooks import mapper as qmapper
from orderbridge.domain.mappings import DestinationPolicy
from orderbridge.sandboxes.base import Fault, run_in_thread
from orderbridge.sandboxes.quickbooks import QuickBooksState, create_sandbox
from tests.builders import replace
from tests.connectors.contract_destination import make_order, outgoing

#: the SKU mapping the QuickBooks tests post with: TEE-RED-M → the sandbox's item WH-TEE-001
QBO_POLICY = DestinationPolicy(
    name="qbo", sku_map={"TEE-RED-M": "WH-TEE-001"}, sku_mapping_required=False, shipping_mapping_required=False
)


def qbo_outgoing(n: int, **kw: Any) -> OutgoingOrder:
    return outgoing(make_order(n, **kw), policy=QBO_POLICY)


@dataclass
class QuickBooksEnv:
    state: QuickBooksState
    connector: QuickBooksDestination
    base_url: str
    credentials: dict[str, str]
    settings: dict[str, Any]
    http: httpx.Client
    sleeps: list[float] = field(default_factory=list)
    rotations: list[Mapping[str, str]] = field(default_factory=list)

    @property
    def realm(self) -> str:
        return self.credentials["realm_id"]

    def documents(self, entity: str = "SalesReceipt") -> list[dict[str, Any]]:
        return self.state.documents(self.realm, entity)

    def received(self, order_key: str) -> list[Mapping[str, Any]]:
        return [d for d in self.documents() if (qmapper.marked_key(d) or ("",))[0] == order_key]

    def ship_all(self) -> None:  # an accounting package ships nothing
        pass

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, path="/v3/", **kw))

    def refused_order(self, n: int) -> OutgoingOrder:
        # a SKU the company has no item for: QuickBooks cannot take the line
        good = qbo_outgoing(n)
        order = good.resolved.order
        lines = (replace(order.lines[0], sku="NOT-IN-QBO"), *order.lines[1:])
        return outgoing(replace(order, lines=lines), policy=QBO_POLICY)

    def build(self, **settings: Any) -> QuickBooksDestination:
        """Another connector over the same company (a restart: built from what the hub stored)."""
        connector = QuickBooksDestination(
            self.base_url, self.credentials, {**self.settings, **settings}, http=self.http, sleep=self._sleep
        )
        connector.on_credentials_rotated(self._rotated)
        return connector

    def _rotated(self, rotated: Mapping[str, str]) -> None:
        self.rotations.append(dict(rotated))
        self.credentials.update(rotated)  # what the hub does: store the new one

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(min(seconds, 1.0))


def open_env(
    *, settings: Mapping[str, Any] | None = None, timeout: float = 1.0, **sandbox: Any
) -> Iterator[QuickBooksEnv]:
    options: dict[str, Any] = {"limits": False, **sandbox}
    state, app = create_sandbox(**options)
    with run_in_thread(app) as running, httpx.Client(timeout=timeout) as http:
        credentials = {
            "client_id": state.client_id,
            "client_secret": state.client_secret,
            "refresh_token": state.initial_refresh_token,
            "realm_id": next(iter(state.companies)),
        }
        merged = {
            "token_url": f"{running.base_url}/oauth2/v1/tokens/bearer",
            "requests_per_second": 50,
            **(settings or {}),
        }
        env = QuickBooksEnv(state, None, running.base_url, credentials, merged, http)  # type: ignore[arg-type]
        env.connector = env.build()
        try:
            yield env
        finally:
            env.connector.close()


@pytest.fixture
def quickbooks_env() -> Iterator[QuickBooksEnv]:
    yield from open_env()
