"""What every command shares: the two consoles, JSON output, typed errors, and building the scope.

Every command: parse arguments → build the hub and the scope of the tenant it acts for once
(:func:`run`: ``--tenant``, else ``ORDERBRIDGE_TENANT``, else ``default``) → resolve a connection
name to its id (:func:`connection_id`) → call one service function with the scope → render with
Rich (or JSON with ``--json``). Typed errors (:class:`OrderBridgeError`) print their message, their
fix hint and the command of their fix, and exit with code 2 (:func:`errors`); nothing is printed as
a bare traceback for them. Every hub the CLI builds is given the CLI's presentation
(``cli/present.py``): a fix reads as its command here, and as a link in the alerts this process sends.

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

from orderbridge.cli.fixes import as_json, command
from orderbridge.cli.present import PRESENTATION
from orderbridge.cli.render import console as make_console
from orderbridge.cli.render import line
from orderbridge.errors import OrderBridgeError
from orderbridge.fixes import Fix
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
    if isinstance(value, Fix):  # the stored form, with the command
        return as_json(value)
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
        run_this = command(exc.fix) if exc.fix is not None else None
        if run_this:
            err.print(line(("run:", "bold"), " ", run_this))
        elif exc.fix is not None and not exc.hint:
            err.print(line(("fix:", "bold"), " ", exc.fix.text))
        raise typer.Exit(2) from exc


#: the tenant ``--tenant`` named (the main callback sets it); None: the ``tenant`` setting's
tenant_option: str | None = None


def tenant_slug(settings: Settings) -> str:
    """The tenant this command acts for: ``--tenant``, else the setting (default ``default``)."""
    return tenant_option or settings.tenant


def make_hub() -> Any:
    from orderbridge.runtime.engine import install
    from orderbridge.services.hub import Hub

    hub = Hub.from_settings(Settings(), present=PRESENTATION)
    install(hub)  # job_engine=procrastinate: what the command changes defers its jobs with it
    return hub


def run(fn: Callable[[Any], T]) -> T:
    """Build the hub, bind the command's tenant (a :class:`~orderbridge.services.scope.Scope`), run
    ``fn(scope)``, close the hub."""
    from orderbridge.services.scope import Scope

    with errors():
        hub = make_hub()
        try:
            return fn(Scope.named(hub, tenant_slug(hub.settings)))
        finally:
            hub.close()


def connection_id(scope: Any, name: str) -> int:
    """A connection's name, as the operator types it, resolved to its id once (names are unique
    within a tenant; services take ids)."""
    found: int = scope.connection_id(name)
    return found
