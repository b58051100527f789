"""Migrations carry a live ledger forward: rows written under one revision mean the same after the next."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from orderbridge.storage.migrate import alembic_config
from tests.conftest import BACKENDS, PG_ADMIN


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An empty database of each backend, with no revision applied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('migrations') / 'ledger.db'}"
        made = create_engine(url)
        yield made
        made.dispose()
        return
    name = f"ob_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    made = create_engine(PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}")
    yield made
    made.dispose()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(engine: Engine, verb: str, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)


AT = "2026-11-20 10:00:00.000000"


def test_0003_gives_each_connection_a_sync_job_and_keeps_an_open_failing_alert_one_episode(engine: Engine) -> None:
    migrate(engine, "upgrade", "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, created_at) VALUES (7, 't7', 'T', :at)"), {"at": AT})
        connections = (
            (1, "shop", "channel", "failing"),
            (2, "wh", "destination", "unknown"),
            (3, "pos", "channel", "failing"),
            (4, "3pl", "destination", "failing"),
        )
        for cid, name, role, health in connections:
            conn.execute(
                text(
                    "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                    " enabled, health, health_message, consecutive_failures, created_at, last_error_at)"
                    " VALUES (:id, 7, :name, 'shopify', :role, 'http://x', 'token', '{}', true, :health,"
                    " 'it failed', 4, :at, :at)"
                ),
                {"id": cid, "name": name, "role": role, "health": health, "at": AT},
            )
        alerts = (
            (1, "open", '{"code": "connection_auth_failed", "failures": 1}'),
            (2, "resolved", '{"code": "connection_auth_failed", "failures": 1}'),
            (3, "open", '{"code": "remote_unavailable", "failures": 5}'),
            (4, "open", "null"),
        )
        for cid, state, data in alerts:
            conn.execute(
                text(
                    "INSERT INTO alerts (id, tenant_id, key, kind, connection_id, subject, body, link, data, state,"
                    " generation, occurrences, first_at, last_at)"
                    " VALUES (:id, 7, :key, 'connection_failing', :id, 's', 'b', '', :data, :state, 1, 1, :at, :at)"
                ),
                {"id": cid, "key": f"connection_failing:{cid}", "data": data, "state": state, "at": AT},
            )
    migrate(engine, "upgrade", "head")
    with engine.connect() as conn:
        jobs = conn.execute(
            text("SELECT connection_id, job, health, consecutive_failures, code FROM connection_jobs ORDER BY 1")
        ).all()
        keys = conn.execute(text("SELECT key FROM alerts ORDER BY id")).scalars().all()
    assert [tuple(j) for j in jobs] == [
        (1, "sync", "failing", 4, "connection_auth_failed"),
        (3, "sync", "failing", 4, "remote_unavailable"),
        (4, "post", "failing", 4, None),  # a destination's health was its posting's
    ]
    # refused credentials: any job that works resolves it; another cause: that job's next success does
    assert keys == [
        "connection_failing:1:credentials",
        "connection_failing:2",
        "connection_failing:3:sync",
        "connection_failing:4:post",
    ]
    migrate(engine, "downgrade", "0002")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT key FROM alerts ORDER BY id")).scalars().all() == [
            "connection_failing:1",
            "connection_failing:2",
            "connection_failing:3",
            "connection_failing:4",
        ]


def test_0004_makes_each_tie_left_unsettled_a_pending_reread(engine: Engine) -> None:
    migrate(engine, "upgrade", "0003")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, created_at) VALUES (7, 't7', 'T', :at)"), {"at": AT})
        conn.execute(
            text(
                "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                " enabled, health, health_message, consecutive_failures, created_at)"
                " VALUES (1, 7, 'shop', 'shopify', 'channel', 'http://x', 'token', '{}', true, 'healthy', '', 0, :at)"
            ),
            {"at": AT},
        )
        for oid in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO orders (id, tenant_id, connection_id, external_id, number, state, version,"
                    " content_hash, raw, received_at, updated_at)"
                    " VALUES (:id, 7, 1, :ext, :num, 'ready', 1, 'h', '{}', :at, :at)"
                ),
                {"id": oid, "ext": f"100{oid}", "num": f"#{oid}", "at": AT},
            )
        timeline = (
            (1, "received"),
            (1, "tie_unsettled"),  # never settled: pending
            (2, "tie_unsettled"),
            (2, "version_changed"),  # settled by a later re-read
            (3, "tie_unsettled"),
            (3, "tie_unsettled"),  # asked twice, still pending
        )
        for oid, kind in timeline:
            conn.execute(
                text("INSERT INTO events (tenant_id, order_id, kind, at, message) VALUES (7, :oid, :kind, :at, 'm')"),
                {"oid": oid, "kind": kind, "at": AT},
            )
    migrate(engine, "upgrade", "0004")
    with engine.connect() as conn:
        pending = conn.execute(
            text("SELECT tenant_id, connection_id, external_id, attempts FROM pending_rereads ORDER BY external_id")
        ).all()
    assert [tuple(p) for p in pending] == [(7, 1, "1001", 1), (7, 1, "1003", 2)]
    migrate(engine, "downgrade", "0003")
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    assert "pending_rereads" not in names and "orders" in names


def test_0005_unbounds_the_order_number_and_rekeys_gid_order_ids_unless_the_number_is_stored_too(
    engine: Engine,
) -> None:
    migrate(engine, "upgrade", "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, created_at) VALUES (7, 't7', 'T', :at)"), {"at": AT})
        for cid, kind in ((1, "shopify"), (2, "woocommerce")):
            conn.execute(
                text(
                    "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                    " enabled, health, health_message, consecutive_failures, created_at)"
                    " VALUES (:id, 7, :name, :kind, 'channel', 'http://x', 'token', '{}', true, 'healthy', '', 0, :at)"
                ),
                {"id": cid, "name": f"c{cid}", "kind": kind, "at": AT},
            )
        rows = (
            (1, 1, "gid://shopify/Order/501"),  # alone: re-keyed to its number
            (2, 1, "gid://shopify/Order/502"),  # its number is stored too: both kept as they are
            (3, 1, "502"),
            (4, 2, "gid://shopify/Order/503"),  # not a Shopify connection: untouched
        )
        for oid, cid, ext in rows:
            conn.execute(
                text(
                    "INSERT INTO orders (id, tenant_id, connection_id, external_id, number, state, version,"
                    " content_hash, raw, received_at, updated_at)"
                    " VALUES (:id, 7, :cid, :ext, :num, 'ready', 1, 'h', '{}', :at, :at)"
                ),
                {"id": oid, "cid": cid, "ext": ext, "num": f"#{oid}", "at": AT},
            )
    migrate(engine, "upgrade", "0005")
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT external_id FROM orders ORDER BY id"))]
        conn.execute(text("UPDATE orders SET number = :n WHERE id = 1"), {"n": "#" + "N" * 300})  # fits now
    assert ids == ["501", "gid://shopify/Order/502", "502", "gid://shopify/Order/503"]
    migrate(engine, "downgrade", "0004")
    with engine.connect() as conn:
        number = conn.execute(text("SELECT number FROM orders WHERE id = 1")).scalar_one()
    assert number.startswith("#NNN") and (len(number) == 100 or engine.dialect.name == "sqlite")


def test_0006_adds_ingest_failures_which_take_any_bytes_and_leaves_the_ledger_as_it_was(engine: Engine) -> None:
    migrate(engine, "upgrade", "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, created_at) VALUES (7, 't7', 'T', :at)"), {"at": AT})
        conn.execute(
            text(
                "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                " enabled, health, health_message, consecutive_failures, created_at)"
                " VALUES (1, 7, 'shop', 'shopify', 'channel', 'http://x', 'token', '{}', true, 'healthy', '', 0, :at)"
            ),
            {"at": AT},
        )
    migrate(engine, "upgrade", "0006")
    raw = b'{"name": "#1\x00"}\xff'  # a NUL and a byte no text encoding takes
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ingest_failures (tenant_id, connection_id, external_id, number, stage, kind, error,"
                " content_hash, raw, attempts, first_at, last_at)"
                " VALUES (7, 1, '1001', '#1', 'quarantined', 'nul_character', 'e', 'h', :raw, 1, :at, :at)"
            ),
            {"raw": raw, "at": AT},
        )
    with engine.connect() as conn:
        assert bytes(conn.execute(text("SELECT raw FROM ingest_failures")).scalar_one()) == raw
        assert conn.execute(text("SELECT count(*) FROM connections")).scalar_one() == 1
    migrate(engine, "downgrade", "0004")
    with engine.connect() as conn:
        assert "ingest_failures" not in set(inspect(conn).get_table_names())


def test_0007_turns_each_stored_fix_into_the_data_the_code_now_writes_and_alert_links_into_fixes(
    engine: Engine,
) -> None:
    from orderbridge.domain import reasons as R
    from orderbridge.fixes import check_connection, fixes_from_data, register_webhooks, show_audit, show_holds
    from orderbridge.storage.tables import order_reasons

    migrate(engine, "upgrade", "0006")
    old = [  # (code, value, message, fix) exactly as 0006-era code wrote them
        (
            "sku_unmapped",
            "ABC-1",
            "SKU 'ABC-1' has no mapping for destination 'wh'",
            "Map it: orderbridge mappings set sku 'ABC-1' <destination SKU> --destination wh",
        ),
        (
            "shipping_method_missing",
            "",
            "the order has no shipping line, and destination 'wh' needs a shipping service",
            "Set a default: orderbridge mappings set shipping '*' <carrier>:<service> --destination wh",
        ),
        (
            "required_field_missing",
            "phone",
            "field 'phone' is required by destination 'wh' and is empty",
            "Fill in 'phone' on the order in the channel; the next sync re-evaluates it.",
        ),
        (
            "destination_rejected",
            "wh",
            "destination 'wh' rejected the order: bad zip",
            "Correct what the destination names, then: orderbridge orders retry <order>",
        ),
        (
            "destination_field_too_long",
            "items[].sku",
            "ShipStation accepts at most 50 characters in items[].sku; this order's is 60: 'x'",
            "Shorten it to 50 characters where it comes from (the order in the channel, or the mapping "
            "for a SKU or shipping service), then: orderbridge orders retry <order>",
        ),
        (
            "invalid_order",
            "the order has no lines",
            "the channel sent an order OrderBridge cannot read: the order has no lines",
            "Correct the order in the channel; the raw payload is kept on the order page.",
        ),
    ]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, created_at) VALUES (7, 't7', 'T', :at)"), {"at": AT})
        for cid, name, role in ((1, "shop", "channel"), (2, "wh", "destination")):
            conn.execute(
                text(
                    "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                    " enabled, health, health_message, consecutive_failures, created_at)"
                    " VALUES (:id, 7, :name, 'shopify', :role, 'http://x', 'token', '{}', true, 'healthy', '', 0, :at)"
                ),
                {"id": cid, "name": name, "role": role, "at": AT},
            )
        conn.execute(
            text(
                "INSERT INTO orders (id, tenant_id, connection_id, external_id, number, state, version,"
                " content_hash, raw, received_at, updated_at)"
                " VALUES (1, 7, 1, '1001', '#1001', 'held', 1, 'h', '{}', :at, :at)"
            ),
            {"at": AT},
        )
        for rid, (code, value, message, fix) in enumerate(old, start=1):
            conn.execute(
                text(
                    "INSERT INTO order_reasons (id, tenant_id, order_id, kind, code, value, message, fix, created_at)"
                    " VALUES (:id, 7, 1, 'hold', :code, :value, :message, :fix, :at)"
                ),
                {"id": rid, "code": code, "value": value, "message": message, "fix": fix, "at": AT},
            )
        links = (
            (1, "hold:sku_unmapped:ABC-1", "new_hold_reason", None, "https://h/holds?code=sku_unmapped&value=ABC-1",
             '{"code": "sku_unmapped", "value": "ABC-1", "orders": 1}'),
            (2, "digest:2026-11-20T00:00:00+00:00", "digest", None, "https://h/holds", "null"),
            (3, "reconcile:5", "reconciliation_finding", 1, "https://h/reconciliation/5",
             '{"run_id": 5, "by_cause": {"no_webhook": 2}, "missing": 0}'),
            (4, "connection_failing:1:credentials", "connection_failing", 1, "https://h/connections/shop", "null"),
            (5, "webhooks_missing:1", "webhooks_missing", 1, "https://h/connections/shop", "null"),
            (6, "test:x", "test", None, "", "null"),
        )  # fmt: skip
        for aid, key, kind, cid, link, data in links:
            conn.execute(
                text(
                    "INSERT INTO alerts (id, tenant_id, key, kind, connection_id, subject, body, link, data, state,"
                    " generation, occurrences, first_at, last_at)"
                    " VALUES (:id, 7, :key, :kind, :cid, 's', 'b', :link, :data, 'open', 1, 1, :at, :at)"
                ),
                {"id": aid, "key": key, "kind": kind, "cid": cid, "link": link, "data": data, "at": AT},
            )
    migrate(engine, "upgrade", "0007")
    with engine.connect() as conn:
        # the fix column alone: the table has columns of later revisions (0008's push_id)
        fixes = list(conn.execute(select(order_reasons.c.fix).order_by(order_reasons.c.id)).scalars())
        stored = {
            k: fixes_from_data(json.loads(f) if isinstance(f, str) else f)
            for k, f in conn.execute(text("SELECT key, fixes FROM alerts"))
        }
    now_written = [
        R.sku_unmapped("ABC-1", "wh").fix,
        R.shipping_method_missing("wh").fix,
        R.required_field_missing("phone", "wh").fix,
        R.destination_rejected("wh", "bad zip").fix,
        R.destination_field_too_long("ShipStation", "items[].sku", 60, 50, "x").fix,
        R.invalid_order("the order has no lines").fix,
    ]
    assert fixes == now_written
    assert stored == {  # what the code raises such alerts with now
        "hold:sku_unmapped:ABC-1": (R.sku_unmapped("ABC-1", "wh").fix, show_holds("sku_unmapped", "ABC-1")),
        "digest:2026-11-20T00:00:00+00:00": (show_holds(),),
        "reconcile:5": (show_audit(5), register_webhooks("shop")),
        "connection_failing:1:credentials": (check_connection("shop"),),
        "webhooks_missing:1": (register_webhooks("shop"),),
        "test:x": (),
    }
    migrate(engine, "downgrade", "0006")
    with engine.connect() as conn:
        texts = conn.execute(text("SELECT fix FROM order_reasons ORDER BY id")).scalars().all()
        assert conn.execute(text("SELECT count(*) FROM alerts WHERE link = ''")).scalar_one() == len(links)
    assert texts == [f.text for f in now_written]


def test_0008_gives_held_pushes_reasons_by_checking_them_again_and_names_the_push_states(engine: Engine) -> None:
    migrate(engine, "upgrade", "0006")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, created_at) VALUES (7, 't7', 'T', :at)"), {"at": AT})
        for cid, name, role in ((1, "shop", "channel"), (2, "wh", "destination")):
            conn.execute(
                text(
                    "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                    " enabled, health, health_message, consecutive_failures, created_at)"
                    " VALUES (:id, 7, :name, 'shopify', :role, 'http://x', 'token', '{}', true, 'healthy', '', 0, :at)"
                ),
                {"id": cid, "name": name, "role": role, "at": AT},
            )
        conn.execute(
            text(
                "INSERT INTO orders (id, tenant_id, connection_id, external_id, number, state, version,"
                " content_hash, raw, received_at, updated_at)"
                " VALUES (1, 7, 1, '1001', '#1001', 'posted', 1, 'h', '{}', :at, :at)"
            ),
            {"at": AT},
        )
        for sid, status in ((1, "held"), (2, "pushed")):
            conn.execute(
                text(
                    "INSERT INTO shipments (id, tenant_id, destination_id, order_id, external_id, order_key, voided,"
                    " lines, received_at, updated_at) VALUES (:id, 7, 2, 1, :ext, 'ob-1-1001', false, '[]', :at, :at)"
                ),
                {"id": sid, "ext": f"S{sid}", "at": AT},
            )
            conn.execute(
                text(
                    "INSERT INTO fulfilment_pushes (id, tenant_id, shipment_id, order_id, channel_id, status,"
                    " reason_code, message, attempts, created_at, updated_at)"
                    " VALUES (:id, 7, :id, 1, 1, :status, NULL, 'm', 0, :at, :at)"
                ),
                {"id": sid, "status": status, "at": AT},
            )
    migrate(engine, "upgrade", "0008")
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM fulfilment_pushes ORDER BY id")).scalars().all()
        assert "push_id" in {c["name"] for c in inspect(conn).get_columns("order_reasons")}
    assert statuses == ["recheck", "pushed"]  # the next push run holds it again, with its fix
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE fulfilment_pushes SET status = 'sent' WHERE id = 2"))
    migrate(engine, "downgrade", "0006")
    with engine.connect() as conn:
        assert "push_id" not in {c["name"] for c in inspect(conn).get_columns("order_reasons")}
        assert conn.execute(text("SELECT count(*) FROM fulfilment_pushes")).scalar_one() == 2


def test_0009_adds_users_sessions_tokens_and_an_append_only_audit_trail_and_drops_them_again(engine: Engine) -> None:
    migrate(engine, "upgrade", "0009")
    added = {"users", "web_sessions", "api_tokens", "login_attempts", "user_actions", "tenant_settings"}
    with engine.connect() as conn:
        assert added <= set(inspect(conn).get_table_names())
        tenant_id = conn.execute(text("SELECT id FROM tenants WHERE slug = 'default'")).scalar_one()
    user = (
        "INSERT INTO users (tenant_id, email, name, password_hash, role, locale, created_at, password_changed_at)"
        " VALUES (:t, :email, 'A', '$argon2id$…', :role, 'en', :at, :at)"
    )
    with engine.begin() as conn:
        conn.execute(text(user), {"t": tenant_id, "email": "a@example.com", "role": "admin", "at": AT})
    for email, role in (("a@example.com", "viewer"), ("b@example.com", "owner")):  # unique e-mail; CHECK on role
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(user), {"t": tenant_id, "email": email, "role": role, "at": AT})
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_actions (tenant_id, at, actor_kind, actor_name, action, object_type, summary)"
                " VALUES (:t, :at, 'cli', 'cli:ops', 'user.add', 'user', 'added a@example.com')"
            ),
            {"t": tenant_id, "at": AT},
        )
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM user_actions"))
    migrate(engine, "downgrade", "0008")
    with engine.connect() as conn:
        assert not added & set(inspect(conn).get_table_names())
    migrate(engine, "upgrade", "head")  # and up again: nothing of the first run is left behind


def test_0010_gives_every_stored_order_its_search_email_and_skus_and_the_inbox_its_indexes(engine: Engine) -> None:
    migrate(engine, "upgrade", "0009")
    documents = {
        1: {"email": " Élodie.MARTIN@Example.FR ", "lines": [{"sku": "A-1"}, {"sku": "B-2"}, {"sku": "A-1"}]},
        2: {"email": "", "lines": [{"sku": None}, {"sku": ""}, {"title": "no sku"}]},
        3: {
            "email": "nul@example.com",
            "number": "#NUL\u0000",
            "lines": [{"sku": "C-3"}],
        },  # PostgreSQL's JSON refuses it
        4: None,  # an unreadable order: no content
    }
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, created_at) VALUES (7, 't7', 'T', :at)"), {"at": AT})
        conn.execute(
            text(
                "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                " enabled, health, health_message, consecutive_failures, created_at)"
                " VALUES (1, 7, 'shop', 'shopify', 'channel', 'http://x', 'token', '{}', true, 'healthy', '', 0, :at)"
            ),
            {"at": AT},
        )
        for oid, document in documents.items():
            conn.execute(
                text(
                    "INSERT INTO orders (id, tenant_id, connection_id, external_id, number, state, version,"
                    " content_hash, canonical, raw, received_at, updated_at)"
                    " VALUES (:id, 7, 1, :ext, :num, 'ready', 1, 'h', :doc, '{}', :at, :at)"
                ),
                {
                    "id": oid,
                    "ext": str(oid),
                    "num": f"#{oid}",
                    "doc": None if document is None else json.dumps(document),
                    "at": AT,
                },
            )
    migrate(engine, "upgrade", "0010")
    with engine.connect() as conn:
        emails = dict(conn.execute(text("SELECT id, email FROM orders ORDER BY id")).all())
        unplaced = conn.execute(text("SELECT count(*) FROM orders WHERE placed_at IS NULL")).scalar_one()
        skus = conn.execute(text("SELECT order_id, sku, tenant_id FROM order_skus ORDER BY order_id, sku")).all()
        listed = (
            "SELECT indexname FROM pg_indexes WHERE tablename = 'orders'"
            if conn.dialect.name == "postgresql"
            else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders'"
        )  # expression indexes: SQLAlchemy does not reflect them on SQLite
        indexes = set(conn.execute(text(listed)).scalars())
    assert emails == {1: "élodie.martin@example.fr", 2: None, 3: "nul@example.com", 4: None}
    assert [tuple(s) for s in skus] == [(1, "A-1", 7), (1, "B-2", 7), (3, "C-3", 7)]
    assert unplaced == 0  # no channel date: placed when received
    assert {
        "ix_orders_inbox_created",
        "ix_orders_inbox_state",
        "ix_orders_inbox_number",
        "ix_orders_inbox_email",
    } <= indexes
    assert "ix_orders_tenant_state" in indexes  # the poster's
    migrate(engine, "downgrade", "0009")
    with engine.connect() as conn:
        assert "email" not in {c["name"] for c in inspect(conn).get_columns("orders")}
        assert "order_skus" not in inspect(conn).get_table_names()


def test_0014_tallies_the_orders_already_in_the_ledger_by_state_and_recent_receipt_hour(engine: Engine) -> None:
    migrate(engine, "upgrade", "0011")
    now = datetime.now(UTC)
    recent = (now - timedelta(hours=3)).replace(minute=20, second=0, microsecond=0)
    pg = engine.dialect.name == "postgresql"

    def stamp(value: datetime) -> object:
        return value if pg else value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    with engine.begin() as conn:
        for tid in (7, 8):
            conn.execute(
                text("INSERT INTO tenants (id, slug, name, created_at) VALUES (:id, :slug, 'T', :at)"),
                {"id": tid, "slug": f"t{tid}", "at": AT},
            )
            conn.execute(
                text(
                    "INSERT INTO connections (id, tenant_id, name, kind, role, base_url, credentials, settings,"
                    " enabled, health, health_message, consecutive_failures, created_at)"
                    " VALUES (:id, :id, 'shop', 'shopify', 'channel', 'http://x', 't', '{}', true, 'healthy', '', 0,"
                    " :at)"
                ),
                {"id": tid, "at": AT},
            )
        ledger = [
            (7, "posted", recent),
            (7, "posted", recent),
            (7, "held", recent),
            (7, "posted", now - timedelta(days=9)),
        ]
        ledger.append((8, "held", now - timedelta(days=30)))
        for i, (tid, state, received) in enumerate(ledger, start=1):
            conn.execute(
                text(
                    "INSERT INTO orders (id, tenant_id, connection_id, external_id, number, state, version,"
                    " content_hash, raw, received_at, updated_at)"
                    " VALUES (:id, :tid, :tid, :ext, :number, :state, 1, 'h', '{}', :at, :at)"
                ),
                {"id": i, "tid": tid, "ext": str(i), "number": f"#{i}", "state": state, "at": stamp(received)},
            )
    migrate(engine, "upgrade", "0014")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT tenant_id, state, hour, n FROM order_tallies")).all()
    hour = recent.replace(minute=0)
    found = {(t, s, None if h is None else str(h)[:13].replace("T", " "), n) for t, s, h, n in rows}
    assert found == {
        (7, "posted", hour.strftime("%Y-%m-%d %H"), 2),
        (7, "held", hour.strftime("%Y-%m-%d %H"), 1),
        (7, "posted", None, 1),
        (8, "held", None, 1),
    }
    migrate(engine, "downgrade", "0011")
    with engine.connect() as conn:
        assert "order_tallies" not in inspect(conn).get_table_names()
