"""Heartland Retail sandbox: a local emulator of the POS destination OrderBridge posts sales to.

:func:`create_sandbox` builds the app and its :class:`HeartlandState` (users, stations, items,
custom fields, POS settings, customers, sales orders, invoices, tickets, inventory, ledger). See
:mod:`.state` for what is emulated and the seed-001 traps, :mod:`.app` for the routes.
"""

from orderbridge.sandboxes.heartland.app import create_sandbox
from orderbridge.sandboxes.heartland.state import HELPER_ITEMS, HeartlandState, Settings

__all__ = ["HELPER_ITEMS", "HeartlandState", "Settings", "create_sandbox"]
