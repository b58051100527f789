"""``orderbridge connections …``: configured links to channels and destinations."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, connection_id, console, errors, print_json, run
from orderbridge.cli.render import cells, line, plain
from orderbridge.errors import InvalidInput

app = typer.Typer(no_args_is_help=True, help="Configured links to channels and destinations.")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} {item!r} must look like NAME=VALUE")
        out[key.strip()] = value
    return out


def _settings_pairs(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in _pairs(items, "setting").items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@app.command("add")
def connections_add(
    name: str,
    kind: Annotated[str, typer.Option(help="A registered kind (`orderbridge connections kinds` lists them)")],
    url: Annotated[str, typer.Option(help="Base URL, e.g. https://shop.myshopify.com or a sandbox URL")],
    credential: Annotated[list[str], typer.Option(help="NAME=VALUE, repeatable")] = [],  # noqa: B006
    setting: Annotated[list[str], typer.Option(help="NAME=JSON, repeatable")] = [],  # noqa: B006
) -> None:
    """Add a connection; credentials are encrypted at rest.

    Credentials and settings go by the names the kind declares (`orderbridge connections kinds
    KIND`); a required credential missing, or a setting the kind does not have, is refused."""
    from orderbridge.services.connections import add_connection

    with errors():
        creds, sets = _pairs(credential, "credential"), _settings_pairs(setting)
    row = run(lambda scope: add_connection(scope, name, kind, url, creds, sets))
    console.print(line(f"added {row.role} connection ", (row.name, "bold"), f" ({row.kind}) → ", row.base_url))


@app.command("update")
def connections_update(
    name: str,
    credential: Annotated[list[str], typer.Option(help="NAME=VALUE, repeatable")] = [],  # noqa: B006
    setting: Annotated[list[str], typer.Option(help="NAME=JSON, repeatable")] = [],  # noqa: B006
    url: Annotated[str | None, typer.Option(help="New base URL")] = None,
) -> None:
    """Change credentials, settings or URL of a connection."""
    from orderbridge.services.connections import update_connection

    with errors():
        creds, sets = _pairs(credential, "credential"), _settings_pairs(setting)
    run(
        lambda scope: update_connection(
            scope, connection_id(scope, name), credentials=creds, settings=sets, base_url=url
        )
    )
    console.print(line("updated ", name))


@app.command("list")
def connections_list(as_json: JsonOpt = False) -> None:
    """Connections with their health and cursor."""
    from orderbridge.services.connections import list_connections

    rows = run(list_connections)
    if as_json:
        print_json([r.__dict__ for r in rows])
        return
    table = Table("name", "kind", "role", "health", "last success", "cursor", "message")
    for r in rows:
        color = {"healthy": "green", "failing": "red", "degraded": "yellow"}.get(r.health, "white")
        table.add_row(
            *cells(
                (
                    r.name,
                    r.kind,
                    r.role,
                    plain(r.health, color),
                    r.last_success_at.isoformat(timespec="seconds") if r.last_success_at else "-",
                    r.cursor.isoformat(timespec="seconds") if r.cursor else "-",
                    r.health_message,
                )
            )
        )
    console.print(table)


@app.command("test")
def connections_test(name: str) -> None:
    """Make one authenticated call to the connection."""
    from orderbridge.services.connections import test_with_checks

    description, checks = run(lambda scope: test_with_checks(scope, connection_id(scope, name)))
    console.print(line(("ok", "green"), " ", name, ": ", description))
    _print_checks(checks)
    if any(not c.ok for c in checks):
        raise typer.Exit(1)


def _print_checks(checks: list[Any]) -> None:
    """A POS destination's pre-flight checks, one line each; a failed one with its fix (the command)."""
    from orderbridge.cli.fixes import sentence

    for c in checks:
        if c.ok:
            console.print(line("  ", ("pass", "green"), " ", c.name, ": ", c.detail))
        else:
            console.print(line("  ", ("FAIL", "red"), " ", c.name, ": ", c.reason.message))
            console.print(line("       fix: ", sentence(c.reason.fix)))


