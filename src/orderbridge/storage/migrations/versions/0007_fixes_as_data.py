"""fixes as data: a reason's fix and an alert's fixes are {action, params, text}, not commands

``order_reasons.fix`` was a sentence with the CLI command in it ("Map it: orderbridge mappings set
sku 'ABC-1' <destination SKU> --destination wh"); it becomes the JSON object of a
:class:`orderbridge.fixes.Fix` — ``{"action": "map_sku", "params": {"sku": "ABC-1", "destination":
"wh"}, "text": "Map SKU 'ABC-1' to a SKU of destination 'wh'."}`` — which each presentation renders
(the CLI as the command, an alert as a link, the portal as a form). Every existing reason is
rewritten from its code, value and message, so an order held before the upgrade still shows its
fix, in the form a reason held after it has.

``alerts.link`` (a URL built when the alert was raised) becomes ``alerts.fixes``: the alert's
fixes in order, the first the one its e-mail links to. Existing alerts get the fixes their link
and kind named (``/holds?code=…`` → show those holds, with the fix of the held orders;
``/reconciliation/7`` → that audit's report; ``/connections/shop`` → test the connection, …).

The texts below are those of ``domain/reasons.py`` and ``orderbridge/fixes.py`` when this revision
was written, copied rather than imported: a migration means the same whatever the code says later.
Downgrading writes each fix's sentence back as the reason's ``fix`` and leaves the alerts' links
empty (the address they were built from is a setting, not stored).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 1000

_reasons = sa.table(
    "order_reasons",
    sa.column("id", sa.Integer()),
    sa.column("tenant_id", sa.Integer()),
    sa.column("code", sa.String()),
    sa.column("value", sa.String()),
    sa.column("message", sa.Text()),
    sa.column("fix", sa.Text()),
    sa.column("released_at", sa.DateTime()),
)
_alerts = sa.table(
    "alerts",
    sa.column("id", sa.Integer()),
    sa.column("tenant_id", sa.Integer()),
    sa.column("key", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("connection_id", sa.Integer()),
    sa.column("link", sa.String()),
    sa.column("data", sa.JSON()),
    sa.column("fixes", sa.JSON()),
)
_connections = sa.table("connections", sa.column("id", sa.Integer()), sa.column("name", sa.String()))

_DOWNLOAD_RULES = {
    "financial_status_not_downloaded",
    "fulfillment_status_not_downloaded",
    "test_order",
    "closed_order",
    "before_earliest_date",
}
_NOTHING = {"cancelled_order", "nothing_to_fulfil"}
_IN_THE_3PL = {"tracking_number_missing", "carrier_missing", "shipment_line_unmatched", "shipment_without_lines"}


def _fix(action: str, text: str, **params: str | None) -> dict[str, Any]:
    return {"action": action, "params": {k: v for k, v in params.items() if v is not None}, "text": text}


def _destination(fix: str, message: str) -> str | None:
    """The destination a reason named: its command's ``--destination`` or its message's quoted name."""
    found = re.search(r"--destination (\S+)\s*$", fix)
    if found:
        return found.group(1)
    quoted = re.search(r"destination '((?:[^'\\]|\\.)*)'", message)
    return quoted.group(1) if quoted else None


def reason_fix(code: str, value: str, message: str, fix: str) -> dict[str, Any]:
    """The structured form of a reason's fix as written before 0007."""
    if code == "sku_unmapped":
        dest = _destination(fix, message)
        return _fix("map_sku", f"Map SKU {value!r} to a SKU of destination {dest!r}.", sku=value, destination=dest)
    if code == "shipping_method_unmapped":
        dest = _destination(fix, message)
        text = f"Map shipping method {value!r} to a carrier and service of destination {dest!r}."
        return _fix("map_shipping_method", text, method=value, destination=dest)
    if code == "shipping_method_missing":
        dest = _destination(fix, message)
        text = f"Set a default carrier and service for destination {dest!r}."
        return _fix("map_shipping_method", text, method="*", destination=dest)
    if code == "required_field_missing":
        return _fix("set_required_field", fix, field=value, destination=_destination("", message))
    if code == "destination_rejected":
        return _fix("retry_order", "Correct what the destination names, then retry the order.", destination=value)
    if code == "destination_field_too_long":
        text = fix.replace(", then: orderbridge orders retry <order>", ", then retry the order.")
        named = re.match(r"(.+?) accepts at most", message)
        return _fix("retry_order", text, destination=named.group(1) if named else None, field=value)
    if code in _DOWNLOAD_RULES:
        return _fix("edit_download_rules", fix)
    if code in _NOTHING:
        return _fix("none", fix)
    if code in _IN_THE_3PL:
        return _fix("edit_shipment_at_destination", fix, shipment=value.partition(":")[0])
    if code == "unknown_status":
        return _fix("upgrade", fix, field=value.partition("=")[0])
    # invalid_order, sku_missing, channel_rejected, the input limits, storage_refused: none names a
    # command; a code this revision does not know keeps its words up to a command, if it had one
    text = re.sub(r"[\s,:]*(then)?[\s:]*orderbridge \S.*$", "", fix).strip() if "orderbridge " in fix else fix
    return _fix("edit_order_at_channel", (text.rstrip(".") + "." if text != fix else text) or fix)


