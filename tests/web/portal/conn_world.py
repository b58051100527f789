"""Sandboxes on real ports behind the portal's tenants: a Shopify shop and a ShipStation warehouse
connected in the default tenant, and one connection and mapping of the other tenant's own — the
objects a user of the default tenant must never reach."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.connections import add_connection
from orderbridge.services.mappings import set_mapping
from tests.web.portal.conftest import Portal

SHOP_TOKEN, SHOP_SECRET = "shpat_sandbox", "shpss_sandbox"
SS_KEY, SS_SECRET = "ss_key", "ss_secret"
#: every credential value the tests store: none may ever appear in a page or an API answer
SECRETS = (SHOP_TOKEN, SHOP_SECRET, SS_KEY, SS_SECRET, "shpat_other_tenant", "ss_other_secret")


@dataclass
class Connected:
    shop: ShopifyState
    shop_url: str
    warehouse: ShipStationState
    warehouse_url: str
    shop_id: int
    warehouse_id: int
    #: the other tenant's
    their_shop_id: int
    their_warehouse_id: int
    their_mapping_id: int


@contextmanager
def connected(portal: Portal, *, orders: int = 0, realistic: bool = False) -> Iterator[Connected]:
    shop_state, shop_app = shopify_sandbox(orders=orders, seed=9, realistic=realistic, limits=False, bulk_seconds=0.0)
    ss_state, ss_app = shipstation_sandbox(limits=False)
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss:  # type: ignore[arg-type]
        mine, other = portal.default, portal.other
        shop_id = add_connection(
            mine, "shop", "shopify", shop.base_url, {"access_token": SHOP_TOKEN, "api_secret": SHOP_SECRET}
        ).id
        warehouse_id = add_connection(
            mine, "warehouse", "shipstation", ss.base_url, {"api_key": SS_KEY, "api_secret": SS_SECRET}
        ).id
        their_shop = add_connection(
            other, "their shop", "shopify", shop.base_url, {"access_token": "shpat_other_tenant"}
        )
        their_wh = add_connection(
            other, "their warehouse", "shipstation", ss.base_url, {"api_key": "k", "api_secret": "ss_other_secret"}
        )
        mapping = set_mapping(other, "sku", "THEIR-SKU", "THEIR-TARGET", their_wh.id)
        assert mapping.mapping_id is not None
        yield Connected(
            shop_state,
            shop.base_url,
            ss_state,
            ss.base_url,
            shop_id,
            warehouse_id,
            their_shop.id,
            their_wh.id,
            mapping.mapping_id,
        )
