"""The hub: the process's wiring — database, secrets, settings, clock, HTTP, connectors, observer.

It belongs to no tenant: service functions receive a :class:`orderbridge.services.scope.Scope`,
which binds one tenant to this wiring (decision 80). Built in one bootstrap place
(:func:`Hub.from_settings`), never at import time. ``now`` is a function so tests can drive time;
the domain receives ``now`` as a value from here. ``http_factory`` lets tests route a connection to
an in-process sandbox; by default each connector gets a real ``httpx.Client`` with the configured
timeout. Connectors are cached per connection id, whichever tenant's scope asks; a scope asks only
for its own connections' connectors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from orderbridge.connectors import registry
from orderbridge.connectors.base import (
    Capability,
    ChannelConnector,
    Declaration,
    DestinationConnector,
    Role,
    RotatingCredentials,
)
from orderbridge.crypto import SecretBox
from orderbridge.observe import Observer
from orderbridge.services.nudges import NoNudges, Nudges
from orderbridge.services.present import Presentation, Unpresented
from orderbridge.settings import Settings
from orderbridge.storage.db import Database
from orderbridge.storage.repos import connections as connection_repo

log = structlog.get_logger("orderbridge")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConnectionRow:
    id: int
    tenant_id: int
    name: str
    kind: str
    role: Role
    base_url: str
    credentials_token: str
    settings: dict[str, Any]
    health: str
    health_message: str

    @classmethod
    def from_row(cls, row: Any) -> ConnectionRow:
        return cls(
            row.id,
            row.tenant_id,
            row.name,
            row.kind,
            Role(row.role),
            row.base_url,
            row.credentials,
            dict(row.settings or {}),
            row.health,
            row.health_message,
        )

    @property
    def declaration(self) -> Declaration:
        """What the connection's kind declares (settings, capabilities, webhooks, document keys)."""
        return registry.declaration(self.kind)

    def can(self, capability: Capability) -> bool:
        return capability in self.declaration.capabilities

    def hub_setting(self, name: str) -> Any:
        """A setting the hub reads (download rules, mapping policy …): stored, else the kind's default."""
        return self.declaration.hub_setting(self.settings, name)


@dataclass
class Hub:
    db: Database
    box: SecretBox
    settings: Settings
    now: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    http_factory: Callable[[ConnectionRow], httpx.Client | None] | None = None
    #: connection id → ready connector object (tests and embedding code inject fakes here)
    connectors: dict[int, Any] = field(default_factory=dict)
    #: metrics hooks (a no-op unless ``serve`` installs Prometheus metrics)
    observer: Observer = field(default_factory=Observer)
    #: the jobs a state change needs, written in its transaction (services/nudges.py): none for the
    #: embedded runtime; procrastinate job rows when ``job_engine=procrastinate`` (runtime/engine.py)
    nudges: Nudges = field(default_factory=NoNudges)
    #: how fixes read and where the web server lives — the entrypoints' knowledge, given by the
    #: composition root (the CLI installs ``cli.present.PRESENTATION``); services build no command
    #: and no URL themselves
    present: Presentation = field(default_factory=Unpresented)
    _clients: dict[int, Any] = field(default_factory=dict)
    #: connectors replaced after their connection changed: another thread may still be using one,
    #: so they are closed with the hub, not when replaced
    _retired: list[Any] = field(default_factory=list)
    _clients_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True, present: Presentation | None = None) -> Hub:
        db = Database(settings.resolved_database_url)
        if migrate:
            db.migrate()
        hub = cls(db=db, box=SecretBox(settings.resolved_secret_key()), settings=settings)
        if present is not None:
            hub.present = present
        return hub

    def _build(self, row: ConnectionRow) -> Any:
        """The connection's connector, built once per (URL, credentials, settings) and shared by the
        threads of ``serve`` (scheduler, poster, housekeeper, webhook handlers)."""
        if row.id in self.connectors:
            return self.connectors[row.id]
        with self._clients_lock:
            cached = self._clients.get(row.id)
            if cached is not None and cached[0] == (row.base_url, row.credentials_token, repr(row.settings)):
                return cached[1]
            if cached is not None:
                self._retired.append(cached[1])
            return self._new_connector(row)

    def _new_connector(self, row: ConnectionRow) -> Any:
        http = self.http_factory(row) if self.http_factory else None
        if http is None:
            http = httpx.Client(timeout=self.settings.http_timeout_s)
        credentials: Mapping[str, str] = self.box.open(row.credentials_token, what=f"credentials of {row.name!r}")
        # the registry passes on only the settings the kind declared for its connector
        connector = registry.build(row.kind, row.base_url, credentials, row.settings, http=http, sleep=self.sleep)
        self._clients[row.id] = ((row.base_url, row.credentials_token, repr(row.settings)), connector)
        if isinstance(connector, RotatingCredentials):
            connector.on_credentials_rotated(lambda rotated: self._rotated(row, connector, rotated))
        return connector

    def _rotated(self, row: ConnectionRow, connector: Any, rotated: Mapping[str, str]) -> None:
        """Store credentials the remote just replaced (decision 172) and keep this connector as the
        connection's: the row's new token is what the next ``_build`` compares with."""
        token = self.store_rotated_credentials(row.id, rotated)
        with self._clients_lock:
            cached = self._clients.get(row.id)
            if cached is not None and cached[1] is connector:
                self._clients[row.id] = ((row.base_url, token, repr(row.settings)), connector)

    def store_rotated_credentials(self, connection_id: int, rotated: Mapping[str, str]) -> str:
        """Store credentials a connector's remote just replaced (QuickBooks' rotated refresh token,
        ``connectors.base.RotatingCredentials``) over the connection's others, encrypted, in a
        transaction of its own and at once — the old one may already be dead. Returns the new
        sealed token (what the connector cache is keyed by)."""

        def seal(current: str) -> str:
            opened = self.box.open(current, what=f"credentials of connection {connection_id}")
            return self.box.seal({**opened, **rotated})

        with self.db.transaction() as conn:
            token = connection_repo.rotate_credentials(conn, connection_id, seal)
        log.info("connection.credentials_rotated", connection_id=connection_id, credentials=sorted(rotated))
        return token

    def channel(self, row: ConnectionRow) -> ChannelConnector:
        connector: ChannelConnector = self._build(row)
        return connector

    def destination(self, row: ConnectionRow) -> DestinationConnector:
        connector: DestinationConnector = self._build(row)
        return connector

    def close(self) -> None:
        with self._clients_lock:
            for connector in [*(c for _, c in self._clients.values()), *self._retired]:
                connector.close()
            self._clients.clear()
            self._retired.clear()
        self.db.dispose()
