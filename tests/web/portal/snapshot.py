"""What a tenant's rows are, to prove a refused request changed nothing.

Every table carries ``tenant_id`` (``storage/tables.py``), so one tenant's whole ledger is the rows
of every table with that tenant id. A snapshot reads them all; two snapshots compare equal when no
row was inserted, updated or deleted in between. Tables the request itself may touch without
changing anything a user did — the session's own bookkeeping — are left out by name.
"""

from __future__ import annotations

from sqlalchemy import select

from orderbridge.services.hub import Hub
from orderbridge.storage.tables import metadata

#: rows a request writes by being made (sessions' last use, sign-in attempts), not by what it asks
BOOKKEEPING = frozenset({"web_sessions", "login_attempts", "leases"})
#: columns likewise: a token's last use is written when it is used, whatever it is refused
BOOKKEEPING_COLUMNS = {"api_tokens": frozenset({"last_used_at"})}


def snapshot(hub: Hub, tenant_id: int, *, skip: frozenset[str] = BOOKKEEPING) -> dict[str, list[str]]:
    """Every row of the tenant, table by table, each as its ``repr`` (JSON columns are dicts), sorted."""
    out: dict[str, list[str]] = {}
    with hub.db.read() as conn:
        for table in metadata.sorted_tables:
            if table.name in skip or "tenant_id" not in table.c:
                continue
            skipped = BOOKKEEPING_COLUMNS.get(table.name, frozenset())
            columns = [c for c in table.c if c.name not in skipped]
            rows = conn.execute(select(*columns).where(table.c.tenant_id == tenant_id)).all()
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
    return out


def changes(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """What differs between two snapshots, table by table (empty: nothing changed)."""
    out = []
    for name in sorted(set(before) | set(after)):
        was, now = set(before.get(name, [])), set(after.get(name, []))
        if was != now:
            out.append(f"{name}: {len(now - was)} row(s) new or changed, {len(was - now)} gone or changed")
    return out
