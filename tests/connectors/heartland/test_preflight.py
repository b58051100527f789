"""Each pre-flight check fails against the sandbox's reproduction of a seed-001 trap, names its fix, and
passes once the trap is fixed; creating the helper items is idempotent through the API."""

from __future__ import annotations

from decimal import Decimal

from orderbridge.connectors.base import PreflightCheck
from orderbridge.domain.money import Money
from orderbridge.domain.reasons import HoldCode
from orderbridge.fixes import FixAction
from orderbridge.sandboxes.heartland import HELPER_ITEMS
from tests.builders import replace
from tests.connectors.contract_destination import make_order, outgoing
from tests.connectors.heartland.env import HL_POLICY, HeartlandEnv, hl_outgoing, open_env


def _by_name(checks: list[PreflightCheck]) -> dict[str, PreflightCheck]:
    return {c.name: c for c in checks}


def test_a_clean_account_passes_every_connection_and_order_check(heartland_env: HeartlandEnv) -> None:
    connection = _by_name(heartland_env.connector.preflight_connection())
    assert set(connection) == {"employee", "helper_items", "location"}
    assert all(c.ok for c in connection.values()), connection
    order = _by_name(heartland_env.connector.preflight_order(hl_outgoing(1)))
    assert set(order) == {"required_fields", "skus", "totals"} and all(c.ok for c in order.values()), order


def test_an_archived_acting_user_fails_the_employee_check_until_reactivated(heartland_env: HeartlandEnv) -> None:
    heartland_env.state.set_user_active("online-orders", False)
    check = _by_name(heartland_env.connector.preflight_connection())["employee"]
    assert check.reason is not None and check.reason.code == HoldCode.POS_EMPLOYEE_INACTIVE
    assert check.reason.value == "employee 'online-orders'" and "archived" in check.reason.message
    assert "'Online orders'" in check.reason.fix.text and check.reason.fix.action is FixAction.SET_SETTING
    assert check.reason.fix.param("setting") == "acting_user"
    heartland_env.state.set_user_active("online-orders", True)
    assert _by_name(heartland_env.connector.preflight_connection())["employee"].ok


def test_an_acting_user_heartland_does_not_have_fails_the_employee_check(heartland_env: HeartlandEnv) -> None:
    check = _by_name(heartland_env.build(acting_user="eCom orders").preflight_connection())["employee"]
    assert check.reason is not None and "('eCom orders') is missing" in check.reason.message


def test_missing_archived_and_renamed_helper_items_fail_until_created_and_creating_them_twice_makes_nothing() -> None:
    gen = open_env(helper_items=False)
    env = next(gen)
    try:
        check = _by_name(env.connector.preflight_connection())["helper_items"]
        assert check.reason is not None and check.reason.code == HoldCode.POS_REQUIRED_PRODUCT_MISSING
        assert check.action == "create_helper_items" and check.reason.fix.action is FixAction.CREATE_HELPER_ITEMS
        assert "7 helper item(s)" in check.detail

        made = env.connector.create_helper_items()
        assert sorted(made) == sorted(sku for sku, _ in HELPER_ITEMS)
        assert _by_name(env.connector.preflight_connection())["helper_items"].ok
        created = [e.key for e in env.state.entries("item_created")]
        assert sorted(created) == sorted(made)
        helpers = [env.state.item_by_public_id(sku) for sku, _ in HELPER_ITEMS]
        assert all(h is not None and not h["track_inventory"] and not h["taxable"] for h in helpers)

        assert env.connector.create_helper_items() == []  # idempotent: nothing is missing, nothing is made
        assert len(env.state.entries("item_created")) == len(made)

        # archived, renamed: restored in place, never a second item with the Item #
        shipping = env.state.item_by_public_id("Shopify Shipping")
        discount = env.state.item_by_public_id("Shopify Discount")
        assert shipping is not None and discount is not None
        shipping["active"] = False
        discount["description"] = "Remise"
        check = _by_name(env.connector.preflight_connection())["helper_items"]
        assert check.reason is not None and "archived" in check.detail and "renamed" in check.detail
        assert sorted(env.connector.create_helper_items()) == ["Shopify Discount", "Shopify Shipping"]
        assert _by_name(env.connector.preflight_connection())["helper_items"].ok
        assert len([i for i in env.state.items.values() if i["public_id"] == "Shopify Shipping"]) == 1
    finally:
        gen.close()


def test_helper_items_are_made_where_an_item_custom_field_is_required_and_it_is_required_again_after() -> None:
    gen = open_env(helper_items=False)
    env = next(gen)
    try:
        field = env.state.add_custom_field("season", "item", required=True)
        made = env.connector.create_helper_items()
        assert len(made) == len(HELPER_ITEMS)
        assert field["required"] is True  # turned off for the calls, on again after (as Heartland's importer does)
        assert [e.data["required"] for e in env.state.entries("custom_field_updated")] == [False, True]
    finally:
        gen.close()


def test_an_inactive_station_or_location_fails_the_location_check_until_active(heartland_env: HeartlandEnv) -> None:
    station = heartland_env.state.stations[heartland_env.station_id]
    station["active"] = False
    check = _by_name(heartland_env.connector.preflight_connection())["location"]
    assert check.reason is not None and check.reason.code == HoldCode.POS_LOCATION_INACTIVE
    assert check.reason.fix.param("setting") == "station_id"
    station["active"] = True
    heartland_env.state.locations[station["location_id"]]["active"] = False
    check = _by_name(heartland_env.connector.preflight_connection())["location"]
    assert check.reason is not None and "location" in check.reason.message
    heartland_env.state.locations[station["location_id"]]["active"] = True
    assert _by_name(heartland_env.connector.preflight_connection())["location"].ok
    missing = _by_name(heartland_env.build(station_id=999).preflight_connection())["location"]
    assert missing.reason is not None and "(station 999) is missing" in missing.reason.message


