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
from orderbridge.connectors.base import Declaration, Role
from orderbridge.errors import InvalidInput, OrderBridgeError
from orderbridge.services.health import record_failure, record_success
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.scope import Scope
from orderbridge.storage.repos.connections import with_order_cursor
from orderbridge.storage.tables import connections


@dataclass(frozen=True)
class ConnectionInfo:
    id: int
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
    scope: Scope,
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
            + "; ".join(
                f"--credential {f.name}={f.placeholder} ({'' if f.required else 'optional: '}{f.description})"
                for f in decl.credentials
            ),
        )
    _check_settings(name, decl, settings or {})
    merged = {**decl.default_settings, **(settings or {})}
    now = scope.now()
    with scope.db.transaction() as conn:
        exists = conn.execute(
            select(connections.c.id).where(connections.c.tenant_id == scope.tenant_id, connections.c.name == name)
        ).first()
        if exists:
            raise InvalidInput(f"a connection named {name!r} already exists", hint="Pick another name or update it.")
        inserted = conn.execute(
            insert(connections).values(
                tenant_id=scope.tenant_id,
                name=name,
                kind=kind,
                role=decl.role.value,
                base_url=base_url.rstrip("/"),
                credentials=scope.box.seal(credentials),
                settings=merged,
                enabled=True,
                health="unknown",
                health_message="not synced yet",
                consecutive_failures=0,
                created_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None
        return scope.connection(conn, int(inserted[0]))


def update_connection(
    scope: Scope,
    connection_id: int,
    *,
    credentials: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    base_url: str | None = None,
) -> ConnectionRow:
    with scope.db.transaction() as conn:
        row = scope.connection(conn, connection_id)
        if settings:
            _check_settings(row.name, row.declaration, settings)
        values: dict[str, Any] = {}
        if credentials:
            current = scope.box.open(row.credentials_token, what=f"credentials of {row.name!r}")
            values["credentials"] = scope.box.seal({**current, **credentials})
        if settings:
            values["settings"] = {**row.settings, **settings}
        if base_url:
            values["base_url"] = base_url.rstrip("/")
        if values:
            conn.execute(update(connections).where(connections.c.id == row.id).values(**values))
        return scope.connection(conn, row.id)


def _check_settings(name: str, decl: Declaration, settings: dict[str, Any]) -> None:
    """Refuse a setting the kind does not declare (by name, listing those it does) and download
    rules that cannot be read — before anything is stored."""
    unknown = decl.unknown_settings(settings)
    if unknown:
        raise InvalidInput(
            f"{decl.title} connections have no setting(s) {', '.join(unknown)}",
            hint="Settings of this kind: " + ", ".join(s.name for s in decl.all_settings()) + ".",
        )
    if decl.role is Role.CHANNEL and "download_rules" in settings:
        try:
            decl.download_rules(settings["download_rules"])
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"invalid download rules for {name!r}: {exc}") from exc


def list_connections(scope: Scope) -> list[ConnectionInfo]:
    with scope.db.read() as conn:
        rows = with_order_cursor(conn, scope.tenant_id)
    return [
        ConnectionInfo(
            r.id,
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


def test_connection(scope: Scope, connection_id: int) -> str:
    row = scope.load(connection_id)
    connector = scope.channel(row) if row.role is Role.CHANNEL else scope.destination(row)
    try:
        description = connector.check()
    except OrderBridgeError as exc:
        record_failure(scope, row, exc, job="check")
        raise
    record_success(scope, row, job="check")
    return description
