"""Observation hooks: what the services report as it happens, for metrics.

Services call these on ``hub.observer``; the default does nothing, so a CLI run or a test pays
nothing. ``orderbridge serve`` installs :class:`orderbridge.web.metrics.HubMetrics`, which turns
them into Prometheus counters and histograms. Figures that can be read from the database at scrape
time (orders by state, holds by reason, sync lag) are not pushed through here.
"""

from __future__ import annotations

from collections.abc import Sequence


class Observer:
    """Every hook names the tenant (its slug) and the connection (its name): names are unique only
    within a tenant, so the two together name one connection."""

    def posted(self, tenant: str, destination: str, latencies_s: Sequence[float]) -> None:
        """Orders accepted by ``destination``; each latency runs from receipt in the hub to posting."""

    def post_failed(self, tenant: str, destination: str, outcome: str, count: int) -> None:
        """Orders not posted this attempt: ``outcome`` is ``rejected`` (held) or an error code (retried)."""

    def webhook(self, tenant: str, connection: str, outcome: str) -> None:
        """A webhook delivery: accepted outcomes (``inserted`` …) or ``rejected_*``."""

    def reconciled(self, tenant: str, connection: str, recovered: int, missing: int) -> None:
        """A reconciliation audit finished with these findings."""
