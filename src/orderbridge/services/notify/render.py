"""An alert as its transports send it: the stored words plus its fixes, rendered when it is sent.

The alert stores what happened (``body``, plain words) and what to do (``fixes``, data). When it
is sent, the hub's presentation (``Hub.present``: the CLI's commands, the portal's links) renders
the fixes, so a changed ``PUBLIC_URL`` reaches alerts still queued, and the same alert shows as a
command in the terminal, a link in the e-mail and a button in the portal:

- the e-mail's text is the body, then "How to fix it:" with each fix's sentence and command (and
  its link when it is not the one below), then "Where to fix it: <link>" — the first fix with a
  page; the digest's body is rendered again from its data, each cause with its command and the
  link to its group (:func:`orderbridge.services.notify.digest.digest_text`);
- the webhook's JSON carries ``link`` (the same) and ``fixes``: each fix's ``action``, ``params``
  and ``text`` with its ``link`` and ``command``, for a receiver to build its own button.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orderbridge.fixes import Fix
from orderbridge.services.present import Presentation, said


@dataclass(frozen=True)
class Renderer:
    """The hub's presentation and the address it renders links against, for one dispatch."""

    present: Presentation
    public_url: str

    def link(self, fix: Fix) -> str | None:
        return self.present.link(self.public_url, fix)

    def said(self, fix: Fix) -> str:
        return said(self.present, fix)

    def where(self, fixes: tuple[Fix, ...]) -> str | None:
        """The page an alert points at: that of its first fix that has one."""
        for fix in fixes:
            found = self.link(fix)
            if found:
                return found
        return None

    def how_to_fix(self, fixes: tuple[Fix, ...]) -> str:
        """ "How to fix it:" and one item per fix: its sentence and command, and its link unless it is
        the alert's own (shown once, as "Where to fix it")."""
        if not fixes:
            return ""
        where = self.where(fixes)
        items = []
        for fix in fixes:
            link = self.link(fix)
            items.append(f"- {self.said(fix)}" + (f"\n  {link}" if link and link != where else ""))
        return "How to fix it:\n" + "\n".join(items)

    def payload(self, fix: Fix) -> dict[str, Any]:
        return {**fix.as_dict(), "link": self.link(fix), "command": self.present.command(fix)}
