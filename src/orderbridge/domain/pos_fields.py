"""The value a POS custom field takes for an order (issue #17, decision 214): shared by the POS
connectors, so "from the order, a configured mapping, or a configured default" means one thing.

Looked up in that order: the order's own custom field of that key; the order field the
connection's mapping maps it from (an attribute of :class:`~orderbridge.domain.order.Order` such
as ``email``, ``note``, ``number``, ``tags`` — a list of texts is joined with ", " — or
``custom:<key>`` for another custom field); the connection's default. Each connector names its own
mapping and default settings (decision 244): Square's ``custom_attributes`` and
``attribute_defaults``, the test kind's ``field_map`` and ``field_defaults``; Heartland's
``custom_field_map`` and ``custom_field_defaults`` keep the same order with more sources (line
properties, dotted address fields). A value of blanks is no value. "" when none gives a value (the
check then holds the order with ``required_field_missing``, naming the field and the POS setting
that requires it)."""

from __future__ import annotations

from collections.abc import Mapping

from orderbridge.domain.order import Order


def field_value(order: Order, key: str, field_map: Mapping[str, str], defaults: Mapping[str, str]) -> str:
    custom = dict(order.custom_fields)
    own = (custom.get(key) or "").strip()
    if own:
        return own
    source = field_map.get(key)
    if source:
        if source.startswith("custom:"):
            value = custom.get(source.removeprefix("custom:"), "")
        else:
            attr = getattr(order, source, "") if not source.startswith("_") else ""
            if isinstance(attr, tuple) and all(isinstance(a, str) for a in attr):
                attr = ", ".join(a for a in attr if a.strip())
            value = attr if isinstance(attr, str) else ""
        if value.strip():
            return value.strip()
    return str(defaults.get(key) or "").strip()
