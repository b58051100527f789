"""The manual channel: orders placed by hand (portal, API, CLI) or imported from files."""

from orderbridge.connectors.manual.connector import DECLARATION, DEFAULT_DOWNLOAD_RULES, ManualChannel

__all__ = ["DECLARATION", "DEFAULT_DOWNLOAD_RULES", "ManualChannel"]
