"""Issue #12: a Shopify response saying the connection's API version is deprecated or retired makes the
connection's health a warning and raises one alert with the fix, until the version is changed."""

from __future__ import annotations

from sqlalchemy import select

from orderbridge.cli.fixes import command
from orderbridge.fixes import Fix
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify import create_sandbox
from orderbridge.sandboxes.shopify.schema import newest_version, served_versions
from orderbridge.services.connections import add_connection, update_connection
from orderbridge.services.health import job_health
from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import alerts
from tests.scoped import cid, tenant


def _alerts(hub: Hub) -> list[tuple[str, str, int, str, str]]:
    with hub.db.read() as conn:
        return [
            (r.kind, r.state, r.occurrences, r.subject, r.body)
            for r in conn.execute(select(alerts).order_by(alerts.c.id))
        ]


def _alert_fixes(hub: Hub) -> tuple[Fix, ...]:
    with hub.db.read() as conn:
        return tuple(conn.execute(select(alerts.c.fixes).order_by(alerts.c.id)).scalar_one())


def _health(hub: Hub) -> tuple[str, str]:
    with hub.db.read() as conn:
        row = tenant(hub).connection_named(conn, "shop")
    return row.health, row.health_message


def test_a_retired_api_version_warns_on_health_and_in_one_alert_until_it_is_changed(hub: Hub) -> None:
    state, app = create_sandbox(orders=5, seed=3, limits=False)
    with run_in_thread(app) as sandbox:
        add_connection(
            tenant(hub),
            "shop",
            "shopify",
            sandbox.base_url,
            {"access_token": "shpat_sandbox"},
            {"api_version": "2025-01", "bulk_backfill": False},
        )
        for _ in range(2):  # every sync reads the headers; the cause is one alert, not one per run
            assert sync_channel(tenant(hub), cid(hub, "shop")).ok
        health, message = _health(hub)
        assert health == "degraded"
        assert "2025-01" in message and "api_version" in message and newest_version() in message
        [(kind, state_, occurrences, subject, body)] = _alerts(hub)
        assert (kind, state_, occurrences) == ("api_version_deprecated", "open", 2)
        assert "2025-01" in subject and "2026-01-01" in body  # when support ended
        [fix] = _alert_fixes(hub)  # the fix is data; the CLI renders it as the command to run
        assert command(fix) == f"orderbridge connections update shop --setting 'api_version=\"{newest_version()}\"'"
        assert {j["job"]: j["health"] for j in job_health(tenant(hub), hub_connection_id(hub))}[
            "api_version"
        ] == "degraded"

        update_connection(tenant(hub), cid(hub, "shop"), settings={"api_version": newest_version()})
        assert sync_channel(tenant(hub), cid(hub, "shop")).ok
        assert _health(hub)[0] == "healthy"
        assert [(a[0], a[1]) for a in _alerts(hub)] == [("api_version_deprecated", "resolved")]

        # a served version Shopify flags as deprecated warns too, with the date support ends
        oldest = served_versions()[0]
        state.deprecated_versions[oldest] = "This API version will be unsupported soon."
        update_connection(tenant(hub), cid(hub, "shop"), settings={"api_version": oldest})
        assert sync_channel(tenant(hub), cid(hub, "shop")).ok
        health, message = _health(hub)
        assert health == "degraded" and oldest in message and "support ends" in message
        assert [(a[0], a[1]) for a in _alerts(hub)] == [("api_version_deprecated", "open")]


def hub_connection_id(hub: Hub) -> int:
    with hub.db.read() as conn:
        return tenant(hub).connection_named(conn, "shop").id
