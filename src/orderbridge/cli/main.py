"""``orderbridge`` — the operator's command line: the composition of the command modules.

One module per command group (``cli/connections.py``, ``cli/orders.py`` …); shared helpers are in
:mod:`orderbridge.cli.common`. The console entry point is ``orderbridge.cli.main:app``. Commands are
registered here in the order ``--help`` lists them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orderbridge.cli import (
    alerts,
    audits,
    bench,
    common,
    connections,
    exports,
    imports,
    mappings,
    orders,
    sandbox,
    serve,
    setup,
    tenants,
    tokens,
    updates,
    users,
    webhooks,
)
from orderbridge.cli.common import console, err
from orderbridge.logging import configure
from orderbridge.settings import Settings

__all__ = ["app", "console", "err", "main"]

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="OrderBridge: every order posted once, or visibly held."
)
app.add_typer(connections.app, name="connections")
orders.app.command("import")(imports.orders_import)
orders.app.command("import-template")(imports.orders_import_template)
app.add_typer(orders.app, name="orders")
app.add_typer(mappings.app, name="mappings")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(bench.app, name="bench")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(tenants.app, name="tenants")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(exports.app, name="export")
app.add_typer(updates.app, name="updates")

for command in (
    setup.keygen,
    setup.init,
    serve.sync,
    serve.serve,
    serve.worker,
    audits.reconcile,
    audits.audits,
    alerts.alerts,
    alerts.health,
    orders.holds,
    bench.demo,
):
    app.command()(command)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="Logs as JSON lines on stderr.")] = False,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", help="The tenant (slug) commands act for [default: ORDERBRIDGE_TENANT, else 'default']."
        ),
    ] = None,
) -> None:
    common.tenant_option = tenant
    settings = Settings()
    configure(
        "DEBUG" if verbose else settings.log_level if settings.log_level != "INFO" else "WARNING",
        json=log_json or settings.log_json,
    )


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
