"""WooCommerce (REST API v3) as an order channel: listing, audits, webhooks, planned status pushes."""

from orderbridge.connectors.woocommerce.connector import DECLARATION, RULES, WooCommerceChannel

__all__ = ["DECLARATION", "RULES", "WooCommerceChannel"]
