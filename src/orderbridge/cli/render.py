"""What may reach a terminal: every value from outside the source code is printed as plain text.

Order names, SKUs, hold values, addresses, a destination's error message, a connection's health
message — anything a channel, a 3PL or an operator typed — is *data*. Printed raw, it is also a
program for the terminal: Rich reads ``[link=…]`` or ``[bold red]`` as markup, and an ``ESC``
sequence can clear the screen, retitle the window, hide text or plant an OSC 8 hyperlink. The rule
(``docs/security.md``, "Output: terminal and HTML"):

- The CLI's consoles are built by :func:`console` with markup, highlighting and emoji codes off,
  so no string is ever parsed as markup.
- Outside text goes through :func:`clean` (:mod:`orderbridge.terminal`, shared with the logs):
  every control character — C0 (newline and tab included: one value is one line), DEL, C1, the
  Unicode line/paragraph separators and the bidi controls that reorder what is shown — is written
  as a visible escape (``\\x1b``, ``\\u202e``). Nothing is dropped, so the operator sees exactly
  what was sent.
- Styles come only from the code: :func:`line` assembles a line from ``(literal, style)`` tuples
  and values, cleaning every part; :func:`plain` is one cleaned value with an optional style;
  :func:`cells` cleans a table row. Rich :class:`~rich.text.Text` never interprets its content.

JSON output (``--json``) is already safe: :func:`json.dumps` escapes every control character and,
with ``ensure_ascii``, every non-ASCII one (``\\u001b``, ``\\u202e``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.style import Style
from rich.text import Text

from orderbridge.terminal import clean

__all__ = ["cells", "clean", "console", "line", "plain"]


def plain(value: object, style: str | Style = "") -> Text:
    """One outside value as cleaned, unparsed text, optionally styled by the code."""
    return Text(clean(value), style=style)


Part = str | Text | tuple[str, str | Style] | None


def line(*parts: Part) -> Text:
    """A line assembled from parts, none of which is parsed as markup.

    A ``str`` or ``Text`` part is a value (cleaned); a ``(text, style)`` tuple is a styled literal
    (cleaned too, so a value slipped into a tuple is still harmless); ``None`` is skipped.
    """
    out = Text()
    for part in parts:
        if part is None:
            continue
        if isinstance(part, tuple):
            out.append(clean(part[0]), style=part[1])
        elif isinstance(part, Text):
            piece = part.copy()
            piece.plain = clean(piece.plain)  # a Text built elsewhere may carry raw control characters
            out.append_text(piece)
        else:
            out.append(clean(part))
    return out


def cells(values: Iterable[Any]) -> list[Text]:
    """A table row: every cell cleaned (``Text`` cells keep their style)."""
    out: list[Text] = []
    for value in values:
        if isinstance(value, Text):
            out.append(line(value))
        else:
            out.append(plain(value))
    return out


def console(*, stderr: bool = False) -> Console:
    """A console that never interprets what it prints: no markup, no highlighting, no emoji codes."""
    return Console(stderr=stderr, markup=False, highlight=False, emoji=False)
