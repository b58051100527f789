"""The ``manual_numbers`` table: each tenant's counter of automatic manual order numbers (``M-<n>``).

:func:`next_number` is one upsert with ``RETURNING``: the row is created at 1 or incremented, and the
transaction holds its lock until it commits, so two orders placed at once never get one number. A
number taken by a rolled-back transaction is given again (the counter rolls back with it)."""

from __future__ import annotations

from sqlalchemy import Connection

from orderbridge.storage.db import dialect_insert
from orderbridge.storage.tables import manual_numbers


def next_number(conn: Connection, tenant_id: int) -> int:
    stmt = dialect_insert(conn)(manual_numbers).values(tenant_id=tenant_id, last=1)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant_id"], set_={"last": manual_numbers.c.last + 1}).returning(
        manual_numbers.c.last
    )
    return int(conn.execute(stmt).scalar_one())
