"""ShipStation V1 destination connector: ``client`` (HTTP only), ``mapper`` (pure), ``connector``."""

from orderbridge.connectors.shipstation.connector import ShipStationDestination

__all__ = ["ShipStationDestination"]
