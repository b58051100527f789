"""Every version stays (issue #15): ``order_versions`` is written with each version ``orders`` gets,
in the same transaction, backfilled by its migration, and read back per tenant — on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, inspect, select, text

from orderbridge.connectors.base import UnreadableOrder
from orderbridge.domain.changes import ChangeClass, FieldChange
from orderbridge.errors import NoSuchVersion, NotFound
from orderbridge.services import order_versions
from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import order_versions as versions_table
from orderbridge.storage.tables import orders
from tests.builders import replace
from tests.fakes import FakeChannel, standard_world
from tests.scoped import cid, tenant
from tests.storage.test_migrations import AT, engine, migrate

__all__ = ["engine"]  # the migrations' fixture: an empty database of each backend


def stored(hub: Hub) -> list[tuple[int, int, str, object]]:
    with hub.db.read() as conn:
        rows = conn.execute(
            select(versions_table.c.order_id, versions_table.c.version, versions_table.c.content_hash,
                   versions_table.c.canonical).order_by(versions_table.c.order_id, versions_table.c.version)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]  # type: ignore[misc]


def synced(hub: Hub, n: int = 2) -> FakeChannel:
    channel = standard_world(hub, n)
    sync_channel(tenant(hub), cid(hub, "shop"))
    return channel


def edit(channel: FakeChannel, ext: str, minutes: int = 5, **changes: object) -> None:
    o = channel.orders[ext]
    assert not isinstance(o, UnreadableOrder)
    channel.put(replace(o, updated_at=o.updated_at + timedelta(minutes=minutes), **changes))


def order_id(hub: Hub, ext: str) -> int:
    with hub.db.read() as conn:
        return int(conn.execute(select(orders.c.id).where(orders.c.external_id == ext)).scalar_one())


def test_ingest_records_each_new_order_and_each_changed_version_as_orders_hold_it(hub: Hub) -> None:
    channel = synced(hub)
    first = stored(hub)
    assert [(v, h) for _o, v, h, _c in first] == [(1, h) for _o, _v, h, _c in first] and len(first) == 2
    edit(channel, "1000", email="new@example.com")
    sync_channel(tenant(hub), cid(hub, "shop"))
    sync_channel(tenant(hub), cid(hub, "shop"))  # unchanged: no version
    rows = stored(hub)
    oid = order_id(hub, "1000")
    mine = [r for r in rows if r[0] == oid]
    assert [r[1] for r in mine] == [1, 2] and len(rows) == 3
    with hub.db.read() as conn:
        current = conn.execute(select(orders.c.canonical, orders.c.content_hash).where(orders.c.id == oid)).one()
    assert (mine[-1][3], mine[-1][2]) == (current.canonical, current.content_hash)  # the latest is the current
    assert mine[0][3]["email"] == "buyer0@example.com" and mine[-1][3]["email"] == "new@example.com"  # type: ignore[index]


def test_a_version_is_written_in_the_transaction_of_its_order(hub: Hub) -> None:
    synced(hub, 1)
    oid = order_id(hub, "1000")
    with hub.db.read() as conn:
        row = conn.execute(select(orders).where(orders.c.id == oid)).one()
    with pytest.raises(RuntimeError), hub.db.transaction() as conn:
        assert order_repo.write_version(
            conn, oid, 1, {"version": 2, "updated_at": row.updated_at, "content_hash": "x" * 64,
                           "canonical": {**row.canonical, "note": "n"}},
        )  # fmt: skip
        raise RuntimeError("crash before commit")
    assert [r[1] for r in stored(hub)] == [1]  # rolled back with the order's own write
    with hub.db.transaction() as conn:
        order_repo.write_version(
            conn, oid, 1, {"version": 2, "updated_at": row.updated_at, "content_hash": "y" * 64,
                           "canonical": {**row.canonical, "note": "n"}},
        )  # fmt: skip
    assert [(r[1], r[2]) for r in stored(hub)] == [(1, row.content_hash), (2, "y" * 64)]


def test_the_versions_of_an_order_and_the_diff_between_any_two(hub: Hub) -> None:
    channel = synced(hub, 1)
    oid = order_id(hub, "1000")
    edit(channel, "1000", email="new@example.com")
    sync_channel(tenant(hub), cid(hub, "shop"))
    edit(channel, "1000", minutes=10, note="leave at the door")
    sync_channel(tenant(hub), cid(hub, "shop"))
    listed = order_versions.list_versions(tenant(hub), oid)
    assert [(v.version, v.classes) for v in listed] == [
        (1, ()),
        (2, (ChangeClass.CUSTOMER,)),
        (3, (ChangeClass.NOTES,)),
    ]
    assert listed[1].summary == "Customer changed (email: buyer0@example.com → new@example.com)"
    latest = order_versions.diff_versions(tenant(hub), oid)
    assert (latest.from_version, latest.to_version) == (2, 3)
    assert latest.diff.changes == (FieldChange("note", "", "leave at the door", ChangeClass.NOTES),)
    both = order_versions.diff_versions(tenant(hub), oid, 1, 3)
    assert [c.path for c in both.diff.changes] == ["email", "note"]
    assert order_versions.diff_versions(tenant(hub), oid, 3, 1).diff.changes[0].before == "new@example.com"
    assert order_versions.diff_versions(tenant(hub), oid, 2, 2).diff.empty
    assert order_versions.version_of(tenant(hub), oid, 2).email == "new@example.com"
    with pytest.raises(NoSuchVersion, match="no version 7") as caught:
        order_versions.diff_versions(tenant(hub), oid, 7, 3)
    assert caught.value.field == "from" and "versions 1 to 3" in caught.value.hint
    with pytest.raises(NoSuchVersion) as caught:
        order_versions.diff_versions(tenant(hub), oid, 1, 4)
    assert caught.value.field == "to"


def test_another_tenants_order_is_not_found(hub: Hub) -> None:
    synced(hub, 1)
    oid = order_id(hub, "1000")
    other = add_tenant(hub, "other", "Other")
    with pytest.raises(NotFound):
        order_versions.list_versions(other, oid)
    with pytest.raises(NotFound):
        order_versions.diff_versions(other, oid)
    with pytest.raises(NotFound):
        order_versions.version_of(other, oid, 1)


def test_0017_backfills_each_orders_current_version_and_downgrades(engine: Engine) -> None:
    migrate(engine, "upgrade", "0016")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, created_at) VALUES (7, 't7', 'T', :at)"), {"at": AT})
        conn.execute(
            text(
                "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                " enabled, health, health_message, consecutive_failures, created_at)"
                " VALUES (7, 7, 'shop', 'shopify', 'channel', 'http://x', 't', '{}', true, 'healthy', '', 0, :at)"
            ),
            {"at": AT},
        )
        for oid, version, canonical in ((1, 3, '{"email": "a@example.com"}'), (2, 1, None)):
            conn.execute(
                text(
                    "INSERT INTO orders (id, tenant_id, connection_id, external_id, number, state, version,"
                    " content_hash, canonical, raw, received_at, updated_at, channel_updated_at)"
                    " VALUES (:id, 7, 7, :ext, :number, 'held', :version, :hash, :canonical, '{}', :at, :at, :at)"
                ),
                {"id": oid, "ext": str(oid), "number": f"#{oid}", "version": version, "hash": f"h{oid}",
                 "canonical": canonical, "at": AT},
            )  # fmt: skip
    migrate(engine, "upgrade", "0017")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT tenant_id, order_id, version, content_hash, canonical FROM order_versions ORDER BY order_id")
        ).all()
        assert conn.execute(select(func.count()).select_from(text("order_versions"))).scalar_one() == 2
    found = [(t, o, v, h, c if not isinstance(c, str) else __import__("json").loads(c)) for t, o, v, h, c in rows]
    assert found == [(7, 1, 3, "h1", {"email": "a@example.com"}), (7, 2, 1, "h2", None)]
    migrate(engine, "downgrade", "0016")
    with engine.connect() as conn:
        assert "order_versions" not in inspect(conn).get_table_names()
