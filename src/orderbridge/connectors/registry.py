"""Connector registry: kind → class, imported lazily so a CLI call loads only what it uses.

This is the one place a kind is named outside its own package: adding a connector is its package
plus one entry in :data:`_KINDS` — or, for a connector that lives elsewhere (a plugin, a test),
one call to :func:`register`. Everything else the hub knows about a kind it reads from the class's
:class:`~orderbridge.connectors.base.Declaration`, checked when the class is first loaded: its
kind must be the one it is registered under, and every capability it declares must be backed by
the methods that capability promises (:data:`~orderbridge.connectors.base.CAPABILITY_METHODS`).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from orderbridge.connectors.base import (
    Capability,
    ChannelConnector,
    Declaration,
    DestinationConnector,
    Role,
    missing_methods,
)
from orderbridge.errors import InvalidInput

_KINDS: dict[str, str | type] = {
    "shopify": "orderbridge.connectors.shopify.connector:ShopifyChannel",
    "manual": "orderbridge.connectors.manual.connector:ManualChannel",
    "shipstation": "orderbridge.connectors.shipstation.connector:ShipStationDestination",
    # issue #15 item 5: files for packages that import them
    "file_export": "orderbridge.connectors.file_export.connector:FileExportDestination",
    "quickbooks": "orderbridge.connectors.quickbooks.connector:QuickBooksDestination",
    # issue #17: POS destinations
    "square": "orderbridge.connectors.square.connector:SquareDestination",
    "heartland": "orderbridge.connectors.heartland.connector:HeartlandDestination",
    # issue #16 item 4: WooCommerce REST v3, pushed to through the planner
    "woocommerce": "orderbridge.connectors.woocommerce.connector:WooCommerceChannel",
    # issue #16 item 3: a marketplace channel pushed to through the planner
    "mirakl": "orderbridge.connectors.mirakl.connector:MiraklChannel",
}
_loaded: dict[str, type] = {}
_lock = threading.Lock()


def register(kind: str, target: str | type) -> None:
    """Add (or replace) a connector kind: ``"module:Class"``, loaded on first use, or the class."""
    with _lock:
        _KINDS[kind] = target
        _loaded.pop(kind, None)


def unregister(kind: str) -> None:
    """Remove a kind added with :func:`register` (tests that add their own kinds clean up)."""
    with _lock:
        _KINDS.pop(kind, None)
        _loaded.pop(kind, None)


def kinds(role: Role | None = None) -> list[str]:
    """The registered kinds (of one role: their classes are loaded to read it)."""
    names = sorted(_KINDS)
    return names if role is None else [k for k in names if declaration(k).role is role]


def connector_class(kind: str) -> Any:
    cached = _loaded.get(kind)
    if cached is not None:
        return cached
    try:
        target = _KINDS[kind]
    except KeyError:
        raise InvalidInput(f"unknown connection kind {kind!r}", hint=f"Known kinds: {', '.join(kinds())}.") from None
    if isinstance(target, type):
        cls = target
    else:
        module, _, name = target.partition(":")
        cls = getattr(importlib.import_module(module), name)
    _check(kind, cls)
    with _lock:
        if _KINDS.get(kind) is target:
            _loaded[kind] = cls
    return cls


def _check(kind: str, cls: Any) -> None:
    decl = getattr(cls, "declaration", None)
    if not isinstance(decl, Declaration):
        raise TypeError(f"connector {kind!r} ({cls!r}) has no Declaration")
    if decl.kind != kind:
        raise TypeError(f"connector registered as {kind!r} declares kind {decl.kind!r}")
    missing = missing_methods(cls, decl)
    if missing:
        raise TypeError(f"connector {kind!r} declares capabilities it lacks the methods for: {', '.join(missing)}")


def declaration(kind: str) -> Declaration:
    decl: Declaration = connector_class(kind).declaration
    return decl


def declarations() -> list[Declaration]:
    """Every registered kind's declaration, by kind."""
    return [declaration(k) for k in kinds()]


def can(kind: str, capability: Capability) -> bool:
    """Whether ``kind`` declares ``capability`` (what the scheduler asks before running a job)."""
    return capability in declaration(kind).capabilities


def build(
    kind: str,
    base_url: str,
    credentials: Mapping[str, str],
    settings: Mapping[str, Any],
    http: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ChannelConnector | DestinationConnector:
    """The connector for one connection; ``settings`` are the stored ones, narrowed here to what the
    kind declared for its connector (the hub's own settings never reach it)."""
    cls = connector_class(kind)
    own = cls.declaration.connector_settings(settings)
    connector: ChannelConnector | DestinationConnector = cls(base_url, credentials, own, http=http, sleep=sleep)
    return connector


def role_of(kind: str) -> Role:
    return declaration(kind).role


#: issue #16: the kinds this package ships (not those a test or plugin registers): what
#: ``orderbridge channels doc`` documents in docs/channels.md
BUILTIN_KINDS: tuple[str, ...] = tuple(sorted(_KINDS))
