"""The Shopify Admin API sandbox (REST orders, GraphQL with cost throttling, bulk, fulfilments)."""

from orderbridge.sandboxes.shopify.app import create_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState

__all__ = ["ShopifyState", "create_sandbox"]
