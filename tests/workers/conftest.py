"""Fixtures for the procrastinate job engine: a PostgreSQL hub whose nudges are job rows, and
``orderbridge worker`` processes (real subprocesses, killed with real signals).

PostgreSQL only: these tests skip where it is not reachable, and run always under CI=true (the
``pg_url`` fixture of tests/conftest.py). Each test starts from empty ledger and job tables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orderbridge.cli.present import PRESENTATION
from orderbridge.crypto import generate_key
from orderbridge.runtime.engine import install
from orderbridge.services.hub import Hub
from orderbridge.settings import Settings
from tests.conftest import _truncate_pg

JOB_TABLES = "procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, procrastinate_workers"


def truncate_jobs(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {JOB_TABLES} RESTART IDENTITY CASCADE")


def jobs(url: str, where: str = "TRUE", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(f"SELECT * FROM procrastinate_jobs WHERE {where} ORDER BY id", params)  # type: ignore[arg-type]
        return list(cur.fetchall())


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path) -> Settings:
    _truncate_pg(pg_url)
    truncate_jobs(pg_url)
    return Settings(
        data_dir=tmp_path,
        database_url=pg_url,
        secret_key=generate_key(),
        poll_interval_s=2,
        shipment_poll_interval_s=2,
        cursor_overlap_s=1,
        lease_ttl_s=30,
        job_engine="procrastinate",
        worker_keep_jobs=True,
        worker_heartbeat_s=0.5,
        worker_stalled_after_s=2,
        worker_tick_s=1,
        webhook_sync_delay_s=0,
        unknown_outcome_settle_s=1,
    )


@pytest.fixture
def pg_hub(pg_settings: Settings) -> Iterator[Hub]:
    hub = Hub.from_settings(pg_settings, migrate=False, present=PRESENTATION)
    install(hub)
    yield hub
    hub.close()


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
        "ORDERBRIDGE_DATA_DIR": str(settings.data_dir),
        "ORDERBRIDGE_JOB_ENGINE": "procrastinate",
        "ORDERBRIDGE_POLL_INTERVAL_S": str(settings.poll_interval_s),
        "ORDERBRIDGE_SHIPMENT_POLL_INTERVAL_S": str(settings.shipment_poll_interval_s),
        "ORDERBRIDGE_CURSOR_OVERLAP_S": str(settings.cursor_overlap_s),
        "ORDERBRIDGE_LEASE_TTL_S": str(settings.lease_ttl_s),
        "ORDERBRIDGE_WORKER_KEEP_JOBS": "true",
        "ORDERBRIDGE_WORKER_HEARTBEAT_S": str(settings.worker_heartbeat_s),
        "ORDERBRIDGE_WORKER_STALLED_AFTER_S": str(settings.worker_stalled_after_s),
        "ORDERBRIDGE_WORKER_TICK_S": str(settings.worker_tick_s),
        "ORDERBRIDGE_WEBHOOK_SYNC_DELAY_S": str(settings.webhook_sync_delay_s),
        "ORDERBRIDGE_UNKNOWN_OUTCOME_SETTLE_S": str(settings.unknown_outcome_settle_s),
        "ORDERBRIDGE_WEBHOOKS": "false",
    }
    env.update(extra)
    return env


class Workers:
    """``orderbridge worker`` subprocesses, each with its own log file."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, crash_at: str | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env}
        env.pop("ORDERBRIDGE_CRASH_AT", None)
        if crash_at:
            env["ORDERBRIDGE_CRASH_AT"] = crash_at
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "orderbridge.cli.main", "worker", "--name", name, *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def running_workers(env: dict[str, str], logs: Path) -> Iterator[Workers]:
    workers = Workers(env, logs)
    try:
        yield workers
    finally:
        workers.stop_all()


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
