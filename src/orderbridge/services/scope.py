"""The scope: one tenant bound to the hub's wiring — what every service function receives.

A :class:`Scope` is the service layer's unit of work in the sense that matters here (decision 80):
the one door a use case has to the ledger and to the tenant's systems. It is bound to one tenant
when it is made and never changes; it opens the transactions (``read()``, ``transaction()``) — a
use case may commit many, a sync one per batch, so a scope is not itself a transaction — and it
finds connections *of its tenant only*: by id (what services are called with), by name (what the
CLI resolves once), by role. An id of another tenant's connection is answered like an unknown one
(:class:`~orderbridge.errors.NotFound`), so a caller cannot learn that it exists.

Every query a service runs filters by ``scope.tenant_id``, or by an id it found through the scope
(a connection, an order of the tenant). Nothing has a default tenant: the CLI picks one by slug
(``--tenant``), the runtime makes one scope per tenant (:meth:`Scope.every`), a webhook's URL
names a connection and its row names the tenant (:meth:`Scope.of_connection`), and a queued job
rebuilds its scope from ``(tenant_id, connection_id)`` (:meth:`Scope.of`).

The scope reads the hub's wiring through (``now``, ``settings``, ``observer``…), so a test that
sets ``hub.now`` moves every scope's clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from orderbridge.connectors.base import ChannelConnector, DestinationConnector, Role
from orderbridge.crypto import SecretBox
from orderbridge.errors import NotFound
from orderbridge.fixes import Fix, FixAction
from orderbridge.observe import Observer
from orderbridge.services.hub import ConnectionRow, Hub
from orderbridge.services.present import Presentation
from orderbridge.settings import Settings
from orderbridge.storage.db import Database
from orderbridge.storage.repos import connections as connection_repo
from orderbridge.storage.repos import tenants as tenant_repo


@dataclass(frozen=True, slots=True)
class Scope:
    hub: Hub
    tenant_id: int
    #: the tenant's slug, for messages and logs
    slug: str

    # --- making one ------------------------------------------------------------------------------
    @classmethod
    def of(cls, hub: Hub, tenant_id: int) -> Scope:
        """The scope of tenant ``tenant_id`` (a queued job rebuilds its scope from it)."""
        with hub.db.read() as conn:
            row = tenant_repo.by_id(conn, tenant_id)
        if row is None:
            raise NotFound(f"no tenant {tenant_id}")
        return cls(hub, int(row.id), str(row.slug))

    @classmethod
    def named(cls, hub: Hub, slug: str) -> Scope:
        """The scope of the tenant called ``slug`` (the CLI's ``--tenant``)."""
        with hub.db.read() as conn:
            row = tenant_repo.by_slug(conn, slug)
            known = [str(t.slug) for t in tenant_repo.every(conn)] if row is None else []
        if row is None:
            if not known:
                raise NotFound(
                    f"no tenant {slug!r}: the ledger has none",
                    hint="Initialise OrderBridge first: it creates the ledger and the default tenant.",
                    fix=Fix.of(FixAction.INIT, "Initialise OrderBridge: it creates the ledger and the default tenant."),
                )
            raise NotFound(f"no tenant {slug!r}", hint=f"Known tenants: {', '.join(known)}.")
        return cls(hub, int(row.id), str(row.slug))

    @classmethod
    def every(cls, hub: Hub) -> list[Scope]:
        """One scope per tenant, in creation order (what the runtime serves)."""
        with hub.db.read() as conn:
            return [cls(hub, int(t.id), str(t.slug)) for t in tenant_repo.every(conn)]

    @classmethod
    def of_connection(cls, hub: Hub, connection_id: int) -> tuple[Scope, ConnectionRow] | None:
        """The scope a connection belongs to, with its row; None when there is no such connection.
        For entry points that know only a connection id: a webhook's URL."""
        with hub.db.read() as conn:
            row = connection_repo.with_tenant_slug(conn, connection_id)
        if row is None:
            return None
        return cls(hub, int(row.tenant_id), str(row.tenant_slug)), ConnectionRow.from_row(row)

    # --- the hub's wiring, read through ----------------------------------------------------------
    @property
    def db(self) -> Database:
        return self.hub.db

    @property
    def settings(self) -> Settings:
        return self.hub.settings

    @property
    def box(self) -> SecretBox:
        return self.hub.box

    @property
    def observer(self) -> Observer:
        return self.hub.observer

    @property
    def present(self) -> Presentation:
        return self.hub.present

    def now(self) -> datetime:
        return self.hub.now()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.hub.db.read() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.hub.db.transaction() as conn:
            yield conn

    # --- the tenant's connections ----------------------------------------------------------------
    def connection(self, conn: Connection, connection_id: int) -> ConnectionRow:
        """The tenant's connection ``connection_id``; :class:`NotFound` for an unknown id and for
        another tenant's alike."""
        row = connection_repo.by_id(conn, self.tenant_id, connection_id)
        if row is None:
            raise NotFound(
                f"no connection {connection_id} in tenant {self.slug!r}",
                hint=f"Known connections: {self._known(conn)}.",
            )
        return ConnectionRow.from_row(row)

    def load(self, connection_id: int) -> ConnectionRow:
        """:meth:`connection` in a read of its own."""
        with self.read() as conn:
            return self.connection(conn, connection_id)

    def connection_named(self, conn: Connection, name: str) -> ConnectionRow:
        """The tenant's connection called ``name`` (names are unique per tenant)."""
        row = connection_repo.by_name(conn, self.tenant_id, name)
        if row is None:
            raise NotFound(
                f"no connection named {name!r}",
                hint=f"Known connections: {self._known(conn)}.",
                fix=Fix.of(FixAction.ADD_CONNECTION, "Add the connection."),
            )
        return ConnectionRow.from_row(row)

    def connection_id(self, name: str) -> int:
        """Resolve a connection's name to its id, once, at the edge (the CLI)."""
        with self.read() as conn:
            return self.connection_named(conn, name).id

    def connections(self, conn: Connection, role: Role | None = None) -> list[ConnectionRow]:
        """The tenant's connections (of one role, when given), in creation order."""
        rows = connection_repo.of_tenant(conn, self.tenant_id, None if role is None else role.value)
        return [ConnectionRow.from_row(r) for r in rows]

    def _known(self, conn: Connection) -> str:
        names = [f"{r.name} (#{r.id})" for r in connection_repo.of_tenant(conn, self.tenant_id)]
        return ", ".join(names) or "none"

    # --- connectors ------------------------------------------------------------------------------
    def channel(self, row: ConnectionRow) -> ChannelConnector:
        return self.hub.channel(self._own(row))

    def destination(self, row: ConnectionRow) -> DestinationConnector:
        return self.hub.destination(self._own(row))

    def _own(self, row: ConnectionRow) -> ConnectionRow:
        if row.tenant_id != self.tenant_id:  # a row found through another scope: never built here
            raise NotFound(f"no connection {row.id} in tenant {self.slug!r}")
        return row

    def log_fields(self, row: ConnectionRow | None = None) -> dict[str, Any]:
        """The fields every log line of a job carries."""
        fields: dict[str, Any] = {"tenant_id": self.tenant_id, "tenant": self.slug}
        if row is not None:
            fields.update(connection_id=row.id, connection=row.name)
        return fields
