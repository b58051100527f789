"""``orderbridge users …`` and ``orderbridge tokens …`` in-process over the test hub (SQLite and
PostgreSQL): what an operator types, what they see, and what the ledger then holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import structlog
from typer.testing import CliRunner

from orderbridge.cli import common, main
from orderbridge.services.audit_trail import recent_actions
from orderbridge.services.auth import authenticate, resolve_token
from orderbridge.services.hub import Hub
from orderbridge.services.tenants import add_tenant
from orderbridge.settings import Settings
from tests.scoped import tenant

PASSWORD = "correct horse battery"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(hub: Hub, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Run ``orderbridge …`` in-process against ``hub``; argon2 at its cheapest."""
    settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism = 1, 64, 1
    monkeypatch.setattr(common, "make_hub", lambda: hub)
    monkeypatch.setattr(hub, "close", lambda: None)
    monkeypatch.setenv("LOGNAME", "ops")
    saved_logging = structlog.get_config()
    main.console.width = main.err.width = 2000

    def invoke(*args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(main.app, list(args), input=input)
        return Result(result.exit_code, result.stdout, result.stderr)

    yield invoke
    structlog.configure(**saved_logging)


def test_the_first_admin_is_added_with_a_password_typed_twice_unseen(cli, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    added = cli("users", "add", "Ana@Example.com", "--role", "admin", "--name", "Ana Lima", input=f"{PASSWORD}\n" * 2)
    assert added.code == 0, added.err
    assert "added user ana@example.com (#1, admin)" in added.out
    assert PASSWORD not in added.out + added.err  # hidden input: not echoed
    assert authenticate(hub, "ana@example.com", PASSWORD, None).name == "Ana Lima"
    (action,) = recent_actions(tenant(hub))
    assert (action.who, action.actor_kind, action.action) == ("cli:ops", "cli", "user.add")


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (("--role", "admin"), f"{PASSWORD}\nsomething else\n", "do not match"),
        (("--role", "admin", "--password-stdin"), "short\n", "the password has 5 characters; it needs at least 12"),
        (("--role", "owner", "--password-stdin"), f"{PASSWORD}\n", "'owner' is not a role"),
        (("--password", PASSWORD), "", "No such option"),  # never as an argument's value
    ],
)
def test_a_user_is_not_added_when_the_password_or_role_is_refused(  # type: ignore[no-untyped-def]
    cli, hub: Hub, args: tuple[str, ...], stdin: str, says: str
) -> None:
    result = cli("users", "add", "ana@example.com", *args, input=stdin)
    assert result.code != 0 and says in result.out + result.err
    assert json.loads(cli("users", "list", "--json").out) == []


def test_users_are_listed_disabled_and_their_tenant_chosen_by_tenant(cli, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    add_tenant(hub, "acme", "Acme")
    for email, role, where in (
        ("ana@example.com", "admin", ()),
        ("bo@example.com", "viewer", ()),
        ("cy@acme.example", "admin", ("--tenant", "acme")),
    ):
        made = cli("users", "add", email, "--role", role, "--password-stdin", *where, input=f"{PASSWORD}\n")
        assert made.code == 0, made.err
    assert cli("users", "disable", "bo@example.com").code == 0
    listed = json.loads(cli("users", "list", "--json").out)
    assert [(u["email"], u["role"], u["disabled_at"] is not None) for u in listed] == [
        ("ana@example.com", "admin", False),
        ("bo@example.com", "viewer", True),
    ]
    theirs = json.loads(cli("--tenant", "acme", "users", "list", "--json").out)
    assert [u["email"] for u in theirs] == ["cy@acme.example"]
    other = cli("users", "disable", "cy@acme.example")  # another tenant's user is not found
    assert other.code == 2 and "no user 'cy@acme.example' in tenant 'default'" in other.err
    last = cli("users", "disable", "ana@example.com")
    assert last.code == 2 and "last admin" in last.err and "Make another user admin first" in last.err
    table = cli("users", "list").out
    assert "bo@example.com" in table and "viewer" in table


def test_a_token_is_printed_once_alone_on_stdout_then_only_its_prefix(cli, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    made = cli("tokens", "create", "ERP export", "--role", "operator")
    assert made.code == 0, made.err
    token = made.out.strip()
    assert token.startswith("obt_") and len(token) == 47
    assert "shown only now" in made.err and "cannot be shown again" in made.err
    principal = resolve_token(hub, token)
    assert principal is not None and (principal.role, principal.tenant_id) == ("operator", tenant(hub).tenant_id)
    (listed,) = json.loads(cli("tokens", "list", "--json").out)
    assert (listed["label"], listed["prefix"], listed["role"], listed["created_by"]) == (
        "ERP export",
        token[:12],
        "operator",
        "cli:ops",
    )
    table = cli("tokens", "list")
    assert token[:12] in table.out and token not in table.out + table.err


def test_a_token_is_revoked_by_id_and_another_tenants_id_is_not_found(cli, hub: Hub) -> None:  # type: ignore[no-untyped-def]
    add_tenant(hub, "acme", "Acme")
    theirs = json.loads(cli("--tenant", "acme", "tokens", "create", "theirs", "--json").out)
    ours = json.loads(cli("tokens", "create", "ours", "--role", "admin", "--json").out)
    refused = cli("tokens", "revoke", str(theirs["id"]))
    assert refused.code == 2 and f"no API token {theirs['id']} in tenant 'default'" in refused.err
    assert resolve_token(hub, theirs["token"]) is not None
    assert cli("tokens", "revoke", str(ours["id"])).code == 0
    assert resolve_token(hub, ours["token"]) is None
    again = cli("tokens", "revoke", str(ours["id"]))
    assert again.code == 2 and "revoked already" in again.err
    assert json.loads(cli("tokens", "list", "--active", "--json").out) == []
    assert [t["revoked_at"] is not None for t in json.loads(cli("tokens", "list", "--json").out)] == [True]
