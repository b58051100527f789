"""Connections: add, update, list, test, and their health.

Health states and their alerts live in :mod:`orderbridge.services.health`, whose
``record_success`` and ``record_failure`` every job calls (a connection test is one such job). A
failing connection is never switched off: its state and message are shown by ``connections
list`` and ``/healthz``, an alert is sent, and the next run tries again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from orderbridge.connectors import registry
from orderbridge.connectors.base import Role
from orderbridge.domain.rules import DownloadRules
from orderbridge.errors import InvalidInput, OrderBridgeError
from orderbridge.services.health import record_failure, record_success
from orderbridge.services.hub import ConnectionRow, Hub
from orderbridge.storage.repos.connections import with_order_cursor
from orderbridge.storage.tables import connections


@dataclass(frozen=True)
class ConnectionInfo:
    name: str
    kind: str
    role: str
    base_url: str
    health: str
    health_message: str
    last_success_at: datetime | None
    consecutive_failures: int
    cursor: datetime | None


def add_connection(
    hub: Hub,
    name: str,
    kind: str,
    base_url: str,
    credentials: dict[str, str],
    settings: dict[str, Any] | None = None,
) -> ConnectionRow:
    decl = registry.declaration(kind)
    missing = [f.name for f in decl.credentials if f.required and not credentials.get(f.name)]
    if missing:
        raise InvalidInput(
            f"connection {name!r} ({kind}) is missing credential(s): {', '.join(missing)}",
            hint="Pass each as --credential NAME=VALUE: "
            + "; ".join(f"{f.name}: {f.description}" for f in decl.credentials),
        )
    merged = {**decl.default_settings, **(settings or {})}
    if decl.role is Role.CHANNEL:
        try:
            DownloadRules.from_settings(merged.get("download_rules"))
        except ValueError as exc:
            raise InvalidInput(f"invalid download rules for {name!r}: {exc}") from exc
    now = hub.now()
    with hub.db.transaction() as conn:
        exists = conn.execute(
            select(connections.c.id).where(connections.c.tenant_id == hub.tenant_id, connections.c.name == name)
        ).first()
        if exists:
            raise InvalidInput(f"a connection named {name!r} already exists", hint="Pick another name or update it.")
        conn.execute(
            insert(connections).values(
                tenant_id=hub.tenant_id,
                name=name,
                kind=kind,
                role=decl.role.value,
                base_url=base_url.rstrip("/"),
                credentials=hub.box.seal(credentials),
                settings=merged,
                enabled=True,
                health="unknown",
                health_message="not synced yet",
                consecutive_failures=0,
                created_at=now,
            )
        )
        return hub.connection(conn, name)


def update_connection(
    hub: Hub,
    name: str,
    *,
    credentials: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    base_url: str | None = None,
) -> ConnectionRow:
    with hub.db.transaction() as conn:
        row = hub.connection(conn, name)
        values: dict[str, Any] = {}
        if credentials:
            current = hub.box.open(row.credentials_token, what=f"credentials of {name!r}")
            values["credentials"] = hub.box.seal({**current, **credentials})
        if settings:
            values["settings"] = {**row.settings, **settings}
        if base_url:
            values["base_url"] = base_url.rstrip("/")
        if values:
            conn.execute(update(connections).where(connections.c.id == row.id).values(**values))
        return hub.connection(conn, name)


def list_connections(hub: Hub) -> list[ConnectionInfo]:
    with hub.db.read() as conn:
        rows = with_order_cursor(conn, hub.tenant_id)
    return [
        ConnectionInfo(
            r.name,
            r.kind,
            r.role,
            r.base_url,
            r.health,
            r.health_message,
            r.last_success_at,
            r.consecutive_failures,
            r.cursor,
        )
        for r in rows
    ]


def test_connection(hub: Hub, name: str) -> str:
    with hub.db.read() as conn:
        row = hub.connection(conn, name)
    connector = hub.channel(row) if row.role is Role.CHANNEL else hub.destination(row)
    try:
        description = connector.check()
    except OrderBridgeError as exc:
        record_failure(hub, row, exc, job="check")
        raise
    record_success(hub, row, job="check")
    return description

