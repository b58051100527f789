"""The CLI as a user runs it: demo accounting and the operator commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orderbridge.runtime.leases import held
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.settings import Settings
from tests.e2e.helpers import cli


@pytest.mark.slow
def test_demo_json_accounts_for_every_channel_order(tmp_path: Path) -> None:
    result = cli({"ORDERBRIDGE_DATA_DIR": str(tmp_path)}, "demo", "--json", "--orders", "160")
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    for key in ("channel_orders", "posted", "held", "skipped", "unaccounted", "held_by_reason", "skipped_by_reason"):
        assert key in data
    assert data["channel_orders"] == 160 and data["unaccounted"] == 0
    assert data["posted"] + data["held"] + data["skipped"] == 160
    assert data["destination_documents"] == data["posted"] and data["destination_posted_twice"] == 0
    assert "sku_unmapped" in data["held_by_reason"]
    assert data["crashed_jobs"] == []


def test_a_command_without_a_secret_key_says_how_to_make_one(tmp_path: Path) -> None:
    result = cli({"ORDERBRIDGE_DATA_DIR": str(tmp_path)}, "connections", "list")
    assert result.returncode == 2
    assert "no secret key" in result.stderr and "orderbridge init" in result.stderr


def test_init_then_the_operator_commands_work_on_an_empty_ledger(tmp_path: Path) -> None:
    env = {"ORDERBRIDGE_DATA_DIR": str(tmp_path)}
    assert cli(env, "init").returncode == 0
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    listed = cli(env, "orders", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    assert "nothing held" in cli(env, "holds").stdout
    bad = cli(env, "connections", "add", "x", "--kind", "nosuch", "--url", "http://x")
    assert bad.returncode == 2 and "unknown connection kind 'nosuch'" in bad.stderr
    missing = cli(env, "connections", "add", "x", "--kind", "shopify", "--url", "http://x")
    assert missing.returncode == 2 and "access_token" in missing.stderr


def test_a_second_process_cannot_sync_a_connection_whose_lease_is_held(hub: Hub, settings: Settings) -> None:
    add_connection(hub, "shop", "shopify", "http://127.0.0.1:9", {"access_token": "x"})
    env = {
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
    }
    with hub.db.read() as conn:
        shop_id = hub.connection(conn, "shop").id
    with held(hub.db, f"sync:{shop_id}", 60, hub.now):
        result = cli(env, "sync", "shop")
    assert result.returncode == 2
    assert "already running in another worker" in result.stderr


@pytest.mark.slow
def test_the_ingest_benchmark_prints_its_figures_as_one_json_object(tmp_path: Path) -> None:
    result = cli(
        {"ORDERBRIDGE_DATA_DIR": str(tmp_path)},
        "bench",
        "ingest",
        "--orders",
        "300",
        "--no-backfill",
        "--json",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    for key in (
        "floor_orders_per_s",
        "ingest_orders_per_s",
        "e2e_orders_per_s",
        "peer_dlt_orders_per_s",
        "peak_rss_mb",
    ):
        assert data[key] > 0
    assert data["destination_state"]["orders"] == 300