def test_a_required_custom_field_fails_until_the_order_a_mapping_or_a_default_gives_it_a_value(
    heartland_env: HeartlandEnv,
) -> None:
    heartland_env.state.add_custom_field("gift_note", "sales.transaction", required=True)
    check = _by_name(heartland_env.connector.preflight_order(hl_outgoing(1)))["required_fields"]
    assert check.reason is not None and check.reason.code == HoldCode.REQUIRED_FIELD_MISSING
    assert (
        check.reason.value == "gift_note" and "Settings › Custom fields › Gift Note: required" in check.reason.message
    )
    assert check.reason.fix.param("setting") == "custom_field_defaults"

    with_value = outgoing(replace(make_order(1), custom_fields=(("gift_note", "Happy birthday"),)), policy=HL_POLICY)
    assert _by_name(heartland_env.connector.preflight_order(with_value))["required_fields"].ok
    mapped = heartland_env.build(custom_field_map={"gift_note": "email"})
    assert _by_name(mapped.preflight_order(hl_outgoing(1)))["required_fields"].ok
    defaulted = heartland_env.build(custom_field_defaults={"gift_note": "online"})
    assert _by_name(defaulted.preflight_order(hl_outgoing(1)))["required_fields"].ok


def test_each_pos_setting_that_requires_something_the_order_lacks_fails_the_check(heartland_env: HeartlandEnv) -> None:
    heartland_env.state.put_setting("pos.tickets.customer_required", True)
    no_email = outgoing(replace(make_order(1), email=""), policy=HL_POLICY)
    check = _by_name(heartland_env.connector.preflight_order(no_email))["required_fields"]
    assert check.reason is not None and "pos.tickets.customer_required" in check.reason.message
    assert _by_name(heartland_env.connector.preflight_order(hl_outgoing(1)))["required_fields"].ok

    heartland_env.state.put_setting("pos.tickets.reason_of_adjusting_price_required", True)
    order = make_order(2)
    discounted = replace(order.lines[0], discount=Money(Decimal("2.00"), "USD"))
    order = replace(order, lines=(discounted, *order.lines[1:]), total=Money(order.total.amount - 2, "USD"))
    check = _by_name(heartland_env.connector.preflight_order(outgoing(order, policy=HL_POLICY)))["required_fields"]
    assert check.reason is not None and "reason_of_adjusting_price_required" in check.reason.message
    with_reason = heartland_env.build(price_adjustment_reason="Online discount")
    assert _by_name(with_reason.preflight_order(outgoing(order, policy=HL_POLICY)))["required_fields"].ok


def test_an_sku_without_an_active_item_fails_the_sku_check_naming_the_values(heartland_env: HeartlandEnv) -> None:
    refused = heartland_env.refused_order(1)
    check = _by_name(heartland_env.connector.preflight_order(refused))["skus"]
    assert check.reason is not None and check.reason.code == HoldCode.SKU_UNMAPPED
    assert check.reason.value == "NOT-IN-HEARTLAND" and "'NOT-IN-HEARTLAND'" in check.detail
    item = heartland_env.state.item_by_public_id("SKU-1")
    assert item is not None
    item["active"] = False  # archived
    check = _by_name(heartland_env.connector.preflight_order(hl_outgoing(1)))["skus"]
    assert check.reason is not None and check.reason.value == "SKU-1"
    item["active"] = True
    assert _by_name(heartland_env.connector.preflight_order(hl_outgoing(1)))["skus"].ok


def _discounted(quantity: int, discount: str) -> tuple[Decimal, object]:
    """make_order(1) with its second line of ``quantity`` units discounted by ``discount`` in all."""
    order = make_order(1)
    line = replace(order.lines[1], quantity=quantity, discount=Money(Decimal(discount), "USD"))
    total = order.lines[0].unit_price.amount + quantity * line.unit_price.amount - Decimal(discount) + Decimal("6.05")
    return total, outgoing(replace(order, lines=(order.lines[0], line), total=Money(total, "USD")), policy=HL_POLICY)


def test_a_line_discount_heartland_cannot_reproduce_per_unit_fails_the_totals_check_with_both_figures(
    heartland_env: HeartlandEnv,
) -> None:
    # 1.00 off 3 units is 0.33 a unit in Heartland: 0.99 off, one cent apart — within a cent
    _, within = _discounted(3, "1.00")
    assert _by_name(heartland_env.connector.preflight_order(within))["totals"].ok  # type: ignore[arg-type]
    # 2.00 off 6 units is 0.33 a unit: 1.98 off, two cents apart — held with both figures
    total, apart = _discounted(6, "2.00")
    check = _by_name(heartland_env.connector.preflight_order(apart))["totals"]  # type: ignore[arg-type]
    assert check.reason is not None and check.reason.code == HoldCode.POS_TOTAL_MISMATCH
    pos = total + Decimal("0.02")
    assert f"a total of {pos} USD for an order of {total} USD" in check.reason.message
    assert "per-unit adjusted price" in check.reason.message
