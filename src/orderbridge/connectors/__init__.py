"""Connectors: adapters to external systems, one package per system with the same shape.

Each connector package holds a ``client`` (the only code that speaks the remote protocol), a
``mapper`` (pure functions between remote JSON and the domain) and a ``connector`` module that
declares it (name, role, capabilities, credentials, cursor field) and implements the interface
in :mod:`orderbridge.connectors.base`.
"""
