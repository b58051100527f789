"""What a tenant's rows are, to prove a refused request changed nothing.

Every table carries ``tenant_id`` (``storage/tables.py``), so one tenant's whole ledger is the rows
of every table with that tenant id. A snapshot reads them all; two snapshots compare equal when no
row was inserted, updated or deleted in between. Tables the request itself may touch without
changing anything a user did — the session's own bookkeeping — are left out by name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from orderbridge.services.hub import Hub
from orderbridge.storage.tables import metadata

#: rows a request writes by being made (sessions' last use, sign-in attempts), not by what it asks
BOOKKEEPING = frozenset({"web_sessions", "login_attempts", "leases"})


def snapshot(hub: Hub, tenant_id: int, *, skip: frozenset[str] = BOOKKEEPING) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tenant, table by table, in a stable order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with hub.db.read() as conn:
        for table in metadata.sorted_tables:
            if table.name in skip or "tenant_id" not in table.c:
                continue
            rows = conn.execute(select(table).where(table.c.tenant_id == tenant_id)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def changes(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """What differs between two snapshots, table by table (empty: nothing changed)."""
    out = []
    for name in sorted(set(before) | set(after)):
        was, now = set(before.get(name, [])), set(after.get(name, []))
        if was != now:
            out.append(f"{name}: {len(now - was)} row(s) new or changed, {len(was - now)} gone or changed")
    return out
