"""``orderbridge webhooks …``: channel webhook subscriptions to this hub."""

from __future__ import annotations

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, connection_id, console, print_json, run
from orderbridge.cli.render import cells, clean, line

app = typer.Typer(no_args_is_help=True, help="Channel webhook subscriptions to this hub.")


@app.command("register")
def webhooks_register(connection: str) -> None:
    """Subscribe the hub's receiver ({public_url}/webhooks/...) to the channel's order topics."""
    from orderbridge.services.webhooks import register_webhooks

    subs = run(lambda scope: register_webhooks(scope, connection_id(scope, connection)))
    for sub in subs:
        console.print(line(f"{clean(sub.topic):28} → ", sub.address))


@app.command("list")
def webhooks_list(connection: str, as_json: JsonOpt = False) -> None:
    """The channel's webhook subscriptions, as the channel reports them."""
    from orderbridge.services.webhooks import list_webhooks

    subs = run(lambda scope: list_webhooks(scope, connection_id(scope, connection)))
    if as_json:
        print_json([{"id": s.id, "topic": s.topic, "address": s.address} for s in subs])
        return
    table = Table("id", "topic", "address")
    for sub in subs:
        table.add_row(*cells((sub.id, sub.topic, sub.address)))
    console.print(table)


@app.command("remove")
def webhooks_remove(connection: str) -> None:
    """Delete the channel's subscriptions to this hub."""
    from orderbridge.services.webhooks import remove_webhooks

    n = run(lambda scope: remove_webhooks(scope, connection_id(scope, connection)))
    console.print(line(f"removed {n} subscription(s) from ", connection))
