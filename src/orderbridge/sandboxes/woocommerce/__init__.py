"""WooCommerce REST API v3 sandbox: orders, notes, batch, webhooks, Basic and OAuth 1.0a auth.

:func:`create_sandbox` builds the app and its :class:`WooState`; :mod:`.tls` serves it over HTTPS
with a self-signed certificate. See :mod:`.state` for what is emulated.
"""

from orderbridge.sandboxes.woocommerce.app import create_sandbox
from orderbridge.sandboxes.woocommerce.state import Refused, WooState

__all__ = ["Refused", "WooState", "create_sandbox"]
