"""Log lines on a terminal: values from outside show their control characters escaped."""

from __future__ import annotations

import json

import pytest
import structlog

from orderbridge.logging import configure


def _log(capsys: pytest.CaptureFixture[str], *, as_json: bool) -> str:
    saved = structlog.get_config()
    try:
        configure("INFO", json=as_json)
        structlog.get_logger("test").warning(
            "post.rejected", sku="S\x1b]0;owned\x07", error="refused \x1b[2J\u202e", order_id=3
        )
    finally:
        structlog.configure(**saved)
    return capsys.readouterr().err


def test_a_key_value_log_line_shows_control_characters_as_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    err = _log(capsys, as_json=False)
    for control in ("\x1b", "\x07", "\u202e"):
        assert control not in err
    assert "sku=S\\x1b]0;owned\\x07" in err  # a value without spaces was written raw before
    assert "order_id=3" in err


def test_a_json_log_line_keeps_the_exact_value_escaped_by_json(capsys: pytest.CaptureFixture[str]) -> None:
    err = _log(capsys, as_json=True)
    assert "\x1b" not in err and "\x07" not in err
    assert json.loads(err.strip().splitlines()[-1])["sku"] == "S\x1b]0;owned\x07"
