"""``orderbridge tokens …``: REST API tokens of a tenant (``--tenant``).

``tokens create`` prints the token once — on stdout alone, so ``TOKEN=$(orderbridge tokens create
…)`` keeps just it, with what it is and the warning on stderr; the hub stores only its SHA-256 and
cannot show it again. ``tokens list`` shows each token's prefix, never the token.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, console, err, print_json, run
from orderbridge.cli.render import cells, line
from orderbridge.cli.users import TenantOpt, for_tenant

app = typer.Typer(no_args_is_help=True, help="REST API tokens of a tenant: create (shown once), list, revoke.")


@app.command("create")
def tokens_create(
    label: Annotated[str, typer.Argument(help="What will use it, e.g. 'ERP export'")],
    role: Annotated[str, typer.Option("--role", help="admin | operator | viewer")] = "viewer",
    as_json: JsonOpt = False,
    tenant: TenantOpt = None,
) -> None:
    """Create an API token (Authorization: Bearer <token>); it is printed once and never again."""
    from orderbridge.services.auth import Actor, create_token

    for_tenant(tenant)
    made = run(lambda scope: create_token(scope, label, role, by=Actor.cli(scope)))
    if as_json:
        print_json({"id": made.id, "token": made.token, "prefix": made.prefix, "label": label.strip(), "role": role})
        return
    err.print(line("created API token ", (f"#{made.id}", "bold"), f" ({role}): ", label.strip()))
    err.print(line(("This token is shown only now and cannot be shown again:", "bold yellow"), " store it safely."))
    console.print(made.token, markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def tokens_list(
    as_json: JsonOpt = False,
    active: Annotated[bool, typer.Option("--active", help="Leave out revoked tokens.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """The tenant's API tokens, newest first: prefix, role, who created it, last use."""
    from orderbridge.services.auth import list_tokens

    for_tenant(tenant)
    rows = run(lambda scope: list_tokens(scope, include_revoked=not active))
    if as_json:
        print_json(
            [
                {
                    "id": t.id,
                    "label": t.label,
                    "prefix": t.prefix,
                    "role": t.role.value,
                    "created_by": t.created_by,
                    "created_at": t.created_at,
                    "last_used_at": t.last_used_at,
                    "revoked_at": t.revoked_at,
                }
                for t in rows
            ]
        )
        return

    def when(value: object) -> str:
        return value.isoformat(timespec="seconds") if value is not None else ""  # type: ignore[attr-defined]

    table = Table("#", "label", "prefix", "role", "created by", "created", "last used", "revoked")
    for t in rows:
        table.add_row(
            *cells(
                (
                    str(t.id),
                    t.label,
                    t.prefix + "…",
                    t.role,
                    t.created_by,
                    when(t.created_at),
                    when(t.last_used_at),
                    when(t.revoked_at),
                )
            )
        )
    console.print(table)


@app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's # from tokens list")],
    tenant: TenantOpt = None,
) -> None:
    """Revoke a token: it stops working at once."""
    from orderbridge.services.auth import Actor, revoke_token

    for_tenant(tenant)
    run(lambda scope: revoke_token(scope, token_id, by=Actor.cli(scope)))
    console.print(line("revoked API token ", (f"#{token_id}", "bold")))
