"""``orderbridge connections …``: configured links to channels and destinations."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, connection_id, console, errors, print_json, run
from orderbridge.cli.render import cells, line, plain
from orderbridge.errors import InvalidInput

app = typer.Typer(no_args_is_help=True, help="Configured links to channels and destinations.")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} {item!r} must look like NAME=VALUE")
        out[key.strip()] = value
    return out


def _settings_pairs(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in _pairs(items, "setting").items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@app.command("add")
def connections_add(
    name: str,
    kind: Annotated[str, typer.Option(help="shopify | shipstation")],
    url: Annotated[str, typer.Option(help="Base URL, e.g. https://shop.myshopify.com or a sandbox URL")],
    credential: Annotated[list[str], typer.Option(help="NAME=VALUE, repeatable")] = [],  # noqa: B006
    setting: Annotated[list[str], typer.Option(help="NAME=JSON, repeatable")] = [],  # noqa: B006
) -> None:
    """Add a connection; credentials are encrypted at rest."""
    from orderbridge.services.connections import add_connection

    with errors():
        creds, sets = _pairs(credential, "credential"), _settings_pairs(setting)
    row = run(lambda scope: add_connection(scope, name, kind, url, creds, sets))
    console.print(line(f"added {row.role} connection ", (row.name, "bold"), f" ({row.kind}) → ", row.base_url))


@app.command("update")
def connections_update(
    name: str,
    credential: Annotated[list[str], typer.Option(help="NAME=VALUE, repeatable")] = [],  # noqa: B006
    setting: Annotated[list[str], typer.Option(help="NAME=JSON, repeatable")] = [],  # noqa: B006
    url: Annotated[str | None, typer.Option(help="New base URL")] = None,
) -> None:
    """Change credentials, settings or URL of a connection."""
    from orderbridge.services.connections import update_connection

    with errors():
        creds, sets = _pairs(credential, "credential"), _settings_pairs(setting)
    run(
        lambda scope: update_connection(
            scope, connection_id(scope, name), credentials=creds, settings=sets, base_url=url
        )
    )
    console.print(line("updated ", name))


@app.command("list")
def connections_list(as_json: JsonOpt = False) -> None:
    """Connections with their health and cursor."""
    from orderbridge.services.connections import list_connections

    rows = run(list_connections)
    if as_json:
        print_json([r.__dict__ for r in rows])
        return
    table = Table("name", "kind", "role", "health", "last success", "cursor", "message")
    for r in rows:
        color = {"healthy": "green", "failing": "red", "degraded": "yellow"}.get(r.health, "white")
        table.add_row(
            *cells(
                (
                    r.name,
                    r.kind,
                    r.role,
                    plain(r.health, color),
                    r.last_success_at.isoformat(timespec="seconds") if r.last_success_at else "-",
                    r.cursor.isoformat(timespec="seconds") if r.cursor else "-",
                    r.health_message,
                )
            )
        )
    console.print(table)


@app.command("test")
def connections_test(name: str) -> None:
    """Make one authenticated call to the connection."""
    from orderbridge.services.connections import test_connection

    description = run(lambda scope: test_connection(scope, connection_id(scope, name)))
    console.print(line(("ok", "green"), " ", name, ": ", description))
