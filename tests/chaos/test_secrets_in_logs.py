"""Secrets never appear in logs or outputs (issue #18 item 7).

Distinctive secrets are seeded everywhere the hub holds one — a Shopify access token and webhook
secret, a ShipStation API key and secret (and the Basic credentials they make), the hub's secret
key, an SMTP password, the alert-webhook signing secret, the ops token, a portal user's password
and an API token. Then the hub works and fails with them: ``serve`` (web + runtime, DEBUG logs, in
both the key=value and the JSON renderer) syncs, posts, receives signed webhooks and a forged one,
meets injected 500s, a truncated body and revoked credentials, and the CLI lists, tests and syncs
connections. Every byte those processes wrote (stdout and stderr) is searched for every secret and
the forms it travels in (the Basic header's base64, the URL-quoted form).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

from orderbridge.cli.present import PRESENTATION
from orderbridge.crypto import generate_key
from orderbridge.sandboxes.base import Fault, free_port, run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.settings import Settings
from tests.scoped import cid, tenant

pytestmark = pytest.mark.slow

SECRETS = {
    "shopify_token": "shpat_SECRETtok3n9d1f0c",
    "shopify_webhook_secret": "shpss_SECRETw3bh00k77a",
    "shipstation_key": "SECRETsskey5501",
    "shipstation_secret": "SECRETsspass7702",
    "smtp_password": "SECRETsmtpPw!8813",
    "alert_webhook_secret": "SECRETalertHmac4491",
    "ops_token": "SECRETopsTok3nXYZ0123456",
    "user_password": "SECRET-portal-Passw0rd-6631",
}


def forms(secrets: dict[str, str]) -> dict[str, str]:
    """Each secret, and the encodings it is sent in."""
    out = dict(secrets)
    basic = f"{secrets['shipstation_key']}:{secrets['shipstation_secret']}"
    out["shipstation_basic"] = base64.b64encode(basic.encode()).decode()
    for name, value in list(secrets.items()):
        quoted = urllib.parse.quote(value, safe="")
        if quoted != value:
            out[f"{name}_quoted"] = quoted
    return out


def test_no_secret_reaches_any_log_or_output(tmp_path: Path) -> None:
    secret_key = generate_key()
    secrets = {**SECRETS, "secret_key": secret_key}
    settings = Settings(data_dir=tmp_path, secret_key=secret_key)
    shop_state, shop_app = shopify_sandbox(
        orders=30, seed=5, limits=False, realistic=False, access_token=SECRETS["shopify_token"],
        api_secret=SECRETS["shopify_webhook_secret"], webhook_retry_scale=0.001,
    )  # fmt: skip
    ss_state, ss_app = shipstation_sandbox(
        limits=False, ship_after_seconds=0.0, api_key=SECRETS["shipstation_key"],
        api_secret=SECRETS["shipstation_secret"],
    )  # fmt: skip
    outputs: list[str] = []
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss:
        hub = Hub.from_settings(settings, present=PRESENTATION)
        add_connection(
            tenant(hub), "shop", "shopify", shop.base_url,
            {"access_token": SECRETS["shopify_token"], "api_secret": SECRETS["shopify_webhook_secret"]},
            {"bulk_backfill": False},
        )  # fmt: skip
        add_connection(
            tenant(hub), "warehouse", "shipstation", ss.base_url,
            {"api_key": SECRETS["shipstation_key"], "api_secret": SECRETS["shipstation_secret"]},
        )  # fmt: skip
        for sku, _t, _p in generator.CATALOG:
            set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
        set_mapping(tenant(hub), "shipping", "*", "ups:ups_ground", cid(hub, "warehouse"))
        hub.close()
        port = free_port()
        env = {
            **os.environ,
            "ORDERBRIDGE_DATA_DIR": str(tmp_path),
            "ORDERBRIDGE_SECRET_KEY": secret_key,
            "ORDERBRIDGE_LOG_LEVEL": "DEBUG",
            "ORDERBRIDGE_POLL_INTERVAL_S": "0.5",
            "ORDERBRIDGE_SHIPMENT_POLL_INTERVAL_S": "0.5",
            "ORDERBRIDGE_CURSOR_OVERLAP_S": "5",
            "ORDERBRIDGE_HTTP_TIMEOUT_S": "2",
            "ORDERBRIDGE_SMTP_HOST": "127.0.0.1",
            "ORDERBRIDGE_SMTP_PORT": str(free_port()),  # nothing listens: every mail fails, with its error logged
            "ORDERBRIDGE_SMTP_USER": "alerts@example.test",
            "ORDERBRIDGE_SMTP_PASSWORD": SECRETS["smtp_password"],
            "ORDERBRIDGE_ALERT_RECIPIENTS": "ops@example.test",
            "ORDERBRIDGE_ALERT_WEBHOOK_URLS": f"http://127.0.0.1:{free_port()}/hook",
            "ORDERBRIDGE_ALERT_WEBHOOK_SECRET": SECRETS["alert_webhook_secret"],
            "ORDERBRIDGE_ALERT_WEBHOOK_ALLOW_PRIVATE": "true",
            "ORDERBRIDGE_OPS_TOKEN": SECRETS["ops_token"],
            "ORDERBRIDGE_PASSWORD_TIME_COST": "1",
            "ORDERBRIDGE_PASSWORD_MEMORY_KIB": "64",
            "ORDERBRIDGE_PASSWORD_PARALLELISM": "1",
        }
        env.pop("ORDERBRIDGE_CRASH_AT", None)

        def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(
                [sys.executable, "-m", "orderbridge.cli.main", *args],
                env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            outputs.extend([done.stdout, done.stderr])
            return done

        added = cli("users", "add", "admin@example.test", "--role", "admin", "--password-stdin",
                    stdin=SECRETS["user_password"] + "\n")  # fmt: skip
        assert added.returncode == 0, added.stderr
        token = cli("tokens", "create", "ERP export", "--role", "admin", "--json")
        assert token.returncode == 0, token.stderr
        api_token = json.loads(token.stdout)["token"]  # shown once, to whoever created it, and never again

        for log_json in ("false", "true"):
            env["ORDERBRIDGE_LOG_JSON"] = log_json
            serve = subprocess.Popen(
                [sys.executable, "-m", "orderbridge.cli.main", "serve", "--port", str(port), "--tick", "0.2"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                base = f"http://127.0.0.1:{port}"
                _wait(lambda b=base: _up(b))  # type: ignore[misc]
                _wait(lambda p=serve: len(ss_state.orders_by_key()) >= 30 or p.poll() is not None, 60)  # type: ignore[misc]
                # signed webhooks (the store's own), and a forged one
                for _ in range(3):
                    shop_state.add_order()
                body = b'{"id": 1}'
                forged = base64.b64encode(hmac.new(b"wrong", body, hashlib.sha256).digest()).decode()
                httpx.post(
                    f"{base}/webhooks/shopify/{cid_of(settings, 'shop')}", content=body,
                    headers={"X-Shopify-Hmac-Sha256": forged, "X-Shopify-Topic": "orders/create",
                             "X-Shopify-Shop-Domain": "x.myshopify.com"},
                )  # fmt: skip
                # ops endpoints with the token and with a wrong one; the API with the token
                httpx.get(f"{base}/healthz", headers={"Authorization": f"Bearer {SECRETS['ops_token']}"})
                httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong-token-0000000000"})
                httpx.get(f"{base}/api/v1/orders", headers={"Authorization": f"Bearer {api_token}"})
                httpx.post(
                    f"{base}/login",
                    data={"email": "admin@example.test", "password": SECRETS["user_password"] + "-wrong"},
                )
                # faults: 500s, a truncated body, then revoked credentials on both systems
                for state in (shop_state, ss_state):
                    state.add_fault(Fault("500", count=2))
                    state.add_fault(Fault("truncate", count=1))
                shop_state.add_order()
                time.sleep(2.0)
                shop_state.revoke()
                ss_state.revoke()
                shop_state.add_order()
                time.sleep(2.5)
                shop_state.restore()
                ss_state.restore()
                time.sleep(1.0)
            finally:
                serve.send_signal(signal.SIGTERM)
                try:
                    out, err = serve.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    serve.kill()
                    out, err = serve.communicate()
                outputs.extend([out, err])
        for args in (("connections", "list", "--json"), ("connections", "test", "warehouse"), ("health", "--json"),
                     ("sync", "--json"), ("alerts", "--json"), ("holds", "--json")):  # fmt: skip
            cli(*args)
        ss_state.revoke()
        cli("connections", "test", "warehouse")
        cli("sync", "--json")

    captured = "\n".join(outputs)
    # the test could fail: the hub did log, and it logged the failures this test caused
    assert "webhook" in captured and len(captured) > 5_000
    assert "auth" in captured.lower()
    assert api_token in token.stdout  # the search finds what is there
    leaked = {name: value for name, value in forms(secrets).items() if value in captured}
    assert leaked == {}, f"secrets in logs/outputs: {sorted(leaked)}"
    assert api_token not in "\n".join(o for o in outputs if o is not token.stdout), "the API token was echoed again"


def cid_of(settings: Settings, name: str) -> int:
    hub = Hub.from_settings(settings, migrate=False)
    try:
        return cid(hub, name)
    finally:
        hub.close()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _wait(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
