"""A tenant with a Shopify channel and a ShipStation destination on sandboxes on real ports, and the
people who act in it — for the services behind the Mappings and Connections screens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from orderbridge.domain.roles import Role
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.principals import Actor, Principal
from orderbridge.services.scope import Scope
from tests.scoped import tenant

SHOP_TOKEN = "shpat_sandbox"
SHOP_SECRET = "shpss_sandbox"
SS_KEY, SS_SECRET = "ss_key", "ss_secret"


@dataclass
class World:
    hub: Hub
    scope: Scope
    shop: ShopifyState
    shop_url: str
    warehouse: ShipStationState
    warehouse_url: str
    shop_id: int
    warehouse_id: int

    def actor(self, role: Role = Role.OPERATOR, name: str = "Ana Lima") -> Actor:
        return person(self.scope, role, name)


def person(scope: Scope, role: Role = Role.OPERATOR, name: str = "Ana Lima") -> Actor:
    return Actor(Principal("user", 7, scope.tenant_id, role, name, "en"), scope, "203.0.113.9")


@contextmanager
def portal_world(hub: Hub, *, orders: int = 0, realistic: bool = False, connect: bool = True) -> Iterator[World]:
    shop_state, shop_app = shopify_sandbox(orders=orders, seed=5, realistic=realistic, limits=False, bulk_seconds=0.0)
    ss_state, ss_app = shipstation_sandbox(limits=False)
    with run_in_thread(shop_app) as shop, run_in_thread(ss_app) as ss:  # type: ignore[arg-type]
        scope = tenant(hub)
        shop_id = warehouse_id = 0
        if connect:
            shop_id = add_connection(
                scope, "shop", "shopify", shop.base_url, {"access_token": SHOP_TOKEN, "api_secret": SHOP_SECRET}
            ).id
            warehouse_id = add_connection(
                scope, "warehouse", "shipstation", ss.base_url, {"api_key": SS_KEY, "api_secret": SS_SECRET}
            ).id
        yield World(hub, scope, shop_state, shop.base_url, ss_state, ss.base_url, shop_id, warehouse_id)
