"""The value a POS custom field takes for an order (issue #17, decision 214): shared by the POS
connectors, so "from the order, a configured mapping, or a configured default" means one thing.

Looked up in that order: the order's own custom field of that key; the order field the
connection's ``field_map`` maps it from (an attribute of :class:`~orderbridge.domain.order.Order`
such as ``email``, ``note``, ``number``, or ``custom:<key>`` for another custom field); the
connection's ``field_defaults``. "" when none gives a value (the check then holds the order with
``required_field_missing``, naming the field and the POS setting that requires it)."""

from __future__ import annotations

from collections.abc import Mapping

from orderbridge.domain.order import Order


def field_value(order: Order, key: str, field_map: Mapping[str, str], defaults: Mapping[str, str]) -> str:
    custom = dict(order.custom_fields)
    if custom.get(key):
        return custom[key]
    source = field_map.get(key)
    if source:
        if source.startswith("custom:"):
            value = custom.get(source.removeprefix("custom:"), "")
        else:
            attr = getattr(order, source, "") if not source.startswith("_") else ""
            value = attr if isinstance(attr, str) else ""
        if value:
            return value
    return str(defaults.get(key) or "")
