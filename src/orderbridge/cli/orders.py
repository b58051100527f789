"""``orderbridge orders …`` and ``orderbridge holds``: the order ledger, and what it holds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, connection_id, console, print_json, run
from orderbridge.cli.fixes import sentence
from orderbridge.cli.place_order import place
from orderbridge.cli.render import cells, clean, line, plain

app = typer.Typer(no_args_is_help=True, help="The order ledger.")
app.command("place")(place)


@app.command("list")
def orders_list(
    state: Annotated[str | None, typer.Option(help="received|skipped|held|ready|posted|fulfilled|…")] = None,
    connection: Annotated[str | None, typer.Option(help="Only this channel")] = None,
    search: Annotated[str | None, typer.Option(help="Order number or channel id")] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """Orders, newest first, with their state and open reasons."""
    from orderbridge.services.queries import list_orders

    rows = run(
        lambda scope: list_orders(
            scope,
            state=state,
            connection_id=connection_id(scope, connection) if connection else None,
            search=search,
            limit=limit,
        )
    )
    if as_json:
        print_json(rows)
        return
    table = Table("number", "channel", "id", "state", "v", "total", "reasons")
    for r in rows:
        table.add_row(
            *cells((r.number, r.connection, r.external_id, r.state, str(r.version), r.total, ", ".join(r.reasons)))
        )
    console.print(table)


@app.command("show")
def orders_show(ref: str, raw: bool = False, as_json: JsonOpt = False) -> None:
    """One order: state, open reasons with fixes, postings, timeline."""
    from orderbridge.services.queries import show_order

    d = run(lambda scope: show_order(scope, ref))
    if as_json:
        data = dict(d.__dict__)
        if not raw:
            data.pop("raw")
        print_json(data)
        return
    console.print(
        line(
            plain(d.number, "bold"),
            " (",
            d.connection,
            " id ",
            d.external_id,
            ") — ",
            plain(d.state, "bold"),
            f", version {d.version}, ",
            d.total,
        )
    )
    for r in d.reasons:
        console.print(line("  ", plain(r["kind"], "red"), " ", r["code"], ": ", r["message"]))
        console.print(line("    ", ("fix:", "bold"), " ", sentence(r["fix"])))
    for p in d.postings:
        console.print(
            line(
                "  posting → ",
                p["destination"],
                f" v{p['version']}: ",
                p["status"],
                " ",
                p["document_id"],
                f" (attempts {p['attempts']}) ",
                p["last_error"],
            )
        )
    for p in d.pushes:
        console.print(line("  fulfilment push: ", p["status"], " ", p["fulfilment_id"], " ", p["message"]))
    table = Table("at", "event", "message")
    for e in d.timeline:
        table.add_row(*cells((e["at"].isoformat(timespec="seconds"), e["kind"], e["message"])))
    console.print(table)
    if raw:
        print_json(d.raw)


@app.command("retry")
def orders_retry(ref: str) -> None:
    """After fixing what a destination rejected, send the order again."""
    from orderbridge.services.queries import retry_order

    state = run(lambda scope: retry_order(scope, ref))
    console.print(line(ref, " is now ", state))


#: how ``holds`` names each kind of group (quarantine: refused by the database even in a minimal form)
_HOLD_KIND = {"hold": "held", "skip": "skipped", "quarantine": "quarantined, not stored"}


def holds(
    skipped: Annotated[bool, typer.Option("--skipped", help="Also list skipped orders by rule")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Held orders and held fulfilment pushes grouped by root cause, with counts and the fix."""
    from orderbridge.services.queries import holds as holds_query

    groups = run(lambda scope: holds_query(scope, include_skipped=skipped))
    if as_json:
        print_json(groups)
        return
    if not groups:
        console.print(plain("nothing held", "green"))
    for g in groups:
        # held fulfilment pushes: "2 fulfilment push(es) of 2 order(s) held — carrier_missing shop: …"
        counted = (
            ((str(g.pushes), "bold"), f" fulfilment push(es) of {g.orders} order(s) held — ")
            if g.kind == "push"
            else ((str(g.orders), "bold"), f" order(s) {_HOLD_KIND.get(g.kind, g.kind)} — ")
        )
        console.print(
            line(
                *counted,
                g.code,
                *((" ", plain(g.value, "bold")) if g.value else ()),
                ": ",
                g.message,
            )
        )
        console.print(line("    ", ("fix:", "bold"), " ", sentence(g.fix)))
        console.print(line("    e.g. ", ", ".join(clean(e) for e in g.examples)))
