"""``orderbridge orders place --file order.json``: one order placed by hand from the command line.

The file is the same JSON draft ``POST /api/v1/orders`` takes (``docs/manual-orders.md``), read
with the same parser (:func:`orderbridge.domain.manual.parse_json_draft`: amounts exact, every
problem named at once); ``-`` reads it from standard input. ``--preview`` says what placing it would
do and writes nothing. ``--idempotency-key`` makes a retry of the command place the order once.

Output is plain text (``--json``: one JSON object). Exit codes: 0 placed (or, with ``--preview``,
it could be placed); 1 placed but held or skipped — someone has to act, and the reasons and their
fixes are printed; 2 refused: the file cannot be read or the order has problems (each printed with
its field, value and fix on standard error) — nothing was written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from orderbridge.cli.common import JsonOpt, console, err, errors, print_json, run
from orderbridge.cli.render import line, plain
from orderbridge.errors import InvalidInput

#: exit codes (see the module docstring)
PLACED, NEEDS_ACTION, REFUSED = 0, 1, 2


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    path = Path(file)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(
            f"no file {file!r}", hint="Give the path of a JSON order file, or - for standard input."
        ) from None
    except IsADirectoryError:
        raise InvalidInput(f"{file!r} is a folder", hint="Give the path of a JSON order file.") from None
    except OSError as exc:
        raise InvalidInput(
            f"cannot read {file!r}: {exc.strerror}", hint="Check the path and its permissions."
        ) from None


def _problems(problems: list[Any]) -> None:
    err.print(
        line(("error", "bold red"), f" [invalid_order] the order has {len(problems)} problem(s); nothing was written")
    )
    for p in problems:
        err.print(line("  ", plain(p.field or "(the order)", "bold"), " = ", repr(p.value), ": ", p.message))
        err.print(line("    ", ("fix:", "bold"), " ", p.fix))


def _reasons(reasons: Any) -> None:
    for r in reasons:
        code, value, message = (
            (r["code"], r["value"], r["message"]) if isinstance(r, dict) else (r.code, r.value, r.message)
        )
        console.print(line("  ", plain(code, "red"), " ", value, ": ", message))


def place(
    file: Annotated[str, typer.Option("--file", "-f", help="The order as JSON (docs/manual-orders.md); - for stdin")],
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="The same key on a retry places the order once")
    ] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Say what placing it would do; write nothing")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Place one order by hand from a JSON file: validated, numbered (M-<n> without a number), posted like any."""
    from orderbridge.domain import manual
    from orderbridge.domain.manual import InvalidDraft
    from orderbridge.services import manual_orders
    from orderbridge.services.principals import Actor

    with errors():
        raw = _read(file)
        try:
            draft = manual.parse_json_draft(raw)
            problems = manual.validate(draft)
        except InvalidDraft as exc:
            problems = exc.problems
    if problems:
        _problems(problems)
        raise typer.Exit(REFUSED)
    if preview:

        def look(scope: Any) -> Any:
            source = manual.Source.placed_by(Actor.cli(scope).principal.name, via="cli")
            with scope.read() as conn:
                return manual_orders.preview(
                    conn, scope.tenant_id, [manual_orders.Submission(draft, source)], scope.now()
                )[0]

        planned = run(look)
        totals = manual.totals(draft)
        if as_json:
            print_json({"would": planned.as_dict(), "totals": totals.as_dict()})
        else:
            console.print(
                line(
                    "would place ",
                    plain(planned.number or "a new order (numbered M-<n>)", "bold"),
                    ": ",
                    planned.outcome,
                    ", ",
                    plain(planned.state or "", "bold"),
                    "; total ",
                    str(totals.total),
                )
            )
            _reasons(planned.reasons)
        raise typer.Exit(PLACED if planned.state not in ("held", "skipped") else NEEDS_ACTION)
    placed = run(lambda scope: manual_orders.place(Actor.cli(scope), draft, via="cli", idempotency_key=idempotency_key))
    if as_json:
        print_json({**placed.as_dict(), "replayed": placed.replayed})
    else:
        again = " (already placed with this key)" if placed.replayed else ""
        console.print(
            line(
                "placed order ",
                plain(placed.number, "bold"),
                f" (#{placed.order_id}): ",
                placed.outcome,
                ", ",
                plain(placed.state, "bold"),
                again,
            )
        )
        _reasons(placed.reasons)
        if placed.state in ("held", "skipped"):
            console.print(
                line(
                    ("fix:", "bold"), " ", "orderbridge orders show ", placed.number, " shows each reason with its fix."
                )
            )
    raise typer.Exit(PLACED if placed.state not in ("held", "skipped") else NEEDS_ACTION)
