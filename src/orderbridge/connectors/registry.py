"""Connector registry: kind → class, imported lazily so a CLI call loads only what it uses."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from orderbridge.connectors.base import ChannelConnector, Declaration, DestinationConnector, Role
from orderbridge.errors import InvalidInput

_KINDS: dict[str, str | type] = {
    "shopify": "orderbridge.connectors.shopify.connector:ShopifyChannel",
    "shipstation": "orderbridge.connectors.shipstation.connector:ShipStationDestination",
}


def register(kind: str, target: str | type) -> None:
    """Add a connector kind (``"module:Class"`` or the class itself)."""
    _KINDS[kind] = target


def kinds() -> list[str]:
    return sorted(_KINDS)


def connector_class(kind: str) -> Any:
    try:
        target = _KINDS[kind]
    except KeyError:
        raise InvalidInput(f"unknown connection kind {kind!r}", hint=f"Known kinds: {', '.join(kinds())}.") from None
    if isinstance(target, type):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def declaration(kind: str) -> Declaration:
    decl: Declaration = connector_class(kind).declaration
    return decl


def build(
    kind: str,
    base_url: str,
    credentials: Mapping[str, str],
    settings: Mapping[str, Any],
    http: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ChannelConnector | DestinationConnector:
    cls = connector_class(kind)
    connector: ChannelConnector | DestinationConnector = cls(base_url, credentials, settings, http=http, sleep=sleep)
    return connector


def role_of(kind: str) -> Role:
    return declaration(kind).role
