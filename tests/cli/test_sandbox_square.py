"""``orderbridge sandbox square`` serves the Square emulator over real HTTP, with the seed traps as options."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from orderbridge.sandboxes.base import free_port
from orderbridge.sandboxes.square.app import ACCESS_TOKEN, TEAM_MEMBER_ID


def test_the_command_serves_square_with_the_archived_member_trap() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orderbridge.cli.main",
            "sandbox",
            "square",
            "--port",
            str(port),
            "--team-member-status",
            "INACTIVE",
            "--helper-item",
            "Shopify Shipping",
        ],
        env={**os.environ, "PYTHONPATH": "src"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
        deadline = time.monotonic() + 30
        while True:
            try:
                member = httpx.get(f"http://127.0.0.1:{port}/v2/team-members/{TEAM_MEMBER_ID}", headers=headers)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "the sandbox did not start"
                time.sleep(0.1)
        assert member.status_code == 200 and member.json()["team_member"]["status"] == "INACTIVE"
        found = httpx.post(
            f"http://127.0.0.1:{port}/v2/catalog/search",
            headers=headers,
            json={
                "object_types": ["ITEM_VARIATION"],
                "query": {"exact_query": {"attribute_name": "sku", "attribute_value": "Shopify Shipping"}},
            },
        )
        assert [o["item_variation_data"]["sku"] for o in found.json()["objects"]] == ["Shopify Shipping"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "access_token" in (process.stderr.read() if process.stderr else "")
