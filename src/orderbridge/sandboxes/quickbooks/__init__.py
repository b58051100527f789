"""QuickBooks Online sandbox: a local emulator of the accounting destination OrderBridge posts to.

:func:`create_sandbox` builds the app and its :class:`QuickBooksState` (companies, tokens,
requestids, ledger). See :mod:`.state` for what is emulated and :mod:`.app` for the routes.
"""

from orderbridge.sandboxes.quickbooks.app import create_sandbox
from orderbridge.sandboxes.quickbooks.state import QuickBooksState

__all__ = ["QuickBooksState", "create_sandbox"]
