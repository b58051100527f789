"""The ``manual`` channel kind: orders a person places or a file brings, not a remote system.

A channel with nothing to call: no credentials, no base URL that is ever dialled, and **no
capabilities** — it cannot be polled, audited, re-read or sent fulfilments, so the hub schedules no
job for it and offers no "Sync now", "refresh from channel" or audit for its orders (the registry
refuses a capability whose methods a class lacks; this one declares none rather than fake them).
Its orders arrive through :mod:`orderbridge.services.manual_orders`, which writes them with the
same ingest every channel's orders go through.

Download rules (decision 127): a person who places an order by hand, or a file of wholesale
orders, *means* it to be fulfilled, so the default takes every payment status and every fulfilment
status — a manual order is never skipped for being unpaid (``pending``) or for its fulfilment
status. Cancelled ones still are (the generic rule), and a connection may narrow the rules like any
channel's (``download_rules`` setting), in which case an excluded order is skipped with the reason,
never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from orderbridge.connectors.base import Declaration, Role, Setting, SettingScope

#: every status is taken (see the module docstring); closed and test orders are not a manual order's
DEFAULT_DOWNLOAD_RULES: dict[str, Any] = {
    "financial_statuses": ["any"],
    "fulfillment_statuses": ["any"],
    "include_closed": False,
    "include_test": False,
}

DECLARATION = Declaration(
    kind="manual",
    role=Role.CHANNEL,
    title="Manual orders",
    capabilities=frozenset(),
    credentials=(),
    settings=(
        Setting(
            "download_rules",
            "which manual orders are taken; by default every payment and fulfilment status (a manual order "
            "is never skipped for being unpaid or unfulfilled)",
            DEFAULT_DOWNLOAD_RULES,
            SettingScope.HUB,
        ),
    ),
    docs="docs/connectors/manual.md",
)


class ManualChannel:
    """The connector object of a manual connection: it has nothing remote to reach."""

    declaration = DECLARATION

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = http

    def check(self) -> str:
        """Nothing to reach: the channel works whenever the ledger does."""
        return "orders placed by hand or imported from files (nothing remote to reach)"

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
