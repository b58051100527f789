"""What the Connections screens show: each connection's health, jobs, last sync, download rules,
poll interval and webhooks — read from the ledger alone, never from the remote.

A page that asked the remote for its state would be as slow and as fragile as the remote; the
ledger already holds what the hub's own jobs last learnt (``connection_jobs``, ``sync_runs``,
``webhook_deliveries``, the connection's settings), and the actions on the page (test, Sync now,
re-register) ask the remote when a person means it. The credentials are shown as which are set,
never their values (:func:`orderbridge.services.connections.credential_status`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from orderbridge.connectors import registry
from orderbridge.connectors.base import Capability, Role, WebhookSubscription
from orderbridge.domain.order import FulfilmentStatus, PaymentStatus
from orderbridge.domain.rules import DownloadRules
from orderbridge.errors import InvalidInput, NotFound, OrderBridgeError
from orderbridge.services.audit_trail import ActionInfo, actions_on, record_action
from orderbridge.services.connections import CredentialState, credential_status
from orderbridge.services.health import JOBS, job_health
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ledger import download_rules
from orderbridge.services.principals import Actor
from orderbridge.services.scope import Scope
from orderbridge.services.sync_now import SyncProgress, recent_runs, sync_progress
from orderbridge.services.webhooks import register_webhooks, webhook_address
from orderbridge.storage.repos.connections import with_order_cursor
from orderbridge.storage.tables import mappings, webhook_deliveries


@dataclass(frozen=True)
class JobState:
    job: str
    #: how messages name the job ("order sync", "posting" …)
    title: str
    health: str
    message: str
    since: datetime | None
    last_success_at: datetime | None
    last_error_at: datetime | None
    consecutive_failures: int


@dataclass(frozen=True)
class ConnectionSummary:
    """One row of the connections list."""

    id: int
    name: str
    kind: str
    title: str
    role: str
    health: str
    health_message: str
    last_success_at: datetime | None
    sync_lag_s: float | None
    last_run: SyncProgress | None
    can_sync: bool


@dataclass(frozen=True)
class RulesInPlainWords:
    """A channel's download rules, as the page says them: which statuses are taken (None: any),
    which are left out, and the other rules."""

    payment_taken: tuple[str, ...] | None
    payment_left_out: tuple[str, ...]
    fulfilment_taken: tuple[str, ...] | None
    fulfilment_left_out: tuple[str, ...]
    include_closed: bool
    include_test: bool
    earliest: datetime | None
    #: the connection's own rules differ from its kind's defaults
    customised: bool
    #: issue #17: the "cancelled orders" download switch
    include_cancelled: bool = False
    #: the channel's own statuses taken (WooCommerce's ``processing``); None: any
    channel_states_taken: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WebhookStatus:
    supported: bool
    #: the address the channel is subscribed to ("" when not registered)
    address: str
    #: where this hub would receive them now
    expected_address: str
    #: the connection's webhook-registration job, if it ever ran
    job: JobState | None
    last_delivery_at: datetime | None
    last_delivery_topic: str | None
    last_delivery_outcome: str | None
    deliveries_24h: int
    #: the kind's signing credential is set (without it nothing can be registered)
    secret_set: bool
    secret_credential: str

    @property
    def registered(self) -> bool:
        return bool(self.address)

    @property
    def address_current(self) -> bool:
        return self.address == self.expected_address


@dataclass(frozen=True)
class ConnectionDetail:
    id: int
    name: str
    kind: str
    title: str
    role: str
    base_url: str
    health: str
    health_message: str
    health_since: datetime | None
    last_success_at: datetime | None
    last_order_at: datetime | None
    cursor: datetime | None
    capabilities: tuple[str, ...]
    credentials: list[CredentialState]
    jobs: list[JobState]
    runs: list[SyncProgress]
    current_run: SyncProgress | None
    rules: RulesInPlainWords | None
    rules_error: str
    #: the connection's own poll interval (None: the hub's), and the one in effect
    poll_interval_s: float | None
    effective_poll_interval_s: float
    webhooks: WebhookStatus | None
    mapping_kinds: tuple[str, ...]
    mappings: int
    actions: list[ActionInfo]
    docs: str

    @property
    def can_sync(self) -> bool:
        return self.role == Role.CHANNEL.value and Capability.LIST_CHANGED.value in self.capabilities


def _job(j: dict[str, Any]) -> JobState:
    return JobState(
        j["job"],
        JOBS.get(j["job"], j["job"]),
        j["health"],
        j["message"],
        _dt(j["since"]),
        _dt(j["last_success_at"]),
        _dt(j["last_error_at"]),
        int(j["consecutive_failures"]),
    )


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def list_connection_summaries(scope: Scope) -> list[ConnectionSummary]:
    now = scope.now()
    with scope.read() as conn:
        rows = with_order_cursor(conn, scope.tenant_id)
    out = []
    for r in rows:
        row = ConnectionRow.from_row(r)
        try:
            title, can_sync = row.declaration.title, row.role is Role.CHANNEL and row.can(Capability.LIST_CHANGED)
        except InvalidInput:  # a kind no longer registered: still listed, with its state
            title, can_sync = r.kind, False
        out.append(
            ConnectionSummary(
                r.id,
                r.name,
                r.kind,
                title,
                r.role,
                r.health,
                r.health_message,
                r.last_success_at,
                None if r.last_success_at is None else (now - r.last_success_at).total_seconds(),
                next(iter(recent_runs(scope, r.id, limit=1)), None) if can_sync else None,
                can_sync,
            )
        )
    return out


def rules_in_plain_words(row: ConnectionRow) -> RulesInPlainWords:
    rules: DownloadRules = download_rules(row)
    default = row.declaration.download_rules(None)
    payments = [s.value for s in PaymentStatus if s is not PaymentStatus.UNKNOWN]
    fulfilments = [s.value for s in FulfilmentStatus if s is not FulfilmentStatus.UNKNOWN]

    def taken(allowed: frozenset[str], every: list[str]) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
        if "any" in allowed:
            return None, ()
        return tuple(s for s in every if s in allowed), tuple(s for s in every if s not in allowed)

    pay_taken, pay_out = taken(rules.financial_statuses, payments)
    ful_taken, ful_out = taken(rules.fulfilment_statuses, fulfilments)
    return RulesInPlainWords(
        pay_taken,
        pay_out,
        ful_taken,
        ful_out,
        rules.include_closed,
        rules.include_test,
        rules.earliest,
        rules != default,
        rules.include_cancelled,
        None if "any" in rules.channel_states else tuple(sorted(rules.channel_states)),
    )


def webhook_status(scope: Scope, row: ConnectionRow) -> WebhookStatus | None:
    adapter = row.declaration.webhooks
    if row.role is not Role.CHANNEL:
        return None
    if adapter is None or not row.can(Capability.WEBHOOKS):
        return WebhookStatus(False, "", "", None, None, None, None, 0, False, "")
    now = scope.now()
    with scope.read() as conn:
        last = conn.execute(
            select(webhook_deliveries.c.received_at, webhook_deliveries.c.topic, webhook_deliveries.c.outcome)
            .where(webhook_deliveries.c.tenant_id == scope.tenant_id, webhook_deliveries.c.connection_id == row.id)
            .order_by(webhook_deliveries.c.id.desc())
            .limit(1)
        ).one_or_none()
        recent = conn.execute(
            select(func.count())
            .select_from(webhook_deliveries)
            .where(
                webhook_deliveries.c.tenant_id == scope.tenant_id,
                webhook_deliveries.c.connection_id == row.id,
                webhook_deliveries.c.received_at >= now - timedelta(hours=24),
            )
        ).scalar_one()
    jobs = {j["job"]: _job(j) for j in job_health(scope, row.id)}
    stored = scope.box.open(row.credentials_token, what=f"credentials of {row.name!r}")
    return WebhookStatus(
        True,
        str(row.settings.get("webhook_address") or ""),
        webhook_address(scope, row),
        jobs.get("webhooks"),
        None if last is None else last.received_at,
        None if last is None else last.topic,
        None if last is None else last.outcome,
        int(recent),
        bool(stored.get(adapter.secret_credential)),
        adapter.secret_credential,
    )


def connection_detail(scope: Scope, connection_id: int) -> ConnectionDetail:
    """Everything the connection's page shows (NotFound for another tenant's, as for a missing one)."""
    with scope.read() as conn:
        row = scope.connection(conn, connection_id)
        found = next(r for r in with_order_cursor(conn, scope.tenant_id) if r.id == row.id)
        n_mappings = conn.execute(
            select(func.count())
            .select_from(mappings)
            .where(mappings.c.tenant_id == scope.tenant_id, mappings.c.destination_id == row.id)
        ).scalar_one()
    decl = row.declaration
    rules: RulesInPlainWords | None = None
    rules_error = ""
    if row.role is Role.CHANNEL:
        try:
            rules = rules_in_plain_words(row)
        except OrderBridgeError as exc:
            rules_error = exc.message
    own = row.settings.get("poll_interval_s") if row.role is Role.CHANNEL else None
    own_interval = float(own) if isinstance(own, int | float) and not isinstance(own, bool) and own > 0 else None
    can_sync = row.role is Role.CHANNEL and row.can(Capability.LIST_CHANGED)
    return ConnectionDetail(
        id=row.id,
        name=row.name,
        kind=row.kind,
        title=decl.title,
        role=row.role.value,
        base_url=row.base_url,
        health=found.health,
        health_message=found.health_message,
        health_since=found.health_since,
        last_success_at=found.last_success_at,
        last_order_at=found.last_order_at,
        cursor=found.cursor,
        capabilities=tuple(sorted(c.value for c in decl.capabilities)),
        credentials=credential_status(scope, row.id),
        jobs=[_job(j) for j in job_health(scope, row.id)],
        runs=recent_runs(scope, row.id, limit=10) if can_sync else [],
        current_run=sync_progress(scope, row.id) if can_sync else None,
        rules=rules,
        rules_error=rules_error,
        poll_interval_s=own_interval,
        effective_poll_interval_s=own_interval or scope.settings.poll_interval_s,
        webhooks=webhook_status(scope, row),
        mapping_kinds=tuple(sorted(k.value for k in decl.mapping_kinds)),
        mappings=int(n_mappings),
        actions=actions_on(scope, "connection", row.id, limit=50),
        docs=decl.docs,
    )


def connection_id_named(scope: Scope, name: str) -> int:
    """The id of the tenant's connection called ``name`` (NotFound otherwise: alerts link by name)."""
    if not name or len(name) > 100 or any(ord(ch) < 32 for ch in name):  # no connection can be named so
        raise NotFound(f"no connection named {name[:40]!r}")
    return scope.connection_id(name)


