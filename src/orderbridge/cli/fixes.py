"""A fix, as the CLI shows it: the exact command to run.

``Fix(map_sku, sku="ABC-1", destination="wh")`` is ``orderbridge mappings set sku 'ABC-1'
<destination SKU> --destination wh``. Values from outside (a SKU, a shipping method, an order
number) are single-quoted for the shell, so a command can be pasted as it is; what the person
must supply is a ``<placeholder>``. A fix made outside OrderBridge (in the channel, in the 3PL)
has no command: the CLI shows its sentence.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from orderbridge.fixes import Fix, FixAction

PROG = "orderbridge"


def _quoted(value: str) -> str:
    """Always single-quoted (``'ABC-1'``), a quote inside written the shell's way (``'\\''``)."""
    return "'" + value.replace("'", "'\\''") + "'"


def _name(value: str | None, placeholder: str = "<name>") -> str:
    """A connection's name: as it is when the shell takes it so, quoted when not."""
    return shlex.quote(value) if value else placeholder


def _map_sku(fix: Fix) -> str:
    return (
        f"mappings set sku {_quoted(fix.param('sku') or '')} <destination SKU> "
        f"--destination {_name(fix.param('destination'), '<destination>')}"
    )


def _map_shipping(fix: Fix) -> str:
    return (
        f"mappings set shipping {_quoted(fix.param('method') or '*')} <carrier>:<service> "
        f"--destination {_name(fix.param('destination'), '<destination>')}"
    )


def _retry(fix: Fix) -> str:
    order = fix.param("order")
    return f"orders retry {_quoted(order) if order else '<order>'}"


def _credentials(fix: Fix) -> str:
    names = [n for n in (fix.param("credential") or "").split(",") if n]
    example = fix.param("example") or "…"
    pairs = " ".join(f"--credential {n}={example}" for n in names) or "--credential …"
    return f"connections update {_name(fix.param('connection'))} {pairs}"


def _setting(fix: Fix) -> str:
    value = fix.param("value")
    assignment = f"{fix.param('setting') or '<setting>'}={value if value is not None else '<JSON>'}"
    return f"connections update {_name(fix.param('connection'))} --setting {_quoted(assignment)}"


def _connection(template: str) -> Callable[[Fix], str]:
    return lambda fix: template.format(_name(fix.param("connection")))


_COMMANDS: dict[FixAction, Callable[[Fix], str]] = {
    FixAction.MAP_SKU: _map_sku,
    FixAction.MAP_SHIPPING_METHOD: _map_shipping,
    FixAction.RETRY_ORDER: _retry,
    FixAction.SHOW_HOLDS: lambda fix: "holds",
    FixAction.UPDATE_CREDENTIALS: _credentials,
    FixAction.TEST_CONNECTION: _connection("connections test {}"),
    FixAction.EDIT_DOWNLOAD_RULES: lambda fix: (
        f"connections switches {_name(fix.param('connection'))} --on {fix.param('switch')}"
        if fix.param("switch")
        else f"connections update {_name(fix.param('connection'))} --setting download_rules=<JSON>"
    ),
    FixAction.SET_SETTING: _setting,
    FixAction.REGISTER_WEBHOOKS: _connection("webhooks register {}"),
    FixAction.RUN_AUDIT: _connection("reconcile {}"),
    FixAction.SHOW_AUDIT: lambda fix: f"audits --id {_name(fix.param('run'), '<run>')}",
    FixAction.ADD_CONNECTION: lambda fix: "connections add <name> --kind <kind> --url <base URL>",
    FixAction.INIT: lambda fix: "init",
    FixAction.GENERATE_KEY: lambda fix: "keygen",
    FixAction.REVIEW_UPDATE: lambda fix: f"updates accept {_name(fix.param('update'), '<update>')}",
    FixAction.CREATE_HELPER_ITEMS: _connection("connections create-helper-items {}"),
    # issue #16: the shipping data a held push lacks, filled in and sent again
    FixAction.FILL_SHIPPING_DATA: lambda fix: (
        f"orders fill-shipping {_quoted(fix.param('order') or '') if fix.param('order') else '<order>'} "
        f"--{(fix.param('field') or 'tracking_number').replace('_', '-')} <{fix.param('field') or 'tracking_number'}>"
    ),
}


def command(fix: Fix) -> str | None:
    """The command that makes ``fix``, or None when it is made outside OrderBridge."""
    make = _COMMANDS.get(fix.action)
    return None if make is None else f"{PROG} {make(fix)}"


def sentence(fix: Fix) -> str:
    """The fix on one line: its sentence, then the command (``Map SKU 'ABC-1' … : orderbridge …``)."""
    cmd = command(fix)
    if cmd is None:
        return fix.text
    return f"{fix.text.rstrip('.')}: {cmd}" if fix.text else cmd


def as_json(fix: Fix) -> dict[str, object]:
    """The fix as ``--json`` prints it: the stored form, with the command."""
    return {**fix.as_dict(), "command": command(fix)}