def _show_holds(code: str | None = None, value: str | None = None) -> dict[str, Any]:
    return _fix("show_holds", "See the held orders, grouped by cause.", code=code, value=value)


def _check(name: str) -> dict[str, Any]:
    return _fix("test_connection", "Test the connection (its credentials and permissions).", connection=name)


def _audit(name: str) -> dict[str, Any]:
    return _fix("run_audit", "Audit the channel now (compare it with the ledger).", connection=name)


def _webhooks(name: str) -> dict[str, Any]:
    return _fix("register_webhooks", "Subscribe the channel's webhooks again.", connection=name)


def alert_fixes(
    kind: str, link: str, connection: str | None, held_fix: dict[str, Any] | None, data: Any = None
) -> list[dict[str, Any]]:
    """The fixes of an alert raised before 0007, from the link it was raised with and its kind."""
    parts = urlsplit(link or "")
    path = parts.path.rstrip("/")
    if path.endswith("/holds"):
        query = parse_qs(parts.query, keep_blank_values=True)
        if "code" not in query:
            return [_show_holds()]
        code, value = query["code"][0], query.get("value", [""])[0]
        return [*([held_fix] if held_fix else []), _show_holds(code, value)]
    audit = re.search(r"/reconciliation/(\d+)$", path)
    if audit:
        report = _fix("show_audit", "Read the audit's full report.", run=audit.group(1))
        if connection is None:
            return [report]
        if kind == "reconciliation_finding":
            missed = data.get("by_cause") if isinstance(data, dict) else None
            return [report, *([_webhooks(connection)] if isinstance(missed, dict) and "no_webhook" in missed else [])]
        return [report, _check(connection), _audit(connection)]
    named = re.search(r"/connections/([^/]+)$", path)
    name = unquote(named.group(1)) if named else connection
    if name is None:
        return []
    if kind == "webhooks_missing":
        return [_webhooks(name)]
    if kind == "connection_silent":
        return [_check(name), _audit(name)]
    return [_check(name)]


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    # order_reasons.fix: the same column, its text rewritten as the fix's JSON, then typed json
    rows = bind.execute(sa.select(_reasons.c.id, _reasons.c.code, _reasons.c.value, _reasons.c.message, _reasons.c.fix))
    pending: list[dict[str, Any]] = []
    for rid, code, value, message, fix in rows.all():
        pending.append({"rid": rid, "fix": json.dumps(reason_fix(code, value, message, fix), ensure_ascii=False)})
        if len(pending) >= _BATCH:
            _write(bind, _reasons, pending)
            pending = []
    _write(bind, _reasons, pending)
    if postgres:
        op.execute("ALTER TABLE order_reasons ALTER COLUMN fix TYPE json USING fix::json")

    # alerts.link → alerts.fixes
    op.add_column("alerts", sa.Column("fixes", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    names = dict(bind.execute(sa.select(_connections.c.id, _connections.c.name)).all())
    for aid, tenant, kind, cid, link, data in bind.execute(
        sa.select(
            _alerts.c.id, _alerts.c.tenant_id, _alerts.c.kind, _alerts.c.connection_id, _alerts.c.link, _alerts.c.data
        )
    ).all():
        if isinstance(data, str):
            data = json.loads(data)
        held = _held_fix(bind, tenant, data) if kind == "new_hold_reason" else None
        fixes = alert_fixes(kind, link, names.get(cid), held, data)
        bind.execute(sa.update(_alerts).where(_alerts.c.id == aid).values(fixes=fixes))
    op.drop_column("alerts", "link")


def _held_fix(bind: Any, tenant: int, data: Any) -> dict[str, Any] | None:
    """The (already rewritten) fix of an order held for the alert's cause, if one is still held."""
    if not isinstance(data, dict) or "code" not in data:
        return None
    found = bind.execute(
        sa.select(_reasons.c.fix)
        .where(
            _reasons.c.tenant_id == tenant,
            _reasons.c.code == data["code"],
            _reasons.c.value == str(data.get("value", "")),
            _reasons.c.released_at.is_(None),
        )
        .limit(1)
    ).scalar_one_or_none()
    if found is None:
        return None
    return json.loads(found) if isinstance(found, str) else dict(found)


def _write(bind: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        bind.execute(sa.update(table).where(table.c.id == sa.bindparam("rid")).values(fix=sa.bindparam("fix")), rows)


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.add_column("alerts", sa.Column("link", sa.String(length=500), nullable=False, server_default=""))
    op.drop_column("alerts", "fixes")
    if postgres:
        op.execute("ALTER TABLE order_reasons ALTER COLUMN fix TYPE text USING fix::text")
    pending: list[dict[str, Any]] = []
    for rid, fix in bind.execute(sa.select(_reasons.c.id, _reasons.c.fix)).all():
        try:
            text = str(json.loads(fix).get("text") or "")
        except (ValueError, AttributeError):
            continue
        pending.append({"rid": rid, "fix": text})
    _write(bind, _reasons, pending)
