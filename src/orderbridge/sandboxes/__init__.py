"""Sandboxes: faithful local emulators of the external APIs, built from their documentation.

Each sandbox is an ASGI app over a state object that keeps its own ledger of what it received,
so tests prove exactly-once delivery from the remote side. See :mod:`.base` for the framework.
"""
