"""Connections: add (after a test against the remote), update, list, test, and their health.

Adding a connection from the portal or the API is :func:`create_connection`: the credentials are
tried against the remote first (:func:`try_connection`, the connector's own ``check``) and nothing
is stored unless the remote accepted them; a refusal is answered with the remote's reason and the
fix (:class:`ConnectionTestFailed`). New credentials are tried the same way before they replace the
old ones (:func:`set_credentials`), and are never read back: the pages show which credentials are
set (:func:`credential_status`), not their values (decision 116). :func:`add_connection` stays the
CLI's and the demo's door, which adds without asking the remote.

Health states and their alerts live in :mod:`orderbridge.services.health`, whose
``record_success`` and ``record_failure`` every job calls (a connection test is one such job). A
failing connection is never switched off: its state and message are shown by ``connections
list`` and ``/healthz``, an alert is sent, and the next run tries again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import insert, select, update

from orderbridge.connectors import registry
from orderbridge.connectors.base import Declaration, PreflightCheck, Role, RotatingCredentials
from orderbridge.errors import InvalidInput, OrderBridgeError
from orderbridge.fixes import Fix
from orderbridge.services import preflight
from orderbridge.services.audit_trail import record_action
from orderbridge.services.health import record_failure, record_success
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.principals import Actor
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
    if decl.made_by_hub:
        raise InvalidInput(
            f"a {kind} connection is not added by hand: the hub makes the tenant's one {decl.title!r} channel itself",
            hint="Place its orders by hand or import them from a CSV file instead: the manual channel is "
            "made with the first one (docs/manual-orders.md).",
        )
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
    if decl.role is Role.CHANNEL and "poll_interval_s" in settings:
        _check_poll_interval(settings["poll_interval_s"])


#: the bounds of a channel's own poll interval (seconds)
POLL_INTERVAL_MIN_S, POLL_INTERVAL_MAX_S = 10, 86_400


def _check_poll_interval(value: Any) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (POLL_INTERVAL_MIN_S <= value <= POLL_INTERVAL_MAX_S)
    ):
        raise InvalidInput(
            f"poll interval {value!r} is not a number of seconds between {POLL_INTERVAL_MIN_S} and "
            f"{POLL_INTERVAL_MAX_S:,}",
            hint="Leave it empty to use the hub's interval (ORDERBRIDGE_POLL_INTERVAL_S).",
            code="poll_interval_invalid",
        )


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
    """One authenticated call to the remote: what it said (raises the remote's refusal)."""
    row = scope.load(connection_id)
    connector = scope.channel(row) if row.role is Role.CHANNEL else scope.destination(row)
    try:
        description = connector.check()
    except OrderBridgeError as exc:
        record_failure(scope, row, exc, job="check")
        raise
    record_success(scope, row, job="check")
    return description


def test_with_checks(scope: Scope, connection_id: int) -> tuple[str, list[PreflightCheck]]:
    """Test the connection, then — for a POS destination (``PREFLIGHT``) — run its connection-level
    pre-flight checks (the acting employee, the helper items, the location), read now: the
    credentials may work while the POS would still refuse every order."""
    description = test_connection(scope, connection_id)
    return description, preflight.check_connection(scope, connection_id)


# --- the portal's and the API's doors: test before saving, credentials never read back ----------


@dataclass(frozen=True)
class ConnectionCheck:
    """What the remote said when the hub tried a connection: ``ok`` and what it found, or the
    remote's reason (``message``, with the error's ``code``), what to do (``hint``) and the fix."""

    ok: bool
    description: str = ""
    code: str = ""
    message: str = ""
    hint: str = ""
    fix: Fix | None = None
    #: credentials the remote replaced during the test (a rotated refresh token): what is stored
    #: must be these, not the ones given, which the remote no longer takes
    rotated: Mapping[str, str] = field(default_factory=dict)
    #: a POS destination's connection-level pre-flight checks, read with the test (issue #17)
    preflight: tuple[PreflightCheck, ...] = ()

    @property
    def failed_checks(self) -> list[PreflightCheck]:
        return [c for c in self.preflight if not c.ok]

    @classmethod
    def failed(cls, exc: OrderBridgeError) -> ConnectionCheck:
        return cls(False, "", exc.code, exc.message, exc.hint, exc.fix)


class ConnectionTestFailed(InvalidInput):
    """The remote refused the connection being added or the credentials being changed: nothing was
    saved. Carries the remote's answer (:attr:`check`)."""

    code = "connection_test_failed"

    def __init__(self, check: ConnectionCheck) -> None:
        super().__init__(
            f"the connection test failed, so nothing was saved: {check.message}",
            hint=check.hint or "Correct the address or the credentials and test again.",
            fix=check.fix,
        )
        self.check = check


@dataclass(frozen=True)
class CredentialState:
    """One declared credential of a connection: whether it is set — never its value."""

    name: str
    description: str
    required: bool
    secret: bool
    example: str
    is_set: bool


_NAME = re.compile(r"^[^\x00-\x1f\x7f/]{1,100}$")


def _check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidInput(
            f"connection name {name[:40]!r} is not usable",
            hint="Use 1 to 100 characters, without '/' or control characters.",
            code="connection_name_invalid",
        )
    return name


def _check_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise InvalidInput(
            f"address {url[:80]!r} is not an http(s) URL",
            hint="Give the system's API address: http or https, then its host name (and port, if any).",
            code="base_url_invalid",
        )
    return url


def _known_credentials(decl: Declaration, credentials: dict[str, str]) -> dict[str, str]:
    declared = {f.name for f in decl.credentials}
    unknown = sorted(set(credentials) - declared)
    if unknown:
        raise InvalidInput(
            f"{decl.title} connections have no credential(s) {', '.join(unknown)}",
            hint="Credentials of this kind: " + ", ".join(sorted(declared)) + ".",
        )
    return {k: v for k, v in credentials.items() if v}


def try_connection(
    scope: Scope, kind: str, base_url: str, credentials: dict[str, str], settings: dict[str, Any] | None = None
) -> ConnectionCheck:
    """Ask the remote whether these credentials work, storing nothing: the connector's ``check``
    (one cheap authenticated call that needs the permissions the hub uses), on a connector built for
    this call only and closed after it. Input the hub can refuse itself raises ``InvalidInput``;
    whatever the remote answers is the returned :class:`ConnectionCheck`."""
    decl = registry.declaration(kind)
    url = _check_base_url(base_url)
    given = _known_credentials(decl, credentials)
    missing = [f.name for f in decl.credentials if f.required and not given.get(f.name)]
    if missing:
        raise InvalidInput(
            f"missing credential(s): {', '.join(missing)}",
            hint="; ".join(f"{f.name}: {f.description}" for f in decl.credentials if f.name in missing),
            code="credentials_missing",
        )
    _check_settings(kind, decl, settings or {})
    merged = {**decl.default_settings, **(settings or {})}
    return _check_remote(scope, kind, url, given, merged)


def _check_remote(
    scope: Scope, kind: str, base_url: str, credentials: dict[str, str], settings: dict[str, Any]
) -> ConnectionCheck:
    probe = ConnectionRow(
        0, scope.tenant_id, "(being tested)", kind, registry.role_of(kind), base_url, "", settings, "unknown", ""
    )
    http = scope.hub.http_factory(probe) if scope.hub.http_factory else None
    if http is None:
        http = httpx.Client(timeout=scope.settings.http_timeout_s)
    connector = registry.build(kind, base_url, credentials, settings, http=http, sleep=scope.hub.sleep)
    rotated: dict[str, str] = {}
    if isinstance(connector, RotatingCredentials):
        connector.on_credentials_rotated(rotated.update)
    try:
        return ConnectionCheck(True, connector.check(), rotated=rotated)
    except OrderBridgeError as exc:
        return ConnectionCheck.failed(exc)
    finally:
        connector.close()


def create_connection(
    scope: Scope,
    name: str,
    kind: str,
    base_url: str,
    credentials: dict[str, str],
    settings: dict[str, Any] | None = None,
    *,
    by: Actor,
) -> tuple[ConnectionRow, ConnectionCheck]:
    """Test, then add: nothing is stored unless the remote accepted the credentials
    (:class:`ConnectionTestFailed` with its answer otherwise)."""
    name = _check_name(name)
    with scope.read() as conn:
        if any(r.name == name for r in scope.connections(conn)):
            raise InvalidInput(
                f"a connection named {name!r} already exists", hint="Pick another name.", code="connection_name_taken"
            )
    check = try_connection(scope, kind, base_url, credentials, settings)
    if not check.ok:
        raise ConnectionTestFailed(check)
    row = add_connection(
        scope,
        name,
        kind,
        _check_base_url(base_url),
        {**_known_credentials(registry.declaration(kind), credentials), **check.rotated},
        settings,
    )
    record_action(
        by,
        "connection.add",
        "connection",
        row.id,
        f"added {row.name} ({row.declaration.title}) at {row.base_url}; the test said: {check.description}",
        {
            "kind": kind,
            "base_url": row.base_url,
            "credentials_set": sorted(_known_credentials(row.declaration, credentials)),
        },
    )
    record_success(scope, row, job="check")
    return row, check


def credential_status(scope: Scope, connection_id: int) -> list[CredentialState]:
    """Which of the kind's credentials the connection has (never what they are)."""
    row = scope.load(connection_id)
    stored = scope.box.open(row.credentials_token, what=f"credentials of {row.name!r}")
    return [
        CredentialState(f.name, f.description, f.required, f.secret, f.example, bool(stored.get(f.name)))
        for f in row.declaration.credentials
    ]


def set_credentials(scope: Scope, connection_id: int, credentials: dict[str, str], *, by: Actor) -> ConnectionCheck:
    """Replace the credentials given (an empty value keeps the stored one), after the remote
    accepted the result: on a refusal nothing changes (:class:`ConnectionTestFailed`)."""
    row = scope.load(connection_id)
    given = _known_credentials(row.declaration, credentials)
    if not given:
        raise InvalidInput("no credential was given: nothing to change", hint="Type the new value of at least one.")
    current = scope.box.open(row.credentials_token, what=f"credentials of {row.name!r}")
    merged = {**current, **given}
    check = _check_remote(scope, row.kind, row.base_url, merged, row.settings)
    if not check.ok:
        raise ConnectionTestFailed(check)
    update_connection(scope, row.id, credentials={**given, **check.rotated})
    record_action(
        by,
        "connection.credentials",
        "connection",
        row.id,
        f"changed the credentials of {row.name}: {', '.join(sorted(given))}; the test said: {check.description}",
        {"credentials_changed": sorted(given)},
    )
    record_success(scope, row, job="check")
    return check


def check_now(scope: Scope, connection_id: int, *, by: Actor) -> ConnectionCheck:
    """Test a saved connection now (its ``check`` job's health records the outcome either way)."""
    row = scope.load(connection_id)
    try:
        description, checks = test_with_checks(scope, row.id)
        check = ConnectionCheck(True, description, preflight=tuple(checks))
    except OrderBridgeError as exc:
        check = ConnectionCheck.failed(exc)
    failed = [c.name for c in check.failed_checks]
    record_action(
        by,
        "connection.test",
        "connection",
        row.id,
        f"tested {row.name}: "
        + (check.description if check.ok else f"failed — {check.message}")
        + (f"; pre-flight checks failing: {', '.join(failed)}" if failed else ""),
        {"ok": check.ok, "code": check.code or None, **({"failed_checks": failed} if failed else {})},
    )
    return check


def set_poll_interval(scope: Scope, connection_id: int, seconds: float | None, *, by: Actor) -> ConnectionRow:
    """A channel's own poll interval (None: the hub's); the scheduler reads it at its next tick."""
    row = scope.load(connection_id)
    if row.role is not Role.CHANNEL:
        raise InvalidInput(f"{row.name!r} is a destination: only channels are polled for orders")
    _check_poll_interval(seconds)
    before = row.settings.get("poll_interval_s")
    updated = update_connection(scope, row.id, settings={"poll_interval_s": seconds})
    record_action(
        by,
        "connection.settings",
        "connection",
        row.id,
        f"set the poll interval of {row.name} to "
        + (f"{seconds:g} s" if seconds is not None else "the hub's default")
        + (f" (was {before:g} s)" if isinstance(before, int | float) else ""),
        {"poll_interval_s": seconds, "before": before},
    )
    return updated


def set_settings(scope: Scope, connection_id: int, settings: dict[str, Any], *, by: Actor) -> ConnectionRow:
    """Change some of a connection's settings (each one the kind declares; refused by name
    otherwise), on the audit trail: the portal's settings form of a POS destination (issue #17 —
    the acting employee, the location, the custom fields' defaults and mappings). The next post run
    reads them: orders held for what they fix are released there."""
    row = scope.load(connection_id)
    changed = {k: v for k, v in settings.items() if row.settings.get(k) != v}
    if not changed:
        return row
    updated = update_connection(scope, row.id, settings=changed)
    record_action(
        by,
        "connection.settings",
        "connection",
        row.id,
        f"changed the settings of {row.name}: {', '.join(sorted(changed))}",
        {"settings": changed, "before": {k: row.settings.get(k) for k in changed}},
    )
    return updated
