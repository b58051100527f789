"""Shared fixtures: databases (SQLite always; PostgreSQL when reachable, required under CI=true).

PostgreSQL tests use one scratch database per test session (``ob_test_<random>``), migrated once
and truncated between tests; SQLite tests copy a migrated template file. Both run the real
Alembic migrations.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import structlog
from sqlalchemy import text

from orderbridge.cli.present import PRESENTATION
from orderbridge.crypto import SecretBox, generate_key
from orderbridge.services.hub import Hub
from orderbridge.settings import Settings
from orderbridge.storage.db import Database
from orderbridge.storage.tables import metadata
from tests.summaries import Tallies

PG_ADMIN = os.environ.get("ORDERBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


PG_OK = _pg_reachable()
if os.environ.get("CI") == "true" and not PG_OK:
    raise RuntimeError(f"CI=true but PostgreSQL is not reachable at {PG_ADMIN}: .ci/run must start it")

BACKENDS = ["sqlite", "postgresql"] if PG_OK else ["sqlite"]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not PG_OK:
        pytest.skip("PostgreSQL not reachable (these tests run whenever it is, and always under CI=true)")
    name = f"ob_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    db = Database(url)
    db.migrate()
    db.dispose()
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    return path


def _truncate_pg(url: str) -> None:
    db = Database(url)
    names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
    with db.transaction() as conn:
        conn.execute(text("SET session_replication_role = replica"))  # skip append-only triggers
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("SET session_replication_role = DEFAULT"))
        conn.execute(text("INSERT INTO tenants (slug, name, created_at) VALUES ('default', 'Default tenant', now())"))
    db.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "orderbridge.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        secret_key=generate_key(),
        poll_interval_s=0.2,
        shipment_poll_interval_s=0.2,
        cursor_overlap_s=5,
        lease_ttl_s=30,
    )


@pytest.fixture
def hub(settings: Settings) -> Iterator[Hub]:
    h = Hub.from_settings(settings, migrate=False, present=PRESENTATION)  # as the CLI composes it
    yield h
    h.close()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(generate_key())


def at(text_value: str) -> datetime:
    """Parse an ISO timestamp in tests; naive means UTC."""
    value = datetime.fromisoformat(text_value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="Run the chaos suite's long run (as ORDERBRIDGE_SOAK=1 does)")


# --- what the generated suites tried, in the terminal summary (tests/summaries.py) -------------

TALLIES = Tallies()


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = getattr(session.config, "workeroutput", None)
    if out is not None:  # an xdist worker: hand this process's counts to the controller
        out["orderbridge_tallies"] = TALLIES.local()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    TALLIES.add(getattr(node, "workeroutput", {}).get("orderbridge_tallies", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if hasattr(terminalreporter.config, "workeroutput"):
        return
    for section, lines in TALLIES.lines():
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _structlog_restored() -> Iterator[None]:
    """Every test leaves structlog as it found it: a CLI invocation configures it to print to the
    ``sys.stderr`` of that moment — under ``CliRunner`` a stream closed when the call returns — and a
    later test in the same process would then log into a closed file ("I/O operation on closed
    file"). Tests that save and restore it themselves keep doing so; this covers the rest."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
