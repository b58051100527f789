"""What the entrypoints know and the services must not: how a fix reads, and where things live.

A service decides *what* to do (a :class:`~orderbridge.fixes.Fix`); how that reads is the
presentation's — the exact command on the CLI, a link to the portal page in an e-mail — and the
address at which the web server receives a channel's webhooks is the web entrypoint's route. So
services ask the :class:`Presentation` the composition root gave the hub (``Hub.present``): the
CLI installs :data:`orderbridge.cli.present.PRESENTATION` (commands from ``cli/fixes.py``, links
from ``web/links.py``); a hub built without one renders every fix as its sentence alone and has no
receiver address.
"""

from __future__ import annotations

from typing import Protocol

from orderbridge.errors import SettingsError
from orderbridge.fixes import Fix


class Presentation(Protocol):
    def command(self, fix: Fix) -> str | None:
        """The command that makes ``fix`` on the CLI, or None when it is made elsewhere."""
        ...

    def link(self, public_url: str, fix: Fix) -> str | None:
        """The address of the page where ``fix`` is made (or, for a fix made outside OrderBridge,
        where what it is about is shown), or None."""
        ...

    def receiver_address(self, public_url: str, kind: str, connection_id: int) -> str:
        """Where the web server receives the webhooks of connection ``connection_id`` (a channel of
        ``kind``): by id, which names its tenant too (decision 82)."""
        ...


class Unpresented:
    """No entrypoint composed: fixes are their sentences, and there is no receiver to subscribe."""

    def command(self, fix: Fix) -> str | None:
        return None

    def link(self, public_url: str, fix: Fix) -> str | None:
        return None

    def receiver_address(self, public_url: str, kind: str, connection_id: int) -> str:
        raise SettingsError(
            f"no webhook receiver address for connection {connection_id}: this process was composed without the "
            "web entrypoint",
            hint="Run the command from the OrderBridge CLI (or give the hub the CLI's presentation).",
        )


def said(present: Presentation, fix: Fix) -> str:
    """The fix in one line: its sentence, then the command when the presentation has one."""
    command = present.command(fix)
    if command is None:
        return fix.text
    return f"{fix.text.rstrip('.')}: {command}" if fix.text else command
