"""The inbox's search keys (``orders.email``, ``order_skus``) are derived in Python from what the
order writer stores; they must be storable whatever a channel sent, on either database."""

from __future__ import annotations

from orderbridge.storage.db import dump_json
from orderbridge.storage.repos.orders import email_key, searchable, skus_of, skus_of_lines


def test_a_nul_and_a_lone_surrogate_become_the_replacement_character_and_nothing_else_changes() -> None:
    assert searchable("A\x00B?\ud800C") == "A\ufffdB?\ufffdC"
    assert searchable("Crème brûlée 😀 ?") == "Crème brûlée 😀 ?"


def test_email_and_sku_keys_are_mended_and_empty_ones_left_out() -> None:
    assert email_key("  Ann\x00@Example.COM ") == "ann\ufffd@example.com"
    assert email_key("   ") is None
    assert skus_of_lines(["AB\x00C", None, "", "AB\x00C", "D"]) == ("AB\ufffdC", "D")


def test_skus_are_read_from_canonical_json_serialised_for_the_column() -> None:
    text = dump_json({"lines": [{"sku": "X-1"}, {"sku": None}, {"sku": "X-2"}, "junk"]})
    assert skus_of(text) == ("X-1", "X-2")  # JsonText, a str subclass orjson does not read as is
    assert skus_of(None) == () and skus_of({"lines": "nope"}) == ()
