"""Square POS destination: orders, external payments, catalog variations, pre-flight checks."""

from orderbridge.connectors.square.connector import SquareDestination

__all__ = ["SquareDestination"]
