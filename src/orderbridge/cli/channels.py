"""``orderbridge channels``: what the hub knows of each channel's rules, and what people ask of them
(issue #16): ``doc`` (docs/channels.md's capability table, from the declarations), ``ask`` (cancel,
refund, accept, refuse an order at its channel), ``intents`` (those requests and their state),
``deadlines`` (orders approaching a channel deadline); and ``orders fill-shipping`` (the missing
shipping data of a held push, sent again)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, console, err, print_json, run
from orderbridge.cli.render import cells

app = typer.Typer(
    help="Channel rules, requests to channels (cancel, refund, accept, refuse), deadlines", no_args_is_help=True
)

_ASK = {"cancel": "cancelled", "refund": "refunded", "accept": "accepted", "refuse": "refused"}


@app.command("doc")
def doc(
    output: Annotated[Path, typer.Option("--output", help="The page to write")] = Path("docs/channels.md"),
    check: Annotated[
        bool, typer.Option("--check", help="Only say whether the page is up to date (exit 1 if not)")
    ] = False,
) -> None:
    """Write docs/channels.md's capability table from every channel's declared rules."""
    from orderbridge.cli import channel_docs

    if check:
        if channel_docs.is_current(output):
            console.print(f"{output} is up to date")
            return
        err.print(f"{output} is stale: run `orderbridge channels doc`")
        raise typer.Exit(1)
    changed = channel_docs.write(output)
    console.print(f"{output} {'written' if changed else 'already up to date'}")


def _lines(values: list[str]) -> tuple[tuple[str, int], ...]:
    out = []
    for v in values:
        line, _, qty = v.partition(":")
        try:
            out.append((line, int(qty or "1")))
        except ValueError:
            raise typer.BadParameter(f"{v!r}: give LINE or LINE:QUANTITY") from None
    return tuple(out)


@app.command("ask")
def ask(
    order: Annotated[str, typer.Argument(help="the order (number, or the channel's id)")],
    what: Annotated[str, typer.Argument(help="cancel | refund | accept | refuse")],
    line: Annotated[
        list[str] | None, typer.Option("--line", help="LINE[:QUANTITY], repeatable (cancel some lines)")
    ] = None,
    refund_total: Annotated[
        str | None, typer.Option("--refund-total", help="refund: the total refunded at the end")
    ] = None,
    note: Annotated[str, typer.Option("--note", help="the reason the channel keeps with it")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Ask the order's channel to cancel, refund, accept or refuse it (sent by the next push run)."""
    from orderbridge.services import channel_intents
    from orderbridge.services.principals import Actor
    from orderbridge.services.queries import find_order_id

    if what not in _ASK:
        raise typer.BadParameter(f"{what!r}: one of {', '.join(_ASK)}")

    def work(scope: Any) -> Any:
        return channel_intents.ask(  # recorded in the audit trail, as from the portal and the API
            Actor.cli(scope), find_order_id(scope, order), _ASK[what],
            lines=_lines(line or []), refund_total=refund_total, note=note,
        )  # fmt: skip

    asked = run(work)
    if as_json:
        print_json(asked.__dict__)
        return
    console.print(
        f"request {asked.intent_id}: {what} of {order} "
        + ("recorded; sent by the next push run" if asked.created else "was already asked and is not done yet")
    )


@app.command("intents")
def intents(
    order: Annotated[str | None, typer.Argument(help="one order's requests (default: every held one)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests made of channels, with their state and, when held, the reason and the fix."""
    from orderbridge.services import channel_intents
    from orderbridge.services.queries import find_order_id

    def work(scope: Any) -> list[dict[str, Any]]:
        if order is None:
            return channel_intents.held_intents(scope)
        return channel_intents.intents_of(scope, find_order_id(scope, order))

    found = run(work)
    if as_json:
        print_json({"intents": found})
        return
    table = Table("id", "order", "outcome", "status", "calls", "reason / message")
    for i in found:
        reason = i["reason"] or {}
        why = (
            f"{reason.get('code')}: {reason.get('message')} — {reason.get('fix', {}).get('text', '')}"
            if reason
            else i["message"]
        )
        table.add_row(*cells((str(i["id"]), str(i["order_id"]), i["outcome"], i["status"],
                              ", ".join(c["call"] for c in i["calls"]) or "—", why)))  # fmt: skip
    console.print(table)


@app.command("deadlines")
def deadlines(as_json: JsonOpt = False) -> None:
    """Orders approaching (or past) a channel's acceptance or shipping deadline, the soonest first."""
    from orderbridge.services.deadlines import approaching

    found = run(approaching)
    if as_json:
        print_json({"deadlines": [a.as_dict() for a in found]})
        return
    table = Table("order", "channel", "deadline", "due (UTC)", "state", "left", "when missed")
    for a in found:
        left = (
            "missed"
            if a.seconds_left < 0
            else f"{int(a.seconds_left // 3600)} h {int(a.seconds_left % 3600 // 60)} min"
        )
        table.add_row(
            *cells((a.number, a.connection, a.deadline, f"{a.due:%Y-%m-%d %H:%M}", a.channel_state, left, a.missed))
        )
    console.print(table)


def fill_shipping(
    order: Annotated[str, typer.Argument(help="the order (number, or the channel's id)")],
    tracking_number: Annotated[str | None, typer.Option("--tracking-number")] = None,
    carrier: Annotated[str | None, typer.Option("--carrier")] = None,
    tracking_url: Annotated[str | None, typer.Option("--tracking-url")] = None,
    shipment: Annotated[str | None, typer.Option("--shipment", help="the shipment, when several are held")] = None,
) -> None:
    """Fill in the shipping data a held push lacks (tracking number, carrier, tracking URL) and send it again."""
    from orderbridge.services.principals import Actor
    from orderbridge.services.queries import find_order_id
    from orderbridge.services.shipping_fill import fill

    def work(scope: Any) -> Any:
        return fill(  # recorded in the audit trail, as from the portal and the API
            Actor.cli(scope), find_order_id(scope, order), tracking_number=tracking_number,
            carrier=carrier, tracking_url=tracking_url, shipment=shipment,
        )  # fmt: skip

    filled = run(work)
    report = filled.report
    outcome = "pushed" if report is not None and report.pushed else "planned again (see the order's pushes)"
    console.print(f"shipment {filled.shipment} of {order}: {', '.join(filled.fields)} filled in; {outcome}")
