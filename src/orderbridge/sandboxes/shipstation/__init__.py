"""ShipStation V1 sandbox: a faithful local emulator of the 3PL destination OrderBridge posts to.

:func:`create_sandbox` builds the app and its :class:`ShipStationState` (orders, ledger, lazy
warehouse, rate windows). See :mod:`.state` for what is emulated and :mod:`.app` for the routes.
"""

from orderbridge.sandboxes.shipstation.app import create_sandbox
from orderbridge.sandboxes.shipstation.state import KEEP, OrderInvalid, ShipStationState

__all__ = ["KEEP", "OrderInvalid", "ShipStationState", "create_sandbox"]
