"""Shopify channel connector: ``client`` (I/O), ``mapper`` (pure JSON → Order), ``connector``."""

from orderbridge.connectors.shopify.connector import DECLARATION, ShopifyChannel

__all__ = ["DECLARATION", "ShopifyChannel"]
