"""The rendering rule, for any text: what reaches the terminal is the value, visibly escaped, and
the only escape sequences are the CLI's own colours."""

from __future__ import annotations

import io
import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from orderbridge.cli.render import cells, clean, line, plain

SGR = re.compile(r"\x1b\[[0-9;]*m")
#: what must never reach a terminal raw
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

hostile = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\x1b", "\x07", "\x9b", "\x7f", "\u202e", "\u2066", "[", "]", "/", ":", "\\", "\n", "\r"]),
    ),
    max_size=60,
)


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    console = Console(
        file=out, force_terminal=True, color_system="truecolor", width=500, markup=False, highlight=False, emoji=False
    )
    return console, out


@settings(max_examples=300, deadline=None)
@given(hostile)
def test_a_value_reaches_a_colour_terminal_as_its_escaped_text_and_nothing_else(value: str) -> None:
    console, out = terminal()
    console.print(line(("held", "bold red"), " ", plain(value, "bold"), " ", value))
    printed = out.getvalue()
    text = SGR.sub("", printed)
    assert not FORBIDDEN.search(text.rstrip("\n"))
    assert text.rstrip("\n") == f"held {clean(value)} {clean(value)}"


@settings(max_examples=200, deadline=None)
@given(hostile)
def test_a_table_cell_shows_the_escaped_value(value: str) -> None:
    console, out = terminal()
    table = Table("value", box=None, show_header=False, pad_edge=False)
    table.add_row(*cells([value]))
    console.print(table)
    text = SGR.sub("", out.getvalue())
    assert not FORBIDDEN.search(text.replace("\n", ""))
    assert clean(value).strip() in text


def test_markup_is_shown_literally_and_controls_as_escapes() -> None:
    assert clean("[link=http://evil.example]x[/link]") == "[link=http://evil.example]x[/link]"
    assert clean("\x1b]0;owned\x07") == "\\x1b]0;owned\\x07"
    assert clean("a\u202eb\x9bc\x7f") == "a\\u202eb\\x9bc\\x7f"
    assert clean("one\ntwo\tthree") == "one\\x0atwo\\x09three"
    assert clean("tb\n\tok\x1b", newlines=True) == "tb\n\tok\\x1b"
    assert clean(None) == "" and clean(12) == "12"


def test_every_bidi_control_is_escaped() -> None:
    bidi = [
        chr(cp)
        for cp in range(0x110000)
        if unicodedata.bidirectional(chr(cp)) in ("LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI")
    ]
    assert bidi and all(clean(ch).startswith("\\u") for ch in bidi)
