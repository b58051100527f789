"""What may reach a terminal: every control character of outside text shown as a visible escape.

:func:`clean` is the one rule for text from outside the source code on its way to a terminal: the
CLI's rendering (:mod:`orderbridge.cli.render`) and the key=value log renderer
(:mod:`orderbridge.logging`) both use it, so it is a foundation module that imports no layer.
Every control character — C0 (newline and tab included: one value is one line), DEL, C1, the
Unicode line/paragraph separators and the bidi controls that reorder what is shown — is written as
a visible escape (``\\x1b``, ``\\u202e``). Nothing is dropped, so the operator sees exactly what was sent.
"""

from __future__ import annotations

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
