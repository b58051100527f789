"""Prometheus metrics for ``/metrics``, with ``prometheus-client``.

Two kinds of figures:

- **events** (webhook deliveries, post attempts, posting latency, audit findings) are counted as
  they happen, through the :class:`~orderbridge.observe.Observer` hooks the services call;
- **state** (orders by state and connection, open holds by reason, sync lag, connection health,
  last audit's missing count) is read from the database at scrape time by a custom collector, so it
  is right after a restart and agrees with what ``orderbridge holds`` prints.

Metrics are the process's, over every tenant: each series carries a ``tenant`` label (the slug)
beside the connection's name, which is unique only within its tenant (decision 84).

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
    tenants,
)

HEALTH_STATES = ("unknown", "healthy", "degraded", "failing", "silent")
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class LedgerCollector(Collector):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        now = hub.now()
        by_state = GaugeMetricFamily(
            "orderbridge_orders", "Orders in the ledger", labels=["tenant", "connection", "state"]
        )
        holds = GaugeMetricFamily(
            "orderbridge_open_reasons", "Orders held or skipped, by reason", labels=["tenant", "kind", "code"]
        )
        lag = GaugeMetricFamily(
            "orderbridge_sync_lag_seconds",
            "Seconds since the connection's last successful sync (a channel) or post (a destination)",
            labels=["tenant", "connection"],
        )
        cursor_age = GaugeMetricFamily(
            "orderbridge_cursor_age_seconds",
            "Seconds between now and the channel's order cursor",
            labels=["tenant", "connection"],
        )
        health = GaugeMetricFamily(
            "orderbridge_connection_health",
            "1 for the connection's current health state",
            labels=["tenant", "connection", "state"],
        )
        failures = GaugeMetricFamily(
            "orderbridge_connection_consecutive_failures", "Consecutive failed runs", labels=["tenant", "connection"]
        )
        job_health = GaugeMetricFamily(
            "orderbridge_connection_job_health",
            "1 for the current health state of each job of a connection (sync, post, push, …)",
            labels=["tenant", "connection", "job", "state"],
        )
        missing = GaugeMetricFamily(
            "orderbridge_reconciliation_missing",
            "Orders the last audit could not find in the ledger after recovery (should be 0)",
            labels=["tenant", "connection", "kind"],
        )
        pending = GaugeMetricFamily(
            "orderbridge_pending_rereads",
            "Orders whose tie on updated_at the channel has not settled yet (re-read by every sync)",
            labels=["tenant", "connection"],
        )
        with hub.db.read() as conn:
            slugs = {int(t.id): str(t.slug) for t in conn.execute(select(tenants.c.id, tenants.c.slug))}
            names: dict[int, list[str]] = {}  # connection id → [tenant slug, connection name]
            for c in conn.execute(
                select(
                    connections.c.id,
                    connections.c.tenant_id,
                    connections.c.name,
                    connections.c.health,
                    connections.c.last_success_at,
                    connections.c.consecutive_failures,
                )
            ):
                who = names[c.id] = [slugs.get(c.tenant_id, str(c.tenant_id)), c.name]
                for s in HEALTH_STATES:
                    health.add_metric([*who, s], 1.0 if c.health == s else 0.0)
                failures.add_metric(who, float(c.consecutive_failures))
                if c.last_success_at is not None:
                    lag.add_metric(who, (now - c.last_success_at).total_seconds())
            for cid, job, state in conn.execute(
                select(connection_jobs.c.connection_id, connection_jobs.c.job, connection_jobs.c.health)
            ):
                if cid in names:
                    for s in HEALTH_STATES:
                        job_health.add_metric([*names[cid], job, s], 1.0 if state == s else 0.0)
            for cid, value in conn.execute(
                select(cursors.c.connection_id, cursors.c.value).where(cursors.c.name == "orders")
            ):
                if cid in names:
                    cursor_age.add_metric(names[cid], (now - value).total_seconds())
            for cid, state, n in conn.execute(
                select(orders.c.connection_id, orders.c.state, func.count()).group_by(
                    orders.c.connection_id, orders.c.state
                )
            ):
                if cid in names:
                    by_state.add_metric([*names[cid], state], float(n))
            for tid, kind, code, n in conn.execute(
                select(order_reasons.c.tenant_id, order_reasons.c.kind, order_reasons.c.code, func.count())
                .where(order_reasons.c.released_at.is_(None))
                .group_by(order_reasons.c.tenant_id, order_reasons.c.kind, order_reasons.c.code)
            ):
                holds.add_metric([slugs.get(tid, str(tid)), kind, code], float(n))
            latest = (
                select(
                    reconciliation_runs.c.connection_id,
                    reconciliation_runs.c.kind,
                    func.max(reconciliation_runs.c.id).label("id"),
                )
                .where(reconciliation_runs.c.outcome == "ok")
                .group_by(reconciliation_runs.c.connection_id, reconciliation_runs.c.kind)
                .subquery()
            )
            for cid, kind, n in conn.execute(
                select(
                    reconciliation_runs.c.connection_id, reconciliation_runs.c.kind, reconciliation_runs.c.missing
                ).join(latest, reconciliation_runs.c.id == latest.c.id)
            ):
                if cid in names:
                    missing.add_metric([*names[cid], kind], float(n))
            for tid in slugs:
                for cid, n in pending_reread_counts(conn, tid).items():
                    if cid in names:
                        pending.add_metric(names[cid], float(n))
        yield from (by_state, holds, lag, cursor_age, health, failures, job_health, missing, pending)


class HubMetrics(Observer):
    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter(
            "orderbridge_webhook_deliveries",
            "Webhook deliveries received, by outcome (rejected_* were refused)",
            ["tenant", "connection", "outcome"],
            registry=self.registry,
        )
        self.post_attempts = Counter(
            "orderbridge_post_attempts",
            "Orders sent to destinations, by outcome (posted, rejected, or the error code of a retry)",
            ["tenant", "destination", "outcome"],
            registry=self.registry,
        )
        self.post_latency = Histogram(
            "orderbridge_post_latency_seconds",
            "From receipt in the hub to acceptance by the destination",
            ["tenant", "destination"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.recovered = Counter(
            "orderbridge_reconciliation_recovered",
            "Orders a reconciliation audit found missing or stale and ingested",
            ["tenant", "connection"],
            registry=self.registry,
        )
        self.registry.register(LedgerCollector(hub))

    # --- Observer ---------------------------------------------------------------------------------
    def posted(self, tenant: str, destination: str, latencies_s: Sequence[float]) -> None:
        self.post_attempts.labels(tenant, destination, "posted").inc(len(latencies_s))
        hist = self.post_latency.labels(tenant, destination)
        for s in latencies_s:
            hist.observe(max(s, 0.0))

    def post_failed(self, tenant: str, destination: str, outcome: str, count: int) -> None:
        self.post_attempts.labels(tenant, destination, outcome).inc(count)

    def webhook(self, tenant: str, connection: str, outcome: str) -> None:
        self.webhooks.labels(tenant, connection, outcome).inc()

    def reconciled(self, tenant: str, connection: str, recovered: int, missing: int) -> None:
        self.recovered.labels(tenant, connection).inc(recovered)

    def render(self) -> bytes:
        return generate_latest(self.registry)
