"""The two test kinds are registered through the registry's public API — their "one registry
entry" — for the tests of this package, and removed after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderbridge.connectors import registry
from tests.connectors.extra_kind.tinybooks import TinyBooksDestination


@pytest.fixture(autouse=True)
def tiny_kinds() -> Iterator[None]:
    registry.register("tinyshop", "tests.connectors.extra_kind.tinyshop:TinyShopChannel")  # loaded on first use
    registry.register("tinybooks", TinyBooksDestination)
    yield
    registry.unregister("tinyshop")
    registry.unregister("tinybooks")
