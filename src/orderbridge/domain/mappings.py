"""Mappings: channel values → destination values, per destination connection.

Two kinds are needed by the first destination (a 3PL): SKUs and shipping methods. A shipping
method maps to a ``carrier:service`` pair; the key ``*`` is the default used when the order has no
shipping line or no specific mapping. SKU mapping may be ``required`` (a 3PL only ships SKUs it
stocks — seed 000) or ``identity`` (pass channel SKUs through unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class MappingKind(StrEnum):
    SKU = "sku"
    SHIPPING = "shipping"


DEFAULT_KEY = "*"


@dataclass(frozen=True, slots=True)
class ServiceRef:
    carrier: str
    service: str

    @classmethod
    def parse(cls, text: str) -> ServiceRef:
        carrier, sep, service = text.partition(":")
        if not sep or not carrier.strip() or not service.strip():
            raise ValueError(f"shipping mapping {text!r} must look like 'carrier:service', e.g. 'ups:ups_ground'")
        return cls(carrier.strip(), service.strip())

    def __str__(self) -> str:
        return f"{self.carrier}:{self.service}"


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """What one destination needs from an order, with the mappings known for it."""

    name: str
    sku_map: Mapping[str, str] = field(default_factory=dict)
    shipping_map: Mapping[str, ServiceRef] = field(default_factory=dict)
    sku_mapping_required: bool = True
    shipping_mapping_required: bool = True
    required_fields: tuple[str, ...] = ()

    def destination_sku(self, sku: str) -> str | None:
        mapped = self.sku_map.get(sku)
        if mapped is None and not self.sku_mapping_required:
            return sku
        return mapped

    def service_for(self, method: str | None) -> ServiceRef | None:
        if method is not None and method in self.shipping_map:
            return self.shipping_map[method]
        return self.shipping_map.get(DEFAULT_KEY)
