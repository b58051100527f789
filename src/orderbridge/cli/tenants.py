"""``orderbridge tenants …``: the merchant accounts this hub serves (``--tenant`` picks one)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, console, errors, make_hub, print_json
from orderbridge.cli.render import cells, line

app = typer.Typer(no_args_is_help=True, help="Tenants: one per merchant account; --tenant SLUG picks one.")


@app.command("add")
def tenants_add(
    slug: str,
    name: Annotated[str | None, typer.Option(help="Display name (default: the slug)")] = None,
) -> None:
    """Add a tenant; its connections, orders and alerts are its own (orderbridge --tenant SLUG …)."""
    from orderbridge.services.tenants import add_tenant

    with errors():
        hub = make_hub()
        try:
            scope = add_tenant(hub, slug, name or slug)
        finally:
            hub.close()
    console.print(line("added tenant ", (scope.slug, "bold"), f" (#{scope.tenant_id})"))


@app.command("list")
def tenants_list(as_json: JsonOpt = False) -> None:
    """Every tenant, in creation order."""
    from orderbridge.services.tenants import list_tenants

    with errors():
        hub = make_hub()
        try:
            rows = list_tenants(hub)
        finally:
            hub.close()
    if as_json:
        print_json([r.__dict__ for r in rows])
        return
    table = Table("#", "slug", "name", "created")
    for r in rows:
        table.add_row(*cells((str(r.id), r.slug, r.name, r.created_at.isoformat(timespec="seconds"))))
    console.print(table)
