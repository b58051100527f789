"""``orderbridge users …``: the people who sign in to the portal, per tenant (``--tenant``).

``users add`` makes a tenant's first admin (and any user after). The password never appears on
the command line, where ``ps`` and the shell history would keep it: it is read from stdin with
``--password-stdin`` (one line), or asked for twice with hidden input. Every change is recorded in
the tenant's audit trail as done by ``cli:<OS user>``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from orderbridge.cli import common
from orderbridge.cli.common import JsonOpt, console, print_json, run
from orderbridge.cli.render import cells, line

app = typer.Typer(no_args_is_help=True, help="Portal users of a tenant: add, list, disable, roles, passwords.")

TenantOpt = Annotated[
    str | None, typer.Option("--tenant", help="The tenant (slug) [default: the global --tenant, else 'default'].")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin (for scripts).")
]
RoleArg = Annotated[str, typer.Option("--role", help="admin | operator | viewer")]


def for_tenant(tenant: str | None) -> None:
    if tenant:
        common.tenant_option = tenant


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command("add")
def users_add(
    email: str,
    role: RoleArg = "viewer",
    name: Annotated[str, typer.Option("--name", help="The name the portal and the audit trail show")] = "",
    locale: Annotated[str, typer.Option("--locale", help="en | fr")] = "en",
    password_stdin: PasswordStdin = False,
    tenant: TenantOpt = None,
) -> None:
    """Add a user who signs in with EMAIL (the tenant's first admin: --role admin)."""
    from orderbridge.services.auth import Actor, create_user

    for_tenant(tenant)
    password = read_password(password_stdin)
    user = run(lambda scope: create_user(scope, email, name, password, role, locale, by=Actor.cli(scope)))
    console.print(line("added user ", (user.email, "bold"), f" (#{user.id}, {user.role})"))


@app.command("list")
def users_list(as_json: JsonOpt = False, tenant: TenantOpt = None) -> None:
    """The tenant's users, disabled ones too."""
    from orderbridge.services.auth import list_users

    for_tenant(tenant)
    rows = run(list_users)
    if as_json:
        print_json(
            [
                {
                    "id": u.id,
                    "email": u.email,
                    "name": u.name,
                    "role": u.role.value,
                    "locale": u.locale,
                    "created_at": u.created_at,
                    "disabled_at": u.disabled_at,
                }
                for u in rows
            ]
        )
        return
    table = Table("#", "e-mail", "name", "role", "language", "created", "disabled")
    for u in rows:
        disabled = u.disabled_at.isoformat(timespec="seconds") if u.disabled_at else ""
        table.add_row(
            *cells((str(u.id), u.email, u.name, u.role, u.locale, u.created_at.isoformat(timespec="seconds"), disabled))
        )
    console.print(table)


def _update(email: str, tenant: str | None, said: str, **change: object) -> None:
    from orderbridge.services.auth import Actor, update_user, user_id_of

    for_tenant(tenant)
    user = run(lambda scope: update_user(scope, user_id_of(scope, email), by=Actor.cli(scope), **change))  # type: ignore[arg-type]
    console.print(line(said, " ", (user.email, "bold"), f" ({user.role}{', disabled' if user.disabled else ''})"))


@app.command("disable")
def users_disable(email: str, tenant: TenantOpt = None) -> None:
    """Stop EMAIL from signing in; their open sessions end now (the tenant keeps an admin)."""
    _update(email, tenant, "disabled", disabled=True)


@app.command("enable")
def users_enable(email: str, tenant: TenantOpt = None) -> None:
    """Let a disabled user sign in again."""
    _update(email, tenant, "enabled", disabled=False)


@app.command("set-role")
def users_set_role(
    email: str, role: Annotated[str, typer.Argument(help="admin | operator | viewer")], tenant: TenantOpt = None
) -> None:
    """Change EMAIL's role (the tenant keeps an admin)."""
    _update(email, tenant, "changed the role of", role=role)


@app.command("password")
def users_password(email: str, password_stdin: PasswordStdin = False, tenant: TenantOpt = None) -> None:
    """Set a new password for EMAIL (a user who forgot theirs); their sessions end."""
    from orderbridge.services.auth import Actor, set_password, user_id_of

    for_tenant(tenant)
    password = read_password(password_stdin)
    run(lambda scope: set_password(scope, user_id_of(scope, email), password, by=Actor.cli(scope)))
    console.print(line("set a new password for ", (email.strip().lower(), "bold")))
