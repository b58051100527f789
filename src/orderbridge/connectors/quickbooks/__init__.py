"""QuickBooks Online destination: SalesReceipt or Invoice per order, amendments, OAuth 2 tokens."""

from orderbridge.connectors.quickbooks.connector import QuickBooksDestination

__all__ = ["QuickBooksDestination"]
