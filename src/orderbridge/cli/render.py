"""What may reach a terminal: every value from outside the source code is printed as plain text.

Order names, SKUs, hold values, addresses, a destination's error message, a connection's health
message — anything a channel, a 3PL or an operator typed — is *data*. Printed raw, it is also a
program for the terminal: Rich reads ``[link=…]`` or ``[bold red]`` as markup, and an ``ESC``
sequence can clear the screen, retitle the window, hide text or plant an OSC 8 hyperlink. The rule
(``docs/security.md``, "Output: terminal and HTML"):

- The CLI's consoles are built by :func:`console` with markup, highlighting and emoji codes off,
  so no string is ever parsed as markup.
- Outside text goes through :func:`clean`: every control character — C0 (newline and tab
  included: one value is one line), DEL, C1, the Unicode line/paragraph separators and the bidi
  controls that reorder what is shown — is written as a visible escape (``\\x1b``, ``\\u202e``).
  Nothing is dropped, so the operator sees exactly what was sent.
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

#: code points that reorder or hide text without being "control characters" (Unicode category Cf/Zl/Zp):
#: the bidi embeddings, overrides and isolates, the directional marks, and the line/paragraph separators
_INVISIBLE = (
    0x061C,  # ALM
    0x200E,  # LRM
    0x200F,  # RLM
    0x2028,  # LINE SEPARATOR
    0x2029,  # PARAGRAPH SEPARATOR
    *range(0x202A, 0x202F),  # LRE RLE PDF LRO RLO
    *range(0x2066, 0x206A),  # LRI RLI FSI PDI
)


def _escape(cp: int) -> str:
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    return f"\\u{cp:04x}"


_TABLE: dict[int, str] = {cp: _escape(cp) for cp in [*range(0x00, 0x20), *range(0x7F, 0xA0), *_INVISIBLE]}
_TABLE_KEEP_NEWLINES = {cp: s for cp, s in _TABLE.items() if cp not in (0x0A, 0x09)}


def clean(value: object, *, newlines: bool = False) -> str:
    """``value`` as text with every control character shown as a visible escape.

    ``newlines=True`` keeps line feeds and tabs (for multi-line text the hub wrote itself, such as
    a traceback); everything else — ESC, BEL, CR, DEL, C1, bidi controls — is still escaped.
    ``None`` is the empty string.
    """
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return text.translate(_TABLE_KEEP_NEWLINES if newlines else _TABLE)


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
