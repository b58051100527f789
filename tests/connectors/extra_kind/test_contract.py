"""The shared contract suites, run against the two test kinds and their sandboxes over real HTTP:
what each declares is proven, what it does not declare is skipped with the reason."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderbridge.connectors import registry
from orderbridge.connectors.base import OutgoingOrder
from orderbridge.sandboxes.base import Fault, run_in_thread
from tests.connectors.contract_channel import ChannelContract
from tests.connectors.contract_destination import DestinationContract, make_order, outgoing
from tests.connectors.extra_kind.sandbox import (
    BOOKS_KEY,
    SHOP_SECRET,
    SHOP_TOKEN,
    TinyBooksState,
    TinyShopState,
    books_app,
    shop_app,
)


def _build(kind: str, base_url: str, credentials: dict[str, str], **settings: Any) -> Any:
    """The connector as the hub builds it: through the registry, with the declared defaults."""
    http = httpx.Client(timeout=0.5)
    return registry.build(kind, base_url, credentials, settings, http=http, sleep=lambda _s: None)


@dataclass
class ShopEnv:
    state: TinyShopState
    connector: Any
    base_url: str
    webhook_secret: str = SHOP_SECRET

    def add_order(self, **overrides: Any) -> str:
        return str(self.state.add_order(**overrides)["id"])

    def update_order(self, external_id: str, **changes: Any) -> None:
        self.state.update_order(external_id, **changes)

    def add_unreadable_order(self) -> str:
        return self.add_order(items=[{"id": "1", "sku": "MUG-1", "title": "Mug", "qty": 1, "price": "12,50"}])

    def order_count(self) -> int:
        return len(self.state.orders)

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, path="/v1", retry_after=0.01, **kw))

    def signed_delivery(self, external_id: str, *, signed: bool = True) -> tuple[dict[str, str], bytes]:
        headers, body = self.state.delivery(external_id)
        if not signed:
            del headers["x-tiny-signature"]
        return headers, body


class TestTinyShopChannelContract(ChannelContract):
    @pytest.fixture
    def channel_env(self) -> Iterator[ShopEnv]:
        state = TinyShopState(orders=12)
        with run_in_thread(shop_app(state)) as running:
            connector = _build("tinyshop", running.base_url, {"token": SHOP_TOKEN}, page_size=5)
            yield ShopEnv(state, connector, running.base_url)
            connector.close()


@dataclass
class BooksEnv:
    state: TinyBooksState
    connector: Any

    def received(self, order_key: str) -> list[dict[str, Any]]:
        with self.state.lock:
            doc = self.state.invoices.get(order_key)
        return [doc] if doc is not None else []

    def ship_all(self) -> None:
        raise AssertionError("TinyBooks ships nothing: its shipment contract is skipped")

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, path="/v1", retry_after=0.01, **kw))

    def refused_order(self, n: int) -> OutgoingOrder:
        return outgoing(make_order(n, number=f"REFUSED-{n}"))


class TestTinyBooksDestinationContract(DestinationContract):
    @pytest.fixture
    def destination_env(self) -> Iterator[BooksEnv]:
        state = TinyBooksState()
        with run_in_thread(books_app(state)) as running:
            connector = _build("tinybooks", running.base_url, {"api_key": BOOKS_KEY})
            yield BooksEnv(state, connector)
            connector.close()


def test_what_a_kind_does_not_declare_is_skipped_with_the_reason() -> None:
    """Run the fulfilment and shipment contracts of this module in a child pytest and read its
    report: each is skipped, naming the capability the kind does not declare, and none fails (the
    classes above prove the rest passes)."""
    here = Path(__file__)
    chosen = "TestTiny and (fulfilment or shipment or shipped)"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(here), "-q", "-rs", "-p", "no:cacheprovider", "-k", chosen],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=here.parents[3],
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert sum("tinyshop does not declare push_fulfilment" in line for line in skips) == 3, out[-3000:]
    assert sum("tinybooks does not declare list_shipments" in line for line in skips) == 2, out[-3000:]
    assert out.strip().splitlines()[-1].startswith("5 skipped"), out[-3000:]
