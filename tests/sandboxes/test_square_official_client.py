"""Square's official Python SDK (``squareup`` on PyPI) reads back what the hub created in the sandbox.

The SDK is installed in a venv of its own (``scripts/install-test-clients.sh``: its httpx and pydantic
pins must not move the hub's) and runs as a separate process, configured only by its documented
``base_url`` setting (``Square(token=…, base_url=…)``, which replaces the production or sandbox
environment). It parses every answer into its own pydantic models, so a field of the wrong type or
shape in the sandbox fails here, independently of OrderBridge's own reading of it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from orderbridge.connectors.square import SquareDestination
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.square import create_sandbox
from orderbridge.sandboxes.square.app import ACCESS_TOKEN, LOCATION_ID, TEAM_MEMBER_ID
from tests.builders import replace
from tests.connectors._square_fixtures import taxed_order
from tests.connectors.contract_destination import outgoing

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "clients" / "squareup" / "bin" / "python"
SCRIPT = Path(__file__).with_name("square_sdk") / "read_back.py"


@pytest.mark.slow
def test_the_official_sdk_reads_back_the_order_payment_and_attribute_the_hub_created() -> None:
    assert PYTHON.exists(), "squareup is not installed: run `make setup` (scripts/install-test-clients.sh)"
    state, app = create_sandbox()
    settings = {
        "location_id": LOCATION_ID,
        "team_member_id": TEAM_MEMBER_ID,
        "custom_attributes": {"web-order": "number"},
    }
    order = replace(
        taxed_order(1, ["20.99", "21.99"], rate="0.0825", channel_tax="3.55", shipping="4.95", skus=["SKU-1", "SKU-2"]),
        number="#5001",
    )
    with run_in_thread(app) as running, httpx.Client(timeout=10) as http:
        connector = SquareDestination(running.base_url, {"access_token": ACCESS_TOKEN}, settings, http=http)
        (result,) = connector.post_orders([outgoing(order)])
        assert result.ok and result.document_id
        done = subprocess.run(
            [str(PYTHON), str(SCRIPT), running.base_url, ACCESS_TOKEN, result.document_id, "web-order"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    variations = seen["variations"]
    assert seen["order"] == {
        "id": result.document_id,
        "reference_id": "#5001",
        "state": "OPEN",
        "total": 2099 + 2199 + 355 + 495,
        "tax": 355,
        "lines": [[variations["SKU-1"], "1"], [variations["SKU-2"], "1"]],
        "fulfillment": "SHIPMENT",
        "due": 0,
    }
    assert seen["payment"] == {
        "amount": 2099 + 2199 + 355 + 495,
        "source_type": "EXTERNAL",
        "external_source": "Shopify",
        "team_member_id": TEAM_MEMBER_ID,
        "order_id": result.document_id,
    }
    assert seen["location"] == {"id": LOCATION_ID, "status": "ACTIVE"}
    assert seen["member_status"] == "ACTIVE" and seen["attribute"] == "#5001"
    assert len(state.entries("order_created")) == 1 and len(state.entries("payment_created")) == 1
