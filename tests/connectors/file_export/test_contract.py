"""The shared destination contract, run against the file-export destination and a real drop
directory: the files in it are the remote's own record."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderbridge.errors import SettingsError
from tests.connectors.contract_destination import DestinationContract, make_order, outgoing
from tests.connectors.file_export.env import COLUMNS, FileExportEnv, build, delivered

NO_HTTP = (
    "a drop directory has no HTTP status, credentials or rate limit; its failures (a missing directory, "
    "a write that fails mid-way, a kill) are proven in test_store.py and tests/services/test_file_deliveries.py"
)


class TestFileExportDestinationContract(DestinationContract):
    @pytest.fixture
    def destination_env(self, tmp_path: Path) -> FileExportEnv:
        drop = tmp_path / "drop"
        drop.mkdir()
        connector = build(drop, template={"columns": COLUMNS, "encoding": "cp1252"})
        return FileExportEnv(drop, connector)

    @pytest.mark.skip(reason=NO_HTTP)
    def test_a_transient_failure_is_retried_and_the_order_posted_once(self) -> None: ...

    @pytest.mark.skip(reason=NO_HTTP)
    def test_a_timeout_is_retried_and_the_order_posted_once(self) -> None: ...

    @pytest.mark.skip(reason=NO_HTTP)
    def test_revoked_credentials_raise_auth_failed_until_restored(self) -> None: ...

    @pytest.mark.skip(reason=NO_HTTP)
    def test_a_refused_permission_raises_permission_denied_not_auth_failed(self) -> None: ...


def test_a_missing_drop_directory_is_a_settings_error_with_the_fix_and_nothing_is_lost(tmp_path: Path) -> None:
    drop = tmp_path / "not-yet"
    connector = build(drop)
    batch = [outgoing(make_order(1)), outgoing(make_order(2))]
    with pytest.raises(SettingsError) as refused:
        connector.post_orders(batch)
    assert "not there" in str(refused.value) and refused.value.fix is not None
    assert refused.value.fix.param("setting") == "directory"
    with pytest.raises(SettingsError):
        connector.check()
    drop.mkdir()
    assert "writable" in connector.check()
    results = connector.post_orders(batch)
    assert all(r.ok for r in results) and len(delivered(drop)) == 1


def test_a_relative_directory_or_an_unknown_template_field_is_refused_when_built(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        build(Path("relative/drop"))
    with pytest.raises(SettingsError) as bad:
        build(tmp_path, template={"columns": ["order_number", "password"]})
    assert "password" in str(bad.value)
    with pytest.raises(SettingsError):
        build(tmp_path, file_name="../escape-{batch}.csv")
    with pytest.raises(SettingsError):
        build(tmp_path, template={"xml_elements": {"Order": "<script>"}})
