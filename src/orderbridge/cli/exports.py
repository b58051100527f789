"""``orderbridge export …``: file-export destinations — write what is ready now, and read what the
package did with each file."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, connection_id, console, print_json, run
from orderbridge.cli.render import cells, line

app = typer.Typer(no_args_is_help=True, help="File-export destinations: write files now, read their fate.")

ConnectionOpt = Annotated[str, typer.Option("--connection", "-c", help="The file-export destination's name.")]


@app.command("run")
def export_run(connection: ConnectionOpt, as_json: JsonOpt = False) -> None:
    """Write the orders ready for the destination into its drop directory now, then read every
    file's fate (imported, rejected, waiting) and record it."""
    from orderbridge.services.deliveries import require_watched, watch_deliveries
    from orderbridge.services.posting import post_ready

    def both(scope: Any) -> tuple[Any, Any]:
        cid = connection_id(scope, connection)
        require_watched(scope, cid)  # a destination that writes no files is refused before anything is posted
        return post_ready(scope, cid), watch_deliveries(scope, cid)

    posted, watched = run(both)
    if as_json:
        print_json({"post": posted.as_dict(), "deliveries": watched.as_dict()})
    else:
        console.print(
            line(
                f"{posted.posted} written, {posted.rejected} refused, {posted.held} held; "
                f"{watched.files} file(s): {watched.imported} imported, {watched.rejected} rejected, "
                f"{watched.waiting} waiting ({watched.overdue} overdue) — ",
                connection,
            )
        )
    failed = posted.error or watched.error
    if failed is not None:
        console.print(line("error: ", str(failed)))
        raise typer.Exit(1)


@app.command("status")
def export_status(connection: ConnectionOpt, as_json: JsonOpt = False) -> None:
    """Every file the destination wrote, its fate as the drop directory shows it now, and its orders."""
    from orderbridge.services.deliveries import status

    files = run(lambda scope: status(scope, connection_id(scope, connection)))
    if as_json:
        print_json(files)
        return
    table = Table("file", "written", "fate", "orders", "message")
    for f in files:
        fate = f["fate"] + (" (overdue)" if f["overdue"] else "")
        table.add_row(*cells((f["file"], f["written_at"].isoformat(), fate, ", ".join(f["orders"]), f["message"])))
    console.print(table)
