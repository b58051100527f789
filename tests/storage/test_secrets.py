"""Credentials at rest and the refusal to run with a missing or published key."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from orderbridge.cli.fixes import command
from orderbridge.crypto import SecretBox, generate_key
from orderbridge.errors import SettingsError
from orderbridge.services.hub import Hub
from orderbridge.settings import DEMO_SECRET_KEY, Settings
from orderbridge.storage.tables import connections
from tests.fakes import FakeChannel, install


def test_credentials_are_stored_encrypted(hub: Hub) -> None:
    install(hub, FakeChannel())
    with hub.db.read() as conn:
        stored = conn.execute(select(connections.c.credentials)).scalar_one()
    assert "token" not in stored and hub.box.open(stored) == {"token": "t"}


def test_a_token_from_another_key_is_refused_with_a_fix() -> None:
    token = SecretBox(generate_key()).seal({"a": "b"})
    with pytest.raises(SettingsError, match="cannot be decrypted") as info:
        SecretBox(generate_key()).open(token)
    assert "re-enter" in info.value.hint


def test_outside_the_demo_a_missing_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no secret key") as info:
        Settings(data_dir=tmp_path).resolved_secret_key()
    assert info.value.fix is not None and command(info.value.fix) == "orderbridge init"


def test_outside_the_demo_the_published_demo_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="demo key"):
        Settings(data_dir=tmp_path, secret_key=DEMO_SECRET_KEY).resolved_secret_key()
    assert Settings(data_dir=tmp_path, demo=True).resolved_secret_key() == DEMO_SECRET_KEY


def test_a_malformed_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="not a valid Fernet key"):
        SecretBox("short")
