"""Mirakl marketplace sandbox: a faithful local emulator of the seller (shop) API OrderBridge polls and pushes to.

:func:`create_sandbox` builds the app and its :class:`MiraklState` (orders, the state machine, the
operator's debit, auto-refusal, the back office, the call ledger). See :mod:`.state` and :mod:`.app`.
"""

from orderbridge.sandboxes.mirakl.app import create_sandbox
from orderbridge.sandboxes.mirakl.state import MiraklError, MiraklState

__all__ = ["MiraklError", "MiraklState", "create_sandbox"]
