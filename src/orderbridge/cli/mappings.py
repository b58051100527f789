"""``orderbridge mappings …``: SKU and shipping-method mappings per destination."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, connection_id, console, err, print_json, run
from orderbridge.cli.render import cells, clean, line

app = typer.Typer(no_args_is_help=True, help="SKU and shipping-method mappings per destination.")


@app.command("set")
def mappings_set(
    kind: Annotated[str, typer.Argument(help="sku | shipping")],
    source: Annotated[str, typer.Argument(help="The channel's value ('*' = default shipping)")],
    target: Annotated[str, typer.Argument(help="Destination SKU, or carrier:service")],
    destination: Annotated[str | None, typer.Option(help="Destination connection")] = None,
) -> None:
    """Map one value; orders held for it are re-evaluated at once."""
    from orderbridge.services.mappings import set_mapping

    r = run(
        lambda scope: set_mapping(
            scope, kind, source, target, connection_id(scope, destination) if destination else None
        )
    )
    console.print(
        line(
            f"mapped {r.kind} '{clean(r.source)}' → '{clean(r.target)}'; released {r.released} order(s)",
            f", {r.still_held} still held for other reasons" if r.still_held else None,
        )
    )


@app.command("import")
def mappings_import(
    kind: Annotated[str, typer.Argument(help="sku | shipping")],
    file: Annotated[Path, typer.Argument(help="CSV with source,target columns ('-' for stdin)")],
    destination: Annotated[str | None, typer.Option(help="Destination connection")] = None,
) -> None:
    """Import mappings from CSV: every row is checked first; with a bad row, nothing is applied."""
    from orderbridge.services.mappings import import_mappings

    text = sys.stdin.read() if str(file) == "-" else file.read_text()
    results, errors = run(
        lambda scope: import_mappings(scope, kind, text, connection_id(scope, destination) if destination else None)
    )
    console.print(f"imported {len(results)} mapping(s); released {sum(r.released for r in results)} order(s)")
    for e in errors:
        err.print(line((f"line {e.line}", "red"), ": ", e.message))
    if errors:
        raise typer.Exit(1)


@app.command("unmapped")
def mappings_unmapped(as_json: JsonOpt = False) -> None:
    """Unmapped values seen on held orders, most blocking first."""
    from orderbridge.services.mappings import unmapped

    rows = run(unmapped)
    if as_json:
        print_json(rows)
        return
    table = Table("kind", "value", "orders held")
    for r in rows:
        table.add_row(*cells((r.kind, r.value, str(r.orders))))
    console.print(table)
