"""Files on disk are readable by their owner only: data directory 0700; database, WAL, shared
memory and key file 0600 — from creation, whatever the umask, and narrowed when found too open."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from orderbridge.crypto import generate_key
from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from orderbridge.settings import Settings
from orderbridge.storage.db import Database
from tests.e2e.helpers import cli
from tests.fakes import standard_world
from tests.scoped import cid, tenant


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: a file created with the default mode would be 0666 (0777 for a directory)."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_init_creates_the_data_directory_key_and_database_for_their_owner_only(
    tmp_path: Path, open_umask: None
) -> None:
    data = tmp_path / "data"
    result = cli({"ORDERBRIDGE_DATA_DIR": str(data)}, "init")
    assert result.returncode == 0, result.stderr[-2000:]
    assert mode(data) == 0o700
    assert mode(data / "secret.key") == 0o600
    assert mode(data / "orderbridge.db") == 0o600
    for extra in data.iterdir():  # whatever SQLite left behind (-wal, -shm) is private too
        assert mode(extra) == 0o600, extra.name


def test_init_narrows_a_data_directory_others_can_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    result = cli({"ORDERBRIDGE_DATA_DIR": str(data), "COLUMNS": "500"}, "init")
    assert result.returncode == 0, result.stderr[-2000:]
    assert mode(data) == 0o700
    assert "readable by its owner only" in result.stdout


def test_a_sync_leaves_the_database_its_wal_and_shared_memory_private(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, database_url=None, secret_key=generate_key())
    hub = Hub.from_settings(settings)
    try:
        standard_world(hub, 5)
        report = sync_channel(tenant(hub), cid(hub, "shop"))
        assert report.ok and report.counts.inserted == 5
        db = data / "orderbridge.db"
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists(), "the sync ran in WAL mode"
        assert {p.name: mode(p) for p in (db, wal, shm)} == {p.name: 0o600 for p in (db, wal, shm)}
        assert mode(data) == 0o700
    finally:
        hub.close()


def test_a_database_and_wal_found_readable_by_others_are_narrowed_on_open_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with db.transaction() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS scratch (x INTEGER)"))
        conn.execute(text("INSERT INTO scratch VALUES (1)"))
    wal = Path(f"{path}-wal")
    assert wal.exists()
    path.chmod(0o644)  # an install made before this rule, or a copy made with cp
    wal.chmod(0o644)
    with capture_logs() as logs:
        again = Database(f"sqlite:///{path}")  # the first engine's open connection keeps the WAL
        with again.read() as conn:
            assert conn.execute(text("SELECT x FROM scratch")).scalar_one() == 1
            assert mode(path) == 0o600 and mode(wal) == 0o600
    again.dispose()
    db.dispose()
    tightened = {e["path"] for e in logs if e["event"] == "file.tightened"}
    assert tightened == {str(path), str(wal)}


def test_a_key_file_readable_by_others_is_narrowed_when_it_is_read(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None, secret_key=None)
    key = generate_key()
    settings.key_file.write_text(key + "\n")
    settings.key_file.chmod(0o644)
    with capture_logs() as logs:
        assert settings.resolved_secret_key() == key
    assert mode(settings.key_file) == 0o600
    assert [e["event"] for e in logs] == ["file.tightened"]


def test_a_database_in_an_existing_shared_directory_leaves_the_directory_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    db = Database(f"sqlite:///{shared / 'ledger.db'}")
    db.migrate()
    db.dispose()
    assert mode(shared) == 0o755  # not the hub's to change: only its own files are narrowed
    assert mode(shared / "ledger.db") == 0o600
