"""/healthz and /metrics keep their own rule: open on a loopback hub, behind the ops token when one is set."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.services.hub import Hub
from orderbridge.services.tenants import add_tenant
from orderbridge.settings import Settings
from orderbridge.web.app import create_app

TOKEN = "ops-token-0123456789abcdef"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ops_token": TOKEN})


@pytest.fixture
def server(hub: Hub) -> Iterator[str]:
    add_tenant(hub, "acme", "Acme")
    with run_in_thread(create_app(hub)) as running:  # type: ignore[arg-type]
        yield running.base_url


def test_healthz_tells_a_stranger_only_the_overall_status(server: str) -> None:
    answer = httpx.get(f"{server}/healthz")
    assert answer.status_code == 200
    assert set(answer.json()) == {"status", "at"}


def test_healthz_gives_the_detail_to_the_ops_token(server: str) -> None:
    answer = httpx.get(f"{server}/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and "connections" in answer.json()


def test_metrics_need_the_ops_token(server: str) -> None:
    assert httpx.get(f"{server}/metrics").status_code == 401
    assert httpx.get(f"{server}/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    answer = httpx.get(f"{server}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and "orderbridge_" in answer.text
