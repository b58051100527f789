"""``orderbridge updates``: order updates awaiting review, the decisions on them, and the policies."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, console, print_json, run
from orderbridge.cli.render import cells

app = typer.Typer(
    help="Order updates: later versions of posted orders (accept, ignore, cancel; policies)", no_args_is_help=True
)


@app.command("list")
def list_updates(as_json: JsonOpt = False) -> None:
    """The updates awaiting review, with what accepting does at each destination."""
    from orderbridge.services import order_updates

    views = run(order_updates.pending_reviews)
    if as_json:
        print_json({"updates": [{**v.__dict__, "created_at": v.created_at.isoformat()} for v in views]})
        return
    table = Table("update", "order", "versions", "classes", "accepting will")
    for v in views:
        plan = "; ".join(s["sentence"] for s in v.steps)
        table.add_row(*cells((str(v.id), v.number, f"{v.from_version} → {v.to_version}", ", ".join(v.classes), plan)))
    console.print(table)


def _decide(action: str, ids: list[int]) -> None:
    from orderbridge.services import order_updates
    from orderbridge.services.principals import Actor

    def work(scope: Any) -> list[Any]:
        return order_updates.decide(Actor.cli(scope), ids, action)

    for r in run(work):
        console.print(
            *cells((f"update {r.update_id} ({r.number}):", r.message if r.changed else f"unchanged — {r.message}"))
        )


@app.command("accept")
def accept(ids: Annotated[list[int], typer.Argument(help="update ids")]) -> None:
    """Accept updates: their plans are performed by the next posting run."""
    _decide("accept", ids)


@app.command("ignore")
def ignore(ids: Annotated[list[int], typer.Argument(help="update ids")]) -> None:
    """Ignore updates: the destinations keep what they hold."""
    _decide("ignore", ids)


@app.command("cancel")
def cancel(ids: Annotated[list[int], typer.Argument(help="update ids")]) -> None:
    """Cancel the orders of these updates (their destination documents are voided or cancelled)."""
    _decide("cancel", ids)


@app.command("policies")
def policies(
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="CLASS=apply|review|ignore|default (repeatable)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The policy per change class; --set changes one (admin)."""
    from orderbridge.services import order_updates
    from orderbridge.services.principals import Actor

    def work(scope: Any) -> list[dict[str, Any]]:
        if set_:
            order_updates.set_policies(Actor.cli(scope), dict(s.partition("=")[::2] for s in set_))
        with scope.read() as conn:
            return order_updates.policy_table(conn, scope.tenant_id)

    rows = run(work)
    if as_json:
        print_json({"policies": rows})
        return
    table = Table("class", "policy", "default before posting", "default after posting")
    for r in rows:
        table.add_row(*cells((r["change"], r["policy"], r["default_before_posting"], r["default_after_posting"])))
    console.print(table)
