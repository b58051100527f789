"""Subscribing every webhook-capable channel to this hub when ``serve`` starts.

Which channels are subscribed is a rule of the scope, not of its command line: every channel whose
kind declares webhooks and whose credentials hold the ``api_secret`` that verifies them. A channel
without one is skipped (it is polled and audited only); a failed registration is recorded on the
connection's ``webhooks`` job by :func:`~orderbridge.services.webhooks.register_webhooks` and is
never fatal to the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from orderbridge.connectors import registry
from orderbridge.connectors.base import Capability, Role, WebhookSubscription
from orderbridge.errors import OrderBridgeError
from orderbridge.services.scope import Scope
from orderbridge.services.webhooks import register_webhooks


@dataclass(frozen=True)
class Registration:
    """One channel's outcome: its subscriptions, or why it has none."""

    connection: str
    subscriptions: list[WebhookSubscription] = field(default_factory=list)
    #: the credentials hold no ``api_secret``, so webhooks could not be verified: nothing registered
    no_secret: bool = False
    error: OrderBridgeError | None = None


def register_all(scope: Scope) -> Iterator[Registration]:
    """Subscribe every webhook-capable channel, one at a time (yielded as each is done)."""
    with scope.db.read() as conn:
        channels = scope.connections(conn, Role.CHANNEL)
    for row in channels:
        if Capability.WEBHOOKS not in registry.declaration(row.kind).capabilities:
            continue
        if not scope.box.open(row.credentials_token, what=row.name).get("api_secret"):
            yield Registration(row.name, no_secret=True)
            continue
        try:
            subs = register_webhooks(scope, row.id)  # records the connection's webhooks job either way
        except OrderBridgeError as exc:
            yield Registration(row.name, error=exc)
        else:
            yield Registration(row.name, subscriptions=subs)
