"""The presentation the CLI composes into every hub it builds (``Hub.present``).

Commands come from ``cli/fixes.py``, links and the webhook receiver's address from the web
entrypoint (``web/links.py``): ``serve`` runs the worker and the web server in this process, and
every other command that sends alerts or subscribes webhooks (``alerts --send``,
``webhooks register``, ``connections add --webhooks``) speaks for that same server.
"""

from __future__ import annotations

from orderbridge.cli import fixes
from orderbridge.fixes import Fix
from orderbridge.web import links


class CliAndPortal:
    def command(self, fix: Fix) -> str | None:
        return fixes.command(fix)

    def link(self, public_url: str, fix: Fix) -> str | None:
        return links.fix_link(public_url, fix)

    def receiver_address(self, public_url: str, kind: str, connection_id: int) -> str:
        return links.receiver_address(public_url, kind, connection_id)


PRESENTATION = CliAndPortal()
