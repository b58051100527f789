"""Heartland Retail POS destination (issue #17): client, mapper, connector."""

from orderbridge.connectors.heartland.connector import HeartlandDestination

__all__ = ["HeartlandDestination"]
