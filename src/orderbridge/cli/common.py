"""What every command shares: the two consoles, JSON output, typed errors, and building the hub.

Every command: parse arguments → build the hub once (:func:`make_hub`, via :func:`run`) → call one
service function → render with Rich (or JSON with ``--json``). Typed errors
(:class:`OrderBridgeError`) print their message and fix hint and exit with code 2
(:func:`errors`); nothing is printed as a bare traceback for them.

Rendering follows one rule (:mod:`orderbridge.cli.render`): the consoles never parse markup, and
every value that did not come from the CLI's own code — order names, SKUs, hold values, messages
from a channel or a destination, connection names — is printed through ``line``/``plain``/``cells``,
which show control characters as visible escapes. Styles come only from literals in ``cli/``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import typer

from orderbridge.cli.render import console as make_console
from orderbridge.cli.render import line
from orderbridge.errors import OrderBridgeError
from orderbridge.settings import Settings

console = make_console()
err = make_console(stderr=True)
T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    raise TypeError(type(value).__name__)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_json_default, indent=2) + "\n")
    sys.stdout.flush()


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except OrderBridgeError as exc:
        err.print(line(("error", "bold red"), f" [{exc.code}] ", exc.message))
        if exc.hint:
            err.print(line(("fix:", "bold"), " ", exc.hint))
        raise typer.Exit(2) from exc


def make_hub() -> Any:
    from orderbridge.services.hub import Hub

    return Hub.from_settings(Settings())


def run(fn: Callable[[Any], T]) -> T:
    with errors():
        hub = make_hub()
        try:
            return fn(hub)
        finally:
            hub.close()