@app.command("create-helper-items")
def connections_create_helper_items(name: str, as_json: JsonOpt = False) -> None:
    """Create the helper items a POS destination lacks (shipping, discount, refund…), idempotently,
    then run its pre-flight checks again: the orders they held are released."""
    from orderbridge.services.preflight import create_helper_items
    from orderbridge.services.principals import Actor

    result = run(lambda scope: create_helper_items(scope, connection_id(scope, name), by=Actor.cli(scope)))
    if as_json:
        print_json(
            {
                "created": result.created,
                "released": result.released,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in result.checks],
            }
        )
        return
    created = ", ".join(result.created) if result.created else "none (every helper item exists)"
    console.print(line(("ok", "green"), " ", name, ": created ", created, f"; {result.released} order(s) released"))
    _print_checks(result.checks)


@app.command("kinds")
def connections_kinds(
    kind: Annotated[str | None, typer.Argument(help="One kind: its credentials and settings")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The connector kinds this hub knows, as each declares itself: role, capabilities, credentials,
    settings with their defaults."""
    from orderbridge.connectors import registry

    with errors():
        decls = [registry.declaration(kind)] if kind else registry.declarations()
    if as_json:
        print_json([d.about() for d in decls])
        return
    if kind is None:
        table = Table("kind", "role", "title", "capabilities", "docs")
        for d in decls:
            caps = ", ".join(sorted(c.value for c in d.capabilities))
            table.add_row(*cells((d.kind, d.role.value, d.title, caps, d.docs or "-")))
        console.print(table)
        console.print("Details of one: orderbridge connections kinds KIND")
        return
    (d,) = decls
    console.print(line((d.title, "bold"), f" ({d.kind}, {d.role.value}): ", ", ".join(sorted(d.capabilities))))
    if d.webhooks is not None:
        console.print(
            line("webhook topics: ", ", ".join(d.webhooks.topics), f" (signed with {d.webhooks.secret_credential})")
        )
    if d.role.value == "destination":
        mappings = ", ".join(sorted(d.mapping_kinds)) or "none"
        console.print(line("mappings needed: ", mappings, "; document key: ", d.document_key))
    creds = Table("credential", "required", "secret", "meaning", title="--credential NAME=VALUE")
    for c in d.credentials:
        creds.add_row(*cells((c.name, "yes" if c.required else "no", "yes" if c.secret else "no", c.description)))
    console.print(creds)
    sets = Table("setting", "default", "read by", "meaning", title="--setting NAME=JSON")
    for st in d.all_settings():
        sets.add_row(*cells((st.name, json.dumps(st.default), st.scope.value, st.description)))
    console.print(sets)


@app.command("switches")
def connections_switches(
    name: str,
    on: Annotated[list[str] | None, typer.Option("--on", help="a switch to turn on (archived, processed, …)")] = None,
    off: Annotated[list[str] | None, typer.Option("--off", help="a switch to turn off")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A channel's download switches, in seed 001's words: archived, processed (fulfilled),
    unprocessed (unfulfilled), cancelled and test orders. With --on/--off, set them: turning one on
    re-evaluates at once the orders it had skipped."""
    from orderbridge.services.download_switches import set_switches, switches
    from orderbridge.services.principals import Actor

    changes = {**dict.fromkeys(off or [], False), **dict.fromkeys(on or [], True)}

    def work(scope: Any) -> tuple[list[Any], list[str], int]:
        cid = connection_id(scope, name)
        if not changes:
            return switches(scope, cid), [], 0
        done = set_switches(scope, cid, changes, by=Actor.cli(scope))
        return done.switches, done.changed, done.released

    states, changed, released = run(work)
    if as_json:
        print_json(
            {
                "switches": [
                    {"switch": s.switch.value, "on": s.on, "words": s.words, "skipped": s.skipped} for s in states
                ],
                "changed": changed,
                "released": released,
            }
        )
        return
    for s in states:
        mark = ("on ", "green") if s.on else ("off", "yellow")
        skipped = f" — {s.skipped} order(s) skipped by it" if s.skipped else ""
        console.print(line(mark, " ", s.switch.value, ": ", s.words, skipped))
    if changed:
        console.print(line(f"changed: {', '.join(changed)}; {released} skipped order(s) re-evaluated to ready"))
