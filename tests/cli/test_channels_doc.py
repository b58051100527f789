"""docs/channels.md's capability table is generated from the channel declarations (issue #16): the
committed page is what `orderbridge channels doc` writes, and a stale page fails `--check`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from orderbridge.cli import channel_docs, main
from orderbridge.connectors.shopify.connector import DECLARATION as SHOPIFY
from tests.services.market_kind import MARKET_DECL

PAGE = Path(__file__).resolve().parents[2] / "docs" / "channels.md"


def test_the_committed_page_is_what_the_declarations_generate() -> None:
    assert channel_docs.is_current(PAGE), "docs/channels.md is stale: run `orderbridge channels doc`"


def test_the_table_names_states_calls_requirements_and_deadlines() -> None:
    text = channel_docs.generate([SHOPIFY, MARKET_DECL])
    assert "| `WAITING_DEBIT` | `SHIPPING` | the channel itself: the operator debits the customer |" in text
    assert "| tracking | `OR23 tracking` | `SHIPPED`, `SHIPPING` | unchanged | tracking_number, carrier, " in text
    assert "tracking_url unless the carrier is known" in text and "flag `can_cancel`" in text
    assert "| acceptance | `WAITING_ACCEPTANCE` | 1 h 0 min | the order is refused automatically |" in text
    assert "| refund | not offered (held `action_not_supported`) |" in text  # Shopify's
    assert text.index("(`fake_market`)") < text.index("(`shopify`)")


def test_a_changed_declaration_makes_the_page_stale_and_check_fails(tmp_path: Path) -> None:
    page = tmp_path / "channels.md"
    page.write_text("# Channels\n\nprose kept\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(main.app, ["channels", "doc", "--check", "--output", str(page)]).exit_code == 1
    assert runner.invoke(main.app, ["channels", "doc", "--output", str(page)]).exit_code == 0
    assert runner.invoke(main.app, ["channels", "doc", "--check", "--output", str(page)]).exit_code == 0
    assert page.read_text(encoding="utf-8").startswith("# Channels\n\nprose kept\n")
    rules = SHOPIFY.channel_rules
    assert rules is not None
    changed = replace(SHOPIFY, channel_rules=replace(rules, back_office="somewhere else"))
    assert not channel_docs.is_current(page, [changed])
