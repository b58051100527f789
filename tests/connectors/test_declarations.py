"""Declarations: what each registered kind tells the hub, and what a declaration may not say.

The hub reads a kind's settings, defaults, rules, mapping kinds, document key and webhooks from its
declaration only (decision 70); these tests pin the two real kinds' declarations to what the hub
did before they were declared (seed 000's download rules, ShipStation's orderKey and required
fields), and show that an inconsistent declaration or registration is refused at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from orderbridge.connectors import registry
from orderbridge.connectors.base import (
    Capability,
    CredentialField,
    Declaration,
    Role,
    Setting,
    SettingScope,
    WebhookAdapter,
)
from orderbridge.connectors.shopify.connector import CHANNEL_RULES as SHOPIFY_RULES
from orderbridge.domain.mappings import MappingKind
from orderbridge.errors import InvalidInput
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shopify import create_sandbox
from orderbridge.services.connections import add_connection, update_connection
from orderbridge.services.hub import Hub
from tests.builders import SEED_000_RULES
from tests.scoped import cid, tenant

BUILT_IN = ("manual", "shipstation", "shopify")


def test_every_built_in_kind_loads_with_a_consistent_declaration() -> None:
    assert set(BUILT_IN) <= set(registry.kinds())  # tests may register kinds of their own
    for kind in BUILT_IN:
        decl = registry.declaration(kind)
        assert decl.title and decl.docs
        assert all(s.description for s in decl.all_settings()), decl.kind
        if decl.role is Role.CHANNEL:
            decl.download_rules(None)
    assert "shopify" in registry.kinds(Role.CHANNEL) and "shipstation" in registry.kinds(Role.DESTINATION)


def test_shopify_declares_seed_000_rules_its_webhooks_and_its_hub_settings() -> None:
    decl = registry.declaration("shopify")
    assert decl.download_rules(None) == SEED_000_RULES
    # a connection's rules are merged over the default: a rule left out keeps Shopify's
    assert decl.download_rules({"include_test": True}) == SEED_000_RULES.__class__(
        financial_statuses=SEED_000_RULES.financial_statuses,
        fulfilment_statuses=SEED_000_RULES.fulfilment_statuses,
        include_test=True,
    )
    assert isinstance(decl.webhooks, WebhookAdapter) and decl.webhooks.secret_credential == "api_secret"
    shop_domain = decl.setting("shop_domain")
    assert shop_domain is not None and shop_domain.scope is SettingScope.HUB
    assert "shop_domain" not in decl.default_settings and "api_version" in decl.default_settings


def test_the_manual_channel_needs_no_credentials_promises_nothing_and_skips_no_status() -> None:
    decl = registry.declaration("manual")
    assert decl.role is Role.CHANNEL and decl.credentials == () and decl.capabilities == frozenset()
    rules = decl.download_rules(None)
    assert rules.financial_statuses == rules.fulfilment_statuses == frozenset({"any"})
    assert registry.build("manual", "manual:", {}, {}).check()


def test_shipstation_declares_what_the_hub_hardcoded_before() -> None:
    decl = registry.declaration("shipstation")
    # the document key is unchanged, so postings and shipments of an existing ledger still match
    assert decl.order_key(3, "5100000042") == "ob-3-5100000042"
    assert decl.mapping_kinds == {MappingKind.SKU, MappingKind.SHIPPING}
    assert decl.hub_setting({}, "sku_mapping") == decl.hub_setting({}, "shipping_mapping") == "required"
    assert decl.hub_setting({}, "required_fields") == [
        "shipping_address.name",
        "shipping_address.address1",
        "shipping_address.city",
        "shipping_address.country_code",
    ]
    assert decl.hub_setting({"required_fields": []}, "required_fields") == []
    assert Capability.LIST_SHIPMENTS in decl.capabilities


def test_the_hub_s_settings_never_reach_the_connector() -> None:
    """Shopify's connector refuses a setting it does not know; built the hub's way it never sees one."""
    _state, app = create_sandbox(orders=1, seed=3)
    stored: dict[str, Any] = {
        "download_rules": {"include_test": True},
        "webhook_address": "https://hub.example.com/webhooks/shopify/shop",
        "shop_domain": "shop.myshopify.com",
        "bulk_backfill": False,
        "stale_unknown_setting": 1,  # stored before settings were declared: left out, not passed on
    }
    http = in_process_client(app)
    connector = registry.build("shopify", "http://sandbox.local", {"access_token": "shpat_sandbox"}, stored, http=http)
    assert set(connector.settings) == set(registry.declaration("shopify").default_settings)  # type: ignore[union-attr]
    assert connector.settings["bulk_backfill"] is False  # type: ignore[union-attr]
    connector.close()


def _decl(**kw: Any) -> Declaration:
    base: dict[str, Any] = {
        "kind": "probe",
        "role": Role.CHANNEL,
        "title": "Probe",
        "capabilities": frozenset({Capability.LIST_CHANGED}),
        "credentials": (CredentialField("token", "t"),),
    }
    return Declaration(**{**base, **kw})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"capabilities": frozenset({Capability.POST_ORDERS})}, "a channel cannot declare post_orders"),
        ({"capabilities": frozenset({Capability.WEBHOOKS})}, "WEBHOOKS and a webhook adapter go together"),
        ({"settings": (Setting("download_rules", "d", {}),)}, "read by the hub: declare it with SettingScope.HUB"),
        ({"settings": (Setting("a", "x"), Setting("a", "y"))}, "declared twice"),
        ({"mapping_kinds": frozenset({MappingKind.SKU})}, "only destinations declare mapping kinds"),
        (
            {"role": Role.DESTINATION, "capabilities": frozenset({Capability.POST_ORDERS}), "document_key": "k-{n}"},
            "document_key",
        ),
    ],
)
def test_an_inconsistent_declaration_is_refused_when_it_is_made(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _decl(**changes)


def test_an_unknown_setting_is_named_and_hub_settings_are_every_kinds() -> None:
    decl = _decl()
    assert decl.unknown_settings(["download_rules", "webhook_address", "colour"]) == ["colour"]
    assert [s.name for s in decl.all_settings()] == ["download_rules", "webhook_address", "poll_interval_s"]


class _Promises:
    """Declares fulfilment pushes and audits without implementing them."""

    declaration: ClassVar[Declaration] = _decl(
        kind="promises",
        capabilities=frozenset({Capability.LIST_CHANGED, Capability.PUSH_FULFILMENT}),
        channel_rules=SHOPIFY_RULES,
    )

    def check(self) -> str:
        return ""

    def close(self) -> None: ...

    def list_changed(self, since: Any, until: Any = None) -> Iterator[Any]:
        return iter(())


@pytest.fixture
def probe_kind() -> Iterator[str]:
    yield "promises"
    registry.unregister("promises")


def test_a_kind_whose_class_lacks_what_it_declares_is_refused_when_loaded(probe_kind: str) -> None:
    registry.register(probe_kind, _Promises)
    with pytest.raises(TypeError, match="perform, remote_state"):
        registry.declaration(probe_kind)


def test_a_kind_registered_under_another_name_than_it_declares_is_refused(probe_kind: str) -> None:
    registry.register(probe_kind, "orderbridge.connectors.shopify.connector:ShopifyChannel")
    with pytest.raises(TypeError, match="declares kind 'shopify'"):
        registry.declaration(probe_kind)


def test_connections_are_added_by_the_credential_and_setting_names_their_kind_declares(hub: Hub) -> None:
    with pytest.raises(InvalidInput) as missing:
        add_connection(tenant(hub), "shop", "shopify", "https://x.myshopify.com", {})
    assert "access_token" in str(missing.value) and "--credential access_token=shpat_…" in missing.value.hint
    with pytest.raises(InvalidInput, match=r"no setting.*colour") as unknown:
        add_connection(
            tenant(hub), "shop", "shopify", "https://x.myshopify.com", {"access_token": "t"}, {"colour": "red"}
        )
    assert "shop_domain" in unknown.value.hint and "download_rules" in unknown.value.hint
    with pytest.raises(InvalidInput, match="invalid download rules"):
        add_connection(
            tenant(hub),
            "shop",
            "shopify",
            "https://x.myshopify.com",
            {"access_token": "t"},
            {"download_rules": {"x": 1}},
        )
    row = add_connection(
        tenant(hub),
        "shop",
        "shopify",
        "https://x.myshopify.com",
        {"access_token": "t"},
        {"shop_domain": "x.myshopify.com"},
    )
    # the connector's defaults are stored with it; the hub's are read from the declaration when used
    assert row.settings == {**registry.declaration("shopify").default_settings, "shop_domain": "x.myshopify.com"}
    assert row.hub_setting("download_rules") == registry.declaration("shopify").setting("download_rules").default  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="no setting"):
        update_connection(
            tenant(hub), cid(hub, "shop"), settings={"required_fields": ["email"]}
        )  # a destination's setting
