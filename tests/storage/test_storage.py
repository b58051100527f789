"""The schema's guarantees, checked against the real databases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from orderbridge.domain.canonical import content_hash, order_from_json, order_to_json
from orderbridge.services.hub import Hub
from orderbridge.storage.db import JOURNAL_SIZE_LIMIT, WAL_AUTOCHECKPOINT_PAGES, Database
from orderbridge.storage.leases import Lease, LeaseBusy, held
from orderbridge.storage.tables import connections, orders, postings
from tests.builders import order


def _connection(hub: Hub) -> int:
    with hub.db.transaction() as conn:
        return int(
            conn.execute(
                insert(connections).values(
                    tenant_id=1,
                    name="c",
                    kind="shopify",
                    role="channel",
                    base_url="http://x",
                    credentials="t",
                    settings={},
                    enabled=True,
                    health="unknown",
                    health_message="",
                    consecutive_failures=0,
                    created_at=datetime.now(UTC),
                )
            ).inserted_primary_key[0]
        )


def _order_row(cid: int, ext: str) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "tenant_id": 1,
        "connection_id": cid,
        "external_id": ext,
        "number": ext,
        "state": "received",
        "version": 1,
        "content_hash": "h",
        "raw": {},
        "received_at": now,
        "updated_at": now,
        "total": Decimal("12.3456"),
        "currency": "USD",
    }


def test_the_database_refuses_a_second_order_with_the_same_external_id(hub: Hub) -> None:
    cid = _connection(hub)
    with hub.db.transaction() as conn:
        conn.execute(insert(orders).values(**_order_row(cid, "1")))
    with pytest.raises(IntegrityError), hub.db.transaction() as conn:
        conn.execute(insert(orders).values(**_order_row(cid, "1")))


def test_the_database_refuses_a_second_posting_with_the_same_idempotency_key(hub: Hub) -> None:
    cid = _connection(hub)
    with hub.db.transaction() as conn:
        oid = conn.execute(insert(orders).values(**_order_row(cid, "1"))).inserted_primary_key[0]
    row = {
        "tenant_id": 1,
        "order_id": oid,
        "destination_id": cid,
        "order_version": 1,
        "idempotency_key": "k",
        "order_key": "ok",
        "status": "pending",
        "attempts": 0,
        "created_at": datetime.now(UTC),
    }
    with hub.db.transaction() as conn:
        conn.execute(insert(postings).values(**row))
    with pytest.raises(IntegrityError), hub.db.transaction() as conn:
        conn.execute(insert(postings).values(**row))


def test_amounts_and_timestamps_round_trip_exactly_and_aware(hub: Hub) -> None:
    cid = _connection(hub)
    with hub.db.transaction() as conn:
        conn.execute(insert(orders).values(**_order_row(cid, "1")))
    with hub.db.read() as conn:
        total, received = conn.execute(select(orders.c.total, orders.c.received_at)).one()
    assert total == Decimal("12.3456") and isinstance(total, Decimal)
    assert received.tzinfo is not None and received.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused_on_the_way_in(hub: Hub) -> None:
    cid = _connection(hub)
    row = _order_row(cid, "1") | {"received_at": datetime(2026, 1, 1)}
    with pytest.raises(Exception, match="naive"), hub.db.transaction() as conn:
        conn.execute(insert(orders).values(**row))


def test_only_one_holder_gets_a_lease_until_it_expires(hub: Hub) -> None:
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    a = Lease(hub.db, "sync:1", "a", 60, lambda: clock[0])
    b = Lease(hub.db, "sync:1", "b", 60, lambda: clock[0])
    assert a.try_acquire() and not b.try_acquire()
    clock[0] += timedelta(seconds=61)  # a was killed and never renewed
    assert b.try_acquire()
    with pytest.raises(LeaseBusy):
        a.renew()


def test_a_renewal_inside_a_transaction_rolls_it_back_once_the_lease_is_lost(hub: Hub) -> None:
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    a = Lease(hub.db, "sync:1", "a", 60, lambda: clock[0])
    assert a.try_acquire()
    cid = _connection(hub)
    with hub.db.transaction() as conn:  # while the lease is ours, the batch and the renewal commit
        conn.execute(insert(orders).values(**_order_row(cid, "1")))
        a.renew(conn)
    clock[0] += timedelta(seconds=61)  # a stalled; b took the lease over
    assert Lease(hub.db, "sync:1", "b", 60, lambda: clock[0]).try_acquire()
    with pytest.raises(LeaseBusy), hub.db.transaction() as conn:
        conn.execute(insert(orders).values(**_order_row(cid, "2")))
        a.renew(conn)
    with hub.db.read() as conn:
        assert conn.execute(select(orders.c.external_id)).scalars().all() == ["1"]


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC])))
@settings(max_examples=200, deadline=None)
def test_sqlite_datetimes_are_stored_as_the_text_sqlalchemy_itself_writes(when: datetime) -> None:
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.dialects.sqlite import DATETIME

    from orderbridge.storage.types import UTCDateTime

    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    theirs = DATETIME().bind_processor(dialect)
    assert ours(when) == theirs(when.replace(tzinfo=None))


def test_the_sqlite_datetime_processor_converts_to_utc_text_refuses_naive_and_non_datetimes() -> None:
    from datetime import timedelta, timezone

    from sqlalchemy.dialects import sqlite

    from orderbridge.storage.types import UTCDateTime

    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    noon = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
    assert process(noon) == process(noon) == "2026-10-05 12:00:00.000000"
    paris = noon.astimezone(timezone(timedelta(hours=2)))  # the same instant, another offset
    assert process(paris) == "2026-10-05 12:00:00.000000"
    assert process(noon + timedelta(microseconds=7)) == "2026-10-05 12:00:00.000007"  # not the memo's
    assert process(paris) == "2026-10-05 12:00:00.000000"  # the memo holds one object; others are formatted
    assert process(None) is None
    with pytest.raises(ValueError, match="naive"):
        process(datetime(2026, 10, 5, 12, 0))
    with pytest.raises(TypeError, match="only accepts Python datetimes"):
        process("2026-10-05 12:00:00")


def test_a_held_lease_makes_a_second_sync_skip(hub: Hub) -> None:
    with held(hub.db, "sync:9", 60, hub.now), pytest.raises(LeaseBusy), held(hub.db, "sync:9", 60, hub.now):
        pass
    with held(hub.db, "sync:9", 60, hub.now):  # released on exit
        pass


money = st.decimals(
    min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=4, allow_nan=False, allow_infinity=False
)


@settings(max_examples=50, deadline=None)
@given(price=money, email=st.text(max_size=30), skus=st.lists(st.text(min_size=1, max_size=12), max_size=4))
def test_the_canonical_codec_round_trips_any_order(price: Decimal, email: str, skus: list[str]) -> None:
    from orderbridge.domain.money import Money
    from tests.builders import replace

    o = order(skus=tuple(skus) or ("X",), email=email)
    o = replace(o, total=Money(price, "USD"))
    back = order_from_json(order_to_json(o))
    assert back == o and content_hash(back) == content_hash(o)


def test_sqlite_ledgers_run_in_wal_mode_with_a_large_checkpoint_interval(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with db.engine.connect() as conn:
            found = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                for name in ("journal_mode", "synchronous", "wal_autocheckpoint", "journal_size_limit", "busy_timeout")
            }
    finally:
        db.dispose()
    assert found == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL: durable at checkpoints, consistent always
        "wal_autocheckpoint": WAL_AUTOCHECKPOINT_PAGES,
        "journal_size_limit": JOURNAL_SIZE_LIMIT,
        "busy_timeout": 60000,
    }


def test_a_sqlite_read_neither_blocks_a_writer_nor_can_write(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with db.transaction() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        wrote = threading.Event()

        def writer() -> None:
            with db.transaction() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            wrote.set()

        with db.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0  # its snapshot is open
            thread = threading.Thread(target=writer)
            thread.start()
            assert wrote.wait(5), "a read held up a writer (it took the write lock)"
            thread.join()
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0  # still its snapshot
        with pytest.raises(OperationalError, match="readonly"), db.read() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        with db.transaction() as conn:  # the same pooled connection writes again
            conn.exec_driver_sql("INSERT INTO t VALUES (3)")
        with db.read() as conn:
            assert sorted(conn.exec_driver_sql("SELECT x FROM t").scalars()) == [1, 3]
    finally:
        db.dispose()
