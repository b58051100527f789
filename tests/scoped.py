"""Tests' shorthand for the tenant-bound API (decision 80): most tests run in one tenant's ledger,
the ``default`` tenant migration 0001 creates, and name their connections.

``tenant(hub)`` is that tenant's scope; ``cid(hub, "shop")`` resolves a connection's name to its
id, as the CLI does once per command. Tests of tenancy itself make their own tenants
(``tests/services/test_tenants.py``).
"""

from __future__ import annotations

from orderbridge.services.hub import Hub
from orderbridge.services.scope import Scope

DEFAULT = "default"


def tenant(hub: Hub) -> Scope:
    """The default tenant's scope over ``hub``."""
    return Scope.named(hub, DEFAULT)


def cid(hub: Hub, name: str) -> int:
    """The id of the default tenant's connection ``name``."""
    return tenant(hub).connection_id(name)