def reregister_webhooks(scope: Scope, connection_id: int, *, by: Actor) -> list[WebhookSubscription]:
    """Subscribe the channel's webhooks to this hub again (idempotent; the job's health records
    the outcome), and record who asked."""
    row = scope.load(connection_id)
    try:
        subs = register_webhooks(scope, row.id)
    except OrderBridgeError as exc:
        record_action(
            by,
            "connection.webhooks",
            "connection",
            row.id,
            f"re-registered the webhooks of {row.name}: failed — {exc.message}",
            {"ok": False, "code": exc.code},
        )
        raise
    record_action(
        by,
        "connection.webhooks",
        "connection",
        row.id,
        f"re-registered the webhooks of {row.name}: {len(subs)} topic(s)",
        {"ok": True, "topics": sorted(s.topic for s in subs)},
    )
    return subs


@dataclass(frozen=True)
class KindInfo:
    """A connector kind as the "add a connection" form offers it."""

    kind: str
    title: str
    role: str
    credentials: tuple[CredentialState, ...]
    docs: str


def connection_kinds() -> list[KindInfo]:
    """Every kind a person can add, channels first, with its declared credentials (none is set yet).
    A kind with neither credentials nor capabilities (the manual channel) is not offered: the hub
    makes its one connection itself, on first use."""
    found = [
        KindInfo(
            d.kind,
            d.title,
            d.role.value,
            tuple(
                CredentialState(f.name, f.description, f.required, f.secret, f.example, False) for f in d.credentials
            ),
            d.docs,
        )
        for d in registry.declarations()
        if not d.made_by_hub
    ]
    return sorted(found, key=lambda k: (k.role != Role.CHANNEL.value, k.title))
