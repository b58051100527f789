"""Prometheus metrics for ``/metrics``, with ``prometheus-client``.

Two kinds of figures:

- **events** (webhook deliveries, post attempts, posting latency, audit findings) are counted as
  they happen, through the :class:`~orderbridge.observe.Observer` hooks the services call;
- **state** (orders by state and connection, open holds by reason, sync lag, connection health,
  last audit's missing count) is read from the database at scrape time by a custom collector, so it
  is right after a restart and agrees with what ``orderbridge holds`` prints.

Each :class:`HubMetrics` owns its registry (no process-global state), so several hubs — or tests —
in one process do not collide.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from orderbridge.observe import Observer
from orderbridge.services.hub import Hub
from orderbridge.services.ingest import pending_reread_counts
from orderbridge.storage.tables import (
    connection_jobs,
    connections,
    cursors,
    order_reasons,
    orders,
    reconciliation_runs,
)

HEALTH_STATES = ("unknown", "healthy", "degraded", "failing", "silent")
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class LedgerCollector(Collector):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        now = hub.now()
        by_state = GaugeMetricFamily("orderbridge_orders", "Orders in the ledger", labels=["connection", "state"])
        holds = GaugeMetricFamily(
            "orderbridge_open_reasons", "Orders held or skipped, by reason", labels=["kind", "code"]
        )
        lag = GaugeMetricFamily(
            "orderbridge_sync_lag_seconds",
            "Seconds since the connection's last successful sync (a channel) or post (a destination)",
            labels=["connection"],
        )
        cursor_age = GaugeMetricFamily(
            "orderbridge_cursor_age_seconds",
            "Seconds between now and the channel's order cursor",
            labels=["connection"],
        )
        health = GaugeMetricFamily(
            "orderbridge_connection_health",
            "1 for the connection's current health state",
            labels=["connection", "state"],
        )
        failures = GaugeMetricFamily(
            "orderbridge_connection_consecutive_failures", "Consecutive failed runs", labels=["connection"]
        )
        job_health = GaugeMetricFamily(
            "orderbridge_connection_job_health",
            "1 for the current health state of each job of a connection (sync, post, push, …)",
            labels=["connection", "job", "state"],
        )
        missing = GaugeMetricFamily(
            "orderbridge_reconciliation_missing",
            "Orders the last audit could not find in the ledger after recovery (should be 0)",
            labels=["connection", "kind"],
        )
        pending = GaugeMetricFamily(
            "orderbridge_pending_rereads",
            "Orders whose tie on updated_at the channel has not settled yet (re-read by every sync)",
            labels=["connection"],
        )
        with hub.db.read() as conn:
            names = {}
            for c in conn.execute(
                select(
                    connections.c.id,
                    connections.c.name,
                    connections.c.health,
                    connections.c.last_success_at,
                    connections.c.consecutive_failures,
                ).where(connections.c.tenant_id == hub.tenant_id)
            ):
                names[c.id] = c.name
                for s in HEALTH_STATES:
                    health.add_metric([c.name, s], 1.0 if c.health == s else 0.0)
                failures.add_metric([c.name], float(c.consecutive_failures))
                if c.last_success_at is not None:
                    lag.add_metric([c.name], (now - c.last_success_at).total_seconds())
            for cid, job, state in conn.execute(
                select(connection_jobs.c.connection_id, connection_jobs.c.job, connection_jobs.c.health).where(
                    connection_jobs.c.tenant_id == hub.tenant_id
                )
            ):
                if cid in names:
                    for s in HEALTH_STATES:
                        job_health.add_metric([names[cid], job, s], 1.0 if state == s else 0.0)
            for cid, value in conn.execute(
                select(cursors.c.connection_id, cursors.c.value).where(
                    cursors.c.tenant_id == hub.tenant_id, cursors.c.name == "orders"
                )
            ):
                if cid in names:
                    cursor_age.add_metric([names[cid]], (now - value).total_seconds())
            for cid, state, n in conn.execute(
                select(orders.c.connection_id, orders.c.state, func.count())
                .where(orders.c.tenant_id == hub.tenant_id)
                .group_by(orders.c.connection_id, orders.c.state)
            ):
                by_state.add_metric([names.get(cid, str(cid)), state], float(n))
            for kind, code, n in conn.execute(
                select(order_reasons.c.kind, order_reasons.c.code, func.count())
                .where(order_reasons.c.tenant_id == hub.tenant_id, order_reasons.c.released_at.is_(None))
                .group_by(order_reasons.c.kind, order_reasons.c.code)
            ):
                holds.add_metric([kind, code], float(n))
            latest = (
                select(
                    reconciliation_runs.c.connection_id,
                    reconciliation_runs.c.kind,
                    func.max(reconciliation_runs.c.id).label("id"),
                )
                .where(reconciliation_runs.c.tenant_id == hub.tenant_id, reconciliation_runs.c.outcome == "ok")
                .group_by(reconciliation_runs.c.connection_id, reconciliation_runs.c.kind)
                .subquery()
            )
            for cid, kind, n in conn.execute(
                select(
                    reconciliation_runs.c.connection_id, reconciliation_runs.c.kind, reconciliation_runs.c.missing
                ).join(latest, reconciliation_runs.c.id == latest.c.id)
            ):
                missing.add_metric([names.get(cid, str(cid)), kind], float(n))
            for cid, n in pending_reread_counts(conn, hub.tenant_id).items():
                pending.add_metric([names.get(cid, str(cid))], float(n))
        yield from (by_state, holds, lag, cursor_age, health, failures, job_health, missing, pending)


class HubMetrics(Observer):
    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter(
            "orderbridge_webhook_deliveries",
            "Webhook deliveries received, by outcome (rejected_* were refused)",
            ["connection", "outcome"],
            registry=self.registry,
        )
        self.post_attempts = Counter(
            "orderbridge_post_attempts",
            "Orders sent to destinations, by outcome (posted, rejected, or the error code of a retry)",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self.post_latency = Histogram(
            "orderbridge_post_latency_seconds",
            "From receipt in the hub to acceptance by the destination",
            ["destination"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.recovered = Counter(
            "orderbridge_reconciliation_recovered",
            "Orders a reconciliation audit found missing or stale and ingested",
            ["connection"],
            registry=self.registry,
        )
        self.registry.register(LedgerCollector(hub))

    # --- Observer ---------------------------------------------------------------------------------
    def posted(self, destination: str, latencies_s: Sequence[float]) -> None:
        self.post_attempts.labels(destination, "posted").inc(len(latencies_s))
        hist = self.post_latency.labels(destination)
        for s in latencies_s:
            hist.observe(max(s, 0.0))

    def post_failed(self, destination: str, outcome: str, count: int) -> None:
        self.post_attempts.labels(destination, outcome).inc(count)

    def webhook(self, connection: str, outcome: str) -> None:
        self.webhooks.labels(connection, outcome).inc()

    def reconciled(self, connection: str, recovered: int, missing: int) -> None:
        self.recovered.labels(connection).inc(recovered)

    def render(self) -> bytes:
        return generate_latest(self.registry)
