"""The CLI renders a fix as the exact command — the very commands the reasons and errors named
when they were strings (before 0007), so what the CLI prints for a held order is unchanged."""

from __future__ import annotations

import pytest

from orderbridge.cli.fixes import command, sentence
from orderbridge.domain import reasons as R
from orderbridge.fixes import Fix, FixAction, register_webhooks, run_audit, show_audit, show_holds, update_credentials


@pytest.mark.parametrize(
    ("fix", "expected"),
    [
        (
            R.sku_unmapped("ABC-1", "wh").fix,
            "orderbridge mappings set sku 'ABC-1' <destination SKU> --destination wh",
        ),
        (
            R.shipping_method_unmapped("Drone", "wh").fix,
            "orderbridge mappings set shipping 'Drone' <carrier>:<service> --destination wh",
        ),
        (
            R.shipping_method_missing("wh").fix,
            "orderbridge mappings set shipping '*' <carrier>:<service> --destination wh",
        ),
        (R.destination_rejected("wh", "bad zip").fix, "orderbridge orders retry <order>"),
        (R.destination_field_too_long("wh", "items[].sku", 60, 50, "x" * 60).fix, "orderbridge orders retry <order>"),
        (show_holds(), "orderbridge holds"),
        (run_audit("shop"), "orderbridge reconcile shop"),
        (show_audit(7), "orderbridge audits --id 7"),
        (register_webhooks("shop"), "orderbridge webhooks register shop"),
        (
            update_credentials("Set it.", credential="access_token", example="shpat_…"),
            "orderbridge connections update <name> --credential access_token=shpat_…",
        ),
        (update_credentials("Renew them."), "orderbridge connections update <name> --credential …"),
        (
            update_credentials("Set them.", connection="wh", credential="api_key,api_secret"),
            "orderbridge connections update wh --credential api_key=… --credential api_secret=…",
        ),
        (Fix.of(FixAction.INIT, "Initialise."), "orderbridge init"),
        (Fix.of(FixAction.GENERATE_KEY, "Generate one."), "orderbridge keygen"),
    ],
)
def test_a_fix_is_rendered_as_the_command_it_names(fix: Fix, expected: str) -> None:
    assert command(fix) == expected


def test_values_from_outside_are_quoted_for_the_shell() -> None:
    assert command(R.sku_unmapped("O'Neil $HOME", "my wh").fix) == (
        "orderbridge mappings set sku 'O'\\''Neil $HOME' <destination SKU> --destination 'my wh'"
    )
    assert (
        command(R.destination_rejected("wh", "x").fix.with_params(order="#1001")) == "orderbridge orders retry '#1001'"
    )


def test_a_fix_made_outside_orderbridge_is_its_sentence() -> None:
    fix = R.required_field_missing("phone", "wh").fix
    assert command(fix) is None
    assert sentence(fix) == "Fill in 'phone' on the order in the channel; the next sync re-evaluates it."
    assert sentence(R.sku_unmapped("ABC-1", "wh").fix) == (
        "Map SKU 'ABC-1' to a SKU of destination 'wh': "
        "orderbridge mappings set sku 'ABC-1' <destination SKU> --destination wh"
    )


def test_no_fix_text_spells_a_command() -> None:
    made = [
        R.sku_unmapped("A", "wh"),
        R.shipping_method_unmapped("A", "wh"),
        R.shipping_method_missing("wh"),
        R.required_field_missing("phone", "wh"),
        R.destination_rejected("wh", "no"),
        R.destination_field_too_long("wh", "f", 9, 5, "x"),
    ]
    assert all("orderbridge " not in r.fix.text and "<" not in r.fix.text for r in made)


def test_every_action_the_cli_can_make_has_a_command() -> None:
    elsewhere = {
        FixAction.EDIT_ORDER_AT_CHANNEL,
        FixAction.SET_REQUIRED_FIELD,
        FixAction.EDIT_SHIPMENT_AT_DESTINATION,
        FixAction.ACT_IN_BACK_OFFICE,
        FixAction.ACT_IN_POS,  # issue #17: a sale the POS left pending is completed there
        FixAction.UPGRADE,
        FixAction.NONE,
    }
    for action in FixAction:
        rendered = command(Fix(action, "x"))
        assert (rendered is None) == (action in elsewhere), action


def test_filling_shipping_data_is_a_command_naming_the_missing_field() -> None:
    fix = Fix(FixAction.FILL_SHIPPING_DATA, "x", (("field", "tracking_url"), ("order", "#1001")))
    assert command(fix) == "orderbridge orders fill-shipping '#1001' --tracking-url <tracking_url>"
    assert command(Fix(FixAction.FILL_SHIPPING_DATA, "x")) == (
        "orderbridge orders fill-shipping <order> --tracking-number <tracking_number>"
    )
