"""The CLI prints channel text as plain text: no markup, no highlighting, control characters escaped.

A ledger is filled (through the real services, with fake connectors) with hostile values in order
names, SKUs, line titles, shipping methods, a destination's rejection, a connection's health
message and an audit finding; then the real CLI runs in a subprocess over it, as an operator
would, and its output must show every value literally (markup) or visibly escaped (control
characters), with no raw ESC, BEL, C1 or bidi control anywhere.

The expected visible forms are written out by hand below, not computed by the code under test.
Output does not depend on the database, so these run on SQLite only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import structlog
from typer.testing import CliRunner

from orderbridge.errors import AuthFailed, DestinationRejected
from orderbridge.services import notify
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.reconcile import reconcile
from orderbridge.services.sync import sync_channel
from orderbridge.settings import Settings
from tests.builders import order
from tests.e2e.helpers import cli
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid, tenant

#: (what a hostile store sends, what the operator must see)
HOSTILE = (
    ("[link=http://evil.example]x[/link]", "[link=http://evil.example]x[/link]"),
    ("[bold red]X", "[bold red]X"),
    ("\x1b[2J", "\\x1b[2J"),  # clear screen
    ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),  # set the window title
    ("\x1b]8;;http://e\x1b\\", "\\x1b]8;;http://e\\x1b\\"),  # OSC 8 hyperlink
    ("\u202e", "\\u202e"),  # right-to-left override
    ("\x9b2J", "\\x9b2J"),  # C1 CSI
    ("\x7f", "\\x7f"),  # DEL
)
BAD = "".join(sent for sent, _ in HOSTILE)
SHOWN = "".join(shown for _, shown in HOSTILE)
#: reason messages quote values with repr(), which escapes the same characters and doubles a backslash
SHOWN_QUOTED = SHOWN.replace("http://e\\x1b\\", "http://e\\x1b\\\\")
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e")

NUMBER = "#1" + BAD
SKU = "S" + BAD
METHOD = "M" + BAD
TARGET = "W" + BAD
HIDDEN_NUMBER = "#9" + BAD
FAILURE = "the store said " + BAD

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def ledger(hub: Hub, settings: Settings) -> Iterator[dict[str, str]]:
    channel = FakeChannel()
    # 1001: an unmapped hostile SKU (the line's title carries it too); 1002: an unmapped hostile method
    channel.put(order(1, number=NUMBER, skus=(SKU,)))
    channel.put(order(2, number="#1002", shipping=METHOD, updated_minutes=1))
    # 1003: mapped to a hostile destination SKU the 3PL refuses
    channel.put(order(3, number="#1003", skus=("SKU-R",), updated_minutes=2))
    # 1009: seen only by the audit, which recovers it (a finding with a hostile number)
    channel.put(order(9, number=HIDDEN_NUMBER, updated_minutes=3))
    channel.hidden.add("1009")
    destination = FakeDestination(reject_skus={TARGET})
    install(hub, channel, destination)
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "sku", "SKU-R", TARGET, cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    reconcile(tenant(hub), cid(hub, "shop"), since=order(0).created_at - timedelta(days=1))
    notify.sync_hold_alerts(tenant(hub))
    channel.fail_after_pages, channel.error = 0, AuthFailed(FAILURE, hint="Renew the token.")
    sync_channel(tenant(hub), cid(hub, "shop"))  # the connection turns failing with the hostile message
    yield {
        "ORDERBRIDGE_DATABASE_URL": settings.resolved_database_url,
        "ORDERBRIDGE_SECRET_KEY": settings.resolved_secret_key(),
        "COLUMNS": "2000",
    }


def _assert_plain(out: str, *shown: str) -> None:
    for control in RAW_CONTROLS:
        assert control not in out, f"raw {control!r} reached the terminal"
    for text in shown:
        assert text in out, f"{text!r} is not shown literally in:\n{out}"


COMMANDS = [
    (("holds",), (SHOWN,)),  # SKU, method and rejection values, examples
    (("orders", "list"), ("#1" + SHOWN,)),
    (("orders", "show", "1001"), ("#1" + SHOWN, "'S" + SHOWN_QUOTED + "'")),
    (("orders", "show", "1003"), ("W" + SHOWN,)),  # the destination's words
    (("mappings", "unmapped"), ("S" + SHOWN, "M" + SHOWN)),
    (("health",), ("the store said " + SHOWN,)),
    (("connections", "list"), ("the store said " + SHOWN,)),
    (("audits", "--id", "1"), ("#9" + SHOWN,)),
    (("alerts",), ("S" + SHOWN,)),
]


@pytest.mark.parametrize(("args", "shown"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_every_command_shows_hostile_channel_text_literally_and_escaped(
    ledger: dict[str, str], args: tuple[str, ...], shown: tuple[str, ...]
) -> None:
    result = cli(ledger, *args)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    _assert_plain(result.stdout, *shown)
    _assert_plain(result.stderr)


@pytest.mark.parametrize("args", [("holds",), ("orders", "show", "1001"), ("health",)], ids=" ".join)
def test_on_a_colour_terminal_the_only_escape_sequences_are_the_cli_s_own_colours(
    ledger: dict[str, str], args: tuple[str, ...]
) -> None:
    result = cli({**ledger, "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}, *args)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    sequences = set(re.findall(r"\x1b.?.?", result.stdout))
    assert sequences, "the terminal was not forced: no colour at all"
    without_colours = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    _assert_plain(without_colours, SHOWN)
    assert "\x1b]" not in result.stdout  # no OSC: no title, no hyperlink


def test_a_hold_value_in_markup_is_not_a_clickable_link(ledger: dict[str, str]) -> None:
    result = cli({**ledger, "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}, "holds")
    assert "\x1b]8;" not in result.stdout
    assert "[link=http://evil.example]x[/link]" in re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)


def test_json_output_escapes_every_control_character(ledger: dict[str, str]) -> None:
    result = cli(ledger, "orders", "show", "1001", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    for control in RAW_CONTROLS:
        assert control not in result.stdout
    data = json.loads(result.stdout)
    assert data["number"] == NUMBER  # exact, once decoded


def test_a_sync_report_prints_the_channel_s_error_as_plain_text(
    hub: Hub, ledger: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orderbridge.cli import common, main

    channel = hub.connectors[cid(hub, "shop")]
    assert isinstance(channel, FakeChannel)
    channel.error = DestinationRejected(FAILURE)  # a refusal without a hint, as a 4xx from the store
    monkeypatch.setattr(common, "make_hub", lambda: hub)
    monkeypatch.setattr(hub, "close", lambda: None)  # the fixture closes it
    monkeypatch.setattr(main.console, "width", 2000)
    monkeypatch.setattr(main.err, "width", 2000)
    saved = structlog.get_config()  # the CLI configures logging onto the runner's stream: put it back
    try:
        result = CliRunner().invoke(main.app, ["sync", "shop"])
    finally:
        structlog.configure(**saved)
    assert result.exit_code == 1, result.output
    _assert_plain(result.output, "the store said " + SHOWN)
