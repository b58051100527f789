import pytest

from orderbridge.cli.fixes import command
from orderbridge.domain.mappings import DestinationPolicy, ServiceRef
from orderbridge.domain.order import PaymentStatus
from orderbridge.domain.pipeline import evaluate, resolve
from orderbridge.domain.reasons import HoldCode
from orderbridge.domain.states import OrderState
from orderbridge.fixes import FixAction
from tests.builders import SEED_000_RULES, order

UPS = ServiceRef("ups", "ups_ground")


def policy(**kw: object) -> DestinationPolicy:
    base: dict[str, object] = {
        "name": "3pl",
        "sku_map": {"SKU-1": "W-1", "SKU-2": "W-2"},
        "shipping_map": {"Standard": UPS},
    }
    base.update(kw)
    return DestinationPolicy(**base)  # type: ignore[arg-type]


def test_a_fully_mapped_paid_order_is_ready() -> None:
    assert evaluate(order(), SEED_000_RULES, [policy()]).state is OrderState.READY


def test_every_unmapped_sku_is_named_once() -> None:
    d = evaluate(order(skus=("X-1", "SKU-1", "X-2", "X-1")), SEED_000_RULES, [policy()])
    assert d.state is OrderState.HELD
    assert [(r.code, r.value) for r in d.reasons] == [(HoldCode.SKU_UNMAPPED, "X-1"), (HoldCode.SKU_UNMAPPED, "X-2")]
    fix = d.reasons[0].fix
    assert (fix.action, fix.args) == (FixAction.MAP_SKU, {"sku": "X-1", "destination": policy().name})
    assert "mappings set sku 'X-1'" in (command(fix) or "")


def test_unknown_shipping_method_is_held_with_the_method_named() -> None:
    d = evaluate(order(shipping="Drone"), SEED_000_RULES, [policy()])
    assert [(r.code, r.value) for r in d.reasons] == [(HoldCode.SHIPPING_METHOD_UNMAPPED, "Drone")]


def test_a_default_shipping_mapping_covers_unknown_methods() -> None:
    d = evaluate(order(shipping="Drone"), SEED_000_RULES, [policy(shipping_map={"*": UPS})])
    assert d.state is OrderState.READY


def test_a_line_without_sku_is_held_not_dropped() -> None:
    d = evaluate(order(skus=("SKU-1", None)), SEED_000_RULES, [policy()])
    assert [r.code for r in d.reasons] == [HoldCode.SKU_MISSING]


def test_download_rules_win_over_holds() -> None:
    d = evaluate(order(skus=("X",), payment_status=PaymentStatus.PENDING), SEED_000_RULES, [policy()])
    assert d.state is OrderState.SKIPPED


def test_required_fields_are_checked_by_dotted_path() -> None:
    from tests.builders import replace

    o = order()
    assert o.shipping_address is not None
    o = replace(o, shipping_address=replace(o.shipping_address, city=""))
    d = evaluate(o, SEED_000_RULES, [policy(required_fields=("shipping_address.city",))])
    assert [(r.code, r.value) for r in d.reasons] == [(HoldCode.REQUIRED_FIELD_MISSING, "shipping_address.city")]


def test_identity_sku_mode_passes_skus_through() -> None:
    r = resolve(order(skus=("ANY",)), policy(sku_mapping_required=False))
    assert [ln.destination_sku for ln in r.lines] == ["ANY"]


def test_resolve_maps_every_line_and_the_service() -> None:
    r = resolve(order(skus=("SKU-1", "SKU-2")), policy())
    assert [ln.destination_sku for ln in r.lines] == ["W-1", "W-2"]
    assert r.service == UPS


def test_resolve_refuses_an_order_it_would_hold_instead_of_dropping_a_line() -> None:
    with pytest.raises(ValueError, match="'X'"):
        resolve(order(skus=("SKU-1", "X")), policy())


def test_an_order_without_lines_is_held_as_invalid() -> None:
    d = evaluate(order(skus=()), SEED_000_RULES, [policy()])
    assert [r.code for r in d.reasons] == [HoldCode.INVALID_ORDER]
