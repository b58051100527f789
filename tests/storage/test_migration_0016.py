"""Migration 0016 (CSV imports) adds the uploads and their chunks, and takes them away again."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from tests.storage.test_migrations import AT, engine, migrate

__all__ = ["engine"]  # the fixture: one empty database per backend


def test_0016_adds_uploads_with_unique_tokens_and_their_chunks_and_drops_them_again(engine: Engine) -> None:
    migrate(engine, "upgrade", "0016")
    insert_upload = text(
        "INSERT INTO import_uploads (tenant_id, token, filename, size, sha256, created_by, created_at, expires_at,"
        " rows_done) VALUES (:t, 'tok', 'a.csv', 3, 'h', 'cli:ops', :at, :at, 0)"
    )
    with engine.begin() as conn:
        assert {"import_uploads", "import_chunks"} <= set(inspect(conn).get_table_names())
        tenant_id = conn.execute(text("SELECT id FROM tenants WHERE slug = 'default'")).scalar_one()
        conn.execute(insert_upload, {"t": tenant_id, "at": AT})
        upload_id = conn.execute(text("SELECT id FROM import_uploads")).scalar_one()
        conn.execute(
            text("INSERT INTO import_chunks (upload_id, seq, data) VALUES (:u, 0, :d)"),
            {"u": upload_id, "d": b"a\x00b"},
        )
        assert conn.execute(text("SELECT data FROM import_chunks")).scalar_one() == b"a\x00b"  # any bytes
    with pytest.raises(IntegrityError), engine.begin() as conn:  # a token names one upload
        conn.execute(insert_upload, {"t": tenant_id, "at": AT})
    migrate(engine, "downgrade", "0015")
    with engine.connect() as conn:
        assert not {"import_uploads", "import_chunks"} & set(inspect(conn).get_table_names())
    migrate(engine, "upgrade", "head")
