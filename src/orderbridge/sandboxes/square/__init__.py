"""Square sandbox: a local emulator of the POS destination OrderBridge posts online orders to.

:func:`create_sandbox` builds the app and its :class:`SquareState` (locations, team members,
catalog, orders, payments, custom attributes, idempotency keys, ledger). See :mod:`.state` for
what is emulated, :mod:`.pricing` for how Square computes an order's amounts and :mod:`.app` for
the routes.
"""

from orderbridge.sandboxes.square.app import create_sandbox
from orderbridge.sandboxes.square.state import SquareState

__all__ = ["SquareState", "create_sandbox"]
