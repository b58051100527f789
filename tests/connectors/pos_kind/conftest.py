"""The POS test kind and the TinyShop channel, registered through the registry's public API for the
tests of this package, and removed after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderbridge.connectors import registry
from tests.connectors.pos_kind.tinypos import TinyPosDestination


@pytest.fixture(autouse=True)
def pos_kinds() -> Iterator[None]:
    registry.register("tinyshop", "tests.connectors.extra_kind.tinyshop:TinyShopChannel")
    registry.register("tinypos", TinyPosDestination)
    yield
    registry.unregister("tinyshop")
    registry.unregister("tinypos")
