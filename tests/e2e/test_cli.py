"""The CLI as a user runs it: demo accounting and the operator commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orderbridge.domain.shipments import Shipment, ShipmentLine
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.sync import sync_channel
from orderbridge.settings import Settings
from orderbridge.storage.leases import held
from tests.builders import T0, order
from tests.e2e.helpers import cli
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid, tenant


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


def test_holds_lists_held_fulfilment_pushes_by_cause_with_held_orders(hub: Hub, settings: Settings) -> None:
    channel, destination = FakeChannel(), FakeDestination()
    channel.put(order(1))
    channel.put(order(2, skus=("ABC-1",), updated_minutes=1))  # held: its SKU is not mapped
    install(hub, channel, destination)
    scope, shop, wh = tenant(hub), cid(hub, "shop"), cid(hub, "wh")
    set_mapping(scope, "sku", "SKU-1", "W-1", wh)
    set_mapping(scope, "shipping", "Standard", "ups:ups_ground", wh)
    sync_channel(scope, shop)
    post_ready(scope, wh)
    (key,) = destination.documents
    destination.shipments.append(Shipment("S-1", key, None, "ups", None, T0, False, (ShipmentLine("L1", "SKU-1", 1),)))
    poll_shipments(scope, wh)
    assert push_fulfilments(scope, shop).held == 1
    env = {
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
        "COLUMNS": "2000",
    }
    out = cli(env, "holds").stdout
    assert "1 order(s) held — sku_unmapped ABC-1:" in out
    pushed = (
        "1 fulfilment push(es) of 1 order(s) held — tracking_number_missing shop: shipment S-1 has no tracking number"
    )
    assert pushed in out and "e.g. #1001 (shipment S-1)" in out
    assert "fix: Add the tracking number in the 3PL" in out
    (group,) = [g for g in json.loads(cli(env, "holds", "--json").stdout) if g["kind"] == "push"]
    assert (group["code"], group["value"], group["pushes"], group["orders"]) == (
        "tracking_number_missing",
        "shop",
        1,
        1,
    )


def test_connector_kinds_are_listed_and_connections_added_by_their_declared_names(tmp_path: Path) -> None:
    env = {"ORDERBRIDGE_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    assert cli(env, "init").returncode == 0
    kinds = cli(env, "connections", "kinds", "--json")
    assert kinds.returncode == 0, kinds.stderr
    about = {k["kind"]: k for k in json.loads(kinds.stdout)}
    assert set(about) == {
        "shopify", "shipstation", "manual", "file_export", "quickbooks", "square", "heartland", "woocommerce", "mirakl"
    }
    assert about["quickbooks"]["amendments"]["refunded"] == "adjust" and about["quickbooks"]["mapping_kinds"] == ["sku"]
    assert about["file_export"]["capabilities"] == ["post_orders", "watch_deliveries"]
    (tmp_path / "drop").mkdir()
    books = cli(env, "connections", "add", "books", "--kind", "file_export", "--url", f"file://{tmp_path / 'drop'}")
    assert books.returncode == 0, books.stderr
    assert "writable" in cli(env, "connections", "test", "books").stdout
    assert about["manual"]["credentials"] == [] and about["manual"]["capabilities"] == []
    by_hand = cli(env, "connections", "add", "m", "--kind", "manual", "--url", "http://x")
    assert by_hand.returncode == 2 and "not added by hand" in by_hand.stderr and "manual-orders.md" in by_hand.stderr
    assert "push_fulfilment" in about["shopify"]["capabilities"] and about["shopify"]["role"] == "channel"
    rules = next(s for s in about["shopify"]["settings"] if s["name"] == "download_rules")
    assert rules["default"]["financial_statuses"] == ["paid"] and rules["read_by"] == "hub"
    assert about["shipstation"]["mapping_kinds"] == ["shipping", "sku"]
    shown = cli(env, "connections", "kinds", "shopify")
    assert shown.returncode == 0 and "api_secret" in shown.stdout and "shop_domain" in shown.stdout
    assert "orders/create" in shown.stdout
    unknown = cli(
        env, "connections", "add", "x", "--kind", "shopify", "--url", "http://x", "--credential", "access_token=t",
        "--setting", "colour=red",
    )  # fmt: skip
    assert unknown.returncode == 2 and "no setting(s) colour" in unknown.stderr and "shop_domain" in unknown.stderr
    added = cli(
        env, "connections", "add", "x", "--kind", "shipstation", "--url", "http://x", "--credential", "api_key=k",
        "--credential", "api_secret=s", "--setting", 'required_fields=["email"]',
    )  # fmt: skip
    assert added.returncode == 0, added.stderr


def test_a_second_process_cannot_sync_a_connection_whose_lease_is_held(hub: Hub, settings: Settings) -> None:
    add_connection(tenant(hub), "shop", "shopify", "http://127.0.0.1:9", {"access_token": "x"})
    env = {
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
    }
    with hub.db.read() as conn:
        shop_id = tenant(hub).connection_named(conn, "shop").id
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
        "--repeats",
        "2",
        "--json",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert {k: len(v) for k, v in data["runs"].items()} == {
        "ingest_s": 2,
        "e2e_s": 2,
        "floor_s": 2,
        "write_floor_s": 2,
        "peer_dlt_s": 2,
    }
    for key in (
        "floor_orders_per_s",
        "write_floor_orders_per_s",
        "ingest_to_floor_plus_write",
        "floor_plus_write_to_dlt",
        "ingest_orders_per_s",
        "e2e_orders_per_s",
        "peer_dlt_orders_per_s",
        "peak_rss_mb",
    ):
        assert data[key] > 0
    assert data["destination_state"]["orders"] == 300


@pytest.mark.slow
def test_the_latency_benchmark_prints_percentiles_for_webhooks_and_polling(tmp_path: Path) -> None:
    result = cli(
        {"ORDERBRIDGE_DATA_DIR": str(tmp_path)},
        "bench",
        "latency",
        "--orders",
        "40",
        "--rate",
        "20",
        "--poll-interval",
        "1",
        "--json",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["webhook_posted"] == 40 and data["poll_posted"] == 40
    for key in ("webhook_p50_ms", "webhook_p95_ms", "webhook_p99_ms", "poll_p50_ms", "poll_p99_ms"):
        assert data[key] > 0
    assert data["webhook_p50_ms"] <= data["webhook_p95_ms"] <= data["webhook_p99_ms"]
    # the latency bar itself is the benchmark's (docs/benchmarks.md), not a timed test's: here only
    # the ratio measured in the same run — a webhook beats a 1 s poll
    assert data["webhook_p50_ms"] < data["poll_p50_ms"], data


def test_reconcile_audits_health_and_alerts_from_the_command_line(hub: Hub, settings: Settings) -> None:
    from orderbridge.sandboxes.base import run_in_thread
    from orderbridge.sandboxes.shopify.app import create_sandbox

    state, app = create_sandbox(orders=30, seed=9, limits=False)
    env = {
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
    }
    with run_in_thread(app) as shop:
        add_connection(tenant(hub), "shop", "shopify", shop.base_url, {"access_token": "shpat_sandbox"})
        audit = cli(env, "reconcile", "shop", "--since", "90d", "--json")
        assert audit.returncode == 0, audit.stderr[-2000:]
        report = json.loads(audit.stdout)
        assert (report["channel_count"], report["recovered"], report["missing"]) == (30, 30, 0)
        assert {f["cause"] for f in report["findings"]} == {"never_synced"}
        listed = cli(env, "audits", "shop", "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout)[0]["recovered"] == 30
        bad = cli(env, "reconcile", "shop", "--since", "yesterday-ish")
        assert bad.returncode == 2 and "72h, 60d, 30m or an ISO time" in bad.stderr
        alerts = cli(env, "alerts", "--json")
        assert alerts.returncode == 0
        kinds = [a["kind"] for a in json.loads(alerts.stdout)["alerts"]]
        assert kinds == ["reconciliation_finding"]
        state.revoke()
        failing = cli(env, "sync", "shop")
        assert failing.returncode == 1
        health = cli(env, "health", "--json")
        assert health.returncode == 1  # a failing connection makes the command fail, like /healthz
        shop_health = {c["name"]: c for c in json.loads(health.stdout)["connections"]}["shop"]
        assert shop_health["health"] == "failing" and "refused the credentials" in shop_health["message"]
        no_hooks = cli(env, "webhooks", "register", "shop")
        assert no_hooks.returncode == 2 and "api_secret" in no_hooks.stderr


def test_tenant_picks_whose_connections_and_orders_a_command_sees(tmp_path: Path) -> None:
    env = {"ORDERBRIDGE_DATA_DIR": str(tmp_path)}
    assert cli(env, "init").returncode == 0
    added = cli(env, "tenants", "add", "acme", "--name", "Acme Ltd")
    assert added.returncode == 0 and "added tenant acme" in added.stdout, added.stderr
    assert cli(env, "tenants", "add", "acme").returncode == 2  # slugs are unique
    url = "http://127.0.0.1:9"
    for who in ((), ("--tenant", "acme")):  # the same name in both tenants
        made = cli(
            env, *who, "connections", "add", "shop", "--kind", "shopify", "--url", url, "--credential", "access_token=x"
        )
        assert made.returncode == 0, made.stderr
    acme = json.loads(cli(env, "--tenant", "acme", "connections", "list", "--json").stdout)
    default = json.loads(cli(env, "connections", "list", "--json").stdout)
    assert [c["name"] for c in acme] == [c["name"] for c in default] == ["shop"]
    assert acme[0]["id"] != default[0]["id"]
    via_env = json.loads(cli({**env, "ORDERBRIDGE_TENANT": "acme"}, "connections", "list", "--json").stdout)
    assert [c["id"] for c in via_env] == [acme[0]["id"]]
    nosuch = cli(env, "--tenant", "nosuch", "holds")
    assert nosuch.returncode == 2 and "no tenant 'nosuch'" in nosuch.stderr and "acme" in nosuch.stderr
    listed = json.loads(cli(env, "tenants", "list", "--json").stdout)
    assert [t["slug"] for t in listed] == ["default", "acme"]
