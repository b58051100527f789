"""Mirakl marketplace channel connector: ``client`` (HTTP only), ``mapper`` (pure), ``connector``."""

from orderbridge.connectors.mirakl.connector import MiraklChannel

__all__ = ["MiraklChannel"]
