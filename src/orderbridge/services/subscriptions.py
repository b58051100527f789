"""Subscribing every webhook-capable channel to this hub when ``serve`` starts.

Which channels are subscribed is a rule of the scope, not of its command line: every channel whose
kind declares webhooks and whose credentials hold the secret that verifies them (the credential its
webhook adapter names: Shopify's ``api_secret``). A channel without one is skipped (it is polled
and audited only); a failed registration is recorded on the connection's ``webhooks`` job by
:func:`~orderbridge.services.webhooks.register_webhooks` and is never fatal to the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from orderbridge.connectors.base import Capability, Role, WebhookSubscription
from orderbridge.errors import OrderBridgeError
from orderbridge.services.scope import Scope
from orderbridge.services.webhooks import register_webhooks


@dataclass(frozen=True)
class Registration:
    """One channel's outcome: its subscriptions, or why it has none."""

    connection: str
    subscriptions: list[WebhookSubscription] = field(default_factory=list)
    #: the credentials hold no signing secret, so webhooks could not be verified: nothing registered
    no_secret: bool = False
    #: the credential that was missing (the one the kind's webhook adapter names)
    secret_credential: str = ""
    error: OrderBridgeError | None = None


def register_all(scope: Scope) -> Iterator[Registration]:
    """Subscribe every webhook-capable channel, one at a time (yielded as each is done)."""
    with scope.db.read() as conn:
        channels = scope.connections(conn, Role.CHANNEL)
    for row in channels:
        adapter = row.declaration.webhooks
        if adapter is None or not row.can(Capability.WEBHOOKS):
            continue
        if not scope.box.open(row.credentials_token, what=row.name).get(adapter.secret_credential):
            yield Registration(row.name, no_secret=True, secret_credential=adapter.secret_credential)
            continue
        try:
            subs = register_webhooks(scope, row.id)  # records the connection's webhooks job either way
        except OrderBridgeError as exc:
            yield Registration(row.name, error=exc)
        else:
            yield Registration(row.name, subscriptions=subs)
