"""``orderbridge updates …`` in-process over the test hub: the policies, and a decision naming an
update that does not exist."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
import structlog
from typer.testing import CliRunner

from orderbridge.cli import common, main
from orderbridge.services.audit_trail import recent_actions
from orderbridge.services.hub import Hub
from tests.scoped import tenant


@pytest.fixture
def cli(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[int, str, str]]]:
    monkeypatch.setattr(common, "make_hub", lambda: hub)
    monkeypatch.setattr(hub, "close", lambda: None)
    monkeypatch.setenv("LOGNAME", "ops")
    saved_logging = structlog.get_config()
    main.console.width = main.err.width = 2000

    def invoke(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(main.app, list(args))
        return result.exit_code, result.stdout, result.stderr

    yield invoke
    structlog.configure(**saved_logging)


def test_policies_are_listed_and_set_on_the_audit_trail(cli: Callable[..., tuple[int, str, str]], hub: Hub) -> None:
    code, out, err = cli("updates", "policies", "--json")
    assert code == 0, err
    rows = {r["change"]: r for r in json.loads(out)["policies"]}
    assert rows["lines"]["policy"] == "default" and rows["lines"]["default_after_posting"] == "review"
    code, out, err = cli("updates", "policies", "--set", "lines=apply", "--json")
    assert code == 0, err
    assert {r["change"]: r["policy"] for r in json.loads(out)["policies"]}["lines"] == "apply"
    assert [a.action for a in recent_actions(tenant(hub))] == ["updates.policies"]
    code, _out, err = cli("updates", "policies", "--set", "colour=apply")
    assert code != 0 and "not a change class" in err


def test_an_unknown_update_is_not_found_and_the_list_is_empty(cli: Callable[..., tuple[int, str, str]]) -> None:
    code, out, err = cli("updates", "list", "--json")
    assert code == 0 and json.loads(out) == {"updates": []}, err
    code, _out, err = cli("updates", "accept", "999")
    assert code != 0 and "no order update 999" in err
